"""--model-code (first named --model-class, kept as an alias) imports a Python file: in the action it
must be a file of the workspace, for PyTorch (``file.py:Name``) and Keras (``file.py``) alike.

Every way of naming the file goes through the action's own parsing (read_inputs for the inputs,
load_entries for a manifest, both with the workspace as base_dir); the file outside would create a
marker file if it were imported, and parsing never imports it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from converter.errors import UserError
from converter.github.inputs import read_inputs
from converter.manifest import load_entries

HINT = "give a path inside the repository"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A checkout with a model, its class file and a link out; beside it, a file that is not the repository's."""
    root = tmp_path / "workspace"
    (root / "models").mkdir(parents=True)
    (root / "models" / "weights.pt").write_bytes(b"weights")
    (root / "models" / "net.py").write_text("class Net: ...\n")
    outside = tmp_path / "outside.py"
    outside.write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\nclass Net: ...\n")
    (root / "models" / "link.py").symlink_to(outside)
    (root / "models" / "linked").symlink_to(tmp_path, target_is_directory=True)
    return root.resolve()


def action_inputs(values: dict[str, str]):
    return lambda name: values.get(name)


@pytest.mark.parametrize("option", ["model-code", "model-class"])
def test_a_class_file_in_the_workspace_is_taken_relative_to_it(workspace: Path, option: str) -> None:
    request, _ = read_inputs(workspace, action_inputs({"model-path": "models/weights.pt", option: "models/net.py:Net"}))
    assert request.model_code.text == f"{workspace / 'models' / 'net.py'}:Net"
    assert request.model_code.option == option  # errors name the option the user gave


def test_a_keras_code_file_in_the_workspace_is_taken_relative_to_it(workspace: Path) -> None:
    request, _ = read_inputs(
        workspace, action_inputs({"model-path": "models/weights.pt", "model-code": "models/net.py"})
    )
    assert request.model_code.text == str(workspace / "models" / "net.py")


def test_model_code_and_model_class_that_differ_are_refused(workspace: Path) -> None:
    inputs = {
        "model-path": "models/weights.pt",
        "model-code": "models/net.py:Net",
        "model-class": "models/net.py:Other",
    }
    with pytest.raises(UserError) as caught:
        read_inputs(workspace, action_inputs(inputs))
    assert caught.value.one_line() == (
        '--model-code "models/net.py:Net" and --model-class "models/net.py:Other" differ; '
        "give one of them: model-class is model-code's first name"
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("../outside.py:Net", "../outside.py"),
        ("models/../../outside.py:Net", "models/../../outside.py"),
        ("{outside}:Net", "{outside}"),  # absolute
        ("~/outside.py:Net", "~/outside.py"),
        ("models/link.py:Net", "models/link.py"),  # a symlink in the workspace to a file outside
        ("models/linked/outside.py:Net", "models/linked/outside.py"),  # through a linked folder
        ("../outside.py", "../outside.py"),  # a Keras model's file: no class named
    ],
)
@pytest.mark.parametrize("option", ["model-code", "model-class"])
def test_action_input_outside_the_workspace_is_refused(workspace: Path, value: str, shown: str, option: str) -> None:
    outside = str(workspace.parent / "outside.py")
    inputs = {"model-path": "models/weights.pt", option: value.format(outside=outside)}
    with pytest.raises(UserError) as caught:
        read_inputs(workspace, action_inputs(inputs))
    assert caught.value.one_line() == (
        f'--{option} "{shown.format(outside=outside)}": is outside the workspace {workspace}; {HINT}'
    )
    assert not (workspace.parent / "imported").exists()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("../../outside.py:Net", "{manifests}/../../outside.py"),  # relative to the manifest's folder
        ("{outside}:Net", "{outside}"),
        ("../models/link.py:Net", "{manifests}/../models/link.py"),  # a symlink to a file outside
    ],
)
@pytest.mark.parametrize("where", ["entry", "defaults"])
def test_manifest_class_file_outside_the_workspace_is_refused(
    workspace: Path, value: str, shown: str, where: str
) -> None:
    manifests = workspace / "manifests"
    manifests.mkdir()
    outside = str(workspace.parent / "outside.py")
    option = f"model-class: {value.format(outside=outside)}"
    defaults = f"defaults:\n  {option}\n" if where == "defaults" else ""
    entry = f"\n    {option}" if where == "entry" else ""
    (manifests / "m.yml").write_text(f"{defaults}models:\n  - model-path: ../models/weights.pt{entry}\n")
    with pytest.raises(UserError) as caught:
        load_entries({"model-path": "manifests/m.yml"}, base_dir=workspace)
    line = 4 if where == "defaults" else 2
    shown = shown.format(manifests=manifests, outside=outside, workspace=workspace)
    assert caught.value.one_line() == (
        f'm.yml:{line} (weights): --model-class "{shown}": is outside the workspace {workspace}; {HINT}'
    )
    assert not (workspace.parent / "imported").exists()


def test_manifest_class_file_in_the_workspace_is_taken_relative_to_the_manifest(workspace: Path) -> None:
    (workspace / "m.yml").write_text("models:\n  - model-path: models/weights.pt\n    model-class: models/net.py:Net\n")
    [entry] = load_entries({"model-path": "m.yml"}, base_dir=workspace)
    assert entry.request.model_code.text == f"{workspace / 'models' / 'net.py'}:Net"


def test_action_input_model_class_applies_to_every_manifest_entry_inside_the_workspace(workspace: Path) -> None:
    (workspace / "m.yml").write_text("models:\n  - model-path: models/weights.pt\n")
    with pytest.raises(UserError) as caught:
        load_entries({"model-path": "m.yml", "model-class": "../outside.py:Net"}, base_dir=workspace)
    assert caught.value.one_line() == (
        f'm.yml:2 (weights): --model-class "../outside.py": is outside the workspace {workspace}; {HINT}'
    )
