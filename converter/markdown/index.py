"""The index of many models in markdown: failures first, each with its tolerance and how far over,
then a folded block per failed model with its verdict. It fits a byte limit (GitHub's job summary):
rows first (failures before passes), then the folded verdicts that still fit."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from converter.escape import markdown_code, markdown_text, one_line
from converter.markdown.numbers import NBSP, ceil_sig, sig, size, times, unbroken
from converter.markdown.table import table_head, table_row

if TYPE_CHECKING:
    from converter.batch import IndexRow

MAX_ERROR_CHARS = 300  # of an error in a folded verdict; the model's own report has all of it
MAX_CELL_CHARS = 90  # of an error in the table, which stays narrow
CUT_NOTE_BYTES = 512  # room kept for the note that says how many rows were cut
HEADER = table_head(
    ["Model", "Result", "Max \\|diff\\|", "Tolerance", "Over by", "ONNX file", "Time"], "---|---|---:|---|---:|---|---:"
)


def render_index(rows: list[IndexRow], limit: int) -> str:
    failed = [r for r in rows if not r.passed]
    ordered = failed + [r for r in rows if r.passed]
    head = [_headline(rows, failed), ""]
    worst = _worst(failed)
    if worst is not None:
        head += [_verdict(worst), ""]
    head += HEADER
    budget = limit - len("\n".join(head).encode()) - CUT_NOTE_BYTES
    shown = _fitting([index_row(r) for r in ordered], budget)
    lines = head + shown
    cut = len(rows) - len(shown)
    if cut:
        cut_failed = max(0, len(failed) - len(shown))
        lines += [
            "",
            f"_{cut:,} of {len(rows):,} models not shown ({cut_failed:,} failed, {cut - cut_failed:,} passed), "
            "to keep this under GitHub's job summary limit; failures are listed first, and index.json has every "
            "model._",
        ]
    text = "\n".join(lines) + "\n"
    room = limit - len(text.encode())
    folded = _fitting([_folded_verdict(r) for r in failed[: len(shown)]], room - 1)
    return text + ("\n" + "\n".join(folded) if folded else "")


def _headline(rows: list[IndexRow], failed: list[IndexRow]) -> str:
    if not failed:
        return f"## ✅ {len(rows)} models converted and validated"
    return f"## ❌ {len(failed)} of {len(rows)} models failed"


def _worst(failed: list[IndexRow]) -> IndexRow | None:
    """The failed model furthest over its tolerance (an unbounded one first), else the first failure."""
    over = [r for r in failed if r.worst_output and r.tolerance_applies]
    if over:
        return max(over, key=lambda r: float("inf") if r.over_by is None else r.over_by)
    return failed[0] if failed else None


def _verdict(row: IndexRow) -> str:
    """One failed model's verdict: its worst output's |diff|, the value allowed there and how far over."""
    name = markdown_code(row.name)
    if not (row.worst_output and row.tolerance_applies) or row.passed:
        return f"❌ {name}: {markdown_text(row.status)}: {markdown_text(_cut(row.error) or 'validation failed')}"
    text = (
        f"❌ {name}: **worst output** {markdown_code(row.worst_output)}: \\|diff\\| **{sig(row.worst_diff)}** "
        f"where **{sig(row.worst_allowed)}** was allowed (atol {row.atol:g}, rtol {row.rtol:g}): "
        f"**over by {times(row.over_by)}**"
    )
    options = []
    if row.passing_atol is not None:
        options.append(f"atol {ceil_sig(row.passing_atol)}")
    if row.passing_rtol is not None:
        options.append(f"rtol {ceil_sig(row.passing_rtol)}")
    return text + (f"; it would pass with {' or '.join(options)}" if options else "")


def index_row(row: IndexRow) -> str:
    """One model's row of the index table; every value escaped (names come from the repository)."""
    result = "✅ pass" if row.passed else f"❌ {markdown_text(row.status)}"
    if not row.passed and row.error:
        result += f": {markdown_text(_cut(row.error, MAX_CELL_CHARS))}"
    tolerance = "—"
    if row.atol is not None and row.rtol is not None:
        tolerance = unbroken(f"atol {row.atol:g}, rtol {row.rtol:g}").replace(" ", NBSP).replace(",\u00a0", ", ")
    over = times(row.over_by) if not row.passed and row.worst_output and row.tolerance_applies else "—"
    onnx = "—"
    if row.onnx_bytes is not None:
        onnx = f"{size(row.onnx_bytes)}, opset {row.opset}" if row.opset is not None else size(row.onnx_bytes)
    model = markdown_code(row.name) + (f" ({markdown_text(row.framework)})" if row.framework else "")
    cells = [
        model,
        result,
        unbroken(sig(row.max_abs_diff)),
        tolerance,
        unbroken(over),
        onnx,
        f"{row.seconds:.1f} s",
    ]
    return table_row(cells)


def _folded_verdict(row: IndexRow) -> str:
    title = html.escape(one_line(f"❌ {row.name}: {row.status}"), quote=False)
    return f"<details><summary>{title}</summary>\n\n{_verdict(row)}\n\n</details>\n"


def _cut(error: str, limit: int = MAX_ERROR_CHARS) -> str:
    return error if len(error) <= limit else error[: limit - 1] + "…"


def _fitting(lines: list[str], budget: int) -> list[str]:
    """The first of ``lines`` that fit in ``budget`` bytes, a newline after each."""
    kept, used = [], 0
    for line in lines:
        used += len(line.encode()) + 1
        if used > budget:
            break
        kept.append(line)
    return kept
