"""merge reads artifacts and reports that other jobs made from repository models: bounded, and never a traceback.

Each artifact here is a zip another job could have uploaded (a matrix job that ran code from a
model with allow-unsafe-load can upload anything under its name): a zip bomb, too many or too big
reports, members whose names climb out or are links, reports whose JSON is not a report.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import pytest

from converter.github.downloads import MAX_REPORT_BYTES, MAX_REPORT_FILES
from tests.fixtures.artifact_server import Artifact
from tests.fixtures.tiers import model_fixture

MANIFEST = "models:\n  - name: knn\n    model-path: models/iris.skops\n"


@model_fixture
def workspace(tmp_path: Path, iris_skops: Path) -> Path:
    ws = tmp_path / "workspace"
    (ws / "models").mkdir(parents=True)
    (ws / "models" / "iris.skops").write_bytes(iris_skops.read_bytes())  # merge reads the manifest, converts nothing
    return ws


def publish(server, name: str, members: dict[str, bytes], links: dict[str, str] | None = None) -> None:
    """An artifact of this run, as another job left it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
        for member, target in (links or {}).items():
            info = zipfile.ZipInfo(member)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    artifact = Artifact(name, None, committed=buffer.getvalue(), finalized=True, artifact_id="77")
    server.artifacts[name] = artifact


def merge(action, server, workspace: Path) -> tuple[object, dict]:
    (workspace / "onnx-models.yml").write_text(MANIFEST)
    done = action(env=server.env(), mode="merge", model_path="onnx-models.yml", output_dir="merged")
    rows = json.loads((workspace / "merged" / "index.json").read_text())["models"]
    return done, rows[0]


def a_report(**changes: object) -> bytes:
    report = {
        "passed": True,
        "status": "passed",
        "model": {"path": "m.skops", "framework": "sklearn", "format": "skops", "description": "", "sha256": "0"}
        | {"bytes": 1},
        "timings": {"total": 1.5},
    }
    return json.dumps(report | changes).encode()


def test_a_zip_bomb_artifact_is_that_models_error_not_a_100_mib_file(action, server, workspace: Path) -> None:
    publish(server, "knn-onnx", {"knn.report.json": b" " * 100 * 1024**2})

    done, row = merge(action, server, workspace)

    assert done.code == 1
    assert row["status"] == "error"
    assert row["error"].startswith('artifact "knn-onnx": its zip would inflate from ')
    assert "so it looks like a zip bomb; upload it again" in row["error"]
    assert not (workspace / "merged" / "knn-onnx").exists()


def test_a_report_bigger_than_a_report_is_refused(action, server, workspace: Path) -> None:
    publish(server, "knn-onnx", {"knn.report.json": b" " * (MAX_REPORT_BYTES + 1)})

    _, row = merge(action, server, workspace)

    assert row["error"] == (
        f"artifact \"knn-onnx\": 'knn.report.json' would inflate to {MAX_REPORT_BYTES + 1:,} bytes, more than the "
        "32 MiB a report may take"
    )


def test_an_artifact_with_more_reports_than_one_model_writes_is_refused(action, server, workspace: Path) -> None:
    publish(server, "knn-onnx", {f"m{i}/m.report.json": a_report() for i in range(MAX_REPORT_FILES + 1)})

    _, row = merge(action, server, workspace)

    assert row["error"] == (
        f'artifact "knn-onnx" holds {MAX_REPORT_FILES + 1} report files, more than the {MAX_REPORT_FILES} merge reads '
        "from one artifact"
    )


def test_member_names_never_leave_the_folder_and_links_are_not_taken(action, server, workspace: Path) -> None:
    publish(
        server,
        "knn-onnx",
        {"../../../escaped.report.json": a_report(), "/abs/knn.report.json": a_report(error="second")},
        links={"link.report.json": "/etc/passwd"},
    )

    done, row = merge(action, server, workspace)

    assert done.code == 0, done.stdout
    target = workspace / "merged" / "knn-onnx"
    assert sorted(p.name for p in target.iterdir()) == ["escaped.report.json", "knn.report.json"]
    assert not any(p.name == "escaped.report.json" for p in workspace.parent.rglob("*") if target not in p.parents)
    assert row["report"] == str(target / "knn.report.json")  # the shallowest: zipfile drops a leading /


def test_a_link_where_a_report_is_written_is_replaced_not_followed(action, server, workspace: Path) -> None:
    outside = workspace.parent / "victim.txt"
    outside.write_text("untouched")
    (workspace / "merged" / "knn-onnx").mkdir(parents=True)
    (workspace / "merged" / "knn-onnx" / "knn.report.json").symlink_to(outside)
    publish(server, "knn-onnx", {"knn.report.json": a_report()})

    done, _ = merge(action, server, workspace)

    assert done.code == 0, done.stdout
    assert outside.read_text() == "untouched"
    assert not (workspace / "merged" / "knn-onnx" / "knn.report.json").is_symlink()


def test_a_link_as_the_artifacts_folder_is_that_models_error(action, server, workspace: Path) -> None:
    (workspace.parent / "elsewhere").mkdir()
    (workspace / "merged").mkdir()
    (workspace / "merged" / "knn-onnx").symlink_to(workspace.parent / "elsewhere")
    publish(server, "knn-onnx", {"knn.report.json": a_report()})

    _, row = merge(action, server, workspace)

    assert row["error"] == (
        f'--output-dir "{workspace}/merged/knn-onnx": {workspace}/merged/knn-onnx is a symbolic link (to '
        f"{workspace.parent}/elsewhere), and this tool never writes through a link; remove the link, or give an "
        "output directory that is a plain folder"
    )
    assert list((workspace.parent / "elsewhere").iterdir()) == []


@pytest.mark.parametrize(
    ("report", "problem"),
    [
        (a_report(passed="yes"), "passed is not true or false"),
        (a_report(timings={"total": "soon"}), "type str doesn't define __round__ method"),
        (a_report(timings={"total": -5}), "time is not a duration"),
        (a_report(model="m.skops"), "ModelInfo() argument after ** must be a mapping, not str"),
        (a_report(status=["error"]), "status is not text"),
        (
            b'{"passed": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "maximum recursion depth exceeded while decoding a JSON array",
        ),
        (b"\xff\xfe not json", "'utf-8' codec can't decode byte 0xff in position 0"),
    ],
    ids=["passed", "time", "negative-time", "model", "status", "deep", "bytes"],
)
def test_a_report_that_is_not_a_report_is_that_models_error_row(
    action, server, workspace: Path, report: bytes, problem: str
) -> None:
    publish(server, "knn-onnx", {"knn.report.json": report})

    done, row = merge(action, server, workspace)

    assert done.code == 1
    assert (row["status"], row["model"]) == ("error", "models/iris.skops")
    assert row["error"].startswith("knn.report.json is not a report this tool wrote (")
    assert problem in row["error"]
    assert "❌ 1 of 1 models failed" in done.summary


def test_the_cli_merge_reads_absurd_reports_as_error_rows(run_cli, tmp_path: Path) -> None:
    (tmp_path / "merged" / "good").mkdir(parents=True)
    (tmp_path / "merged" / "good" / "good.report.json").write_bytes(a_report())
    (tmp_path / "merged" / "huge").mkdir()
    (tmp_path / "merged" / "huge" / "huge.report.json").write_bytes(a_report(timings={"total": 10**400}))

    result = run_cli("merge", "--output-dir", str(tmp_path / "merged"))

    assert result.code == 1
    assert result.stdout.splitlines()[:2] == [
        "PASS good (sklearn):  [1.5 s]",  # no max abs diff in this report
        "FAIL huge (?): huge.report.json is not a report this tool wrote (int too large to convert to float) [0.0 s]",
    ]
