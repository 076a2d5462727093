"""What the PyTorch backend learns about a model while loading and running it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from converter.frameworks.base import LoadedModel
from converter.frameworks.pytorch.hf_load import HfModel


@dataclass
class PytorchState:
    kind: str  # "script" (a ScriptModule), "program" (an ExportedProgram) or "module" (an nn.Module)
    input_names: list[str] = field(default_factory=list)  # forward's inputs, in the order they are fed
    keywords: bool = False  # inputs go by keyword: forward skips an optional parameter between them
    output_ranks: list[int] = field(default_factory=list)  # known after the first run, as output_names
    call: Any = None  # what the reference run calls, made at its first run
    reshapes_copied: bool = False  # export.copy_before_reshape ran on the program (once is enough)
    hf: HfModel | None = None  # a Hugging Face folder: its task and what its inputs respect


Loaded = LoadedModel[PytorchState]
