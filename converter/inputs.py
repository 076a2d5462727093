"""Input specifications and validation inputs: the user's overrides, sample data, generated data."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np

from converter.errors import UserError
from converter.frameworks.base import Dim, TensorSpec
from converter.request import SINGLE_INPUT, ConversionRequest

BATCH = "batch"
# Sizes for dynamic dimensions other than the batch, first and second validation run.
OTHER_DYNAMIC_SIZES = (32, 40)


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
            sample_dtype = _dtype_name(sample.dtype)
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
                named.append(sample_batch or request.validation_samples)
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
                    f"--input-shapes: input {spec.name} has {len(shape)} dimensions ({format_shape(shape)}), not {len(given_shape)}",
                    f"give a shape like {format_shape(shape)}",
                )
            shape = given_shape
        dtype = request.input_dtypes.get(spec.name, request.input_dtypes.get(SINGLE_INPUT, spec.dtype))
        specs.append(replace(spec, shape=shape, dtype=dtype))
    return specs


def format_shape(shape: tuple[Dim, ...] | list[Dim] | None) -> str:
    if shape is None:
        return "?"
    if not shape:
        return "scalar"
    return "x".join("?" if d is None else str(d) for d in shape)


def _kind(dtype: str) -> str:
    """float, int, bool or string."""
    if dtype == "string":
        return "string"
    if dtype == "bfloat16":
        return "float"
    return {"f": "float", "i": "int", "u": "int", "b": "bool"}.get(np.dtype(dtype).kind, dtype)


def _dtype_name(dtype: np.dtype) -> str:
    if dtype.kind in "OUS":
        return "string"
    return np.dtype(dtype).name


def concrete_shape(spec: TensorSpec, batch: int, other_size: int) -> tuple[int, ...]:
    assert spec.shape is not None
    return tuple(d if isinstance(d, int) else (batch if d == BATCH else other_size) for d in spec.shape)


def generate_inputs(
    specs: list[TensorSpec], batch: int, seed: int, other_size: int = OTHER_DYNAMIC_SIZES[0]
) -> dict[str, np.ndarray]:
    """Random inputs of the right shape and dtype, in a range the model accepts."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for spec in specs:
        shape = concrete_shape(spec, batch, other_size)
        if spec.dtype == "string":
            if not spec.categories:
                raise UserError(
                    f"input {spec.name} takes strings, which cannot be generated",
                    "give real inputs with --sample-data (a .csv with a header row naming the columns)",
                )
            inputs[spec.name] = rng.choice(np.array(spec.categories, dtype=object), size=shape)
        elif spec.dtype == "bool":
            inputs[spec.name] = rng.random(shape) < 0.5
        elif np.issubdtype(np.dtype(spec.dtype), np.integer):
            high = spec.high if spec.high is not None else 100
            inputs[spec.name] = rng.integers(spec.low, high, size=shape).astype(spec.dtype)
        else:
            inputs[spec.name] = rng.standard_normal(shape).astype(_numpy_float(spec.dtype))
    return inputs


def _numpy_float(dtype: str) -> str:
    # numpy has no bfloat16; generate float32 and let the backend cast.
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


# -- sample data ------------------------------------------------------------------------------


def load_sample_data(path: Path, model_specs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """Arrays keyed by input name from .npy, .npz or .csv."""
    suffix = path.suffix.lower()
    names = [s.name for s in model_specs]
    try:
        if suffix == ".npy":
            if len(names) != 1:
                raise UserError(
                    f"--sample-data {path.name}: a .npy holds one array but the model has inputs {', '.join(names)}",
                    "use a .npz with one array per input, named after the inputs",
                )
            return {names[0]: np.load(path, allow_pickle=False)}
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in archive.files}
            if len(names) == 1 and len(arrays) == 1:
                return {names[0]: next(iter(arrays.values()))}
            missing = [n for n in names if n not in arrays]
            extra = [k for k in arrays if k not in names]
            if missing or extra:
                raise UserError(
                    f"--sample-data {path.name}: arrays {', '.join(arrays) or '(none)'} do not match the model inputs {', '.join(names)}",
                    "name each array in the .npz after an input",
                )
            return arrays
        if suffix == ".csv":
            return _load_csv(path, model_specs)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"--sample-data {path.name} could not be read ({exc})", "give a .npy, .npz or .csv file"
        ) from None
    raise UserError(f'--sample-data "{path.name}": unknown file type', "use .npy, .npz or .csv")


def _load_csv(path: Path, model_specs: list[TensorSpec]) -> dict[str, np.ndarray]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if not rows:
        raise UserError(f"--sample-data {path.name} is empty", "give at least one row of inputs")
    header: list[str] | None = None
    if not all(_is_number(cell) for cell in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    width = len(header) if header else len(rows[0])
    if not rows or any(len(r) != width for r in rows):
        raise UserError(
            f"--sample-data {path.name}: rows of different lengths or no data rows", "give a rectangular table"
        )
    columns = list(zip(*rows, strict=True))
    if len(model_specs) == 1 and (header is None or model_specs[0].name not in header):
        spec = model_specs[0]
        try:
            table = np.array([[float(c) for c in row] for row in rows])
        except ValueError:
            raise UserError(
                f"--sample-data {path.name}: non-numeric values for the single numeric input {spec.name}",
                "give numbers only, or a header that names the model's input columns",
            ) from None
        return {spec.name: table}
    if header is None:
        raise UserError(
            f"--sample-data {path.name} has no header row but the model has inputs {', '.join(s.name for s in model_specs)}",
            "add a header row naming the columns",
        )
    arrays = {}
    for spec in model_specs:
        if spec.name not in header:
            raise UserError(
                f"--sample-data {path.name} has no column {spec.name} (columns: {', '.join(header)})",
                f"add a column for each model input: {', '.join(s.name for s in model_specs)}",
            )
        values = columns[header.index(spec.name)]
        if all(_is_number(v) for v in values):
            arrays[spec.name] = np.array([float(v) for v in values]).reshape(-1, 1)
        else:
            arrays[spec.name] = np.array(values, dtype=object).reshape(-1, 1)
    return arrays


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_samples_fit(samples: dict[str, np.ndarray], specs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """Sample arrays cast to the input dtypes; shapes checked against the fixed dimensions."""
    fitted = {}
    for spec in specs:
        array = samples[spec.name]
        assert spec.shape is not None
        fixed = [(axis, d) for axis, d in enumerate(spec.shape) if isinstance(d, int)]
        bad_rank = array.ndim != len(spec.shape)
        if bad_rank or any(array.shape[axis] != d for axis, d in fixed if axis > 0):
            raise UserError(
                f"--sample-data: input {spec.name} has shape {format_shape(array.shape)} but the model expects {format_shape(spec.shape)}",
                "give arrays whose shape fits the model (the first axis is the batch)",
            )
        if spec.dtype == "string":
            fitted[spec.name] = array.astype(str).astype(object)
        elif array.dtype.kind in "OUS":
            raise UserError(
                f"--sample-data: input {spec.name} holds strings but the model expects {spec.dtype}",
                "give numeric values for this input",
            )
        else:
            fitted[spec.name] = array.astype(_numpy_float(spec.dtype))
    return fitted
