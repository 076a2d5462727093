"""--sample-data: real inputs read from .npy, .npz or .csv, sized before they are read.

A sample file comes from the repository like the model, so it is bounded first: a .npy is
mapped and its header's shape checked before a byte of data is copied, an .npz's members
are bounded as a zip (``check_archive_bounds``) and their headers read before the arrays,
and a .csv is bounded by its size on disk.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from converter.archives import check_archive_bounds
from converter.errors import UserError, shorten
from converter.frameworks.base import TensorSpec
from converter.input_roles import MISSING_STRING
from converter.inputs import numpy_dtype
from converter.memory import Budget, format_bytes, input_budget
from converter.request import ascii_float
from converter.tensors import shape_text

# Read into Python strings first, a CSV takes many times its size on disk (measured with
# tracemalloc on 200,000 rows of 4 columns: 17x for 6-digit floats, 48x for 1-digit integers).
CSV_EXPANSION = 50
CSV_SPECIAL = {"nan", "+nan", "-nan", "inf", "+inf", "-inf"}
NUMERIC_KINDS = "biuf"  # bool, int, uint, float; the others (complex, dates, records) are refused
STRING_KINDS = "OUS"


def load_sample_data(path: Path, model_specs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """Arrays keyed by input name from .npy, .npz or .csv; each with at least one row, all with as many."""
    suffix = path.suffix.lower()
    budget = input_budget()
    try:
        if suffix == ".npy":
            arrays = _load_npy(path, model_specs, budget)
        elif suffix == ".npz":
            arrays = _load_npz(path, model_specs, budget)
        elif suffix == ".csv":
            arrays = _load_csv(path, model_specs, budget)
        else:
            raise UserError(f'--sample-data "{path.name}": unknown file type', "use .npy, .npz or .csv")
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(
            f"--sample-data {path.name} could not be read ({shorten(exc, 200)})",
            "write it again with numpy.save or numpy.savez, or as a UTF-8 .csv",
        ) from None
    _check_rows(path, arrays)
    return arrays


def _load_npy(path: Path, model_specs: list[TensorSpec], budget: Budget) -> dict[str, np.ndarray]:
    names = [s.name for s in model_specs]
    if len(names) != 1:
        raise UserError(
            f"--sample-data {path.name}: a .npy holds one array but the model has inputs {', '.join(names)}",
            "use a .npz with one array per input, named after the inputs",
        )
    # Mapped, not read: the header's shape is checked against the budget (and the file's
    # size by the mapping) before the data is copied into memory.
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    _check_size(path, {names[0]: (mapped.shape, mapped.dtype)}, budget)
    return {names[0]: np.array(mapped)}


def _load_npz(path: Path, model_specs: list[TensorSpec], budget: Budget) -> dict[str, np.ndarray]:
    try:
        check_archive_bounds(path, "--sample-data")
    except UserError as exc:  # its fix speaks of models
        raise UserError(exc.message, "give fewer rows, saved with numpy.savez") from None
    with np.load(path, allow_pickle=False) as archive:
        _check_size(path, {key: _npz_header(archive.zip, key) for key in archive.files}, budget)
        arrays = {key: archive[key] for key in archive.files}
    names = [s.name for s in model_specs]
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


def _npz_header(archive: zipfile.ZipFile, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype a member's .npy header declares, read without its data."""
    with archive.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        # Version 3.0 differs from 2.0 only in a UTF-8 header (non-Latin-1 field names).
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(member)
    return shape, dtype


def _check_size(path: Path, headers: dict[str, tuple[tuple[int, ...], np.dtype]], budget: Budget) -> None:
    total = sum(int(np.prod(shape, dtype=object)) * dtype.itemsize for shape, dtype in headers.values())
    if total > budget.limit:
        arrays = ", ".join(f"{name} {shape_text(shape)} {dtype}" for name, (shape, dtype) in headers.items())
        raise UserError(
            f"--sample-data {path.name}: its arrays ({arrays}) would take {format_bytes(total)}; "
            f"validation inputs may take {budget.reason}",
            "give fewer rows: a few hundred validate a model as well as millions",
        )


def _load_csv(path: Path, model_specs: list[TensorSpec], budget: Budget) -> dict[str, np.ndarray]:
    size = path.stat().st_size
    if size * CSV_EXPANSION > budget.limit:
        raise UserError(
            f"--sample-data {path.name} is {format_bytes(size)}, and a CSV is read as Python strings of up to "
            f"{CSV_EXPANSION}x its size; validation inputs may take {budget.reason}",
            "give fewer rows, or the same data as a .npy or .npz",
        )
    frame = _read_frame(path, model_specs)
    names = [s.name for s in model_specs]
    if len(model_specs) == 1 and (not _has_header(frame) or _column(frame, names[0]) is None):
        return {names[0]: _one_table(path, model_specs[0], frame)}
    if not _has_header(frame):
        raise UserError(
            f"--sample-data {path.name} has no header row but the model has inputs {', '.join(names)}",
            "add a header row naming the columns",
        )
    arrays = {}
    for name in names:
        column = _column(frame, name)
        if column is None:
            raise UserError(
                f"--sample-data {path.name} has no column {name!r} (columns: {', '.join(map(repr, frame.columns))})",
                f"add a column for each model input: {', '.join(map(repr, names))}",
            )
        arrays[name] = frame[column].to_numpy().reshape(-1, 1)
    return arrays


def _read_frame(path: Path, model_specs: list[TensorSpec]) -> Any:
    """The CSV as pandas reads it (what users wrote it with, ``df.to_csv(index=False)``): empty,
    NaN and nan cells are missing, True/False are booleans, numbers are float64 or int64.

    A header is a first row that names an input or is not all numbers (a row of input names is
    the header even when the names read as numbers, columns "1", "2"); without one, the columns
    are numbered.
    """
    import pandas

    try:
        first = pandas.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    except pandas.errors.EmptyDataError:
        raise UserError(f"--sample-data {path.name} is empty", "give at least one row of inputs") from None
    cells = [str(cell) for cell in first.iloc[0]]
    names_input = any(_index(cells, spec.name) is not None for spec in model_specs)
    header = 0 if names_input or not all(map(_is_number, cells)) else None
    try:
        frame = pandas.read_csv(path, header=header, engine="c", low_memory=False)
    except pandas.errors.ParserError as exc:
        raise UserError(
            f"--sample-data {path.name}: {shorten(exc, 200)}", "give a rectangular table with a header row"
        ) from None
    if frame.empty:
        raise UserError(f"--sample-data {path.name} has no data rows", "give at least one row of inputs")
    return frame


def _has_header(frame: Any) -> bool:
    return all(isinstance(c, str) for c in frame.columns)


def _column(frame: Any, name: str) -> Any:
    """The frame's column for input ``name``, or None."""
    index = _index([str(c) for c in frame.columns], name) if _has_header(frame) else None
    return None if index is None else frame.columns[index]


def _index(header: list[str], name: str) -> int | None:
    """Where column ``name`` is in ``header``: as written (a column name may hold spaces, commas in
    quotes, newlines), else with the spaces around cells ignored (``a, b``); None if absent."""
    for cells in (header, [cell.strip() for cell in header]):
        if name in cells:
            return cells.index(name)
    return None


def _one_table(path: Path, spec: TensorSpec, frame: Any) -> np.ndarray:
    """The rows of a one-input model: its columns by name when the header names the features the model
    was fitted with (``feature_names_in_``), else every column in order; numbers at float64."""
    columns = [_column(frame, name) for name in spec.columns]
    if spec.columns and all(c is not None for c in columns):
        frame = frame[columns]
    if spec.dtype == "string":
        return frame.to_numpy(dtype=object)
    if any(frame[c].dtype.kind not in NUMERIC_KINDS for c in frame.columns):
        raise UserError(
            f"--sample-data {path.name}: non-numeric values for the single numeric input {spec.name}",
            "give numbers only, or a header that names the model's input columns",
        )
    return frame.to_numpy(dtype=np.float64)  # bool as 0/1, missing as NaN


def _number(text: str) -> float | None:
    """A CSV cell as a number: ASCII digits, or nan/inf (missing values, on purpose); else None."""
    value = ascii_float(text)
    if value is None and text.strip().lower() in CSV_SPECIAL:
        return float(text)
    return value


def _is_number(text: str) -> bool:
    return _number(text) is not None


def _check_rows(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Every array has a first axis (the batch) with at least one row, and all have as many."""
    for name, array in arrays.items():
        if array.ndim == 0 or array.shape[0] == 0:
            raise UserError(
                f"--sample-data {path.name}: array {name} has shape {shape_text(array.shape)}, no rows to validate with",
                "give at least one row (the first axis is the batch)",
            )
    rows = {name: array.shape[0] for name, array in arrays.items()}
    if len(set(rows.values())) > 1:
        counts = ", ".join(f"{name} {count}" for name, count in rows.items())
        raise UserError(
            f"--sample-data {path.name}: the arrays have different numbers of rows ({counts})",
            "give every input the same rows (the first axis is the batch)",
        )


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
                f"--sample-data: input {spec.name} has shape {shape_text(array.shape)} but the model expects {shape_text(spec.shape)}",
                "give arrays whose shape fits the model (the first axis is the batch)",
            )
        if fixed and fixed[0][0] == 0 and array.shape[0] != fixed[0][1]:
            raise UserError(
                f"--sample-data: input {spec.name} has {array.shape[0]:,} rows but its batch axis is fixed at {fixed[0][1]}",
                f"give {fixed[0][1]} {'row' if fixed[0][1] == 1 else 'rows'}, or pass --dynamic-batch true",
            )
        if spec.dtype == "string":
            fitted[spec.name] = serving_strings(array)
        elif array.dtype.kind == "O" and (numbers := _object_numbers(array)) is not None:
            fitted[spec.name] = numbers.astype(numpy_dtype(spec.dtype))
        elif array.dtype.kind in STRING_KINDS:
            raise UserError(
                f"--sample-data: input {spec.name} holds strings but the model expects {spec.dtype}",
                "give numeric values for this input",
            )
        elif array.dtype.kind not in NUMERIC_KINDS:
            raise UserError(
                f"--sample-data: input {spec.name} holds {array.dtype} values but the model expects {spec.dtype}",
                "give real numbers (int, float or bool) for this input",
            )
        else:
            fitted[spec.name] = array.astype(numpy_dtype(spec.dtype))
    return fitted


def is_missing(value: object) -> bool:
    """None or a float NaN: a missing cell as pandas holds it in an object column."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def serving_strings(array: np.ndarray) -> np.ndarray:
    """Strings as a serving client feeds them to the file: a missing value as MISSING_STRING."""
    flat = [MISSING_STRING if is_missing(v) else str(v) for v in array.ravel().tolist()]
    return np.array(flat, dtype=object).reshape(array.shape)


def _object_numbers(array: np.ndarray) -> np.ndarray | None:
    """An object column of numbers, booleans and missing cells (a bool column with a gap) as float64."""
    values = array.ravel().tolist()
    if not all(is_missing(v) or isinstance(v, bool | int | float) for v in values):
        return None
    return np.array([math.nan if is_missing(v) else float(v) for v in values], dtype=np.float64).reshape(array.shape)
