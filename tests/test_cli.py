"""The CLI's commands: convert (the default), plan and merge, each with its own options."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from converter.cli import main
from converter.manifest import BATCH_OPTIONS
from converter.request import OPTION_NAMES


def help_flags(command: str, capsys: pytest.CaptureFixture[str]) -> set[str]:
    """The flags ``onnx-convert COMMAND --help`` lists."""
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", capsys.readouterr().out))


def test_convert_lists_every_conversion_option(capsys: pytest.CaptureFixture[str]) -> None:
    expected = {f"--{name}" for name in (*OPTION_NAMES, *(o.name for o in BATCH_OPTIONS))}
    assert help_flags("convert", capsys) == expected | {"--quiet", "--debug", "--help"}


def test_plan_lists_only_its_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert help_flags("plan", capsys) == {"--model-path", "--debug", "--help"}


def test_merge_lists_only_its_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert help_flags("merge", capsys) == {"--output-dir", "--quiet", "--debug", "--help"}


@pytest.mark.parametrize("command", [[], ["convert"]], ids=["no command", "convert"])
def test_without_a_command_onnx_convert_converts(run_cli, tmp_path: Path, command: list[str]) -> None:
    result = run_cli(*command, "--model-path", str(tmp_path / "missing.skops"))

    assert result.code == 2
    assert result.errors == (
        f'error: --model-path "{tmp_path / "missing.skops"}": no such file or directory; '
        "check the path (it is relative to the working directory)\n"
    )


def test_plan_refuses_an_option_of_convert(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["plan", "--model-path", "onnx-models.yml", "--rtol", "1e-2"])

    assert done.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == "onnx-convert: error: unrecognized arguments: --rtol 1e-2"


@pytest.mark.parametrize("command", ["convert", "plan"])
def test_a_command_without_model_path_shows_the_usage_and_one_error(command: str, capsys) -> None:
    assert main([command]) == 2
    assert capsys.readouterr().err == (
        "usage: onnx-convert [convert|plan|merge] --model-path PATH [options]\n"
        "error: --model-path is required; give the model file or directory to convert\n"
    )
