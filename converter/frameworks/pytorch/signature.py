"""What a PyTorch model takes and returns: input names from forward (or a program's signature),
how to call it, and its outputs flattened and named the way both exporters name them. torch is
passed in, never imported here.
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from converter.request import SINGLE_INPUT

if TYPE_CHECKING:
    from converter.request import ConversionRequest


def forward_parameters(model: Any, kind: str) -> tuple[list[tuple[str, bool]], bool]:
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


def input_names(
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


def default_float(torch: Any, model: Any) -> str:
    """Inputs take the dtype of the model's weights (float32 unless it was converted)."""
    for parameter in model.parameters():
        if parameter.is_floating_point():
            name = str(parameter.dtype).removeprefix("torch.")
            return name if name in ("float16", "float32", "float64") else "float32"
    return "float32"


def program_callable(torch: Any, program: Any) -> Any:
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


def keyword_callable(model: Any, names: list[str]) -> Any:
    def call(*tensors: Any) -> Any:
        return model(**dict(zip(names, tensors, strict=True)))

    return call


def flatten_outputs(torch: Any, result: Any) -> list[tuple[str, Any]]:
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
        named.append((clean_name(name), tensor))
    return named


def clean_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:/-]", "_", name) or "output"


def to_tensor(torch: Any, array: np.ndarray) -> Any:
    """A tensor of its own (torch.from_numpy shares memory, and the model may write into its inputs)."""
    return torch.from_numpy(np.ascontiguousarray(array).copy())
