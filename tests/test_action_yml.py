"""action.yml, converter.request.OPTIONS, the trampoline (action/image.py) and the docs generated from
action.yml (tools/action_docs.py) say the same thing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from action import image
from converter.github.inputs import ACTION_OPTIONS
from converter.github.outputs import OUTPUTS
from converter.request import OPTIONS
from tools import action_docs

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
README = (ROOT / "README.md").read_text()


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


def test_action_is_a_trampoline_that_runs_the_chosen_image_with_every_input() -> None:
    choose, run = ACTION["runs"]["steps"]
    assert ACTION["runs"]["using"] == "composite"
    assert choose["run"] == 'python3 "$GITHUB_ACTION_PATH/action/image.py"'
    assert choose["env"] == {
        "ACTION_REPOSITORY": "${{ github.action_repository }}",
        "ACTION_REF": "${{ github.action_ref }}",
        "IMAGE_VARIANT": "${{ inputs.image }}",
    }
    assert run["uses"] == "./" + image.GENERATED
    assert run["with"] == {name: f"${{{{ inputs.{name} }}}}" for name in ACTION["inputs"]}
    assert {name: spec["value"] for name, spec in ACTION["outputs"].items()} == {
        name: f"${{{{ steps.run.outputs.{name} }}}}" for name in OUTPUTS
    }
    assert set(ACTION["branding"]) == {"icon", "color"}
    assert ACTION["name"] and ACTION["description"]


def test_the_trampoline_reads_the_same_inputs_as_yaml_does() -> None:
    assert image.input_names((ROOT / "action.yml").read_text()) == list(ACTION["inputs"])


def test_the_generated_docker_action_runs_the_image_with_every_input() -> None:
    generated = yaml.safe_load(image.docker_action("docker://ghcr.io/o/onnx-convert-action:1.2.3", ["a", "b-c"]))
    assert generated["runs"] == {
        "using": "docker",
        "image": "docker://ghcr.io/o/onnx-convert-action:1.2.3",
        "env": {"ONNX_CONVERT_IMAGE": "ghcr.io/o/onnx-convert-action:1.2.3"},  # the report's provenance
    }
    assert list(generated["inputs"]) == ["a", "b-c"]


@pytest.mark.parametrize("name", sorted(action_docs.BLOCKS))
def test_the_docs_generated_from_action_yml_are_current(name: str) -> None:
    text = (ROOT / name).read_text()
    assert action_docs.generated(text, action_docs.BLOCKS[name], ACTION) == text, f"{name} is stale: run make docs"


def test_readme_shows_the_workflow_snippet_within_its_first_40_lines_and_docker_run() -> None:
    lines = README.splitlines()
    first = next(i for i, line in enumerate(lines) if "uses: org/onnx-convert-action@v1" in line)
    assert first < 40
    assert 'docker run --rm -v "$PWD:/github/workspace" ghcr.io/org/onnx-convert-action:1-sklearn' in README


def test_readme_is_under_1500_words() -> None:
    assert len(README.split()) < 1500


@pytest.mark.parametrize("instruction", ["USER", "WORKDIR"])
def test_dockerfile_sets_no_user_and_no_workdir(instruction: str) -> None:
    # GitHub: docker actions run as root with --workdir /github/workspace; either breaks that.
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert not [line for line in lines if line.strip().upper().startswith(instruction + " ")]


def test_dockerfile_default_target_is_full() -> None:
    stages = re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert stages[-1] == "full"
    assert {"sklearn", "pytorch", "tensorflow", "full"} <= set(stages)


def test_every_picture_and_page_the_readme_links_exists() -> None:
    links = re.findall(r"\]\(((?:docs|\.github)/[^)#]+)", README)
    assert "docs/images/summary-mismatch.png" in links
    assert [link for link in links if not (ROOT / link).is_file()] == []


def test_action_yml_is_generated_from_the_code() -> None:
    from tools import action_yml

    assert (ROOT / "action.yml").read_text() == action_yml.action_yml(), "action.yml is stale: run make docs"
