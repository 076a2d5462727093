"""Fan-out under a real runner: .github/workflows/example-matrix.yml run by nektos/act.

The workflow users copy, with `org/onnx-convert-action@v1` pointed at this checkout (`./`):
plan -> one convert job per manifest entry (select) -> merge, which lists and downloads the
run's artifacts from act's artifact server (protocol v4: ListArtifacts, GetSignedArtifactURL)
and writes the index to the summary. The sandbox, the image build and the act run are shared
with the other e2e modules (tests/fixtures/act.py).
"""

from __future__ import annotations

import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures import act

pytestmark = [pytest.mark.e2e, pytest.mark.converts]

# The entry's name, not the file's stem, names the matrix job's artifact: logreg-onnx holds iris.*.
MANIFEST = """\
models:
  - name: logreg
    model-path: models/iris.skops
  - name: forest
    model-path: models/forest.skops
"""


@dataclass
class MatrixRun:
    run: act.ActRun
    summaries: dict[str, str]  # "plan", "convert/<matrix name>", "merge" -> that job's summary
    errors: dict[str, list[str]]  # the same keys -> the ::error annotations of that job


def _workflow() -> str:
    """example-matrix.yml as users copy it, with the action's placeholder pointed at this checkout."""
    text = (act.ROOT / ".github" / "workflows" / "example-matrix.yml").read_text()
    pinned = "org/onnx-convert-action@v1"
    assert text.count(pinned) == 3, "plan, convert and merge each use the action"
    lines = [line.split(pinned)[0] + "./" if pinned in line else line for line in text.splitlines()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MatrixRun]:
    with act.exclusive_sandbox():
        yield _run(tmp_path_factory.mktemp("matrix"))


def _run(base: Path) -> MatrixRun:
    repo = act.new_repository(base)
    for builder in ("sklearn-iris", "sklearn-forest"):
        act.build_model(builder, repo / "models")
    (repo / "onnx-models.yml").write_text(MANIFEST)
    (repo / ".github" / "workflows" / "example-matrix.yml").write_text(_workflow())
    run = act.run_workflow(repo, "example-matrix.yml", base)
    summaries: dict[str, str] = defaultdict(str)
    errors: dict[str, list[str]] = defaultdict(list)
    for entry in act.step_events(run):
        job = entry.get("jobID", "")
        if name := (entry.get("matrix") or {}).get("name"):
            job = f"{job}/{name}"
        if entry.get("command") == "summary":
            summaries[job] += entry.get("content", "")
        elif entry.get("command") == "error":
            errors[job].append(entry.get("arg", ""))
    return MatrixRun(run, dict(summaries), dict(errors))


def test_plan_fans_out_one_artifact_per_model(matrix_run: MatrixRun) -> None:
    assert act.zips(matrix_run.run) == ["1/forest-onnx/forest-onnx.zip", "1/logreg-onnx/logreg-onnx.zip"]
    artifacts = matrix_run.run.artifacts / "1"
    forest = zipfile.ZipFile(artifacts / "forest-onnx" / "forest-onnx.zip").namelist()
    assert sorted(forest) == ["forest.onnx", "forest.report.json", "forest.report.md"]
    logreg = zipfile.ZipFile(artifacts / "logreg-onnx" / "logreg-onnx.zip").namelist()
    assert sorted(logreg) == ["iris.onnx", "iris.report.json", "iris.report.md"]


def test_plan_job_summary_lists_the_models(matrix_run: MatrixRun) -> None:
    assert matrix_run.summaries["plan"].rstrip("\n") == (
        "## onnx-convert plan: 2 models\n\n| Name | Model |\n|---|---|\n"
        "| `logreg` | `models/iris.skops` |\n| `forest` | `models/forest.skops` |"
    )


def test_each_matrix_job_converts_its_entry_and_reports_it(matrix_run: MatrixRun) -> None:
    assert matrix_run.summaries["convert/logreg"].startswith("## ✅ iris.skops → iris.onnx: ")
    assert matrix_run.summaries["convert/forest"].startswith("## ✅ forest.skops → forest.onnx: ")
    assert "**Artifact:** [logreg-onnx](" in matrix_run.summaries["convert/logreg"]


def test_merge_writes_the_index_of_every_matrix_job(matrix_run: MatrixRun) -> None:
    summary = matrix_run.summaries["merge"]
    assert summary.startswith("## ✅ 2 models converted and validated")
    # Framework and format come from the reports merge downloaded from the artifact server.
    rows = {line.split(" | ")[0]: line for line in summary.splitlines() if line.startswith("| `")}
    assert set(rows) == {"| `forest` (sklearn)", "| `logreg` (sklearn)"}
    tolerance = "atol\u00a00.001, rtol\u00a00.001"  # no-break spaces: one line in its cell
    assert all(" | ✅ pass | " in row and f" | {tolerance} | " in row for row in rows.values())
    assert matrix_run.errors == {}
