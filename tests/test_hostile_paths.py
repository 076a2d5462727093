"""Model paths from the repository: a file whose name holds glob characters, and globs that explode."""

from __future__ import annotations

import json
from pathlib import Path

from converter.manifest import MAX_GLOB_MATCHES
from tests.fixtures.tiers import model_fixture

ODD = "[v2] *?.skops"  # as a pattern it would match models/v <anything>.skops, not this file


@model_fixture
def workspace(tmp_path: Path, iris_skops: Path) -> Path:
    ws = tmp_path / "workspace"
    (ws / "models").mkdir(parents=True)
    (ws / "models" / "iris.skops").write_bytes(iris_skops.read_bytes())
    return ws


def test_an_existing_file_whose_name_holds_glob_characters_is_that_model(run_cli, iris_skops: Path, tmp_path) -> None:
    (tmp_path / ODD).write_bytes(iris_skops.read_bytes())

    result = run_cli("--model-path", str(tmp_path / ODD))

    assert result.code == 0, result.stderr
    assert result.stdout.startswith(f"PASS {ODD} (sklearn/skops) -> ")
    assert result.report("v2")["model"]["path"] == str(tmp_path / ODD)


def test_the_action_converts_such_a_file_relative_to_the_workspace(action, workspace: Path) -> None:
    (workspace / "models" / ODD).write_bytes((workspace / "models" / "iris.skops").read_bytes())

    done = action(model_path=f"models/{ODD}", upload_artifact="false")

    assert done.code == 0, done.stdout
    assert done.outputs["onnx-path"] == "onnx-models/v2.onnx"


def test_a_manifest_whose_name_holds_glob_characters_is_read(run_cli, workspace: Path) -> None:
    (workspace / "[prod].yml").write_text("models:\n  - name: iris\n    model-path: models/iris.skops\n")

    result = run_cli("plan", "--model-path", str(workspace / "[prod].yml"))

    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"include": [{"name": "iris", "model": "models/iris.skops"}]}


def test_a_pattern_that_names_no_file_is_still_a_glob(run_cli, workspace: Path) -> None:
    (workspace / "models" / "v1.skops").write_bytes((workspace / "models" / "iris.skops").read_bytes())

    result = run_cli("plan", "--model-path", str(workspace / "models" / "[iv]*.skops"))

    assert [e["name"] for e in json.loads(result.stdout)["include"]] == ["iris", "v1"]


def test_a_link_loop_does_not_repeat_a_model_once_per_level(run_cli, workspace: Path) -> None:
    (workspace / "models" / "loop").symlink_to(".")  # models/loop/loop/... reach iris.skops 40 times

    result = run_cli("plan", "--model-path", f"{workspace}/models/**/*.skops")

    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"include": [{"name": "iris", "model": f"{workspace}/models/iris.skops"}]}


def test_a_glob_of_more_files_than_a_run_converts_is_refused_before_reading_them(run_cli, tmp_path: Path) -> None:
    for number in range(MAX_GLOB_MATCHES + 1):
        (tmp_path / f"m{number}.skops").touch()

    result = run_cli("plan", "--model-path", f"{tmp_path}/*.skops")

    assert result.code == 2
    assert result.errors == (
        f'error: --model-path "{tmp_path}/*.skops": the pattern matches more than 10,000 files; narrow the pattern, '
        "or list the models in a manifest (a symbolic link to a folder above makes ** match the same files again at "
        "every level)\n"
    )
