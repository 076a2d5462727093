"""The action end to end: its image built by Docker, run by nektos/act as GitHub's runner would.

A copy of the repository gets example models and a workflow that uses the action (``uses: ./``)
once per case in CASES; act runs it against its own artifact server (protocol v4). We check what a
user would see: the job summary, the step outputs, the annotations and the uploaded zips. The
sandbox, the image build and the act run are shared with the other e2e modules (tests/fixtures/act.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from converter.escape import markdown_text, printable
from converter.github.outputs import OUTPUTS
from tests.fixtures import act
from tests.fixtures.runner import markdown_html

pytestmark = [pytest.mark.e2e, pytest.mark.converts]

# -- the cases: one entry per framework, and one that must fail ---------------------------------


@dataclass(frozen=True)
class Case:
    step: str  # step id in the workflow; the artifact is <step>-onnx
    model: str  # a builder in tests/fixtures/e2e_models.py
    inputs: dict[str, str] = field(default_factory=dict)
    passes: bool = True
    file_name: str = ""  # the model is converted under this file name instead of the builder's

    @property
    def artifact(self) -> str:
        return f"{self.step}-onnx"


# A file name from a pull request that tries a workflow command, HTML and a table pipe.
HOSTILE_NAME = "evil\n::warning title=pwned::injected <script>alert(1)<b> | `x`.skops"

CASES = [
    Case("sklearn", "sklearn-iris"),
    # TorchScript does not record input shapes; its code is checked, not trusted (no allow-unsafe-load).
    Case("pytorch", "pytorch-mlp", {"input-shapes": "1x8"}),
    Case("tensorflow", "keras-mlp"),
    # float32 ONNX against float64 scikit-learn cannot be exact: a tolerance of 0 must fail.
    Case("sklearn-zero-tolerance", "sklearn-iris", {"atol": "0", "rtol": "0"}, passes=False),
    Case("hostile-name", "sklearn-iris", file_name=HOSTILE_NAME),
]


# -- running it ---------------------------------------------------------------------------------


@dataclass
class E2ERun:
    run: act.ActRun
    steps: dict[str, dict]  # toJSON(steps) from the workflow: outputs, outcome, conclusion
    logs: dict[str, act.StepLog]
    model_paths: dict[str, str]  # step -> the model-path input


def _workflow(cases: list[Case], model_paths: dict[str, str]) -> str:
    steps: list[dict] = [{"uses": "actions/checkout@v4"}]
    for case in cases:
        step: dict = {
            "id": case.step,
            "uses": "./",
            "with": {
                "model-path": model_paths[case.step],
                "output-dir": f"out/{case.step}",
                "artifact-name": case.artifact,
                **case.inputs,
            },
        }
        if not case.passes:
            step["continue-on-error"] = True
        steps.append(step)
    steps.append(
        {
            "name": "steps",
            "if": "always()",
            "env": {"STEPS": "${{ toJSON(steps) }}"},
            "run": """python3 -c 'import json, os; print("E2E-STEPS " + json.dumps(json.loads(os.environ["STEPS"])))'""",
        }
    )
    workflow = {"name": "e2e", "on": "push", "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": steps}}}
    return yaml.safe_dump(workflow, sort_keys=False, width=1000)


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ERun]:
    with act.exclusive_sandbox():
        yield _run(tmp_path_factory.mktemp("e2e"))


def _run(base: Path) -> E2ERun:
    repo = act.new_repository(base)
    models = repo / "e2e-models"
    built = {name: act.build_model(name, models) for name in {case.model for case in CASES}}
    for case in CASES:
        if case.file_name:
            shutil.copy2(built[case.model], models / case.file_name)
    model_paths = {
        case.step: str((models / case.file_name if case.file_name else built[case.model]).relative_to(repo))
        for case in CASES
    }
    (repo / ".github" / "workflows" / "e2e.yml").write_text(_workflow(CASES, model_paths))
    run = act.run_workflow(repo, "e2e.yml", base)
    steps, logs = act.read_act_log(run)
    assert steps, f"the workflow's last step did not print the steps context; log: {run.log}"
    return E2ERun(run, steps, logs, model_paths)


# -- what a user sees ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.step)
def test_step_outputs_are_set_and_passed_is_right(e2e: E2ERun, case: Case) -> None:
    step = e2e.steps[case.step]
    outputs = step["outputs"]
    assert set(outputs) == set(OUTPUTS)
    assert outputs["passed"] == ("true" if case.passes else "false")
    assert outputs["status"] == ("passed" if case.passes else "failed")
    assert outputs["failing-outputs"] == ("[]" if case.passes else '["probabilities"]')
    assert step["outcome"] == ("success" if case.passes else "failure")
    assert outputs["onnx-path"].startswith(f"out/{case.step}/") and outputs["onnx-path"].endswith(".onnx")
    assert outputs["report-path"].startswith(f"out/{case.step}/") and outputs["report-path"].endswith(".report.json")
    assert int(outputs["opset"]) >= 7
    assert float(outputs["max-abs-diff"]) >= 0
    assert outputs["artifact-id"].isdigit()
    assert outputs["artifact-url"].endswith(f"/actions/runs/1/artifacts/{outputs['artifact-id']}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.step)
def test_job_summary_holds_the_report(e2e: E2ERun, case: Case) -> None:
    summary = e2e.logs[case.step].summary
    model = markdown_text(Path(e2e.model_paths[case.step]).name)
    verdict = "✅" if case.passes else "❌"
    assert summary.startswith(f"## {verdict} {model} → ")
    assert "<details><summary>Comparison at each batch size</summary>" in summary and "\nVersions: python " in summary
    assert f"**Artifact:** [{case.artifact}](" in summary


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.step)
def test_only_the_failing_case_fails_its_step_with_an_error_annotation(e2e: E2ERun, case: Case) -> None:
    errors = e2e.logs[case.step].errors
    if case.passes:
        assert errors == []
        assert e2e.logs[case.step].result == "success"
    else:
        assert len(errors) == 1
        assert errors[0]["kvPairs"] == {"title": "ONNX output differs from the original"}
        assert errors[0]["arg"].startswith("FAIL ")
        assert e2e.logs[case.step].result == "failure"


def test_the_artifact_server_holds_one_zip_per_upload(e2e: E2ERun) -> None:
    assert act.zips(e2e.run) == sorted(f"1/{case.artifact}/{case.artifact}.zip" for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.step)
def test_each_zip_holds_an_onnx_that_onnxruntime_loads_and_the_report_with_its_sha256(
    e2e: E2ERun, case: Case, tmp_path: Path
) -> None:
    import onnxruntime

    archive = zipfile.ZipFile(e2e.run.artifacts / "1" / case.artifact / f"{case.artifact}.zip")
    names = archive.namelist()
    onnx_name = Path(e2e.steps[case.step]["outputs"]["onnx-path"]).name
    stem = onnx_name.removesuffix(".onnx")
    assert sorted(names) == sorted([onnx_name, f"{stem}.report.json", f"{stem}.report.md"])
    archive.extractall(tmp_path)
    report = json.loads((tmp_path / f"{stem}.report.json").read_text())
    digest = hashlib.sha256((tmp_path / onnx_name).read_bytes()).hexdigest()
    assert digest == report["onnx"]["sha256"]
    assert f"| sha256 | `{report['model']['sha256']}` | `{digest}` |" in e2e.logs[case.step].summary
    session = onnxruntime.InferenceSession(str(tmp_path / onnx_name), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [i["name"] for i in report["onnx"]["inputs"]]


def test_a_hostile_file_name_issues_no_workflow_command_and_is_text_in_the_summary(e2e: E2ERun) -> None:
    log = e2e.logs["hostile-name"]
    # What act acted on: the stop, each resume and stop around our two groups, and the outputs
    # (act logs each GITHUB_OUTPUT value as a set-output entry); no warning, no error, nothing
    # act had to ignore.
    kinds = {entry["command"] for entry in log.commands}
    assert not kinds & {"warning", "error", "notice", "add-mask", "debug", "ignored"}, log.commands
    assert "stop-commands" in kinds
    assert {entry["name"] for entry in log.commands if entry["command"] == "set-output"} <= set(OUTPUTS)
    assert log.result == "success"
    shown = printable(HOSTILE_NAME)
    assert any(line.startswith(f"PASS {shown} (sklearn/skops) -> ") for line in log.lines), log.lines
    summary = log.summary
    assert summary.startswith(f"## ✅ {markdown_text(HOSTILE_NAME)} → ")
    html, raw = markdown_html(summary)
    assert raw == [] and "<script" not in html and "<b>" not in html
