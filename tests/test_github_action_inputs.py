"""The action refuses bad inputs and plans a matrix without converting anything.

Every model file here is a placeholder that is never read: each test stops at an input (or
plans from the manifest) before a model is opened. Conversions are in test_github_action.py and
test_github_many.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.runner import read_as_runner

MANIFEST = """\
models:
  - name: logreg
    model-path: models/logreg.skops
  - name: knn
    model-path: models/knn.skops
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    (ws / "models").mkdir(parents=True)
    for name in ("iris", "logreg", "knn"):
        (ws / "models" / f"{name}.skops").write_bytes(b"never read: the inputs are refused, or only planned")
    (ws / "onnx-models.yml").write_text(MANIFEST)
    return ws


# -- one model --------------------------------------------------------------------------------


def test_a_bad_input_is_one_error_line_and_exit_2_without_traceback(action) -> None:
    result = action(model_path="models/iris.skops", rtol="abc")

    assert result.code == 2
    # In the action's words: the input as the workflow writes it (rtol:), not the CLI's --rtol.
    assert result.runner.commands == [
        '::error title=onnx-convert::rtol: "abc": not a number; use a non-negative number such as 1e-3'
    ]
    assert [line for line in result.stdout.splitlines() if not line.startswith("::")] == []
    assert result.stderr == ""
    assert result.summary == (
        "## ❌ onnx-convert: the input is wrong, nothing was converted\n\n"
        '**Error:** rtol: "abc": not a number\n\n'
        "**Fix:** use a non-negative number such as 1e-3\n\n"
    )
    assert result.outputs == {"passed": "false", "status": "error", "failing-outputs": "[]"}
    assert not (result.workspace / "onnx-models").exists()


def test_a_missing_required_input_is_one_error_line(action) -> None:
    result = action()

    assert result.code == 2
    assert result.runner.commands == [
        "::error title=onnx-convert::model-path is required; give the model file or directory to convert"
    ]


def test_a_path_outside_the_workspace_is_refused(action, workspace: Path) -> None:
    (workspace.parent / "outside.skops").write_bytes((workspace / "models" / "iris.skops").read_bytes())

    result = action(model_path="../outside.skops")

    assert result.code == 2
    assert result.commands("error") == [
        f'::error title=onnx-convert::model-path: "../outside.skops": is outside the workspace {workspace}; '
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
        '::error title=onnx-convert::artifact-name: "models/iris": contains /; '
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
    assert result.commands("error")[0].startswith(f'::error title=onnx-convert::{name}: "{value}": {problem}')


def test_entrypoint_without_arguments_runs_the_action(
    action, entrypoint, workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(workspace))
    monkeypatch.setenv("INPUT_MODEL-PATH", "models/iris.skops")
    monkeypatch.setenv("INPUT_RTOL", "nan")

    code = entrypoint.main([])

    assert code == 2
    assert (
        read_as_runner(capsys.readouterr().out)
        .commands[0]
        .startswith('::error title=onnx-convert::rtol: "nan": must be a finite number >= 0')
    )


# -- a manifest: plan, select, merge -----------------------------------------------------------


def test_plan_sets_the_matrix_output(action, server) -> None:
    done = action(env=server.env(), mode="plan", model_path="onnx-models.yml")
    assert done.code == 0, done.stdout
    assert json.loads(done.outputs["matrix"]) == {
        "include": [{"name": "logreg", "model": "models/logreg.skops"}, {"name": "knn", "model": "models/knn.skops"}]
    }
    assert "| `knn` | `models/knn.skops` |" in done.summary
    assert server.calls == []  # planning uploads nothing


def test_merge_outside_actions_is_one_error_line(action, workspace: Path) -> None:
    done = action(mode="merge", model_path="onnx-models.yml")
    assert done.code == 2
    assert done.commands("error") == [
        "::error title=onnx-convert::mode merge downloads this run's artifacts, so it runs only in GitHub "
        "Actions (no ACTIONS_RUNTIME_TOKEN); outside Actions, download the reports and run onnx-convert "
        "merge --output-dir DIR"
    ]


def test_select_that_names_no_entry_is_refused_before_converting(action, server) -> None:
    done = action(env=server.env(), model_path="onnx-models.yml", select="resnet")
    assert done.code == 2
    assert len(done.commands("error")) == 1 and "no model has that name" in done.commands("error")[0]
    assert server.calls == []


def test_a_bad_mode_is_refused(action) -> None:
    done = action(mode="deploy", model_path="onnx-models.yml")
    assert done.code == 2
    assert 'mode: "deploy": unknown value; use one of convert, plan, merge' in done.commands("error")[0]


def test_the_plan_summary_shows_hostile_model_paths_as_text(action, server, workspace: Path) -> None:
    hostile = "models/<script>alert(1)<b>|`x`.skops"
    (workspace / hostile).write_bytes((workspace / "models" / "knn.skops").read_bytes())
    (workspace / "onnx-models.yml").write_text(f"models:\n  - name: evil\n    model-path: '{hostile}'\n")
    done = action(env=server.env(), mode="plan", model_path="onnx-models.yml")
    assert done.code == 0, done.stdout
    assert done.summary.rstrip("\n").splitlines()[-1] == "| `evil` | ``models/<script>alert(1)<b>\\|`x`.skops`` |"


def test_plan_refuses_a_matrix_github_would_refuse_and_sets_no_matrix(action, workspace: Path) -> None:
    entries = "".join(f"  - name: m{i}\n    model-path: models/knn.skops\n" for i in range(300))
    (workspace / "onnx-models.yml").write_text("models:\n" + entries)

    done = action(mode="plan", model_path="onnx-models.yml")

    assert done.code == 2
    assert done.commands("error") == [
        '::error title=onnx-convert::model-path: "onnx-models.yml" lists 300 models, and a GitHub Actions matrix '
        "runs at most 256 jobs; split the models into manifests of at most 256 (a plan job and a matrix for each), "
        "or convert them in one job (model-path without mode plan)"
    ]
    assert done.outputs == {"passed": "false", "status": "error", "failing-outputs": "[]"}  # no matrix: no fan-out
