"""PyTorch backend: TorchScript archives (their code checked before torch.jit.load runs it:
torchscript_code), torch.export programs (.pt2, read without unpickling or evaluating
anything: pt2), state_dicts with --model-code (.pt/.pth or .safetensors), and whole
pickled modules (only with --allow-unsafe-load: unpickling runs code).

Export goes through torch.onnx's two exporters, two export routes (``routes``): the
torch.export-based exporter first, then the TorchScript exporter; a ScriptModule takes only the
second, a torch.export program only the first. torch is imported only inside the methods:
detection reads zip entries and pickle opcodes.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from converter.errors import ConversionError, UserError
from converter.frameworks.base import Backend, Dim, ExportJob, ExportResult, ExportRoute, LoadedModel, TensorSpec
from converter.frameworks.pytorch import export as torch_export
from converter.frameworks.pytorch import hf_load, routes, signature, tables
from converter.frameworks.pytorch import load as torch_load
from converter.frameworks.pytorch.pt2 import load_program
from converter.frameworks.pytorch.state import Loaded, PytorchState
from converter.frameworks.pytorch.torchscript_code import check_archive
from converter.tensors import shape_text

RELEASE_BYTES = 8 * 1024**2  # weights above this are freed after an export (release_impl)

if TYPE_CHECKING:
    from converter.request import ConversionRequest


class PytorchBackend(Backend[PytorchState]):
    name = "pytorch"
    requirements = {  # noqa: RUF012
        "torch": "torch",
        "onnxscript": "onnxscript",
        "safetensors": "safetensors",
        "transformers": "transformers",
    }
    image_variant = "pytorch"
    formats_help = (
        "a TorchScript .pt, a torch.export .pt2, a state_dict .pt/.pth/.safetensors with --model-code, "
        "or a Hugging Face save_pretrained() folder (PyTorch)"
    )

    @classmethod
    def detect(cls, path: Path) -> str | None:
        return torch_load.detect_format(path)

    # -- load -----------------------------------------------------------------------------
    def load_impl(self, request: ConversionRequest, fmt: str) -> Loaded:
        if fmt == "transformers":
            return self._load_folder(request)
        torch = self.require("torch")
        self.require("onnxscript")  # the dynamo exporter needs it; say so before any work
        path = request.model_path
        notes: list[str] = []
        torch_load.check_before_loading(path, fmt, request.model_code)
        with torch_export.quiet():
            if fmt == "torchscript":
                model, kind = self._load_torchscript(torch, path, request.allow_unsafe_load), "script"
            elif fmt == "exported_program":
                notes += [
                    f"the program returns or takes {name}, which is not importable here: read as a dict of its keys"
                    for name in torch_load.register_missing_pytree_types(torch, path)
                ]
                model, kind = self._load_program(torch, path, request.allow_unsafe_load), "program"
            else:
                (model, notes), kind = self._load_module(torch, request, fmt), "module"
        if kind != "program":
            model.eval()
            for parameter in model.parameters():
                parameter.requires_grad_(False)
        return LoadedModel(
            model=model, format=fmt, description=_describe(model, kind), state=PytorchState(kind), notes=notes
        )

    def _load_folder(self, request: ConversionRequest) -> Loaded:
        """A Hugging Face folder: its files checked before torch or transformers is imported."""
        folder = hf_load.check_folder(request)
        self.require("torch")
        self.require("onnxscript")
        with torch_export.quiet():
            model, hf, notes = hf_load.load(self.require, request, folder)
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        description = f"{_describe(model, 'module')}, task {hf.task} ({hf.task_reason})"
        return LoadedModel(model, "transformers", description, PytorchState("module", hf=hf), notes=notes)

    def _load_torchscript(self, torch: Any, path: Path, allow_unsafe: bool) -> Any:
        try:
            if not allow_unsafe:  # torch.jit.load runs the archive's code: only what computes on tensors
                check_archive(torch, path)
            return torch.jit.load(str(path), map_location="cpu")
        except UserError:
            raise
        except Exception as exc:
            raise UserError(
                f"{path.name} could not be loaded by torch.jit.load ({torch_export.summarize(exc, 160)})",
                "save it again with torch.jit.save",
            ) from None

    def _load_program(self, torch: Any, path: Path, allow_unsafe: bool) -> Any:
        try:
            return load_program(torch, path, allow_unsafe)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(
                f"{path.name} could not be loaded as a torch.export program ({torch_export.summarize(exc, 160)})",
                "save it again with torch.export.save from the same torch version",
            ) from None

    def _load_module(self, torch: Any, request: ConversionRequest, fmt: str) -> tuple[Any, list[str]]:
        path = request.model_path
        if fmt == "safetensors":
            if not torch_load.safetensors_header_ok(path):
                raise UserError(
                    f"{path.name} is not a safetensors file (bad header)", "save it with safetensors.torch.save_file"
                )
            obj: Any = torch_load.load_safetensors(self.require, path)
        else:
            obj = torch_load.load_checkpoint(torch, path, fmt, request.allow_unsafe_load)
        code = request.model_code
        if isinstance(obj, torch.nn.Module):
            if code.given:
                raise UserError(
                    f"{path.name} holds a whole {type(obj).__name__} module, not a state_dict; --{code.option} is only for state_dicts",
                    f"remove --{code.option}",
                )
            return obj, []
        state, notes = torch_load.extract_state_dict(torch, obj, path)
        if not code.given:
            keys = ", ".join(list(state)[:3])
            raise UserError(
                f"{path.name} is a state_dict ({len(state)} tensors: {keys}, ...), which holds weights but not the model's code",
                "pass --model-code path/to/model.py:ClassName naming the nn.Module class (or a zero-argument factory)",
            )
        with torch_load.importable(request.import_root):
            factory, label = torch_load.import_model_class(code)
            model = torch_load.build_module(torch, factory, code)
        notes += torch_load.apply_state_dict(model, state, path, code, label)
        return model, notes

    # -- inputs ---------------------------------------------------------------------------------
    def input_specs_impl(self, loaded: Loaded, request: ConversionRequest) -> list[TensorSpec]:
        torch = self.require("torch")
        state = loaded.state
        if state.hf is not None:
            float_dtype = signature.default_float(torch, loaded.model)
            specs = hf_load.input_specs(loaded.model, loaded.model.config, state.hf, float_dtype)
            state.keywords = True  # forward takes many optional tensors: each input goes by name
            state.input_names = [s.name for s in specs]
            return specs
        if state.kind == "program":
            specs = self._program_specs(loaded, request)
        else:
            params, var_positional = signature.forward_parameters(loaded.model, state.kind)
            names, note = signature.input_names(params, var_positional, request)
            if note:
                loaded.notes.append(note)
            # Inputs that skip an optional parameter (GPT-2's past_key_values between input_ids and
            # attention_mask) are passed by keyword; the skipped ones keep their defaults.
            known = [n for n, _ in params]
            state.keywords = set(names) <= set(known) and names != known[: len(names)]
            dtype = signature.default_float(torch, loaded.model)
            specs = [TensorSpec(name=n, shape=None, dtype=dtype, dtype_known=False) for n in names]
        smallest = tables.smallest_table(loaded.model, state.kind)
        own, originals = self._own_tables(loaded, [s.name for s in specs])
        for position, spec in enumerate(specs):
            rows = own.get(originals[position]) if position < len(originals) else None
            if rows is not None:  # the table this input indexes, read from the program's graph
                spec.high, spec.bound = rows, f"the {rows:,}-row table it indexes (graph)"
            elif smallest is not None:  # below every table: safe whichever it indexes
                spec.high, spec.bound = smallest, f"the smallest table in the model, {smallest:,} rows"
        state.input_names = [s.name for s in specs]
        return specs

    @staticmethod
    def _own_tables(loaded: Loaded, names: list[str]) -> tuple[dict[str, int], list[str]]:
        """The table each input indexes, read from the graph, by the graph's names of the inputs (in order)."""
        if loaded.state.kind == "program":
            return tables.program_tables(loaded.model), list(loaded.model.graph_signature.user_inputs)
        if loaded.state.kind == "script":
            return tables.script_tables(loaded.model), names  # renamed inputs match no name: the smallest table
        return {}, []

    def index_tables(self, loaded: Loaded, inputs: dict[str, np.ndarray]) -> dict[str, int]:
        """A module's forward is read by running it once with hooks on its embeddings."""
        if loaded.state.kind != "module" or not any(np.issubdtype(a.dtype, np.integer) for a in inputs.values()):
            return {}
        torch = self.require("torch")
        if loaded.state.call is None:
            loaded.state.call = self._callable(torch, loaded)
        tensors = {name: signature.to_tensor(torch, inputs[name]) for name in loaded.state.input_names}
        try:
            return tables.module_tables(torch, loaded.model, loaded.state.call, tensors)
        except Exception:  # the reference run that follows reports what fails, with its inputs
            return {}

    def _program_specs(self, loaded: Loaded, request: ConversionRequest) -> list[TensorSpec]:
        program = loaded.model
        user_inputs = list(program.graph_signature.user_inputs)
        placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
        names, note = signature.input_names([(name, True) for name in user_inputs], False, request)
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
                    f"(input {original} {shape_text(shape)}), so it cannot take --dynamic-batch true",
                    "export it with dynamic_shapes (torch.export.Dim) on axis 0, or pass --dynamic-batch false",
                )
            specs.append(TensorSpec(name=name, shape=shape, dtype=str(value.dtype).removeprefix("torch.")))
        return specs

    # -- reference run ------------------------------------------------------------------------------
    def run_impl(self, loaded: Loaded, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        torch = self.require("torch")
        state = loaded.state
        tensors = tuple(signature.to_tensor(torch, inputs[name]) for name in state.input_names)
        if state.call is None:
            state.call = self._callable(torch, loaded)
        try:
            # Warnings only (cheap): this call is also what the latency figure measures.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = state.call(*tensors)
        except Exception as exc:
            raise _cleaned(exc) from exc
        flat = signature.flatten_outputs(torch, result)
        if not flat:
            raise ConversionError("the model returned no tensors")
        if not loaded.output_names:
            loaded.output_names = tuple(name for name, _ in flat)
            state.output_ranks = [t.dim() for _, t in flat]
        return {name: _to_numpy(torch, t) for name, t in zip(loaded.output_names, (t for _, t in flat), strict=True)}

    def release_impl(self, loaded: Loaded) -> bool:
        """Free a model whose weights are large once its file exists: onnxruntime then validates the file
        without the weights held twice (swin_tiny: peak 1.52 -> see bench/RESULTS.md, bench/timm_memory.py).
        A later route's export loads it again (base.py's lifecycle)."""
        torch = self.require("torch")
        if routes.weight_bytes(torch, loaded.model, loaded.state.kind) < RELEASE_BYTES:
            return False  # a small model is cheaper to keep than to load again
        loaded.model = None
        loaded.state.call = None
        gc.collect()  # the exported graph's module holds cycles
        return True

    def reload_impl(self, released: Loaded, again: Loaded) -> None:
        again.state.output_ranks = released.state.output_ranks

    def _callable(self, torch: Any, loaded: Loaded) -> Any:
        if loaded.state.kind == "program":
            return signature.program_callable(torch, loaded.model)
        if loaded.state.keywords:
            return signature.keyword_callable(loaded.model, loaded.state.input_names)
        return loaded.model

    # -- export ----------------------------------------------------------------------------------
    def export_routes(self, loaded: Loaded) -> list[ExportRoute]:
        low, high, torchscript_high = self._opset_limits()
        dynamo = ExportRoute(torch_export.DYNAMO, (low, high))
        torchscript = ExportRoute(torch_export.TORCHSCRIPT, (low, torchscript_high))
        if loaded.state.kind == "script":
            return [ExportRoute(torchscript.name, torchscript.opsets, fallback_reason=routes.SCRIPT_MODULE)]
        if loaded.state.hf is not None:
            # transformers' models branch in Python on tensor values (masking_utils.py:244 for every
            # text model, modeling_vit.py:64): the tracer's check refuses them, so the route would only add a row.
            return [dynamo]
        if loaded.state.kind == "program":
            # The TorchScript exporter cannot take an ExportedProgram: its module refuses the mode
            # switch, and tracing it runs the program's shape guards as Python branches.
            return [dynamo]
        return [dynamo, torchscript]

    def export_impl(self, loaded: Loaded, job: ExportJob) -> ExportResult:
        torch = self.require("torch")
        if not loaded.output_names:
            raise ConversionError("the PyTorch model is exported before its reference run named the outputs (a bug)")
        if job.route.name == torch_export.DYNAMO:
            return routes.export_dynamo(torch, loaded, job)
        return routes.export_torchscript(torch, loaded, job)

    def opset_range(self) -> tuple[int, int]:
        low, high, _ = self._opset_limits()
        return low, high

    def _opset_limits(self) -> tuple[int, int, int]:
        """Lowest and highest opset of torch.onnx, and the TorchScript exporter's highest."""
        self.require("torch")
        try:
            from torch.onnx import _constants as constants

            return (
                int(constants.ONNX_MIN_OPSET),
                int(constants.ONNX_MAX_OPSET),
                int(constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET),
            )
        except (ImportError, AttributeError):  # torch.onnx._constants is private: the range torch 2.13 documents
            return routes.MIN_OPSET, routes.MAX_OPSET, routes.TORCHSCRIPT_MAX_OPSET

    def versions(self) -> dict[str, str]:
        import importlib.metadata as md

        found = {}
        # transformers only once a Hugging Face folder imported it: other models do not use it.
        hf = ("transformers", "tokenizers") if "transformers" in sys.modules else ()
        for package in ("torch", "onnxscript", "safetensors", *hf):
            with contextlib.suppress(md.PackageNotFoundError):
                found[package] = md.version(package)
        return found


# -- helpers --------------------------------------------------------------------------------------


def _describe(model: Any, kind: str) -> str:
    if kind == "program":
        count = sum(t.numel() for t in model.state_dict.values())
        return f"ExportedProgram ({count:,} parameters)"
    name = getattr(model, "original_name", "") if kind == "script" else type(model).__name__
    count = sum(p.numel() for p in model.parameters())
    return f"{name or type(model).__name__} ({count:,} parameters)"


def _cleaned(exc: Exception) -> BaseException:
    """The model's error as one line under its own type.

    TorchScript wraps the error in its own traceback; keep the last line, the error itself
    (the base class names the type when it reports the failure).
    """
    summary = torch_export.summarize(exc, 240)
    kind = torch_export.interpreter_error_type(exc) or type(exc)
    try:
        return kind(summary)
    except Exception:
        return RuntimeError(summary)


def _to_numpy(torch: Any, tensor: Any) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()
