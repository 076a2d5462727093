"""Input specifications and generated validation inputs: the user's overrides applied, inputs sized and made.

Sample data is read by ``converter.samples``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from converter.errors import UserError
from converter.frameworks.base import Dim, TensorSpec
from converter.input_roles import CATEGORIES, InputPlan, generate, padded_like_the_mask, plan_for
from converter.memory import format_bytes, input_budget
from converter.request import SINGLE_INPUT, ConversionRequest
from converter.tensors import dtype_name, shape_text

BATCH = "batch"
# Sizes for dynamic dimensions other than the batch, first and second validation run.
OTHER_DYNAMIC_SIZES = (32, 40)
# --validation-samples auto: 16 rows, fewer when rows are large. onnxruntime's activations grow with
# the batch (swin_tiny: ~55 MB a 224x224 row), and a check should fit where the export itself fits.
DEFAULT_ROWS, MAX_BATCH_ELEMENTS, MIN_ROWS = 16, 1 << 20, 2


def resolve_specs(
    model_specs: list[TensorSpec], request: ConversionRequest, samples: dict[str, np.ndarray] | None
) -> list[TensorSpec]:
    """The model's inputs with the user's shapes, dtypes and sample data applied.

    Every dimension ends up fixed (int) or named (str); --dynamic-batch names axis 0.
    """
    specs = _apply_overrides(model_specs, request)
    sample_batch = len(next(iter(samples.values()))) if samples else None
    resolved = []
    for spec in specs:
        shape = spec.shape
        dtype = spec.dtype
        if samples is not None and spec.name in samples:
            sample = samples[spec.name]
            if shape is None:
                shape = tuple(sample.shape)
            sample_dtype = dtype_name(sample.dtype)
            user_dtype = spec.name in request.input_dtypes or SINGLE_INPUT in request.input_dtypes
            # Samples decide the kind (ids, strings); a float CSV does not turn float32 into float64.
            if not user_dtype and not spec.dtype_known and _kind(sample_dtype) != _kind(dtype):
                dtype = sample_dtype
        if shape is None:
            raise UserError(
                f"the shape of input {spec.name} is unknown",
                f"give --input-shapes, e.g. {spec.name}:1x3x224x224 (a name such as batch makes a dimension dynamic), or --sample-data",
            )
        named: list[Dim] = []
        for axis, dim in enumerate(shape):
            if axis == 0 and request.dynamic_batch:
                named.append(BATCH)
            elif axis == 0 and dim is None:
                named.append(sample_batch or request.validation_samples or DEFAULT_ROWS)
            elif dim is None:
                named.append(f"{spec.name}_dim{axis}")
            else:
                named.append(dim)
        resolved.append(replace(spec, shape=tuple(named), dtype=dtype))
    return resolved


def _apply_overrides(model_specs: list[TensorSpec], request: ConversionRequest) -> list[TensorSpec]:
    by_name = {s.name: s for s in model_specs}
    shapes = dict(request.input_shapes)
    if SINGLE_INPUT in shapes:
        if len(model_specs) != 1:
            names = ", ".join(by_name)
            raise UserError(
                f'--input-shapes "{request.raw.get("input-shapes", "")}" gives one shape but the model has inputs {names}',
                "name each input, e.g. " + ";".join(f"{n}:1x8" for n in by_name),
            )
        shapes = {model_specs[0].name: shapes[SINGLE_INPUT]}
    for option, given in (("input-shapes", shapes), ("input-dtypes", request.input_dtypes)):
        unknown = [n for n in given if n != SINGLE_INPUT and n not in by_name]
        if unknown:
            raise UserError(
                f"--{option}: the model has no input {unknown[0]}",
                f"its inputs are {', '.join(by_name)}",
            )
    specs = []
    for spec in model_specs:
        shape = spec.shape
        if spec.name in shapes:
            given_shape = shapes[spec.name]
            if shape is not None and len(shape) != len(given_shape):
                raise UserError(
                    f"--input-shapes: input {spec.name} has {len(shape)} dimensions ({shape_text(shape)}), not {len(given_shape)}",
                    f"give a shape like {shape_text(shape)}",
                )
            shape = given_shape
        dtype = request.input_dtypes.get(spec.name, request.input_dtypes.get(SINGLE_INPUT, spec.dtype))
        specs.append(replace(spec, shape=shape, dtype=dtype))
    return specs


def _kind(dtype: str) -> str:
    """float, int, bool or string."""
    if dtype == "string":
        return "string"
    if dtype == "bfloat16":
        return "float"
    return {"f": "float", "i": "int", "u": "int", "b": "bool"}.get(np.dtype(dtype).kind, dtype)


def concrete_shape(spec: TensorSpec, batch: int, other_size: int) -> tuple[int, ...]:
    assert spec.shape is not None
    return tuple(d if isinstance(d, int) else (batch if d == BATCH else other_size) for d in spec.shape)


def validation_rows(specs: list[TensorSpec], requested: int | None) -> int:
    """The first validation batch: as requested, or (auto) 16 rows, fewer when one row of the generated
    inputs holds many elements (3x224x224 images: 6 rows), never under 2."""
    if requested is not None:
        return requested
    row = sum(math.prod(concrete_shape(s, 1, OTHER_DYNAMIC_SIZES[0])) for s in specs if s.shape and s.shape[0] == BATCH)
    return max(MIN_ROWS, min(DEFAULT_ROWS, MAX_BATCH_ELEMENTS // max(row, 1)))


def validation_batches(specs: list[TensorSpec], first_batch: int) -> list[tuple[int, int]]:
    """(batch, size of other dynamic axes) of each validation run: a second run when any axis is dynamic."""
    runs = [(first_batch, OTHER_DYNAMIC_SIZES[0])]
    if any(isinstance(d, str) for s in specs for d in (s.shape or ())):
        runs.append((second_batch_size(first_batch), OTHER_DYNAMIC_SIZES[1]))
    return runs


def check_generated_size(specs: list[TensorSpec], first_batch: int) -> None:
    """Refuse (exit 2) generated inputs that would not fit in memory, before allocating any.

    Counted: the arrays of both validation runs as they are kept; generating a float input
    also holds a float64 draw of it for a moment, and the runs on them need more again.
    """
    runs = validation_batches(specs, first_batch)
    sizes = [(spec, batch, other, _array_bytes(spec, batch, other)) for batch, other in runs for spec in specs]
    total = sum(size for *_, size in sizes)
    budget = input_budget()
    if total <= budget.limit:
        return
    spec, batch, other, _ = max(sizes, key=lambda item: item[3])
    raise UserError(
        f"the generated validation inputs would take {format_bytes(total)} "
        f"(input {spec.name} alone is {shape_text(concrete_shape(spec, batch, other))} {spec.dtype} "
        f"at batch {batch}); validation inputs may take {budget.reason}",
        "lower --validation-samples or the sizes in --input-shapes",
    )


def _array_bytes(spec: TensorSpec, batch: int, other_size: int) -> int:
    # Python ints: a product of user-given sizes must not wrap around as an int64 would.
    elements = math.prod(concrete_shape(spec, batch, other_size))
    itemsize = 8 if spec.dtype == "string" else np.dtype(numpy_dtype(spec.dtype)).itemsize  # strings: pointers
    return elements * itemsize


def generate_inputs(
    specs: list[TensorSpec], batch: int, seed: int, other_size: int = OTHER_DYNAMIC_SIZES[0]
) -> dict[str, np.ndarray]:
    """Random inputs of the right shape and dtype, in a range the model accepts (input_roles.py)."""
    rng = np.random.default_rng(seed)
    inputs, plans = {}, {}
    for spec in specs:
        plan = plans[spec.name] = plan_for(spec)
        if plan.role == CATEGORIES and not spec.categories:
            raise UserError(
                f"input {spec.name} takes strings, which cannot be generated",
                "give real inputs with --sample-data (a .csv with a header row naming the columns)",
            )
        inputs[spec.name] = generate(plan, spec, concrete_shape(spec, batch, other_size), rng)
    return padded_like_the_mask(inputs, specs, plans)


def input_plans(specs: list[TensorSpec]) -> list[InputPlan]:
    """How each generated input is made, for the report."""
    return [plan_for(spec) for spec in specs]


def numpy_dtype(dtype: str) -> str:
    """The numpy dtype that holds an input of ``dtype``: numpy has no bfloat16, so float32 (the backend casts)."""
    return "float32" if dtype == "bfloat16" else dtype


def resize_batch(inputs: dict[str, np.ndarray], specs: list[TensorSpec], batch: int) -> dict[str, np.ndarray]:
    """The same rows, cut or repeated to ``batch`` rows, for inputs whose axis 0 is the batch."""
    resized = {}
    for spec in specs:
        array = inputs[spec.name]
        if spec.shape and spec.shape[0] == BATCH:
            rows = np.arange(batch) % array.shape[0]
            resized[spec.name] = array[rows]
        else:
            resized[spec.name] = array
    return resized


def second_batch_size(first: int) -> int:
    """A batch size different from the first and from 1."""
    half = first // 2
    return half if half >= 2 else first + 1


def second_run_inputs(
    specs: list[TensorSpec], first: dict[str, np.ndarray], request: ConversionRequest, from_samples: bool
) -> dict[str, np.ndarray] | None:
    """Inputs at a second batch size (and second size of other dynamic axes), if any axis is dynamic:
    the sample rows cut or repeated, or generated with the next seed."""
    runs = validation_batches(specs, next(iter(first.values())).shape[0])
    if len(runs) == 1:
        return None
    batch, other_size = runs[1]
    if from_samples:
        return resize_batch(first, specs, batch)
    return generate_inputs(specs, batch, request.seed + 1, other_size)
