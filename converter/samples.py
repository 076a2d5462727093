"""--sample-data: real inputs read from .npy, .npz or .csv, sized before they are read.

A sample file comes from the repository like the model, so it is bounded first: a .npy is
mapped and its header's shape checked before a byte of data is copied, an .npz's members
are bounded as a zip (``check_archive_bounds``) and their headers read before the arrays,
and a .csv is bounded by its size on disk.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from converter.archives import check_archive_bounds
from converter.errors import UserError, shorten
from converter.frameworks.base import TensorSpec
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
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        try:
            rows = [row for row in reader if row]
        except csv.Error as exc:  # a field over csv.field_size_limit() (128 KiB), a NUL byte
            raise UserError(
                f"--sample-data {path.name}, line {reader.line_num}: {exc}",
                "give a CSV of plain values, or the data as a .npy or .npz",
            ) from None
    if not rows:
        raise UserError(f"--sample-data {path.name} is empty", "give at least one row of inputs")
    header: list[str] | None = None
    # A row of input names is the header even when the names read as numbers (columns "1", "2")
    if any(_column_index(rows[0], s.name) is not None for s in model_specs) or not all(map(_is_number, rows[0])):
        header, rows = rows[0], rows[1:]
    width = len(header) if header else len(rows[0])
    if not rows or any(len(r) != width for r in rows):
        raise UserError(
            f"--sample-data {path.name}: rows of different lengths or no data rows", "give a rectangular table"
        )
    if len(model_specs) == 1 and (header is None or _column_index(header, model_specs[0].name) is None):
        return {model_specs[0].name: _numeric_table(path, model_specs[0], rows)}
    if header is None:
        raise UserError(
            f"--sample-data {path.name} has no header row but the model has inputs {', '.join(s.name for s in model_specs)}",
            "add a header row naming the columns",
        )
    return _columns(path, model_specs, header, rows)


def _numeric_table(path: Path, spec: TensorSpec, rows: list[list[str]]) -> np.ndarray:
    numbers = [[_number(c) for c in row] for row in rows]
    if any(n is None for row in numbers for n in row):
        raise UserError(
            f"--sample-data {path.name}: non-numeric values for the single numeric input {spec.name}",
            "give numbers only, or a header that names the model's input columns",
        )
    return np.array(numbers, dtype=np.float64)


def _columns(path: Path, model_specs: list[TensorSpec], header: list[str], rows: list[list[str]]) -> dict:
    columns = list(zip(*rows, strict=True))
    arrays = {}
    for spec in model_specs:
        index = _column_index(header, spec.name)
        if index is None:
            raise UserError(
                f"--sample-data {path.name} has no column {spec.name!r} (columns: {', '.join(map(repr, header))})",
                f"add a column for each model input: {', '.join(repr(s.name) for s in model_specs)}",
            )
        values = columns[index]
        if all(_is_number(v) for v in values):
            arrays[spec.name] = np.array([_number(v) for v in values], dtype=np.float64).reshape(-1, 1)
        else:
            arrays[spec.name] = np.array(values, dtype=object).reshape(-1, 1)
    return arrays


def _column_index(header: list[str], name: str) -> int | None:
    """Where column ``name`` is in ``header``: as written (a column name may hold spaces, commas in
    quotes, newlines), else with the spaces around cells ignored (``a, b``); None if absent."""
    for cells in (header, [cell.strip() for cell in header]):
        if name in cells:
            return cells.index(name)
    return None


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
            fitted[spec.name] = array.astype(str).astype(object)
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
