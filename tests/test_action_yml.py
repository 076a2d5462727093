"""action.yml, converter.request.OPTIONS and the tables in docs/action.md say the same thing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from converter.github.inputs import ACTION_OPTIONS
from converter.github.outputs import OUTPUTS
from converter.request import OPTIONS

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
README = (ROOT / "README.md").read_text()
ACTION_DOCS = (ROOT / "docs" / "action.md").read_text()


def docs_table(marker: str) -> list[list[str]]:
    """Rows of the markdown table between <!-- marker:start --> and <!-- marker:end --> in docs/action.md, header dropped."""
    match = re.search(rf"<!-- {marker}:start -->\n(.*?)<!-- {marker}:end -->", ACTION_DOCS, re.S)
    assert match, f"docs/action.md has no {marker} table"
    rows = [line for line in match.group(1).splitlines() if line.startswith("|")][2:]
    return [[cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def test_action_inputs_are_the_cli_options_then_the_action_options_with_the_same_defaults() -> None:
    expected = [(o.name, o.default, o.help, o.required) for o in (*OPTIONS, *ACTION_OPTIONS)]
    declared = [
        (name, str(spec.get("default", "")), spec["description"], spec["required"])
        for name, spec in ACTION["inputs"].items()
    ]
    assert declared == expected


def test_required_inputs_have_no_default_and_optional_ones_have_one() -> None:
    for name, spec in ACTION["inputs"].items():
        assert ("default" in spec) != spec["required"], name


def test_action_outputs_are_the_ones_the_action_writes() -> None:
    assert {name: spec["description"] for name, spec in ACTION["outputs"].items()} == OUTPUTS


def test_action_is_a_docker_action_built_from_the_dockerfile_with_branding() -> None:
    assert ACTION["runs"] == {"using": "docker", "image": "Dockerfile"}
    assert set(ACTION["branding"]) == {"icon", "color"}
    assert ACTION["name"] and ACTION["description"]


def test_docs_inputs_table_agrees_with_action_yml() -> None:
    rows = [
        [
            f"`{name}`",
            "(required)" if spec["required"] else (f"`{spec['default']}`" if spec["default"] else ""),
            spec["description"],
        ]
        for name, spec in ACTION["inputs"].items()
    ]
    assert docs_table("action-inputs") == rows


def test_docs_outputs_table_agrees_with_action_yml() -> None:
    assert docs_table("action-outputs") == [
        [f"`{name}`", spec["description"]] for name, spec in ACTION["outputs"].items()
    ]


def test_readme_shows_the_workflow_snippet_and_docker_run() -> None:
    assert "uses: org/onnx-convert-action@v1" in README
    assert 'docker run --rm -v "$PWD:/github/workspace" onnx-convert --model-path model.keras' in README


@pytest.mark.parametrize("instruction", ["USER", "WORKDIR"])
def test_dockerfile_sets_no_user_and_no_workdir(instruction: str) -> None:
    # GitHub: docker actions run as root with --workdir /github/workspace; either breaks that.
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert not [line for line in lines if line.strip().upper().startswith(instruction + " ")]


def test_dockerfile_default_target_is_full() -> None:
    stages = re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert stages[-1] == "full"
    assert {"sklearn", "pytorch", "tensorflow", "full"} <= set(stages)
