"""The action's inputs: every CLI option (``converter.request.OPTIONS``) plus four of its own.

The runner passes input ``model-path`` as ``INPUT_MODEL-PATH`` (hyphen kept). Values are read
with github-action-utils and parsed by the same functions as the CLI's flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import github_action_utils as gha

from converter.github.artifacts import validate_artifact_name
from converter.manifest import BATCH_OPTIONS
from converter.request import OPTIONS, ConversionRequest, Option, parse_bool, parse_choice, parse_int

MODES = ("convert", "plan", "merge")
# Inputs that only the action has (action.yml lists them after the CLI options; a test checks).
# `select` is also the CLI's --select; `mode` is the CLI's subcommand.
ACTION_OPTIONS: tuple[Option, ...] = (
    *BATCH_OPTIONS,
    Option(
        "mode",
        "convert",
        "convert; plan (sets the matrix output from a manifest); or merge (the index of this run's per-model artifacts).",
    ),
    Option("upload-artifact", "true", "Upload the .onnx file(s) and both reports as a workflow artifact."),
    Option("artifact-name", "", "Name of the artifact; empty means <model stem>-onnx."),
    Option(
        "retention-days",
        "",
        "Days to keep the artifact (1 or more; more than the repository's limit is cut to it); "
        "empty means the repository's setting.",
    ),
    Option("summary", "true", "Write the markdown report to the job summary."),
    Option(
        "image",
        "full",
        "The image to run: full (every framework, 2.4 GB), sklearn (scikit-learn only, 684 MB), pytorch (1.21 GB) "
        "or tensorflow (1.41 GB); pulled, never built, for a release tag, a commit SHA or main.",
    ),
)
IMAGES = ("full", "sklearn", "pytorch", "tensorflow")  # action/image.py chooses the image; checked here too

Reader = Callable[[str], str | None]


@dataclass(frozen=True)
class ActionSettings:
    mode: str = "convert"
    select: str = ""
    upload_artifact: bool = True
    artifact_name: str = ""  # empty: derived from the model
    retention_days: int | None = None  # None: the repository's setting
    summary: bool = True
    image: str = "full"

    @classmethod
    def from_inputs(cls, read: Reader) -> ActionSettings:
        raw = {o.name: (read(o.name) or "").strip() or o.default for o in ACTION_OPTIONS}
        name = raw["artifact-name"]
        return cls(
            mode=parse_choice("mode", raw["mode"], MODES),
            select=raw["select"],
            upload_artifact=parse_bool("upload-artifact", raw["upload-artifact"]),
            artifact_name=validate_artifact_name(name) if name else "",
            retention_days=_retention_days(raw["retention-days"]),
            summary=parse_bool("summary", raw["summary"]),
            image=parse_choice("image", raw["image"], IMAGES),
        )


def _retention_days(value: str) -> int | None:
    if not value:
        return None
    return parse_int("retention-days", value, minimum=1)


def read_input(name: str) -> str | None:
    """One input as the runner passed it (None when absent)."""
    return gha.get_user_input(name, trim_whitespace=True)


def read_values(read: Reader = read_input) -> dict[str, str | None]:
    """The CLI options' inputs, unparsed (a manifest run parses them per entry)."""
    return {o.name: read(o.name) for o in OPTIONS}


def read_inputs(workspace: Path, read: Reader = read_input) -> tuple[ConversionRequest, ActionSettings]:
    """Parse every input; paths are resolved in ``workspace`` and must stay inside it.

    Raises UserError, naming the input and its value, for anything wrong.
    """
    settings = ActionSettings.from_inputs(read)  # first: cheap, and no conversion on a bad name
    request = ConversionRequest.from_mapping(read_values(read), base_dir=workspace)
    return request, settings
