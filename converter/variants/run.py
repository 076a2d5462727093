"""Make every variant asked for, validate each against the ORIGINAL model, keep the ones that pass.

The pipeline calls ``add_variants`` once, after the fp32 file was validated: the variants are
written next to it in the staging directory, as ``<stem>.<variant>.onnx``. Each one is checked
by the ONNX checker, loaded in onnxruntime, compared with the original framework's outputs at
both batch sizes (the pipeline's runs, never the fp32 file's outputs) under its own tolerance,
and timed side by side with the fp32 file. A failing variant's file is deleted, so only
passing variants are published and uploaded. A variant that cannot be made is skipped with
the reason; neither fails the run unless --require-variants names it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converter.errors import ConversionError
from converter.onnx_file import check_and_describe, sha256_of, size_of
from converter.report import Report
from converter.request import ConversionRequest
from converter.validate import OnnxRunner
from converter.variants.compare import Run, VariantCheck, check_variant
from converter.variants.fp16 import make_fp16
from converter.variants.make import CannotMake, MakeInputs
from converter.variants.optimize import make_optimized
from converter.variants.options import Tolerance
from converter.variants.quantize import make_int8_dynamic, make_int8_static
from converter.variants.result import FAILED, FP32, PASSED, SKIPPED, VariantResult, VariantsReport
from converter.variants.timing import Runnable, side_by_side, timing_session

Maker = Callable[[Path, Path, MakeInputs], str]
MAKERS: dict[str, Maker] = {
    "optimized": make_optimized,
    "fp16": make_fp16,
    "int8-dynamic": make_int8_dynamic,
    "int8-static": make_int8_static,
}
# --pick fastest: a variant counts as faster only below this share of the fp32 latency. The fp32
# file timed against itself alternating ranged from 0.93x to 1.17x on this shared 2-core machine
# (bench/RESULTS.md, section 7).
FASTER_BELOW = 0.85


@dataclass
class VariantJob:
    """What the variants are made from and judged against."""

    fp32: Path  # the validated fp32 file, in the staging directory
    runs: list[Run]  # the original framework's (inputs, outputs) at each batch size
    label_outputs: frozenset[str]
    publish_dir: Path  # where the kept files are published (the paths the report gives)


def add_variants(report: Report, request: ConversionRequest, job: VariantJob, log: Callable[[str], None]) -> None:
    """Make, validate and time each variant; set ``report.variants``; a required one that did
    not pass fails the report."""
    settings = request.variants
    first = job.runs[0][0]
    variants = VariantsReport(pick=settings.pick, required=list(settings.required), latency_batch_size=_rows(first))
    data = MakeInputs(inputs=first, calibration=first if request.sample_data else None)
    blocked = _why_no_variants(report)
    fp32 = timing_session(job.fp32) if not blocked else None
    for name in settings.names:
        tolerance = settings.tolerance(name, request.rtol, request.atol)
        if blocked:
            result = VariantResult(name=name, status=SKIPPED, reason=blocked, tolerance=tolerance.to_dict())
        else:
            log(f"variant {name}")
            assert fp32 is not None
            result = _one_variant(name, tolerance, job, data, fp32)
        log(f"variant {name}: {result.status}{': ' + result.reason if result.reason else ''}")
        variants.results.append(result)
    _pick_best(variants, report)
    report.variants = variants
    report.warnings += [
        f"variant {r.name} {r.status}, not kept: {r.reason}" for r in variants.results if r.status != PASSED
    ]
    if report.passed and variants.required_failures():
        report.passed = False
        report.status = "failed"


def _why_no_variants(report: Report) -> str:
    if not report.passed:
        return "the fp32 file does not reproduce the original model, so no variant is made from it"
    if report.onnx and len(report.onnx.files) > 1:
        return "the fp32 file keeps its weights in external data (over 2 GB); variants of it are not made yet"
    return ""


def _one_variant(name: str, tolerance: Tolerance, job: VariantJob, data: MakeInputs, fp32: Runnable) -> VariantResult:
    started = time.perf_counter()
    target = job.fp32.with_name(f"{job.fp32.stem}.{name}.onnx")
    result = VariantResult(name=name, status=SKIPPED, tolerance=tolerance.to_dict())
    try:
        result.method = MAKERS[name](job.fp32, target, data)
        check_and_describe(target)
        runner = OnnxRunner(target)
    except (CannotMake, ConversionError) as exc:
        target.unlink(missing_ok=True)
        result.reason = exc.one_line() if isinstance(exc, ConversionError) else str(exc)
        result.seconds = round(time.perf_counter() - started, 2)
        return result
    check = check_variant(runner, job.runs, tolerance, job.label_outputs)
    del runner  # timed in a session of its own (timing_session), without this one beside it
    _record(result, check, target, job, fp32)
    if check.passed:
        result.status = PASSED
        result.path = str(job.publish_dir / target.name)
    else:  # deleted: a file outside its tolerance never reaches the output directory or the artifact
        result.status = FAILED
        failures = check.failures()
        result.reason = "; ".join(failures[:3]) + (f"; and {len(failures) - 3} more" if len(failures) > 3 else "")
        target.unlink()
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def _record(result: VariantResult, check: VariantCheck, target: Path, job: VariantJob, fp32: Runnable) -> None:
    """The variant's numbers: size, side-by-side latency, errors."""
    result.bytes = size_of(target)
    result.sha256 = sha256_of(target)
    result.size_ratio = round(result.bytes / size_of(job.fp32), 4)
    result.problems = check.problems
    result.outputs = check.outputs
    result.max_abs_diff = check.worst("max_abs_diff", ("values", "classes"))
    result.max_rel_diff = check.worst("max_rel_diff", ("values", "classes"))
    result.probability_error = check.worst("probability_error", ("classes",))
    result.label_agreement = check.lowest_agreement()
    if check.problems:  # onnxruntime refused a batch: nothing to time
        return
    first = job.runs[0][0]
    variant = timing_session(target)
    timed = side_by_side(lambda: variant(first), lambda: fp32(first))
    result.latency_ms = round(timed.variant_ms, 4)
    result.fp32_latency_ms = round(timed.fp32_ms, 4)
    result.latency_ratio = round(timed.ratio, 4)
    result.latency_runs = timed.pairs


def _pick_best(variants: VariantsReport, report: Report) -> None:
    """The smallest (or fastest) file that passed: the fp32 file or a variant."""
    if not report.passed or report.onnx is None:
        return
    best, best_path = FP32, report.onnx.path
    passed = variants.passed()
    if variants.pick == "smallest":
        smallest = min(passed, key=lambda r: r.bytes, default=None)
        if smallest is not None and smallest.bytes < report.onnx.bytes:
            best, best_path = smallest.name, smallest.path
    else:
        faster = [r for r in passed if r.latency_ratio is not None and r.latency_ratio < FASTER_BELOW]
        fastest = min(faster, key=lambda r: r.latency_ratio or 0.0, default=None)
        if fastest is not None:
            best, best_path = fastest.name, fastest.path
    variants.best, variants.best_path = best, best_path


def _rows(inputs: dict[str, np.ndarray]) -> int:
    return int(next(iter(inputs.values())).shape[0]) if inputs else 0
