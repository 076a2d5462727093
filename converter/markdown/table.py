"""The one builder of GitHub-flavoured markdown tables (the reports, the index, the plan summary,
the baseline and variants sections).

Cells are markdown already made safe (``converter.escape``: ``markdown_text``, ``markdown_code``);
``table_cell`` escapes the pipes a code span may still hold.
"""

from __future__ import annotations

from collections.abc import Sequence

from converter.escape import table_cell


def table_head(header: Sequence[str], align: str = "") -> list[str]:
    """The header row and the delimiter row; ``align`` is the delimiter row without the outer pipes
    (``---:`` right-aligns a column of numbers)."""
    return ["| " + " | ".join(header) + " |", "|" + (align or "|".join("---" for _ in header)) + "|"]


def table_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(table_cell(cell) for cell in cells) + " |"


def table(
    header: Sequence[str], rows: Sequence[Sequence[str]], limit: int | None = None, what: str = "rows", align: str = ""
) -> list[str]:
    """The table's lines; past ``limit`` rows, a line that says how many more ``what`` the JSON report has."""
    shown = rows if limit is None else rows[:limit]
    lines = table_head(header, align) + [table_row(row) for row in shown]
    if len(rows) > len(shown):
        lines.append(f"\n_{len(rows) - len(shown)} more {what} not shown; see the JSON report._")
    return lines
