"""The PyTorch backend's two export routes: torch.onnx.export(dynamo=True) and (dynamo=False).

Each route keeps the checks only its exporter needs: the copies a torch.export program's
reshapes rely on and the ONNX names of inputs and outputs (dynamo), Python branches the tracer
froze (TorchScript), and weights over 2 GiB written beside the file (both). Which opset to ask
for, and which route comes next, is the pipeline's decision (converter/opsets.py).
"""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path
from typing import Any

from converter.errors import ConversionError, UnsupportedByRoute
from converter.frameworks.base import ExportJob, ExportResult, TensorSpec
from converter.frameworks.pytorch import export as torch_export
from converter.frameworks.pytorch.signature import to_tensor
from converter.frameworks.pytorch.state import Loaded
from converter.inputs import BATCH

# Fallbacks when torch.onnx._constants (private) moves: the range torch 2.13 documents.
MIN_OPSET, MAX_OPSET, TORCHSCRIPT_MAX_OPSET = 7, 23, 20
SCRIPT_MODULE = "the model is a TorchScript ScriptModule, which torch.export cannot trace"
UNSUPPORTED_HINT = "replace the unsupported operation in the model, or change it so that torch.export can trace it"
PROGRAM_HINT = "replace the unsupported operation in the model, or save it as TorchScript or a state_dict instead"


def export_dynamo(torch: Any, loaded: Loaded, job: ExportJob) -> ExportResult:
    """torch.onnx.export(dynamo=True): torch.export traces the model, onnxscript translates it."""
    call, notes = _torch_call(torch, loaded, job)
    state = loaded.state
    if state.kind == "program" and not state.reshapes_copied:
        torch_export.copy_before_reshape(torch, loaded.model)
        state.reshapes_copied = True
    shapes = _dynamic_shapes(torch, job.specs, state.kind, by_name=call.kwargs is not None)
    try:
        extra = torch_export.dynamo_export(torch, call, shapes)
    except Exception as exc:
        raise ConversionError(
            f"the torch.export-based exporter failed: {torch_export.summarize(exc)}",
            PROGRAM_HINT if state.kind == "program" else UNSUPPORTED_HINT,
        ) from None
    exporter = f"torch.onnx (torch {torch.__version__}, onnxscript {md.version('onnxscript')})"
    return ExportResult(job.path, exporter, extra_files=extra, warnings=notes)


def export_torchscript(torch: Any, loaded: Loaded, job: ExportJob) -> ExportResult:
    """torch.onnx.export(dynamo=False): the TorchScript tracer runs the example, or reads the script."""
    call, notes = _torch_call(torch, loaded, job)
    try:
        extra, caught = torch_export.torchscript_export(
            torch, call, _dynamic_axes(job.specs, loaded, job.dynamic_batch)
        )
    except Exception as exc:
        raise ConversionError(
            f"the TorchScript exporter failed: {torch_export.summarize(exc)}", UNSUPPORTED_HINT
        ) from None
    fatal, other = torch_export.tracer_problems(caught, Path(str(torch.__file__)).parent)
    if fatal:
        for stale in [job.path, *extra]:
            stale.unlink(missing_ok=True)
        # The tracer records the branch this example took, whatever the opset: no other opset helps.
        raise UnsupportedByRoute(
            f"forward branches in Python on a tensor value ({fatal[0]}): "
            "the TorchScript exporter would freeze the branch this example took",
            "rewrite the branch with torch.where or torch.cond, or save the model with torch.jit.script",
        )
    notes += [f"TorchScript tracer: {w}" for w in other]
    # The TorchScript exporter is torch's own C++ code: no onnxscript.
    return ExportResult(job.path, f"torch.onnx (torch {torch.__version__})", extra_files=extra, warnings=notes)


def _torch_call(torch: Any, loaded: Loaded, job: ExportJob) -> tuple[torch_export.TorchCall, list[str]]:
    """What both exporters are given, and the note when the weights go to a .data file."""
    args = _example_args(torch, loaded, job)
    kwargs: dict[str, Any] | None = None
    input_names = [s.name for s in job.specs]
    if loaded.state.keywords:
        kwargs, args = dict(zip(input_names, args, strict=True)), ()
    large = _weight_bytes(torch, loaded.model, loaded.state.kind) > torch_export.EXTERNAL_DATA_BYTES
    notes = []
    if large:
        notes.append(
            f"the weights exceed {torch_export.EXTERNAL_DATA_BYTES / 1024**3:.2f} GiB; "
            f"they are stored in {job.path.name}.data next to the .onnx"
        )
    call = torch_export.TorchCall(
        loaded.model, args, kwargs, input_names, list(loaded.output_names), job.opset, job.path, large
    )
    return call, notes


def _example_args(torch: Any, loaded: Loaded, job: ExportJob) -> tuple[Any, ...]:
    """The first validation inputs; a batch of 1 is repeated to 2 so export keeps the axis dynamic."""
    tensors = [to_tensor(torch, job.example_inputs[name]) for name in loaded.state.input_names]
    for index, spec in enumerate(job.specs):
        if spec.shape and spec.shape[0] == BATCH and tensors[index].shape[0] == 1:
            tensors[index] = tensors[index].repeat(2, *([1] * (tensors[index].dim() - 1)))
    return tuple(tensors)


def _dynamic_shapes(
    torch: Any, specs: list[TensorSpec], kind: str, by_name: bool = False
) -> tuple[Any, ...] | dict[str, Any] | None:
    """torch.export dynamic_shapes: one torch.export.Dim per dimension name, shared across inputs.

    Keyed by input name when the inputs are passed by keyword, else a tuple in input order.
    """
    if kind == "program":
        return None  # an ExportedProgram carries its own
    dims: dict[str, Any] = {}
    shapes = []
    for spec in specs:
        axes = {}
        for axis, dim in enumerate(spec.shape or ()):
            if isinstance(dim, str):
                key = re.sub(r"\W", "_", dim)
                axes[axis] = dims.setdefault(key, torch.export.Dim(key))
        shapes.append(axes or None)
    if not any(shapes):
        return None
    return {s.name: shape for s, shape in zip(specs, shapes, strict=True)} if by_name else tuple(shapes)


def _dynamic_axes(specs: list[TensorSpec], loaded: Loaded, dynamic_batch: bool) -> dict[str, dict[int, str]]:
    axes = {s.name: {i: d for i, d in enumerate(s.shape or ()) if isinstance(d, str)} for s in specs}
    if dynamic_batch:
        for name, rank in zip(loaded.output_names, loaded.state.output_ranks, strict=True):
            if rank > 0:
                axes[name] = {0: BATCH}
    return {name: value for name, value in axes.items() if value}


def _weight_bytes(torch: Any, model: Any, kind: str) -> int:
    if kind == "program":
        tensors = [*model.state_dict.values(), *(v for v in model.constants.values() if isinstance(v, torch.Tensor))]
    else:
        tensors = [t for t in model.state_dict().values() if isinstance(t, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors)
