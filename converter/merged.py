"""A per-model JSON report read back for the index of a fan-out run: untrusted, so checked.

``merge`` (the CLI's and the action's) reads reports that other jobs wrote, jobs that converted
models from the repository: a report may be damaged, huge, or crafted. Whatever it holds, it
becomes an index row, and a report that is not one this tool wrote becomes that model's error
row, never a traceback or a number the index cannot print.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path

from converter.batch import IndexRow
from converter.errors import describe
from converter.report import Report

MAX_REPORT_BYTES = 32 * 1024**2  # a report of 10,000 outputs at two batch sizes is about 10 MiB
_TEXT_FIELDS = ("name", "model", "status", "framework", "format", "error", "report")


def read_row(name: str, path: Path, model: str = "") -> IndexRow:
    """The index row of model ``name`` from its report at ``path``, or an error row saying what is wrong
    (with ``model``, the model's path as the manifest gives it, when known)."""
    try:
        size = path.stat().st_size
        if size > MAX_REPORT_BYTES:
            return _error_row(
                name, model, f"{path.name} is {size:,} bytes, more than a report takes ({MAX_REPORT_BYTES:,})"
            )
        row = IndexRow.from_report(name, Report.from_json(path.read_text(encoding="utf-8")))
        checked(row)
    except OSError as exc:
        return _error_row(name, model, f"{path.name} cannot be read ({describe(exc, 120)})")
    # JSON that is not a report: wrong types, missing fields, nesting deeper than Python recurses
    except (ValueError, TypeError, LookupError, AttributeError, RecursionError, ArithmeticError) as exc:
        return _error_row(name, model, f"{path.name} is not a report this tool wrote ({describe(exc, 120)})")
    row.report = str(path)
    return row


def checked(row: IndexRow) -> IndexRow:
    """``row`` with every value of the type the index prints, numbers as floats; else ValueError."""
    for field in _TEXT_FIELDS:
        if not isinstance(getattr(row, field), str):
            raise ValueError(f"{field} is not text")
    if not isinstance(row.passed, bool):
        raise ValueError("passed is not true or false")
    for field in ("opset", "onnx_bytes"):
        value = getattr(row, field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63):
            raise ValueError(f"{field} is not a count")
    if row.max_abs_diff is not None:
        row.max_abs_diff = _real("max abs diff", row.max_abs_diff)
    row.seconds = _real("time", row.seconds)
    if not math.isfinite(row.seconds) or row.seconds < 0:
        raise ValueError("time is not a duration")
    return row


def _real(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} is not a number")
    return float(value)  # OverflowError for an int past float's range


def _error_row(name: str, model: str, why: str) -> IndexRow:
    return IndexRow(name=name, model=model, passed=False, status="error", error=why)
