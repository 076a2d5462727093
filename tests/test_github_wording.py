"""Messages are written once, in the CLI's terms; the action shows them in its own (input names as a
workflow writes them), through one translation (converter/github/wording.py)."""

from __future__ import annotations

import pytest

from converter.frameworks.base import image_hint
from converter.github.wording import action_wording


@pytest.mark.parametrize(
    ("cli", "action"),
    [
        (
            '--rtol "abc": not a number; use a non-negative number such as 1e-3',
            'rtol: "abc": not a number; use a non-negative number such as 1e-3',
        ),
        ("--model-path is required; give the model file", "model-path is required; give the model file"),
        (
            "export it with torch.export.Dim, or pass --dynamic-batch false",
            "export it with torch.export.Dim, or pass dynamic-batch: false",
        ),
        ("use --opset 17, or auto", "use opset: 17, or auto"),
        ("--sample-data: input x has shape 5x7", "sample-data: input x has shape 5x7"),
        # a command to run keeps its flags, and a flag the action does not have is left alone
        (
            "outside Actions, run onnx-convert merge --output-dir DIR",
            "outside Actions, run onnx-convert merge --output-dir DIR",
        ),
        ("--debug shows tracebacks; --model-path-x", "--debug shows tracebacks; --model-path-x"),
    ],
)
def test_cli_options_become_the_action_inputs(cli: str, action: str) -> None:
    assert action_wording(cli) == action


def test_a_missing_framework_names_the_image_input() -> None:
    hint = f"pip install 'onnx-convert-action[pytorch]', or use {image_hint('pytorch')}"
    assert action_wording(hint) == "pip install 'onnx-convert-action[pytorch]', or use image: pytorch"
