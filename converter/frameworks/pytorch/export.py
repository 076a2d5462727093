"""The two torch.onnx exporters, run quietly, with their errors cut to one line.

torch.onnx.export(dynamo=True) (the torch.export-based exporter) is preferred; the TorchScript
exporter (dynamo=False) is the fallback and the only route for ScriptModules.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import logging
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from converter.errors import shorten

# One protobuf holds at most 2 GiB; leave room for the graph itself. Above this the weights go
# to <name>.onnx.data next to the .onnx (a module constant so a test can lower it).
EXTERNAL_DATA_BYTES = 2 * 1024**3 - 128 * 1024**2
DYNAMO = "torch.onnx.export(dynamo=True)"
TORCHSCRIPT = "torch.onnx.export(dynamo=False)"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
STACK_TRACE = "pkg.torch.onnx.stack_trace"


@dataclass
class Captured:
    """What an exporter said while it ran."""

    warnings: list[warnings.WarningMessage] = field(default_factory=list)
    output: str = ""


@contextlib.contextmanager
def quiet() -> Iterator[Captured]:
    """Silence torch while it exports: warnings, logging, and C++ prints to fd 1 and 2.

    The user sees one result line, or one error line; torch's graph dumps and deprecation
    notices would bury it (the TorchScript exporter prints the graph from C++ on failure).
    """
    captured = Captured()
    previous_disable = logging.root.manager.disable
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as sink, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logging.disable(logging.CRITICAL)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        python_out = _StringSink()
        try:
            with contextlib.redirect_stdout(python_out), contextlib.redirect_stderr(python_out):
                yield captured
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            logging.disable(previous_disable)
            sink.seek(0)
            captured.output = sink.read().decode(errors="replace") + python_out.text
            captured.warnings = list(caught)


class _StringSink(io.StringIO):
    """sys.stdout while quiet: a whole text stream (transformers asks it isatty() when it reports loading)."""

    @property
    def text(self) -> str:
        return self.getvalue()


@dataclass
class TorchCall:
    """What both torch.onnx exporters are given for one export."""

    model: Any  # an nn.Module, a ScriptModule or an ExportedProgram
    args: tuple[Any, ...]  # the example inputs (empty when they go by keyword)
    kwargs: dict[str, Any] | None  # the example inputs by name, for a forward that skips optional parameters
    input_names: list[str]
    output_names: list[str]
    opset: int
    path: Path
    large: bool  # weights beyond EXTERNAL_DATA_BYTES: written to <name>.onnx.data beside the file


def dynamo_export(torch: Any, call: TorchCall, dynamic_shapes: tuple[Any, ...] | dict[str, Any] | None) -> list[Path]:
    """Export with the torch.export-based exporter; returns the files written besides ``call.path``."""
    with quiet():
        program = torch.onnx.export(
            call.model,
            call.args,
            kwargs=call.kwargs,
            dynamo=True,
            opset_version=call.opset,
            dynamic_shapes=dynamic_shapes,
            optimize=True,
            verbose=False,
        )
        assign_names(program.model, call.input_names, call.output_names)
        drop_machine_metadata(program.model)
        if call.large:
            program.save(str(call.path), external_data=True)
        else:
            # ONNXProgram.save moves weights to a .data file above 1.5 GiB; under the 2 GiB
            # protobuf limit we keep one self-contained file.
            onnx.save_model(program.model_proto, str(call.path))
    data = call.path.with_name(call.path.name + ".data")
    return [data] if data.exists() else []


def copy_before_reshape(torch: Any, program: Any) -> int:
    """Make the copies a torch.export program's reshapes rely on unconditional; returns how many ops changed.

    The exporter re-traces the program (``run_decompositions``), and scaled_dot_product_attention's
    output strides there need not be those of the recorded trace (they differ with T5's learned
    position bias, and with whether the parameters required grad). A ``contiguous()`` that copied
    in one trace is a no-op in the other, and a ``reshape`` that was a view of a contiguous tensor
    becomes a view that cannot hold: "Cannot view a tensor with shape ... as a tensor with shape"
    (pytorch/pytorch#136543, #141107; #169732 replaces contiguous by clone in torch for this).
    So every ``contiguous`` becomes a ``clone`` and every ``reshape`` copies its input to the
    contiguous layout first. A copy is an Identity in ONNX (the optimizer removes it): the values
    and the file are the same. reshape and contiguous promise no aliasing, so nothing relies on it.
    """
    aten = torch.ops.aten
    changed = 0
    for module in program.graph_module.modules():
        if not isinstance(module, torch.fx.GraphModule):
            continue
        graph = module.graph
        for node in list(graph.nodes):
            if node.op != "call_function":
                continue
            if node.target is aten.contiguous.default:
                node.target = aten.clone.default
                node.kwargs = {"memory_format": node.kwargs.get("memory_format", torch.contiguous_format)}
                changed += 1
            elif node.target is aten.reshape.default and isinstance(node.args[0], torch.fx.Node):
                source = node.args[0]
                with graph.inserting_before(node):
                    copy = graph.call_function(
                        aten.clone.default, (source,), {"memory_format": torch.contiguous_format}
                    )
                copy.meta = dict(source.meta)
                node.args = (copy, *node.args[1:])
                changed += 1
        module.recompile()
    return changed


def assign_names(model: Any, input_names: list[str], output_names: list[str]) -> None:
    """Name the graph's inputs and outputs, first renaming any inner value that holds one of the names.

    torch.onnx.export(output_names=...) renames only the output, so an output called
    ``embedding`` collides with the value of the aten.embedding node and fails the checker (SSA).
    """
    import onnx_ir as ir

    values: dict[int, Any] = {}
    for value in [*model.graph.inputs, *model.graph.initializers.values()]:
        values[id(value)] = value
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        for value in node.outputs:
            values[id(value)] = value
    taken = {v.name for v in values.values()} | set(input_names) | set(output_names)
    wanted = set(input_names) | set(output_names)
    for value in values.values():
        if value.name in wanted:
            base, number = value.name, 1
            while f"{base}_{number}" in taken:
                number += 1
            value.name = f"{base}_{number}"
            taken.add(value.name)
    for value, name in zip(model.graph.inputs, input_names, strict=True):
        value.name = name
    for value, name in zip(model.graph.outputs, output_names, strict=True):
        value.name = name


def drop_machine_metadata(model: Any) -> None:
    """Remove node metadata that says where files were on this machine, not what the model is.

    torch.onnx records each node's Python stack (``pkg.torch.onnx.stack_trace``): absolute paths
    of the model's source and of torch itself. Two runners, or two checkouts, would write two
    different files for the same model; the rest of the metadata (module classes, scopes) stays.
    """
    import onnx_ir as ir

    graphs = [model.graph, *model.functions.values()]
    for graph in graphs:
        for node in ir.traversal.RecursiveGraphIterator(graph):
            node.metadata_props.pop(STACK_TRACE, None)


def torchscript_export(
    torch: Any, call: TorchCall, dynamic_axes: dict[str, dict[int, str]]
) -> tuple[list[Path], list[warnings.WarningMessage]]:
    """Export with the TorchScript exporter into a scratch folder, then put the result at ``call.path``.

    The TorchScript exporter writes one file per tensor when it needs external data; we gather
    them into one ``<name>.onnx.data`` so the report can list every file.
    """
    path = call.path
    scratch = Path(tempfile.mkdtemp(prefix=".torchscript-", dir=path.parent))
    try:
        target = scratch / path.name
        with quiet() as captured:
            torch.onnx.export(
                call.model,
                call.args,
                str(target),
                kwargs=call.kwargs,
                dynamo=False,
                opset_version=call.opset,
                input_names=call.input_names,
                output_names=call.output_names,
                dynamic_axes=dynamic_axes or None,
                do_constant_folding=True,
            )
        extra = _gather_external_data(target, path, call.large)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return extra, captured.warnings


def _gather_external_data(target: Path, path: Path, large: bool) -> list[Path]:
    """Move the exported file from ``target`` to ``path``, its external tensors into one ``.data`` file."""
    written = [p for p in target.parent.iterdir() if p != target]
    if not large and not written:
        target.replace(path)
        return []
    proto = onnx.load(str(target), load_external_data=True)
    location = path.name + ".data"
    # convert_attribute: a scripted module keeps its weights in Constant nodes, not initializers.
    onnx.save_model(
        proto,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=location,
        convert_attribute=True,
    )
    data = path.with_name(location)
    return [data] if data.exists() else []


# -- messages --------------------------------------------------------------------------------


def summarize(exc: BaseException, limit: int = 240) -> str:
    """An exporter's exception as one line: its own summary, and the user's line of code if named."""
    text = _ANSI.sub("", str(exc))
    summary = ""
    if "## Exception summary" in text:
        after = text.split("## Exception summary", 1)[1]
        lines = [ln.strip() for ln in after.splitlines() if ln.strip() and ln.strip() != "⬆️"]
        summary = lines[0] if lines else ""
    elif "Traceback of TorchScript" in text:
        # The interpreter's traceback, then "builtins.RuntimeError: <the error>" on the last line.
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        summary = re.sub(r"^(?:builtins\.)?\w+: ", "", lines[-1])
    else:
        summary = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    # "<class 'torch...GuardOnDataDependentSymNode'>: Could not guard ..." -> "GuardOnDataDependentSymNode: ..."
    summary = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", summary)
    where = user_code_line(text)
    if where:
        summary = f"{shorten(summary, limit - len(where) - 5)} (at {where})"
    return shorten(summary, limit)


def interpreter_error_type(exc: BaseException) -> type[BaseException] | None:
    """The Python error a TorchScript interpreter error stands for ("builtins.RuntimeError: ...")."""
    match = re.search(r"^builtins\.(\w+):", str(exc).strip().splitlines()[-1] if str(exc).strip() else "")
    found = getattr(builtins, match.group(1), None) if match else None
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def user_code_line(text: str) -> str:
    """``file.py:12 `code``` for the first line of the user's code an exporter error quotes."""
    match = re.search(r'The following call raised this error:\s*File "([^"]+)", line (\d+), in \w+\s*\n\s*(.+)', text)
    if not match:
        return ""
    return f"{Path(match.group(1)).name}:{match.group(2)} `{match.group(3).strip()}`"


def tracer_problems(caught: list[warnings.WarningMessage], torch_dir: Path) -> tuple[list[str], list[str]]:
    """TorchScript tracer warnings split into fatal ones and the rest.

    Fatal: the model's own code branched in Python on a tensor value, so the trace holds only the
    branch the example took. Such a branch inside torch itself (argument checks) is only reported.
    """
    fatal, other = [], []
    for warning in caught:
        if warning.category.__name__ != "TracerWarning":
            continue
        text = str(warning.message).split(". ", 1)[0]
        where = f"{Path(warning.filename).name}:{warning.lineno}"
        line = f"{text} ({where})"
        if "Python boolean" in text and not Path(warning.filename).resolve().is_relative_to(torch_dir.resolve()):
            fatal.append(line)
        elif line not in other:
            other.append(line)
    return fatal, other
