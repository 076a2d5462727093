"""The action shell in-process: INPUT_* in; exit code, GITHUB_OUTPUT, summary, annotations and artifact out.

The model is a real scikit-learn model and the artifact goes to the local protocol-v4 server.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from converter.escape import markdown_text, printable
from converter.github.outputs import OUTPUTS
from tests.fixtures.artifact_server import Fault
from tests.fixtures.runner import read_as_runner
from tests.fixtures.sklearn import save_digits_mlp
from tests.fixtures.tiers import model_fixture

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def workspace(tmp_path: Path, iris_skops: Path) -> Path:
    ws = tmp_path / "workspace"
    (ws / "models").mkdir(parents=True)
    (ws / "models" / "iris.skops").write_bytes(iris_skops.read_bytes())
    return ws


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
    assert result.summary.startswith("## ✅ iris.skops → iris.onnx: every output within tolerance at batch 16 and 8\n")
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
    # the smallest tolerance that passes, rounded up: atol 0 and rtol 0 are below float32's error
    assert re.search(r"; failing: probabilities; would pass with atol \d\.\de-\d\d or rtol \d\.\de-\d\d$", errors[0])
    assert (result.outputs["status"], result.outputs["failing-outputs"]) == ("failed", '["probabilities"]')
    assert result.summary.startswith(
        "## ❌ iris.skops → iris.onnx: 1 of 2 outputs differ from the original, max \\|diff\\| "
    )
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
    # Nothing converted is lost: the files stay, and the summary says where.
    assert (result.workspace / "onnx-models" / "iris.onnx").is_file()
    assert result.summary.rstrip("\n").endswith(
        "re-run the job, or set upload-artifact: false. The files are in `onnx-models` on the runner, "
        "for a later step to upload."
    )


def test_a_summary_that_cannot_be_written_still_leaves_the_outputs_and_fails_the_step(action, tmp_path) -> None:
    (tmp_path / "summary-is-a-folder").mkdir()

    result = action(env={"GITHUB_STEP_SUMMARY": str(tmp_path / "summary-is-a-folder")}, model_path="models/iris.skops")

    assert result.code == 1
    assert result.commands("error") == [
        f"::error title=onnx-convert::job summary failed: [Errno 21] Is a directory: '{tmp_path}/summary-is-a-folder'"
    ]
    assert result.outputs["passed"] == "true" and result.outputs["onnx-path"] == "onnx-models/iris.onnx"


def test_outputs_that_cannot_be_written_still_leave_the_summary_and_fail_the_step(action, tmp_path) -> None:
    (tmp_path / "output-is-a-folder").mkdir()

    result = action(env={"GITHUB_OUTPUT": str(tmp_path / "output-is-a-folder")}, model_path="models/iris.skops")

    assert result.code == 1
    assert result.commands("error") == [
        f"::error title=onnx-convert::step outputs failed: [Errno 21] Is a directory: '{tmp_path}/output-is-a-folder'"
    ]
    assert result.summary.startswith("## ✅ iris.skops → iris.onnx: ")


def test_entrypoint_with_arguments_is_the_cli_in_the_workspace(
    entrypoint, workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(workspace))
    monkeypatch.setenv("INPUT_MODEL-PATH", "ignored-because-there-are-arguments")
    monkeypatch.chdir("/")

    code = entrypoint.main(["--model-path", "models/iris.skops", "--output-dir", "out", "--quiet"])

    assert code == 0
    assert capsys.readouterr().out.startswith("PASS iris.skops (sklearn/skops) -> out/iris.onnx")
    assert (workspace / "out" / "iris.onnx").is_file()


# -- workflow-command injection: names and framework output come from the repository ------------

HOSTILE_NAMES = [
    "m\n::warning::injected",
    "m\n::error title=pwned::injected",
    "m\n::add-mask::onnx",
    "m\n::set-output name=passed::false",
    "m\n  ::notice::indented",
    "m\r::warning::carriage return",
    "m%0A::warning::percent-encoded",
]
# "[" makes model-path a glob: this one comes in through a glob.
LEGACY_SYNTAX = "m ##[warning]legacy syntax"


def _escaped_command_data(text: str) -> str:
    """How github-action-utils writes a command's message (and the runner decodes it back)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_a_hostile_model_file_name_reaches_the_runner_as_no_command(action, server, workspace, name: str) -> None:
    (workspace / "models" / f"{name}.skops").write_bytes((workspace / "models" / "iris.skops").read_bytes())

    result = action(env=server.env(), model_path=f"models/{name}.skops")

    assert result.code == 0, result.stdout
    shown = printable(f"{name}.skops")
    assert result.stdout.startswith("::stop-commands::")  # before anything else
    assert result.runner.ignored == []  # no line of ours holds a command while commands are stopped
    [artifact] = server.artifacts
    assert result.runner.commands == [
        f"::group::onnx-convert: {_escaped_command_data(shown)}",
        "::endgroup::",
        f"::group::upload artifact {artifact}",
        "::endgroup::",
    ]
    assert result.stdout.splitlines()[-1].startswith(f"PASS {shown} (sklearn/skops) -> ")
    assert result.outputs["passed"] == "true"
    assert result.summary.startswith(f"## ✅ {markdown_text(name + '.skops')} → ")


def test_names_found_by_a_glob_reach_the_runner_as_no_command(action, workspace) -> None:
    for name in [*HOSTILE_NAMES[:2], LEGACY_SYNTAX]:
        (workspace / "models" / f"{name}.skops").write_bytes((workspace / "models" / "iris.skops").read_bytes())

    result = action(model_path="models/*.skops", upload_artifact="false")

    assert result.code == 0, result.stdout
    assert result.runner.ignored == []
    assert result.runner.commands == ["::group::onnx-convert: 4 model(s)", "::endgroup::"]
    assert f"onnx-convert: {workspace}/models/m\\n::warning::injected.skops: sklearn model (skops)\n" in result.stdout
    assert f"onnx-convert: {workspace}/models/m ##\\x5bwarning]legacy syntax.skops: sklearn model" in result.stdout


@model_fixture(scope="module")
def printing_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TorchScript model whose forward prints workflow commands (TorchScript prints to sys.stdout)."""
    import torch

    class Printer(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            print("::warning title=pwned::printed by the model\n##[error]legacy, printed by the model")
            return x * 2

    path = tmp_path_factory.mktemp("torch") / "printer.pt"
    torch.jit.save(torch.jit.script(Printer()), str(path))
    return path


def test_what_the_model_itself_prints_is_not_acted_on(action, workspace, printing_model: Path) -> None:
    (workspace / "models" / "printer.pt").write_bytes(printing_model.read_bytes())

    # The flag: whether a TorchScript file that prints may load without it is the loader's business, not this test's.
    result = action(model_path="models/printer.pt", input_shapes="1x8", allow_unsafe_load="true")

    assert result.code == 0, result.stdout
    assert "::warning title=pwned::printed by the model" in result.runner.ignored
    assert "##[error]legacy, printed by the model" in result.runner.ignored
    # ours: the group, the exporter's fallback (TorchScript cannot go through torch.export), the skipped upload
    assert [line.split("::")[1] for line in result.runner.commands] == [
        "group",
        "endgroup",
        "warning title=onnx-convert",
        "notice title=onnx-convert",
    ]


NET_WRITING_TO_STDERR = """\
import sys

import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(8, 3)

    def forward(self, x):
        print("::error title=pwned::written to stderr by the model class", file=sys.stderr, flush=True)
        return self.linear(x)
"""


def test_the_container_writes_one_stream_in_which_stderr_is_inert_too(workspace: Path, torch) -> None:
    (workspace / "models" / "net.py").write_text(NET_WRITING_TO_STDERR)
    torch.save({"linear.weight": torch.ones(3, 8), "linear.bias": torch.zeros(3)}, workspace / "models" / "net.pt")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "ACTIONS_", "GITHUB_"))}
    env |= {
        "GITHUB_WORKSPACE": str(workspace),
        "INPUT_MODEL-PATH": "models/net.pt",
        "INPUT_MODEL-CLASS": "models/net.py:Net",
        "INPUT_INPUT-SHAPES": "1x8",
    }

    done = subprocess.run(
        [sys.executable, str(ROOT / "entrypoint.py")], env=env, capture_output=True, text=True, timeout=600
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # stderr went into stdout, in the order it was written
    runner = read_as_runner(done.stdout)
    assert "::error title=pwned::written to stderr by the model class" in runner.ignored
    assert [line.split("::")[1] for line in runner.commands] == ["group", "endgroup", "notice title=onnx-convert"]
