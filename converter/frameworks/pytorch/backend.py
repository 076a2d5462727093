"""PyTorch backend: TorchScript archives (their code checked before torch.jit.load runs it:
torchscript_code), torch.export programs (.pt2, read without unpickling or evaluating
anything: pt2), state_dicts with --model-class (.pt/.pth or .safetensors), and whole
pickled modules (only with --allow-unsafe-load: unpickling runs code).

Export goes through torch.onnx: the torch.export-based exporter first, the TorchScript exporter
when it fails, when it cannot honour an explicit --opset, or when the model is a ScriptModule.
torch is imported only inside the methods: detection reads zip entries and pickle opcodes.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from converter.errors import ConversionError, UserError
from converter.frameworks.base import Backend, Dim, ExportResult, LoadedModel, TensorSpec
from converter.frameworks.pytorch import export as px
from converter.frameworks.pytorch import load as pl
from converter.frameworks.pytorch.pt2 import load_program
from converter.frameworks.pytorch.torchscript_code import check_archive
from converter.inputs import BATCH
from converter.request import SINGLE_INPUT

if TYPE_CHECKING:
    from converter.request import ConversionRequest

# Fallbacks when torch.onnx._constants (private) moves: the range torch 2.13 documents.
MIN_OPSET, MAX_OPSET, TORCHSCRIPT_MAX_OPSET = 7, 23, 20


class PytorchBackend(Backend):
    name = "pytorch"
    requirements = {"torch": "torch", "onnxscript": "onnxscript", "safetensors": "safetensors"}  # noqa: RUF012
    image_variant = "pytorch"
    formats_help = (
        "a TorchScript .pt, a torch.export .pt2, or a state_dict .pt/.pth/.safetensors with --model-class (PyTorch)"
    )

    @classmethod
    def detect(cls, path: Path) -> str | None:
        return pl.detect_format(path)

    # -- load -----------------------------------------------------------------------------
    def load_impl(self, request: ConversionRequest, fmt: str) -> LoadedModel:
        torch = self.require("torch")
        self.require("onnxscript")  # the dynamo exporter needs it; say so before any work
        path = request.model_path
        notes: list[str] = []
        pl.check_before_loading(path, fmt, request.model_class)
        with px.quiet():
            if fmt == "torchscript":
                model, kind = self._load_torchscript(torch, path, request.allow_unsafe_load), "script"
            elif fmt == "exported_program":
                notes += [
                    f"the program returns or takes {name}, which is not importable here: read as a dict of its keys"
                    for name in pl.register_missing_pytree_types(torch, path)
                ]
                model, kind = self._load_program(torch, path, request.allow_unsafe_load), "program"
            else:
                (model, notes), kind = self._load_module(torch, request, fmt), "module"
        if kind != "program":
            model.eval()
            for parameter in model.parameters():
                parameter.requires_grad_(False)
        return LoadedModel(
            model=model,
            format=fmt,
            description=_describe(torch, model, kind),
            notes=notes,
            extra={"kind": kind, "requested_opset": request.opset},
        )

    def _load_torchscript(self, torch: Any, path: Path, allow_unsafe: bool) -> Any:
        try:
            if not allow_unsafe:  # torch.jit.load runs the archive's code: only what computes on tensors
                check_archive(torch, path)
            return torch.jit.load(str(path), map_location="cpu")
        except UserError:
            raise
        except Exception as exc:
            raise UserError(
                f"{path.name} could not be loaded by torch.jit.load ({px.summarize(exc, 160)})",
                "save it again with torch.jit.save",
            ) from None

    def _load_program(self, torch: Any, path: Path, allow_unsafe: bool) -> Any:
        try:
            return load_program(torch, path, allow_unsafe)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(
                f"{path.name} could not be loaded as a torch.export program ({px.summarize(exc, 160)})",
                "save it again with torch.export.save from the same torch version",
            ) from None

    def _load_module(self, torch: Any, request: ConversionRequest, fmt: str) -> tuple[Any, list[str]]:
        path = request.model_path
        if fmt == "safetensors":
            if not pl.safetensors_header_ok(path):
                raise UserError(
                    f"{path.name} is not a safetensors file (bad header)", "save it with safetensors.torch.save_file"
                )
            obj: Any = pl.load_safetensors(self.require, path)
        else:
            obj = pl.load_checkpoint(torch, path, fmt, request.allow_unsafe_load)
        if isinstance(obj, torch.nn.Module):
            if request.model_class:
                raise UserError(
                    f"{path.name} holds a whole {type(obj).__name__} module, not a state_dict; --model-class is only for state_dicts",
                    "remove --model-class",
                )
            return obj, []
        state, notes = pl.extract_state_dict(torch, obj, path)
        if not request.model_class:
            keys = ", ".join(list(state)[:3])
            raise UserError(
                f"{path.name} is a state_dict ({len(state)} tensors: {keys}, ...), which holds weights but not the model's code",
                "pass --model-class path/to/model.py:ClassName naming the nn.Module class (or a zero-argument factory)",
            )
        factory, label = pl.import_model_class(request.model_class)
        model = pl.build_module(torch, factory, request.model_class)
        notes += pl.apply_state_dict(model, state, path, label)
        return model, notes

    # -- inputs ---------------------------------------------------------------------------------
    def input_specs_impl(self, loaded: LoadedModel, request: ConversionRequest) -> list[TensorSpec]:
        torch = self.require("torch")
        kind = loaded.extra["kind"]
        if kind == "program":
            specs = self._program_specs(torch, loaded, request)
        else:
            params, var_positional = _forward_parameters(loaded.model, kind)
            names, note = _input_names(params, var_positional, request)
            if note:
                loaded.notes.append(note)
            # Inputs that skip an optional parameter (GPT-2's past_key_values between input_ids and
            # attention_mask) are passed by keyword; the skipped ones keep their defaults.
            known = [n for n, _ in params]
            loaded.extra["keywords"] = set(names) <= set(known) and names != known[: len(names)]
            dtype = _default_float(torch, loaded.model)
            specs = [TensorSpec(name=n, shape=None, dtype=dtype, dtype_known=False) for n in names]
        high = _embedding_rows(torch, loaded.model, kind)
        for spec in specs:
            spec.high = high  # token ids below every embedding's num_embeddings
        loaded.extra["input_names"] = [s.name for s in specs]
        return specs

    def _program_specs(self, torch: Any, loaded: LoadedModel, request: ConversionRequest) -> list[TensorSpec]:
        program = loaded.model
        user_inputs = list(program.graph_signature.user_inputs)
        placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
        params = [(name, True) for name in user_inputs]
        names, note = _input_names(params, False, request)
        if note:
            loaded.notes.append(note)
        specs = []
        for name, original in zip(names, user_inputs, strict=False):
            value = placeholders[original].meta.get("val")
            if value is None or not hasattr(value, "shape"):
                raise ConversionError(f"input {original} of the exported program is not a tensor")
            shape: tuple[Dim, ...] = tuple(d if isinstance(d, int) else None for d in value.shape)
            if request.dynamic_batch and shape and shape[0] is not None:
                raise UserError(
                    f"{request.model_path.name} was exported with a fixed batch of {shape[0]} "
                    f"(input {original} {'x'.join('?' if d is None else str(d) for d in shape)}), "
                    "so it cannot take --dynamic-batch true",
                    "export it with dynamic_shapes (torch.export.Dim) on axis 0, or pass --dynamic-batch false",
                )
            specs.append(TensorSpec(name=name, shape=shape, dtype=str(value.dtype).removeprefix("torch.")))
        return specs

    # -- reference run ------------------------------------------------------------------------------
    def run_impl(self, loaded: LoadedModel, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        torch = self.require("torch")
        tensors = tuple(_to_tensor(torch, inputs[name]) for name in loaded.extra["input_names"])
        call = loaded.extra.get("callable")
        if call is None:
            if loaded.extra["kind"] == "program":
                call = _program_callable(torch, loaded.model)
            elif loaded.extra.get("keywords"):
                call = _keyword_callable(loaded.model, loaded.extra["input_names"])
            else:
                call = loaded.model
            loaded.extra["callable"] = call
        try:
            # Warnings only (cheap): this call is also what the latency figure measures.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = call(*tensors)
        except Exception as exc:
            # TorchScript wraps the error in its own traceback; keep the last line, the error itself,
            # under its own type (the base class names the type when it reports the failure).
            summary = px.summarize(exc, 240)
            kind = px.interpreter_error_type(exc) or type(exc)
            try:
                cleaned = kind(summary)
            except Exception:
                cleaned = RuntimeError(summary)
            raise cleaned from exc
        flat = _flatten_outputs(torch, result)
        if not flat:
            raise ConversionError("the model returned no tensors")
        # The first run's inputs are the export's example inputs: the same batch as the first check.
        loaded.extra.setdefault("example_inputs", tensors)
        if not loaded.output_names:
            loaded.output_names = tuple(name for name, _ in flat)
            loaded.extra["output_ranks"] = [t.dim() for _, t in flat]
        return {name: _to_numpy(torch, t) for name, t in zip(loaded.output_names, (t for _, t in flat), strict=True)}

    # -- export ----------------------------------------------------------------------------------
    def export_impl(
        self, loaded: LoadedModel, specs: list[TensorSpec], opset: int, path: Path, dynamic_batch: bool
    ) -> ExportResult:
        torch = self.require("torch")
        explicit = loaded.extra["requested_opset"] is not None
        kind = loaded.extra["kind"]
        args = _example_args(torch, loaded, specs)
        input_names = [s.name for s in specs]
        kwargs: dict[str, Any] | None = None
        if loaded.extra.get("keywords"):
            kwargs, args = dict(zip(input_names, args, strict=True)), ()
        output_names = list(loaded.output_names)
        large = _weight_bytes(torch, loaded.model, kind) > px.EXTERNAL_DATA_BYTES
        export_notes: list[str] = []
        if large:
            export_notes.append(
                f"the weights exceed {px.EXTERNAL_DATA_BYTES / 1024**3:.2f} GiB; they are stored in {path.name}.data next to the .onnx"
            )

        dynamo_opset: int | None = None  # the opset the dynamo exporter wrote, when it wrote one
        if kind == "program":
            px.copy_before_reshape(torch, loaded.model)
        if kind == "script":
            reason = "the model is a TorchScript ScriptModule, which torch.export cannot trace"
        else:
            try:
                extra = px.dynamo_export(
                    torch,
                    loaded.model,
                    args,
                    opset,
                    input_names,
                    output_names,
                    _dynamic_shapes(torch, specs, kind, by_name=kwargs is not None),
                    path,
                    large,
                    kwargs,
                )
                dynamo_opset = px.file_opset(path)
                if not explicit or dynamo_opset == opset:
                    return ExportResult(
                        path, self._exporter(torch), px.DYNAMO, extra_files=extra, warnings=export_notes
                    )
                reason = f"it wrote opset {dynamo_opset}, not the {opset} asked for"
                for stale in [path, *extra]:
                    stale.unlink(missing_ok=True)
            except Exception as exc:
                reason = px.summarize(exc)

        if kind == "program":
            # The TorchScript exporter cannot take an ExportedProgram: its module refuses the mode
            # switch, and tracing it runs the program's shape guards as Python branches.
            if dynamo_opset is not None:
                raise ConversionError(
                    f"asked for opset {opset}, but the torch.export-based exporter, the only one for a torch.export "
                    f"program, wrote opset {dynamo_opset}",
                    f"use --opset {dynamo_opset}, or auto",
                )
            raise ConversionError(
                f"the torch.export-based exporter, the only one for a torch.export program, failed: {reason}",
                "replace the unsupported operation in the model, or save it as TorchScript or a state_dict instead",
            )
        ts_opset = opset
        if opset > TORCHSCRIPT_MAX_OPSET:
            if explicit:
                raise ConversionError(
                    f"asked for opset {opset}, but the TorchScript exporter writes opsets up to {TORCHSCRIPT_MAX_OPSET} "
                    f"and the torch.export-based exporter could not be used ({reason})",
                    f"use --opset {TORCHSCRIPT_MAX_OPSET} or lower, or auto",
                )
            ts_opset = TORCHSCRIPT_MAX_OPSET
        try:
            extra, caught = px.torchscript_export(
                torch,
                loaded.model,
                args,
                ts_opset,
                input_names,
                output_names,
                _dynamic_axes(specs, loaded, dynamic_batch),
                path,
                large,
                kwargs,
            )
        except Exception as exc:
            if dynamo_opset is not None:
                raise ConversionError(
                    f"asked for opset {opset}, but the torch.export-based exporter wrote opset {dynamo_opset} "
                    f"and the TorchScript exporter failed: {px.summarize(exc)}",
                    f"use --opset {dynamo_opset}, or auto",
                ) from None
            raise ConversionError(
                f"neither exporter could convert {loaded.description}: torch.export-based exporter: {reason}; "
                f"TorchScript exporter: {px.summarize(exc)}",
                "replace the unsupported operation in the model, or change it so that torch.export can trace it",
            ) from None
        fatal, other = px.tracer_problems(caught, Path(str(torch.__file__)).parent)
        if fatal:
            for stale in [path, *extra]:
                stale.unlink(missing_ok=True)
            raise ConversionError(
                f"forward branches in Python on a tensor value ({fatal[0]}): torch.export failed ({reason}) and the "
                "TorchScript exporter would freeze the branch this example took",
                "rewrite the branch with torch.where or torch.cond, or save the model with torch.jit.script",
            )
        export_notes += [f"TorchScript tracer: {w}" for w in other]
        written = px.file_opset(path)
        if explicit and written != opset:
            raise ConversionError(
                f"asked for opset {opset}, but the TorchScript exporter wrote opset {written}",
                f"use --opset {written}, or auto",
            )
        return ExportResult(
            path,
            self._exporter(torch, dynamo=False),
            px.TORCHSCRIPT,
            fallback_reason=reason,
            extra_files=extra,
            warnings=export_notes,
        )

    def _exporter(self, torch: Any, dynamo: bool = True) -> str:
        import importlib.metadata as md

        if not dynamo:  # the TorchScript exporter is torch's own C++ code
            return f"torch.onnx (torch {torch.__version__})"
        return f"torch.onnx (torch {torch.__version__}, onnxscript {md.version('onnxscript')})"

    def opset_range(self) -> tuple[int, int]:
        self.require("torch")
        try:
            from torch.onnx import _constants as constants

            return int(constants.ONNX_MIN_OPSET), int(constants.ONNX_MAX_OPSET)
        except (ImportError, AttributeError):
            return MIN_OPSET, MAX_OPSET

    def versions(self) -> dict[str, str]:
        import importlib.metadata as md

        found = {}
        for package in ("torch", "onnxscript", "safetensors"):
            with contextlib.suppress(md.PackageNotFoundError):
                found[package] = md.version(package)
        return found


# -- helpers --------------------------------------------------------------------------------------


def _describe(torch: Any, model: Any, kind: str) -> str:
    if kind == "program":
        count = sum(t.numel() for t in model.state_dict.values())
        return f"ExportedProgram ({count:,} parameters)"
    name = getattr(model, "original_name", "") if kind == "script" else type(model).__name__
    count = sum(p.numel() for p in model.parameters())
    return f"{name or type(model).__name__} ({count:,} parameters)"


def _forward_parameters(model: Any, kind: str) -> tuple[list[tuple[str, bool]], bool]:
    """(name, required) for each positional parameter of forward, and whether it takes *args."""
    if kind == "script":
        arguments = model.forward.schema.arguments[1:]  # [0] is self
        return [(a.name, not a.has_default_value()) for a in arguments if not a.kwarg_only], False
    params: list[tuple[str, bool]] = []
    var_positional = False
    for param in inspect.signature(model.forward).parameters.values():
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            var_positional = True
        elif param.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            params.append((param.name, param.default is inspect.Parameter.empty))
    return params, var_positional


def _input_names(
    params: list[tuple[str, bool]], var_positional: bool, request: ConversionRequest
) -> tuple[list[str], str]:
    """Input names: forward's parameters, or the names --input-shapes gives them, in order.

    Names from --input-shapes that forward does not have rename its parameters by position.
    """
    given = [n for n in request.input_shapes if n != SINGLE_INPUT]
    known = [n for n, _ in params]
    required = sum(1 for _, req in params if req)
    if given and all(n in known for n in given):
        # The named parameters and the required ones, in forward's order; optional ones not named
        # keep their defaults (they would otherwise need shapes the user has no reason to give).
        return [n for n, req in params if req or n in given], ""
    # A full renaming only: a mix of known and unknown names is a typo, reported by the pipeline.
    if given and not any(n in known for n in given) and (var_positional or required <= len(given) <= len(known)):
        renamed = [f"{new} (forward's {old})" for new, old in zip(given, known, strict=False) if new != old]
        note = f"inputs named from --input-shapes: {', '.join(renamed)}" if renamed else ""
        return given, note
    if not known:
        return ["input"], ""
    return known[:required] or known[:1], ""


def _default_float(torch: Any, model: Any) -> str:
    """Inputs take the dtype of the model's weights (float32 unless it was converted)."""
    for parameter in model.parameters():
        if parameter.is_floating_point():
            name = str(parameter.dtype).removeprefix("torch.")
            return name if name in ("float16", "float32", "float64") else "float32"
    return "float32"


def _embedding_rows(torch: Any, model: Any, kind: str) -> int | None:
    """The smallest num_embeddings of the model's embeddings, so generated ids stay in range."""
    rows: list[int] = []
    if kind == "program":
        targets = {"aten.embedding.default", "aten.embedding_bag.default", "aten._embedding_bag.default"}
        for node in model.graph.nodes:
            if node.op == "call_function" and str(node.target) in targets:
                weight = node.args[0].meta.get("val") if hasattr(node.args[0], "meta") else None
                if weight is not None:
                    rows.append(int(weight.shape[0]))
    else:
        for module in model.modules():
            name = getattr(module, "original_name", type(module).__name__)
            if name in ("Embedding", "EmbeddingBag") and hasattr(module, "num_embeddings"):
                rows.append(int(module.num_embeddings))
    return min(rows) if rows else None


def _program_callable(torch: Any, program: Any) -> Any:
    """The program's module, called with its flat inputs put back into the (args, kwargs) it was exported with.

    A program exported with keyword inputs (``kwargs={"input_ids": ...}``, as a Hugging Face model
    is) refuses them by position: "Ran into a kwarg keyword mismatch".
    """
    module = program.module()
    spec = program.call_spec.in_spec
    if spec is None:
        return module

    def call(*tensors: Any) -> Any:
        if spec.num_leaves != len(tensors):
            return module(*tensors)
        args, kwargs = torch.utils._pytree.tree_unflatten(list(tensors), spec)
        return module(*args, **kwargs)

    return call


def _keyword_callable(model: Any, names: list[str]) -> Any:
    def call(*tensors: Any) -> Any:
        return model(**dict(zip(names, tensors, strict=True)))

    return call


def _to_tensor(torch: Any, array: np.ndarray) -> Any:
    return torch.from_numpy(np.ascontiguousarray(array).copy())


def _to_numpy(torch: Any, tensor: Any) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()


def _flatten_outputs(torch: Any, result: Any) -> list[tuple[str, Any]]:
    """Output tensors in the order the exporters flatten them, with names.

    One tensor is ``output``; a tuple gives ``output_0``, ``output_1``, ...; dict keys name their
    values (``logits``, ``hidden.0``), in insertion order as torch's pytree keeps them.
    """
    leaves: list[tuple[list[str | int], Any]] = []

    def walk(value: Any, path: list[str | int]) -> None:
        if isinstance(value, torch.Tensor):
            leaves.append((path, value))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, [*path, str(key)])
        elif isinstance(value, (tuple, list)):
            for index, item in enumerate(value):
                walk(item, [*path, index])

    walk(result, [])
    keyed = any(isinstance(part, str) for path, _ in leaves for part in path)
    named = []
    for position, (path, tensor) in enumerate(leaves):
        if not path:
            name = "output"
        elif not keyed:
            name = f"output_{position}" if len(leaves) > 1 else "output"
        else:
            parts = [str(p) for p in path]
            name = ".".join(parts) if isinstance(path[0], str) else "output_" + ".".join(parts)
        named.append((_clean_name(name), tensor))
    return named


def _clean_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:/-]", "_", name) or "output"


def _example_args(torch: Any, loaded: LoadedModel, specs: list[TensorSpec]) -> tuple[Any, ...]:
    """The first validation inputs; a batch of 1 is repeated to 2 so export keeps the axis dynamic."""
    tensors = list(loaded.extra["example_inputs"])
    for index, spec in enumerate(specs):
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


def _dynamic_axes(specs: list[TensorSpec], loaded: LoadedModel, dynamic_batch: bool) -> dict[str, dict[int, str]]:
    axes = {s.name: {i: d for i, d in enumerate(s.shape or ()) if isinstance(d, str)} for s in specs}
    if dynamic_batch:
        for name, rank in zip(loaded.output_names, loaded.extra["output_ranks"], strict=True):
            if rank > 0:
                axes[name] = {0: BATCH}
    return {name: value for name, value in axes.items() if value}


def _weight_bytes(torch: Any, model: Any, kind: str) -> int:
    if kind == "program":
        tensors = [*model.state_dict.values(), *(v for v in model.constants.values() if isinstance(v, torch.Tensor))]
    else:
        tensors = [t for t in model.state_dict().values() if isinstance(t, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors)
