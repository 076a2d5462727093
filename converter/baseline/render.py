"""The "Compared with <baseline>" section of the markdown report: one table of what changed.

Only what changed gets a row: each interface change, the size when it differs, the latency when
the ratio leaves the noise band (or a gate is set), drift where the outputs moved, and a validation
that got worse. One line under the table always gives size, latency and drift, so an unchanged
release reads as one line. Every value from either report is escaped (converter/escape.py).
"""

from __future__ import annotations

from converter.baseline.result import BREAKING, BaselineComparison, Drift, LatencyComparison, OutputNumbers
from converter.escape import markdown_code, markdown_text
from converter.markdown.table import table

NOISE = 0.10  # a latency ratio within 1 ± this is shown only in the summary line
WORSE = 2.0  # a validation difference this many times the baseline's gets a row


def render_baseline(comparison: BaselineComparison, max_rows: int) -> list[str]:
    """The section's markdown lines (empty lines included), to be joined with newlines."""
    if not comparison.compared:
        return [
            "### Compared with nothing",
            "",
            f"No baseline at {markdown_code(comparison.source)}, and --baseline-optional true: nothing compared "
            "(a first release, or a model new in this one).",
            "",
        ]
    title = markdown_text(comparison.release) if comparison.release else markdown_code(comparison.source)
    lines = [f"### Compared with {title}", ""]
    files = [markdown_code(comparison.source)] + ([markdown_code(comparison.onnx)] if comparison.onnx else [])
    verdict = "❌ rejects this file (see the headline, and ❌ below)" if comparison.failures else "✅ passes"
    lines += [f"Baseline: {' and '.join(files)}. {verdict}.", ""]
    rows = _rows(comparison)
    if rows:
        lines += [*table(["", "Baseline", "This run", "Verdict"], rows, max_rows), ""]
    summary = _summary_line(comparison)
    if not comparison.interface:
        summary = f"Interface unchanged; {summary[:1].lower()}{summary[1:]}" if summary else "Interface unchanged."
    lines += [summary, ""]
    lines += [
        f"> {markdown_text(note)}" for note in comparison.notes + (comparison.drift.skipped if comparison.drift else [])
    ]
    return lines if lines[-1] == "" else [*lines, ""]


def _rows(comparison: BaselineComparison) -> list[list[str]]:
    rows = []
    allowed = comparison.limits.get("allow_interface_change")
    for change in comparison.interface:
        what = f"{markdown_text(change.kind)} {markdown_code(change.name)} {markdown_text(change.change)}"
        if change.kind == "model" or change.change == "order":
            what = f"{markdown_text(change.name or change.kind + 's')} {markdown_text(change.change)}"
        mark = ("⚠️ breaking, allowed" if allowed else "❌ breaking") if change.severity == BREAKING else "compatible"
        rows.append(
            [
                what,
                _code_or_dash(change.baseline),
                _code_or_dash(change.current),
                f"{mark}: {markdown_text(change.reason)}",
            ]
        )
    size, limit = comparison.size, comparison.limits.get("max_size_increase_percent")
    if size and size.bytes != size.baseline_bytes:
        rows.append(
            [
                "ONNX size",
                f"{size.baseline_bytes:,} bytes",
                f"{size.bytes:,} bytes ({size.increase_percent:+.1f}%)",
                _gate(size.increase_percent, limit, "max-size-increase"),
            ]
        )
    rows += _latency_rows(comparison.latency, comparison.limits.get("max_latency_increase_percent"))
    rows += _drift_rows(comparison.drift, comparison.limits.get("max_drift"))
    rows += _worse_rows(comparison.numbers)
    return rows


def _latency_rows(latency: LatencyComparison | None, limit: float | None) -> list[list[str]]:
    if latency is None or (limit is None and abs(latency.ratio - 1) <= NOISE):
        return []
    return [
        [
            f"Latency, batch {latency.batch_size} (median of {latency.runs} alternating runs each)",
            f"{latency.baseline_ms:.3g} ms",
            f"{latency.onnx_ms:.3g} ms (×{latency.ratio:.2f}, middle half of pairs ×{latency.ratio_low:.2f}–{latency.ratio_high:.2f})",
            _gate(latency.increase_percent, limit, "max-latency-increase"),
        ]
    ]


def _drift_rows(drift: Drift | None, limit: float | None) -> list[list[str]]:
    rows = []
    for out in drift.outputs if drift else []:
        if out.label_agreement is not None and out.label_agreement < 1:
            moved = f"{out.label_agreement:.2%} of labels agree"
        elif out.label_agreement is None and out.max_abs_diff > 0:
            moved = f"max abs diff {out.max_abs_diff:.3g}, p99 {out.p99_abs_diff:.3g}, max rel {out.max_rel_diff:.3g}"
        else:
            continue
        verdict = (
            "reported (no --max-drift)"
            if limit is None
            else ("❌" if out.over_limit else "✅") + f" --max-drift {limit:g}"
        )
        rows.append([f"Drift of {markdown_code(out.name)} from the baseline file", "-", moved, verdict])
    return rows


def _worse_rows(numbers: list[OutputNumbers]) -> list[list[str]]:
    rows = []
    for out in numbers:
        was, now = out.baseline.get("max_abs_diff"), out.current.get("max_abs_diff")
        if was is not None and now is not None and now > WORSE * was and now > 0:
            rows.append(
                [
                    f"Validation of {markdown_code(out.name)} (max abs diff from the original)",
                    f"{was:.3g}",
                    f"{now:.3g}",
                    "reported",
                ]
            )
        was, now = out.baseline.get("label_agreement"), out.current.get("label_agreement")
        if was is not None and now is not None and now < was:
            rows.append(
                [
                    f"Validation of {markdown_code(out.name)} (labels agreeing with the original)",
                    f"{was:.2%}",
                    f"{now:.2%}",
                    "reported",
                ]
            )
    return rows


def _summary_line(comparison: BaselineComparison) -> str:
    parts = []
    if comparison.size:
        parts.append(f"size ×{comparison.size.ratio:.2f}")
    latency = comparison.latency
    if latency:
        parts.append(
            f"latency ×{latency.ratio:.2f} (median of {latency.runs} alternating runs of each file at batch "
            f"{latency.batch_size}; middle half of pairs ×{latency.ratio_low:.2f}–{latency.ratio_high:.2f})"
        )
    drift = comparison.drift
    if drift and drift.batch_sizes:
        sizes = " and ".join(str(b) for b in drift.batch_sizes)
        parts.append(f"outputs {'identical to' if drift.zero else 'drift from'} the baseline file's at batch {sizes}")
    text = ", ".join(parts)
    return text[:1].upper() + text[1:] + "." if text else ""


def _gate(percent: float, limit: float | None, option: str) -> str:
    if limit is None:
        return "reported"
    return f"{'❌' if percent > limit else '✅'} --{option} {limit:g}%"


def _code_or_dash(text: str) -> str:
    return markdown_code(text) if text else "-"
