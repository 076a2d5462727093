"""The action shell in-process: INPUT_* in; exit code, GITHUB_OUTPUT, summary, annotations and artifact out.

The model is a real scikit-learn model and the artifact goes to the local protocol-v4 server.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from converter.github.action import run
from converter.github.outputs import OUTPUTS
from tests.conftest import save_digits_mlp
from tests.test_github_fake_server import FakeResultsServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import entrypoint  # noqa: E402


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    path = tmp_path_factory.mktemp("models") / "iris.skops"
    sio.dump(LogisticRegression(max_iter=1000).fit(x, y), path)
    return path


@dataclass
class ActionRun:
    code: int
    stdout: str
    stderr: str
    workspace: Path
    output_file: Path
    summary_file: Path

    @property
    def outputs(self) -> dict[str, str]:
        return parse_output_file(self.output_file.read_text())

    @property
    def summary(self) -> str:
        return self.summary_file.read_text()

    def commands(self, name: str) -> list[str]:
        """The workflow command lines of one kind. github-action-utils writes "::group ::title"
        (empty properties); GitHub's runner reads it as "::group::title", and so do these tests."""
        lines = [line.replace(f"::{name} ::", f"::{name}::", 1) for line in self.stdout.splitlines()]
        return [line for line in lines if line.startswith((f"::{name}::", f"::{name} "))]


def parse_output_file(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT as the runner reads it: name<<DELIMITER, the value lines, DELIMITER."""
    values: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        if not line:
            continue
        name, delimiter = line.split("<<", 1)
        value = []
        for content in lines:
            if content == delimiter:
                break
            value.append(content)
        values[name] = "\n".join(value)
    return values


@pytest.fixture
def workspace(tmp_path: Path, iris_model: Path) -> Path:
    ws = tmp_path / "workspace"
    (ws / "models").mkdir(parents=True)
    (ws / "models" / "iris.skops").write_bytes(iris_model.read_bytes())
    return ws


@pytest.fixture
def action(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run the action with the given inputs, as the runner would start it."""
    for name in list(os.environ):
        if name.startswith(("INPUT_", "ACTIONS_", "GITHUB_")):
            monkeypatch.delenv(name)
    output_file, summary_file = tmp_path / "output.txt", tmp_path / "summary.md"

    def start(env: dict[str, str] | None = None, **inputs: str) -> ActionRun:
        output_file.write_text("")
        summary_file.write_text("")
        monkeypatch.setenv("GITHUB_OUTPUT", str(output_file))
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
        monkeypatch.setenv("GITHUB_WORKSPACE", str(workspace))
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        for key, value in inputs.items():
            monkeypatch.setenv("INPUT_" + key.replace("_", "-").upper(), value)
        capsys.readouterr()
        code = run(workspace)
        captured = capsys.readouterr()
        return ActionRun(code, captured.out, captured.err, workspace, output_file, summary_file)

    return start


@pytest.fixture
def server():
    with FakeResultsServer() as fake:
        yield fake


def test_a_passing_conversion_sets_every_output_writes_the_summary_and_uploads_one_artifact(action, server) -> None:
    result = action(env=server.env(), model_path="models/iris.skops")

    assert result.code == 0
    outputs = result.outputs
    assert set(outputs) == set(OUTPUTS)
    assert outputs["passed"] == "true"
    assert outputs["onnx-path"] == "onnx-models/iris.onnx"
    assert outputs["report-path"] == "onnx-models/iris.report.json"
    assert outputs["opset"] == str(json.loads((result.workspace / outputs["report-path"]).read_text())["onnx"]["opset"])
    assert 0 <= float(outputs["max-abs-diff"]) < 1e-3
    assert float(outputs["max-rel-diff"]) >= 0
    assert outputs["artifact-id"] == server.artifacts["iris-onnx"].artifact_id
    assert (
        outputs["artifact-url"]
        == f"https://github.example/org/repo/actions/runs/4242/artifacts/{outputs['artifact-id']}"
    )
    # The summary is the markdown report, plus the artifact link.
    report_md = (result.workspace / "onnx-models" / "iris.report.md").read_text()
    assert result.summary.startswith("## ✅ iris.skops: converted and validated\n")
    assert report_md in result.summary
    assert f"**Artifact:** [iris-onnx]({outputs['artifact-url']})" in result.summary
    # The log is grouped, and ends with the CLI's headline.
    assert result.commands("group") == ["::group::onnx-convert: iris.skops", "::group::upload artifact iris-onnx"]
    assert len(result.commands("endgroup")) == 2
    assert result.stdout.splitlines()[-1].startswith("PASS iris.skops (sklearn/skops) -> ")
    assert result.commands("error") == []
    # The artifact: one zip with the .onnx (the one the report describes) and both reports.
    archive = zipfile.ZipFile(io.BytesIO(server.artifacts["iris-onnx"].committed))
    assert sorted(archive.namelist()) == ["iris.onnx", "iris.report.json", "iris.report.md"]
    report = json.loads(archive.read("iris.report.json"))
    assert hashlib.sha256(archive.read("iris.onnx")).hexdigest() == report["onnx"]["sha256"]


def test_a_tolerance_failure_fails_the_step_with_one_error_annotation(action, server) -> None:
    result = action(env=server.env(), model_path="models/iris.skops", atol="0", rtol="0", artifact_name="tight")

    assert result.code == 1
    assert result.outputs["passed"] == "false"
    errors = result.commands("error")
    assert len(errors) == 1
    assert errors[0].startswith("::error title=ONNX output differs from the original::FAIL iris.skops (sklearn/skops)")
    assert errors[0].endswith("failing: probabilities")
    assert result.summary.startswith("## ❌ iris.skops: ONNX output differs from the original\n")
    assert server.artifacts["tight"].finalized  # the evidence is uploaded all the same


def test_only_passing_variants_are_uploaded_and_the_best_one_is_an_output(action, server, workspace: Path) -> None:
    save_digits_mlp(workspace / "models")
    result = action(
        env=server.env(),
        model_path="models/digits_mlp.skops",
        variants="fp16,int8-dynamic",
        variant_tolerance="int8-dynamic:rtol=0,atol=1e-6",
    )

    assert result.code == 0
    assert result.outputs["passed"] == "true"
    assert result.outputs["variants-passed"] == "fp16"
    assert result.outputs["best-variant-path"] == "onnx-models/digits_mlp.fp16.onnx"
    archive = zipfile.ZipFile(io.BytesIO(server.artifacts["digits_mlp-onnx"].committed))
    assert sorted(archive.namelist()) == [
        "digits_mlp.fp16.onnx",
        "digits_mlp.onnx",
        "digits_mlp.report.json",
        "digits_mlp.report.md",
    ]
    assert "| int8-dynamic | — (deleted) |" in result.summary
    [warning] = result.commands("warning")
    assert warning.startswith("::warning title=onnx-convert::variant int8-dynamic failed, not kept: output label")


def test_fail_on_mismatch_false_reports_a_warning_and_exits_0(action) -> None:
    result = action(
        model_path="models/iris.skops", atol="0", rtol="0", fail_on_mismatch="false", upload_artifact="false"
    )

    assert result.code == 0
    assert result.outputs["passed"] == "false"
    assert result.commands("error") == []
    assert [w for w in result.commands("warning") if "(fail-on-mismatch is false)" in w]


def test_a_bad_input_is_one_error_line_and_exit_2_without_traceback(action) -> None:
    result = action(model_path="models/iris.skops", rtol="abc")

    assert result.code == 2
    assert (
        result.stdout
        == '::error title=onnx-convert::--rtol "abc": not a number; use a non-negative number such as 1e-3\n'
    )
    assert result.stderr == ""
    assert result.output_file.read_text() == ""
    assert not (result.workspace / "onnx-models").exists()


def test_a_missing_required_input_is_one_error_line(action) -> None:
    result = action()

    assert result.code == 2
    assert result.stdout == (
        "::error title=onnx-convert::--model-path is required; give the model file or directory to convert\n"
    )


def test_a_path_outside_the_workspace_is_refused(action, workspace: Path) -> None:
    (workspace.parent / "outside.skops").write_bytes((workspace / "models" / "iris.skops").read_bytes())

    result = action(model_path="../outside.skops")

    assert result.code == 2
    assert result.commands("error") == [
        f'::error title=onnx-convert::--model-path "../outside.skops": is outside the workspace {workspace}; '
        "give a path inside the repository"
    ]


def test_an_output_dir_outside_the_workspace_is_refused(action) -> None:
    result = action(model_path="models/iris.skops", output_dir="/tmp/elsewhere")

    assert result.code == 2
    assert "is outside the workspace" in result.commands("error")[0]


def test_an_invalid_artifact_name_is_refused_before_converting(action, server) -> None:
    result = action(env=server.env(), model_path="models/iris.skops", artifact_name="models/iris")

    assert result.code == 2
    assert result.commands("error") == [
        '::error title=onnx-convert::--artifact-name "models/iris": contains /; '
        'artifact names cannot contain " : < > | * ? \\r \\n \\ or /'
    ]
    assert server.calls == []
    assert not (result.workspace / "onnx-models").exists()


@pytest.mark.parametrize(
    ("name", "value", "problem"), [("retention-days", "0", "must be at least 1"), ("summary", "yes", "not a boolean")]
)
def test_bad_action_inputs_are_refused_like_cli_options(action, name: str, value: str, problem: str) -> None:
    result = action(model_path="models/iris.skops", **{name: value})

    assert result.code == 2
    assert result.commands("error")[0].startswith(f'::error title=onnx-convert::--{name} "{value}": {problem}')


def test_outside_actions_the_upload_is_skipped_with_a_notice(action) -> None:
    result = action(model_path="models/iris.skops")

    assert result.code == 0
    assert result.commands("notice") == [
        "::notice title=onnx-convert::artifact upload skipped: not running in GitHub Actions (no ACTIONS_RUNTIME_TOKEN)"
    ]
    assert result.outputs["artifact-id"] == ""
    assert result.outputs["artifact-url"] == ""


def test_summary_and_upload_can_be_turned_off(action, server) -> None:
    result = action(env=server.env(), model_path="models/iris.skops", summary="false", upload_artifact="false")

    assert result.code == 0
    assert result.summary == ""
    assert server.calls == []
    assert result.outputs["passed"] == "true"


def test_retention_over_the_repository_limit_is_cut_to_it_with_a_warning(action, server) -> None:
    result = action(
        env={**server.env(), "GITHUB_RETENTION_DAYS": "30"}, model_path="models/iris.skops", retention_days="400"
    )

    assert result.code == 0
    assert result.commands("warning") == [
        "::warning title=onnx-convert::retention-days 400 is over the repository's limit; keeping the artifact 30 days"
    ]
    assert server.create_requests[0]["expires_at"].endswith("Z")


def test_a_failed_upload_fails_the_step_but_keeps_the_outputs(action, server) -> None:
    from tests.test_github_fake_server import Fault

    server.inject("create", Fault(status=403))

    result = action(env=server.env(), model_path="models/iris.skops")

    assert result.code == 1
    assert result.commands("error") == [
        f"::error title=onnx-convert::artifact upload failed: CreateArtifact to {server.url}/twirp/"
        "github.actions.results.api.v1.ArtifactService/CreateArtifact failed: HTTP 403 (unavailable: injected fault); "
        "the artifact was not finalized; re-run the job, or set upload-artifact: false"
    ]
    assert result.outputs["passed"] == "true"
    assert result.outputs["artifact-id"] == ""


def test_entrypoint_with_arguments_is_the_cli_in_the_workspace(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(workspace))
    monkeypatch.setenv("INPUT_MODEL-PATH", "ignored-because-there-are-arguments")
    monkeypatch.chdir("/")

    code = entrypoint.main(["--model-path", "models/iris.skops", "--output-dir", "out", "--quiet"])

    assert code == 0
    assert capsys.readouterr().out.startswith("PASS iris.skops (sklearn/skops) -> out/iris.onnx")
    assert (workspace / "out" / "iris.onnx").is_file()


def test_entrypoint_without_arguments_runs_the_action(
    action, workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(workspace))
    monkeypatch.setenv("INPUT_MODEL-PATH", "models/iris.skops")
    monkeypatch.setenv("INPUT_RTOL", "nan")

    code = entrypoint.main([])

    assert code == 2
    assert capsys.readouterr().out.startswith('::error title=onnx-convert::--rtol "nan": must be a finite number >= 0')
