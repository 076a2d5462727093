"""The action's many-model modes in-process: a manifest in one job, select and merge (plan, and what is
refused before converting: test_github_action_inputs.py).

Real scikit-learn models; artifacts go to (and come back from) the local protocol-v4 server.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fixtures.artifact_server import Fault
from tests.fixtures.sklearn import dataset
from tests.fixtures.tiers import model_fixture

MANIFEST = """\
models:
  - name: logreg
    model-path: models/logreg.skops
  - name: knn
    model-path: models/knn.skops
"""


@model_fixture
def workspace(tmp_path: Path, iris_skops: Path) -> Path:
    import skops.io as sio
    from sklearn.neighbors import KNeighborsClassifier

    ws = tmp_path / "workspace"
    (ws / "models").mkdir(parents=True)
    (ws / "models" / "logreg.skops").write_bytes(iris_skops.read_bytes())
    sio.dump(KNeighborsClassifier().fit(*dataset("iris")), ws / "models" / "knn.skops")
    (ws / "onnx-models.yml").write_text(MANIFEST)
    return ws


def members(server, name: str) -> list[str]:
    artifact = server.artifacts[name]
    assert artifact.finalized
    return sorted(zipfile.ZipFile(io.BytesIO(artifact.committed)).namelist())


def test_select_converts_one_entry_and_uploads_its_artifact(action, server, workspace: Path) -> None:
    done = action(env=server.env(), model_path="onnx-models.yml", select="knn")
    assert done.code == 0, done.stdout
    assert list(server.artifacts) == ["knn-onnx"]
    assert members(server, "knn-onnx") == ["knn.onnx", "knn.report.json", "knn.report.md"]
    outputs = done.outputs
    assert outputs["passed"] == "true"
    assert outputs["onnx-path"] == "onnx-models/knn/knn.onnx"
    assert outputs["report-path"] == "onnx-models/knn/knn.report.json"
    assert outputs["artifact-id"] == server.artifacts["knn-onnx"].artifact_id
    assert done.summary.startswith(
        "## ⚠️ knn.skops → knn.onnx: within tolerance, but the outputs barely depend on the inputs\n"
    )


def test_a_manifest_in_one_job_uploads_one_combined_artifact(action, server) -> None:
    done = action(env=server.env(), model_path="onnx-models.yml")
    assert done.code == 0, done.stdout
    assert members(server, "onnx-models") == [
        "index.json",
        "index.md",
        "knn/knn.onnx",
        "knn/knn.report.json",
        "knn/knn.report.md",
        "logreg/logreg.onnx",
        "logreg/logreg.report.json",
        "logreg/logreg.report.md",
    ]
    assert done.summary.startswith("## ✅ 2 models converted and validated")
    assert done.outputs["report-path"] == "onnx-models/index.json"


@pytest.mark.parametrize("select", ["knn", ""], ids=["matrix job", "one job"])
def test_retention_over_the_repository_limit_is_cut_to_it_with_a_warning(action, server, select: str) -> None:
    env = {**server.env(), "GITHUB_RETENTION_DAYS": "30"}
    done = action(env=env, model_path="onnx-models.yml", select=select, retention_days="400")
    assert done.code == 0, done.stdout
    assert done.commands("warning") == [
        "::warning title=onnx-convert::retention-days 400 is over the repository's limit; keeping the artifact 30 days"
    ]
    expires = datetime.strptime(server.create_requests[0]["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(hours=1)


def test_a_failing_model_in_a_manifest_fails_the_step_and_names_it(action, server, workspace: Path) -> None:
    strict = MANIFEST.replace("models/logreg.skops\n", "models/logreg.skops\n    atol: 0\n    rtol: 0\n")
    (workspace / "onnx-models.yml").write_text(strict)
    done = action(env=server.env(), model_path="onnx-models.yml", upload_artifact="false")
    errors = done.commands("error")
    assert done.code == 1
    assert len(errors) == 1 and "logreg: failed: probabilities" in errors[0]
    assert done.outputs["passed"] == "false"
    assert (done.outputs["status"], done.outputs["failing-outputs"]) == ("failed", '["logreg/probabilities"]')
    # the summary explains it: the worst model, its |diff| where nothing was allowed, and its folded verdict
    assert done.summary.startswith("## ❌ 1 of 2 models failed\n\n❌ `logreg`: **worst output** `probabilities`: ")
    assert "<details><summary>❌ logreg: failed</summary>" in done.summary


def test_a_forgiven_mismatch_is_a_warning_not_an_error(action, server, workspace: Path) -> None:
    lenient = MANIFEST.replace(
        "models/logreg.skops\n", "models/logreg.skops\n    atol: 0\n    rtol: 0\n    fail-on-mismatch: false\n"
    )
    (workspace / "onnx-models.yml").write_text(lenient)
    done = action(env=server.env(), model_path="onnx-models.yml", select="logreg", upload_artifact="false")
    assert done.code == 0
    assert done.commands("error") == []
    warnings = done.commands("warning")
    assert len(warnings) == 1 and "logreg: failed: probabilities" in warnings[0]
    assert warnings[0].endswith("(fail-on-mismatch is false)")
    assert done.outputs["passed"] == "false"


def test_merge_builds_the_index_from_the_runs_artifacts(action, server, workspace: Path) -> None:
    (workspace / "onnx-models.yml").write_text(MANIFEST + "  - name: missing-one\n    model-path: models/knn.skops\n")
    for name in ("logreg", "knn"):  # two matrix jobs; the third never uploaded
        assert action(env=server.env(), model_path="onnx-models.yml", select=name).code == 0
    merged = action(env=server.env(), mode="merge", model_path="onnx-models.yml", output_dir="merged")
    assert merged.code == 1  # one model has no artifact
    assert "ListArtifacts" in server.calls and server.calls.count("download") == 2
    index = json.loads((workspace / "merged" / "index.json").read_text())
    rows = {row["name"]: row for row in index["models"]}
    assert rows["logreg"]["passed"] and rows["knn"]["passed"]
    assert rows["logreg"]["framework"] == "sklearn" and rows["logreg"]["opset"]
    assert rows["missing-one"]["status"] == "missing"
    assert "no artifact missing-one-onnx" in rows["missing-one"]["error"]
    assert (workspace / "merged" / "knn-onnx" / "knn.report.json").is_file()
    assert "| `missing-one` |" in merged.summary
    assert merged.outputs["report-path"] == "merged/index.json"


def test_links_under_the_output_dir_are_never_followed_and_the_run_still_reports(
    action, server, workspace: Path, tmp_path: Path
) -> None:
    # A pull request can commit links in the output folder to the runner's files.
    (tmp_path / "runner-secret.txt").write_text("ghs_secret")
    links = workspace / "onnx-models"
    links.mkdir()
    (links / "leak.txt").symlink_to(tmp_path / "runner-secret.txt")
    (links / "etc").symlink_to("/etc")
    (links / "inside.skops").symlink_to("../models/knn.skops")

    done = action(env=server.env(), model_path="onnx-models.yml")

    assert done.code == 0, done.stdout
    assert members(server, "onnx-models") == [
        "index.json",
        "index.md",
        "knn/knn.onnx",
        "knn/knn.report.json",
        "knn/knn.report.md",
        "logreg/logreg.onnx",
        "logreg/logreg.report.json",
        "logreg/logreg.report.md",
    ]
    assert done.commands("warning") == [
        "::warning title=onnx-convert::not uploaded: 3 symbolic link(s) in onnx-models (etc -> /etc, "
        f"inside.skops -> ../models/knn.skops, leak.txt -> {tmp_path}/runner-secret.txt); links are never "
        "followed, the artifact holds the files the conversion wrote"
    ]
    assert done.summary.startswith("## ✅ 2 models converted and validated")
    assert done.outputs["artifact-id"] == server.artifacts["onnx-models"].artifact_id


def test_a_failed_upload_still_writes_the_summary_and_the_outputs_and_keeps_the_files(
    action, server, workspace: Path
) -> None:
    server.inject("create", Fault(status=403))

    done = action(env=server.env(), model_path="onnx-models.yml")

    assert done.code == 1
    assert [line.split("::")[2][:40] for line in done.commands("error")] == ["artifact upload failed: CreateArtifact t"]
    assert done.summary.rstrip("\n").endswith(
        f"**Artifact:** not uploaded: CreateArtifact to {server.url}/twirp/github.actions.results.api.v1."
        "ArtifactService/CreateArtifact failed: HTTP 403 (unavailable: injected fault); the artifact was not "
        "finalized; re-run the job, or set upload-artifact: false. The files are in `onnx-models` on the "
        "runner, for a later step to upload."
    )
    assert done.outputs["passed"] == "true" and done.outputs["artifact-id"] == ""
    assert (workspace / "onnx-models" / "knn" / "knn.onnx").is_file()
