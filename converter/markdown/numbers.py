"""Numbers as a person reads them: 3 significant digits, sizes in KB/MB, and a small bar chart."""

from __future__ import annotations

import math

BARS = "▁▂▃▄▅▆▇█"  # eight heights; an empty decade is EMPTY
EMPTY = "·"
MAX_DECADES = 8
NBSP = "\u00a0"
NB_HYPHEN = "\u2011"


def sig(value: float | None, digits: int = 3) -> str:
    """``value`` at ``digits`` significant digits ("3.98e-07", "0.0123", "12.3"); "—" for None."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    if math.isinf(value) or abs(value) >= 1.7e308:  # JSON stores an unbounded difference as the largest float
        return "∞"
    if abs(value) < 1e-3 or abs(value) >= 1e6:  # 1.24e-04, not 0.000124: the exponent reads at a glance
        return f"{value:.{digits - 1}e}"
    text = f"{value:#.{digits}g}"  # '#' keeps trailing zeros: 0.0500, so a column's digits line up
    mantissa, _, exponent = text.partition("e")
    mantissa = mantissa.rstrip(".")
    return f"{mantissa}e{exponent}" if exponent else mantissa


def ceil_sig(value: float, digits: int = 2) -> str:
    """``value`` rounded up at ``digits`` significant digits: a tolerance shown this way still passes."""
    if value <= 0:
        return "0"
    exponent = math.floor(math.log10(value)) - digits + 1
    scaled = value / 10.0**exponent
    # A value already at ``digits`` digits stays (the division leaves it a hair off the integer).
    whole = round(scaled) if abs(scaled - round(scaled)) < 1e-9 * scaled else math.ceil(scaled)
    rounded = whole * 10.0**exponent
    return f"{rounded:.{digits - 1}e}" if rounded < 1e-3 else f"{rounded:.{digits}g}"


def times(ratio: float | None) -> str:
    """A factor: "3.98×"; None is an unbounded one (a difference where nothing was allowed)."""
    return "∞×" if ratio is None else f"{sig(ratio)}×"


def size(count: int) -> str:
    """Bytes in B, KB, MB or GB (1024-based, as GitHub shows artifact sizes)."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{count:,} B" if unit == "B" else f"{sig(value)} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a percentage, never rounded to 0% or 100% when it is not."""
    if whole == 0 or part == 0:
        return "0%"
    if part == whole:
        return "100%"
    share = 100 * part / whole
    return f"{min(max(share, 0.1), 99.9):.3g}%" if share < 1 or share > 99 else f"{share:.3g}%"


def decade_bars(decades: dict[str, int]) -> str:
    """Elements per decade of |diff| as a one-line bar chart: "1e-09 ▁▃█ 1e-07", with the equal
    and unbounded elements counted beside it. At most MAX_DECADES bars: lower decades join the first
    ("≤1e-15"). Spaces are no-break spaces, so that the chart stays on one line in a table cell."""
    counts = {label: n for label, n in decades.items() if label not in ("0", "inf")}
    parts = []
    if counts:
        labels, values = list(counts), list(counts.values())
        first = labels[0]
        if len(values) > MAX_DECADES:
            cut = len(values) - MAX_DECADES + 1
            values = [sum(values[:cut]), *values[cut:]]
            labels = labels[cut - 1 :]
            first = f"≤{labels[0]}"
        peak = max(values)
        bars = "".join(BARS[max(0, math.ceil(n / peak * len(BARS)) - 1)] if n else EMPTY for n in values)
        parts.append(f"{first} {bars} {labels[-1]}" if len(values) > 1 else f"{bars} {labels[0]}")
    if decades.get("0"):
        parts.append(f"{decades['0']:,} equal")
    if decades.get("inf"):
        parts.append(f"{decades['inf']:,} unbounded")
    return ", ".join(parts).replace(" ", NBSP)


def unbroken(text: str) -> str:
    """``text`` that a browser will not break at its hyphens: for numbers in table cells, where
    "3.98e-07" would otherwise wrap to "3.98e-" / "07" (U+2011, a no-break hyphen)."""
    return text.replace("-", NB_HYPHEN)
