"""One conversion's report in markdown, the job summary's main screen: verdict first, details folded.

Top to bottom: the headline (✅/❌/⚠️, model → ONNX, the result in one line); for a failure the
worst output with its max |diff|, the value allowed there, how far over, and the tolerance that
would pass; one row per output; how much the check proves; the ONNX file and the speed-up on one
line; then ``EXTRA_SECTIONS``; then model details, per-batch tables, export routes, timings,
versions and the reproduce command, each folded in ``<details>``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from converter import tensors
from converter.baseline.render import render_baseline
from converter.escape import markdown_block, markdown_code, markdown_text
from converter.markdown.numbers import ceil_sig, decade_bars, percent, sig, size, times, unbroken
from converter.markdown.table import table
from converter.markdown.variants import variants_section
from converter.validate import OutputVerdict, Validation

if TYPE_CHECKING:
    from converter.report import Report

Section = Callable[["Report", int], list[str]]


def baseline_section(report: Report, max_rows: int) -> list[str]:
    """The section "Compared with the baseline" (--baseline), rendered by the baseline's own function."""
    return render_baseline(report.baseline, max_rows) if report.baseline else []


# Sections that compare this file with something else go here, between the verdict and the folded
# details, each a function (report, max table rows) -> markdown lines ([] when it has nothing):
# "Compared with the baseline" (issue 19) and "Variants" (issue 20).
EXTRA_SECTIONS: tuple[Section, ...] = (baseline_section, variants_section)

# Every value below may come from the model file or its name: escaped (converter/escape.py).
_code = markdown_code
_text = markdown_text


def render(report: Report, max_rows: int) -> str:
    """The whole report; tables hold at most ``max_rows`` rows (the rest is in the JSON)."""
    lines = [f"## {headline(report)}", ""]
    if report.status == "error":
        lines += [f"**Error:** {_text(report.error)}", ""]
    if (
        report.status == "rejected" and report.baseline
    ):  # what rejected it, before the numbers of a validation that passed
        reasons = "; ".join(report.baseline.failures)
        lines += [f"❌ **Rejected by the comparison with the baseline:** {_text(reasons)} (see below).", ""]
    if report.validation:
        lines += verdict_lines(report.validation)
        lines += outputs_table(report.validation, max_rows)
        lines += strength_lines(report.validation, max_rows)
        lines += non_finite_lines(report.validation, max_rows)
        lines += padded_lines(report.validation)
    lines += file_line(report)
    lines += [f"> ⚠️ {_text(warning)}\n" for warning in report.warnings]
    for section in EXTRA_SECTIONS:
        lines += section(report, max_rows)
    lines += details(report, max_rows)
    return "\n".join(lines)


# -- the first screen -------------------------------------------------------------------------


def headline(report: Report) -> str:
    """✅, ❌ or ⚠️, model → ONNX file, and the result in a few words (markdown, escaped)."""
    name = _text(report.model.path.rsplit("/", 1)[-1])
    if report.status == "error" or not report.validation:
        return f"❌ {name}: conversion failed"
    target = f"{name} → {_text(report.onnx.path.rsplit('/', 1)[-1])}" if report.onnx else name
    val = report.validation
    verdicts = val.verdicts()
    if not report.passed:
        failing = [v for v in verdicts if not v.passed]
        if report.status == "rejected":  # validated; the comparison with the last release failed
            return f"❌ {target}: validated, but rejected by the comparison with the baseline"
        if val.passed and report.variants:  # the fp32 file reproduces the model; a required variant does not
            return f"❌ {target}: a required variant did not pass"
        if not failing:
            return f"❌ {target}: validation failed"
        worst = val.worst_verdict()
        over = ""
        if worst and worst.tolerance_applies:  # unbounded where nothing was allowed: the difference says more
            over = f", up to {times(worst.max_ratio)} over tolerance" if worst.max_ratio else ""
            over = over or f", max \\|diff\\| {sig(worst.max_abs_diff)}"
        if len(verdicts) == 1:
            return f"❌ {target}: {_code(failing[0].name)} differs from the original{over}"
        return f"❌ {target}: {len(failing)} of {len(verdicts)} outputs differ from the original{over}"
    sizes = " and ".join(str(b) for b in val.batch_sizes)
    if len(val.insensitive_outputs()) == len(verdicts):  # nothing in the check depends on the inputs
        return f"⚠️ {target}: within tolerance, but the outputs barely depend on the inputs"
    return f"✅ {target}: every output within tolerance at batch {sizes}"


def verdict_lines(val: Validation) -> list[str]:
    """The numbers that explain the verdict: the worst output, and what would have passed."""
    paragraphs = [f"**Problem:** {_text(p)}" for p in val.failures() if not p.startswith("output ")]
    worst = val.worst_verdict()
    if worst is not None:
        paragraphs.append(_worst_output_text(worst, val))
        if not worst.passed and worst.tolerance_applies:
            paragraphs.append(_passing_tolerance_text(val))
    sizes = " and ".join(str(b) for b in val.batch_sizes)
    paragraphs.append(
        f"An element fails when \\|onnx − original\\| > atol + rtol·\\|original\\|; here atol {val.atol:g}, "
        f"rtol {val.rtol:g}. Inputs: {_text(val.input_source)}, batch {sizes}."
    )
    return [line for paragraph in paragraphs for line in (paragraph, "")]


def _worst_output_text(worst: OutputVerdict, val: Validation) -> str:
    where = f"{_code(worst.name)} (batch {worst.batch_size})"
    if worst.problem:
        return f"❌ **Worst output** {where}: {_text(worst.problem)}"
    if worst.label_agreement is not None:
        return (
            f"{'**Output**' if worst.passed else '❌ **Worst output**'} {where}: {worst.label_agreement:.1%} of labels agree "
            f"({worst.failing:,} of {worst.elements:,} differ); labels must agree exactly"
        )
    at = f"\\|diff\\| **{sig(worst.worst_diff)}** where **{sig(worst.worst_allowed)}** was allowed"
    # no-break hyphens: "rtol 1e-08" must not wrap to "1e-" / "08" (the tolerance that passes stays ASCII, to copy)
    rule = f"(atol {unbroken(f'{val.atol:g}')} + rtol {unbroken(f'{val.rtol:g}')}·\\|original\\|)"
    elsewhere = ""
    if sig(worst.worst_diff) != sig(worst.max_abs_diff):
        elsewhere = f"; max \\|diff\\| {sig(worst.max_abs_diff)} at an element allowed more"
    if worst.passed:
        used = "" if worst.max_ratio is None else f", {percent_of(worst.max_ratio)} of it"
        return f"**Closest to its tolerance** {where}: {at} {rule}{used}{elsewhere}"
    share = (
        f"{worst.failing:,} of the {worst.elements:,} elements compared ({percent(worst.failing, worst.elements)}) fail"
    )
    return f"❌ **Worst output** {where}: {at} {rule}: **over by {times(worst.max_ratio)}**{elsewhere}; {share}"


def percent_of(ratio: float) -> str:
    return f"{ratio:.0%}" if ratio >= 0.01 else "under 1%"


def _passing_tolerance_text(val: Validation) -> str:
    atol, rtol = val.passing_tolerance()
    if atol is None and rtol is None:
        return "**No tolerance would pass:** a NaN or an infinity on one side only"
    options = []
    if atol is not None:
        options.append(f"**atol {ceil_sig(atol)}** (at rtol {val.rtol:g})")
    if rtol is not None:
        options.append(f"**rtol {ceil_sig(rtol)}** (at atol {val.atol:g})")
    return "It would pass with " + ", or ".join(options) + "."


def outputs_table(val: Validation, max_rows: int) -> list[str]:
    """One row per output over every batch size: failures first, the furthest over first."""
    verdicts = val.verdicts()
    failing = sorted(
        (v for v in verdicts if not v.passed), key=lambda v: -(float("inf") if v.max_ratio is None else v.max_ratio)
    )
    verdicts = failing + [v for v in verdicts if v.passed]
    rows = [_output_row(v) for v in verdicts]
    header = ["Output", "Result", "Max \\|diff\\|", "Allowed", "Over by", "Failing elements", "\\|diff\\| per decade"]
    return [*table(header, rows, max_rows, "outputs", "---|---|---:|---:|---:|---:|---"), ""]


def _output_row(v: OutputVerdict) -> list[str]:
    failing = f"{v.failing:,} of {v.elements:,} ({percent(v.failing, v.elements)})"
    if v.problem:
        return [_code(v.name), "❌", "—", "—", "—", "—", _text(v.problem)]
    if v.label_agreement is not None:
        agree = f"labels: {v.label_agreement:.1%} agree"
        return [_code(v.name), "✅" if v.passed else "❌", "—", "exact", "—", failing, agree]
    over = "—" if v.passed else times(v.max_ratio)
    return [
        _code(v.name),
        "✅" if v.passed else "❌",
        unbroken(sig(v.max_abs_diff)),
        unbroken(sig(v.worst_allowed)),
        unbroken(over),
        failing,
        unbroken(_code(decade_bars(v.diff_decades))) if v.diff_decades else "—",
    ]


def strength_lines(val: Validation, max_rows: int) -> list[str]:
    """Outputs that barely depend on the inputs: their comparison proves little."""
    weak = val.insensitive_outputs()
    if not weak:
        return []
    named = []
    for v in weak[:max_rows]:
        how = (
            "every validation row gets the same label"
            if v.spread is None
            else f"no row differs from the first by more than {sig(v.spread)}"
        )
        named.append(f"{_code(v.name)} ({how})")
    more = f" and {len(weak) - max_rows:,} more" if len(weak) > max_rows else ""
    verb = "barely depends" if len(weak) == 1 else "barely depend"
    return [
        f"> ⚠️ **Weak check:** {', '.join(named)}{more} {verb} on the inputs, within the tolerance: a file that "
        "ignored its inputs would pass too. Validate with real inputs as sample data, or a smaller tolerance.",
        "",
    ]


def padded_lines(val: Validation) -> list[str]:
    """Which outputs had positions left out because attention_mask padded them (converter/padding.py)."""
    worst: dict[str, tuple[int, float]] = {}
    for out in (o for b in val.batches for o in b.outputs if o.padded):
        count, diff = worst.get(out.name, (0, 0.0))
        worst[out.name] = (count + out.padded, max(diff, out.padded_max_diff))
    if not worst:
        return []
    found = [
        f"{_code(name)} {count:,} elements (max \\|diff\\| there {sig(diff)})" for name, (count, diff) in worst.items()
    ]
    return [
        "**Padded positions** (`attention_mask` 0) are not compared, as no caller reads them: "
        + "; ".join(found)
        + ".",
        "",
    ]


def non_finite_lines(val: Validation, max_rows: int) -> list[str]:
    """Where outputs held NaN or Inf: equal ones count as equal, so the table alone would not show them."""
    found = [
        f"{_code(out.name)} at batch {batch.batch_size}: {out.non_finite_text()}"
        for batch in val.batches
        for out in batch.outputs
        if out.non_finite_text()
    ]
    if not found:
        return []
    more = f"; {len(found) - max_rows} more in the JSON report" if len(found) > max_rows else ""
    return [
        "**Non-finite values** (NaN on both sides, or the same infinity, count as equal): "
        + "; ".join(found[:max_rows])
        + more
        + ".",
        "",
    ]


def file_line(report: Report) -> list[str]:
    """The ONNX file and how fast onnxruntime runs it against the original, on one line."""
    if not report.onnx:
        return []
    onnx = report.onnx
    parts = [
        f"**ONNX file** {_code(onnx.path.rsplit('/', 1)[-1])}: {size(onnx.bytes)}",
        f"opset {onnx.opset}",
        _text(onnx.exporter),
    ]
    lat = report.latency
    if lat and lat.get("onnxruntime_ms") and lat.get("reference_ms"):
        ratio = lat["reference_ms"] / lat["onnxruntime_ms"]
        speed = f"{sig(ratio)}× faster" if ratio >= 1 else f"{sig(1 / ratio)}× slower"
        parts.append(
            f"onnxruntime **{speed}** than {_text(report.model.framework)} "
            f"({sig(lat['onnxruntime_ms'])} ms against {sig(lat['reference_ms'])} ms for {lat['batch_size']} rows)"
        )
    return [" · ".join(parts), ""]


# -- folded details ---------------------------------------------------------------------------


def details(report: Report, max_rows: int) -> list[str]:
    lines = folded("Model and ONNX file", model_table(report, max_rows))
    if report.validation:
        lines += folded("Comparison at each batch size", batch_table(report.validation, max_rows))
    if report.inputs:
        lines += folded("Generated inputs", generated_lines(report.inputs))
    if report.export_attempts:
        lines += folded(f"Export routes tried ({len(report.export_attempts)})", routes_table(report, max_rows))
    if report.timings or report.latency or report.versions:
        lines += folded("Timings and versions", timings_lines(report, max_rows))
    if report.command:
        lines += folded("Reproduce", [markdown_block(continued(report.command), "sh")])
    return lines


def generated_lines(inputs: list[dict[str, Any]]) -> list[str]:
    """One line per generated input: its role and range (``input_roles.InputPlan.to_dict``)."""
    lines = []
    for spec in inputs:
        what = spec["role"].replace("_", " ")
        if "padding" in spec:
            what += f", {spec['padding']}"
        if "range" in spec:
            low, high = spec["range"]
            what += f" in [{low}, {high}) ({spec['bound']})"
        lines.append(f"- {_code(spec['name'])} {_text(spec['dtype'])}: {_text(what)}")
    return lines


def folded(title: str, body: list[str]) -> list[str]:
    """A ``<details>`` block; ``title`` is our own text, never the repository's."""
    return [f"<details><summary>{title}</summary>", "", *body, "", "</details>", ""]


def model_table(report: Report, max_rows: int) -> list[str]:
    model, onnx = report.model, report.onnx
    rows = [
        ["File", _code(model.path), _code(onnx.path) if onnx else "—"],
        [
            "Format",
            f"{_text(model.framework)} / {_text(model.format)}",
            f"opset {onnx.opset}, IR {onnx.ir_version}" if onnx else "—",
        ],
        ["Class / exporter", _text(model.description) or "—", _exporter(onnx) if onnx else "—"],
        ["Size", size(model.bytes), size(onnx.bytes) if onnx else "—"],
        ["sha256", _code(model.sha256), _code(onnx.sha256) if onnx else "—"],
    ]
    if report.requirements:  # --requirements, installed before the model-class file was imported
        installed = report.requirements
        packages = ", ".join(_text(p) for p in installed["packages"]) or "nothing new"
        rows.append(["Requirements", f"{_code(installed['file'])} in {installed['seconds']:.1f} s: {packages}", "—"])
    if onnx:
        if onnx.fallback_reason:
            rows.append(["Fallback reason", "", _text(onnx.fallback_reason)])
        if len(onnx.files) > 1:
            rows.append(["Files", "", ", ".join(_code(f) for f in onnx.files)])
        rows.append(["Inputs", "", "; ".join(tensor_text(t) for t in onnx.inputs) or "—"])
        rows.append(["Outputs", "", "; ".join(tensor_text(t) for t in onnx.outputs) or "—"])
    return table(["", "Original model", "ONNX file"], rows, max_rows, "rows")


def _exporter(onnx: Any) -> str:
    return f"{_text(onnx.exporter)} ({_text(onnx.export_path)})" if onnx.export_path else _text(onnx.exporter)


def tensor_text(tensor: dict[str, Any]) -> str:
    return f"{_code(tensor['name'])} {shape_text(tensor['shape'])} {_text(tensor['dtype'])}"


def shape_text(shape: list[Any]) -> str:
    """The shape as every message writes it (converter.tensors: ``batchx4``), escaped."""
    return _text(tensors.shape_text(shape))


def batch_table(val: Validation, max_rows: int) -> list[str]:
    rows = []
    for batch in val.batches:
        if batch.problem:
            rows.append([str(batch.batch_size), "—", "❌", _text(batch.problem), "", "", "", "", ""])
        for out in batch.outputs:
            agreement = "" if out.label_agreement is None else f"{out.label_agreement:.2%} labels agree"
            rows.append(
                [
                    str(batch.batch_size),
                    _code(out.name),
                    "✅" if out.passed else "❌",
                    _text(out.problem) or agreement or shape_text(out.shape),
                    unbroken(sig(out.max_abs_diff)),
                    unbroken(sig(out.mean_abs_diff)),
                    unbroken(sig(out.p99_abs_diff)),
                    unbroken(sig(out.max_rel_diff)),
                    f"{out.failing:,} / {out.elements:,}",
                ]
            )
    header = ["Batch", "Output", "Result", "Shape / labels", "Max abs diff", "Mean abs diff", "p99 abs diff"]
    header += ["Max rel diff", "Failing elements"]
    return table(header, rows, max_rows, "rows", "---:|---|---|---|---:|---:|---:|---:|---:")


def routes_table(report: Report, max_rows: int) -> list[str]:
    rows = [
        [
            _code(a.route),
            _text(a.outcome),
            "—" if a.opset is None else str(a.opset),
            _text(a.reason) or "—",
            f"{a.seconds:.1f} s",
        ]
        for a in report.export_attempts
    ]
    return table(["Route", "Outcome", "Opset", "Reason", "Time"], rows, max_rows, "rows", "---|---|---:|---|---:")


def timings_lines(report: Report, max_rows: int) -> list[str]:
    rows = [[stage.replace("_", " "), f"{sig(seconds)} s"] for stage, seconds in report.timings.items()]
    lat = report.latency
    if lat:
        rows += [
            [
                f"latency, original ({lat['batch_size']} rows, median of {lat['runs']})",
                f"{sig(lat['reference_ms'])} ms",
            ],
            [
                f"latency, onnxruntime ({lat['batch_size']} rows, median of {lat['runs']})",
                f"{sig(lat['onnxruntime_ms'])} ms",
            ],
        ]
    lines = table(["Stage", "Time"], rows, max_rows, "rows", "---|---:") if rows else []
    if report.versions:
        lines += ["", "Versions: " + " · ".join(_text(f"{k} {v}") for k, v in report.versions.items())]
    return lines


def continued(command: str) -> str:
    """The command with one option a line (``\\`` continuations), so that it never needs a scrollbar."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    lines = [words[0]] if words else []
    for word in words[1:]:
        if word.startswith("--") or len(lines) == 1:
            lines.append(shlex.quote(word))
        else:
            lines[-1] += " " + shlex.quote(word)
    return " \\\n  ".join(lines)
