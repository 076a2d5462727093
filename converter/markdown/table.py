"""A GFM table with a row limit: what every section of the reports draws its tables with."""

from __future__ import annotations

from converter.escape import table_cell


def table(header: list[str], rows: list[list[str]], limit: int, what: str, align: str = "") -> list[str]:
    """A GFM table of at most ``limit`` rows; ``align`` is its delimiter row without the outer pipes
    (``---:`` right-aligns a column of numbers)."""
    lines = ["| " + " | ".join(header) + " |", "|" + (align or "|".join("---" for _ in header)) + "|"]
    lines += ["| " + " | ".join(table_cell(c) for c in row) + " |" for row in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"\n_{len(rows) - limit} more {what} not shown; see the JSON report._")
    return lines
