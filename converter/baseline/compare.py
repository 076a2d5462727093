"""The comparison with the baseline, put together, and its gates: the pipeline's one call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converter.baseline.interface import diff_interface, pair_tensors
from converter.baseline.numbers import compare_validations, measure_drift
from converter.baseline.result import BaselineComparison, Drift, InterfaceChange, LatencyComparison, SizeComparison
from converter.baseline.source import Baseline, Interface, Tensor, locate_report, read_baseline
from converter.baseline.timing import time_side_by_side
from converter.errors import ConversionError, UserError
from converter.report import OnnxInfo, Report
from converter.request import BaselineOptions
from converter.validate import OnnxRunner, Validation

Run = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]
MAX_LISTED = 3  # breaking changes named in the failure line; the report lists them all


@dataclass
class OpenedBaseline:
    path: Path  # the report, or where it was looked for
    baseline: Baseline | None  # None: not there, and --baseline-optional true


@dataclass
class ThisRun:
    """What the comparison needs of this run: the chosen file, its validation and its inputs."""

    interface: Interface
    bytes: int
    validation: Validation
    runner: OnnxRunner
    runs: list[Run]

    @classmethod
    def of(cls, onnx: OnnxInfo, validation: Validation, runner: OnnxRunner, runs: list[Run]) -> ThisRun:
        return cls(
            interface_of(onnx.inputs, onnx.outputs, onnx.opsets, onnx.ir_version), onnx.bytes, validation, runner, runs
        )


def open_baseline(options: BaselineOptions, name: str) -> OpenedBaseline | None:
    """Read the baseline before any work, so that a bad one is one exit-2 line and nothing is written."""
    if options.path is None:
        return None
    path = locate_report(options.path, [name], options.optional)
    baseline = read_baseline(path, options.optional)
    if baseline is not None and baseline.onnx_path is None:
        needs = [f"--{n}" for n in ("max-drift", "max-latency-increase") if n in options.gated]
        if needs:
            raise UserError(
                f'{" and ".join(needs)} run the baseline .onnx, and there is none beside --baseline "{path}"',
                "download the last release's .onnx next to its report",
            )
    return OpenedBaseline(path, baseline)


def interface_of(
    inputs: list[dict[str, Any]], outputs: list[dict[str, Any]], opsets: dict[str, int], ir_version: int
) -> Interface:
    def tensors(items: list[dict[str, Any]]) -> list[Tensor]:
        return [Tensor(t["name"], tuple(t["shape"]), t["dtype"]) for t in items]

    return Interface(tensors(inputs), tensors(outputs), dict(opsets), ir_version)


def compare_with_baseline(opened: OpenedBaseline, options: BaselineOptions, current: ThisRun) -> BaselineComparison:
    baseline = opened.baseline
    limits = {
        "allow_interface_change": options.allow_interface_change,
        "max_drift": options.max_drift,
        "max_size_increase_percent": options.max_size_increase,
        "max_latency_increase_percent": options.max_latency_increase,
    }
    if baseline is None:
        note = f"no baseline at {opened.path}, and --baseline-optional true: nothing compared (a first release, or a model new in this one)"
        return BaselineComparison(source=str(opened.path), compared=False, limits=limits, notes=[note])
    result = BaselineComparison(
        source=str(opened.path),
        compared=True,
        release=baseline.release,
        onnx=str(baseline.onnx_path or ""),
        interface=diff_interface(baseline.interface, current.interface),
        numbers=compare_validations(baseline, current.validation),
        size=SizeComparison(baseline.bytes, current.bytes),
        limits=limits,
    )
    if baseline.onnx_path is None:
        result.notes.append(f"no .onnx beside {opened.path.name}: drift and latency not measured")
    else:
        _run_both(result, baseline, options, current)
    result.failures = _failures(result, options)
    return result


def _run_both(result: BaselineComparison, baseline: Baseline, options: BaselineOptions, current: ThisRun) -> None:
    assert baseline.onnx_path is not None
    try:
        theirs = OnnxRunner(baseline.onnx_path)
    except ConversionError as exc:
        raise UserError(
            f'--baseline "{baseline.report_path}": onnxruntime cannot load {baseline.onnx_path.name} ({exc.message})',
            "download the .onnx of the last release again",
        ) from None
    interfaces = (baseline.interface, current.interface)
    result.drift = measure_drift(theirs, current.runner, current.runs, interfaces, options.max_drift)
    result.latency = _latency(theirs, current, interfaces, result)


def _latency(
    theirs: OnnxRunner, current: ThisRun, interfaces: tuple[Interface, Interface], result: BaselineComparison
) -> LatencyComparison | None:
    feed = current.runs[0][0]
    names = {c.name: b.name for b, c in pair_tensors(interfaces[0].inputs, interfaces[1].inputs)}
    if any(name not in names for name in feed):
        result.notes.append("latency not compared: the baseline file lacks an input this one has")
        return None
    their_feed = {names[name]: array for name, array in feed.items()}
    try:
        theirs.run(their_feed)
    except Exception as exc:  # a fixed batch, another dtype: the interface diff says which
        result.notes.append(
            f"latency not compared: the baseline file does not run on this run's inputs ({' '.join(str(exc).split())[:160]})"
        )
        return None
    batch = int(next(iter(feed.values())).shape[0]) if feed else 0
    return time_side_by_side(lambda: theirs.run(their_feed), lambda: current.runner.run(feed), batch)


def _failures(result: BaselineComparison, options: BaselineOptions) -> list[str]:
    failures = []
    breaking = result.breaking
    if breaking and not options.allow_interface_change:
        named = "; ".join(describe_change(c) for c in breaking[:MAX_LISTED])
        more = f"; {len(breaking) - MAX_LISTED} more in the report" if len(breaking) > MAX_LISTED else ""
        failures.append(
            f"{len(breaking)} breaking interface change{'s' if len(breaking) > 1 else ''} from the baseline: {named}{more} "
            "(--allow-interface-change true accepts them)"
        )
    size = result.size
    if size and options.max_size_increase is not None and size.increase_percent > options.max_size_increase:
        failures.append(
            f"the ONNX file is {size.increase_percent:.1f}% larger than the baseline's ({size.bytes:,} vs "
            f"{size.baseline_bytes:,} bytes); --max-size-increase allows {options.max_size_increase:g}%"
        )
    failures += _latency_failures(result.latency, options)
    failures += _drift_failures(result.drift, options)
    return failures


def _latency_failures(latency: LatencyComparison | None, options: BaselineOptions) -> list[str]:
    limit = options.max_latency_increase
    if limit is None:
        return []
    if latency is None:
        return ["--max-latency-increase is set and the two files could not be timed on the same inputs (see the notes)"]
    if latency.increase_percent <= limit:
        return []
    return [
        f"the ONNX file is {latency.increase_percent:.1f}% slower than the baseline's (median of {latency.runs} "
        f"alternating runs each: {latency.onnx_ms:.3g} vs {latency.baseline_ms:.3g} ms); --max-latency-increase allows {limit:g}%"
    ]


def _drift_failures(drift: Drift | None, options: BaselineOptions) -> list[str]:
    if options.max_drift is None or drift is None:
        return []
    if not drift.batch_sizes:
        return ["--max-drift is set and the two files could not run on the same inputs (see the notes)"]
    failures = []
    for out in drift.outputs:
        if out.over_limit:
            what = (
                f"{out.label_agreement:.2%} of its labels agree"
                if out.label_agreement is not None
                else f"max abs diff {out.max_abs_diff:.3g}"
            )
            failures.append(
                f"output {out.name} drifts from the baseline's: {out.over_limit:,} elements beyond --max-drift "
                f"{options.max_drift:g} ({what})"
            )
    return failures


def describe_change(change: InterfaceChange) -> str:
    if change.kind == "model":
        return f"{change.name} {change.baseline} -> {change.current}"
    if change.change == "order":
        return change.reason
    return f"{change.kind} {change.name}: {change.reason}"


def judge(report: Report, comparison: BaselineComparison) -> None:
    """A failed comparison rejects the file, validated or not; an allowed breaking change is a warning."""
    report.baseline = comparison
    if comparison.failures:
        report.passed, report.status = False, "rejected"
    if comparison.breaking and comparison.limits.get("allow_interface_change"):
        named = "; ".join(describe_change(c) for c in comparison.breaking)
        report.warnings.append(
            f"breaking interface change from the baseline, allowed by --allow-interface-change: {named}"
        )
