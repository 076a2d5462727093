"""The CLI's words in the action's: a message names ``--sample-data``; the action's user wrote ``sample-data:``.

Every message is written once, in the CLI's terms (converter.request, the backends); the action
shows it through ``action_wording``, so the two cannot drift and no message has a second copy.
"""

from __future__ import annotations

import re
from functools import cache

from converter.github.inputs import ACTION_OPTIONS
from converter.request import OPTIONS


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    names = "|".join(re.escape(o.name) for o in sorted((*OPTIONS, *ACTION_OPTIONS), key=lambda o: -len(o.name)))
    # `--rtol "abc"`, `--dynamic-batch false`, `--opset 17`: the input as the workflow writes it
    with_value = re.compile(rf"--({names}) (?=[\"'\d]|true\b|false\b|auto\b)")
    bare = re.compile(rf"--({names})(?![\w-])")  # `--model-path is required`: the input's name
    return with_value, bare


# A command the message tells the user to run keeps its flags: "run onnx-convert merge --output-dir DIR".
_COMMAND = re.compile(r"onnx-convert[^;]*")
# converter.frameworks.base.image_hint: in the action, the image is an input, not a build target.
_IMAGE_HINT = re.compile(r"the (\w+) image \(docker build --target \w+; released as [^)]*\)")


def action_wording(text: str) -> str:
    """``text`` with each CLI option named as the action's input: ``--rtol "abc"`` -> ``rtol: "abc"``."""
    with_value, bare = _patterns()
    text = _IMAGE_HINT.sub(r"image: \1", text)
    parts, start = [], 0
    for command in _COMMAND.finditer(text):
        parts += [bare.sub(r"\1", with_value.sub(r"\1: ", text[start : command.start()])), command.group()]
        start = command.end()
    parts.append(bare.sub(r"\1", with_value.sub(r"\1: ", text[start:])))
    return "".join(parts)
