"""load -> reference run -> export -> check -> validate -> report, the same for every framework."""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata as md
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converter.errors import ConversionError, UserError
from converter.frameworks import resolve_backend
from converter.frameworks.base import Backend, ExportResult, LoadedModel, TensorSpec
from converter.inputs import (
    BATCH,
    check_generated_size,
    generate_inputs,
    resize_batch,
    resolve_specs,
    validation_batches,
)
from converter.onnx_file import (
    OnnxFacts,
    check_and_describe,
    name_batch_axes,
    runtime_max_opset,
    sha256_of,
    size_of,
)
from converter.report import ExportAttempt, ModelInfo, OnnxInfo, Report
from converter.request import ConversionRequest
from converter.samples import check_samples_fit, load_sample_data
from converter.validate import OnnxRunner, Validation, validate
from converter.variants.run import VariantJob, add_variants

LATENCY_RUNS = 5
LATENCY_BUDGET_S = 0.5  # per side: fast models get 5 runs, slow ones 3 (bench: latency was 9% of a ResNet-18 run)
Log = Callable[[str], None]
Run = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]  # inputs, reference outputs


def convert(request: ConversionRequest, log: Log = lambda _msg: None) -> Report:
    """Convert and validate one model; write the .onnx and reports into ``request.output_dir``.

    Raises ``UserError`` for bad input (nothing written). A model that cannot be converted
    returns a report with status "error" (reports written, no .onnx).
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    backend, fmt = resolve_backend(request.framework, request.model_path)
    log(f"{request.model_path}: {backend.name} model ({fmt})")
    model_info = ModelInfo(
        path=str(request.model_path),
        framework=backend.name,
        format=fmt,
        description="",
        sha256=sha256_of(request.model_path),
        bytes=size_of(request.model_path),
    )
    opset = choose_opset(request.opset, backend)
    with _timed(timings, "load"):
        loaded = backend.load(request, fmt)
    model_info.description = loaded.description
    model_specs = backend.input_specs(loaded, request)
    samples = load_sample_data(request.sample_data, model_specs) if request.sample_data else None
    specs = resolve_specs(model_specs, request, samples)
    if samples is None:
        check_generated_size(specs, request.validation_samples)
    first_inputs = (
        check_samples_fit(samples, specs)
        if samples is not None
        else generate_inputs(specs, request.validation_samples, request.seed)
    )
    report = Report(passed=False, status="error", model=model_info, command=request.command_line())
    report.versions = _versions(backend)
    report.warnings.extend(loaded.notes)
    with _staging(request.output_dir) as staging:
        stem = _safe_stem(request.model_path)
        try:
            # Everything the original model is run for happens before the export (reference
            # outputs at both batch sizes, its latency), so that the backend can free the
            # model before onnxruntime loads the file: the two never hold the weights at once.
            second = _second_inputs(specs, first_inputs, request, samples is not None)
            with _timed(timings, "reference_run"):
                runs: list[Run] = [(first_inputs, backend.run(loaded, first_inputs))]
                if second is not None:
                    runs.append((second, backend.run(loaded, second)))
            reference_ms, latency_runs = _median_ms(lambda: backend.run(loaded, first_inputs))
            return_freed_memory()
            log(f"exporting at opset {opset}")
            source = f"{request.sample_data.name}" if request.sample_data else f"generated (seed {request.seed})"
            chosen = _first_reproducing(
                backend,
                loaded,
                lambda: backend.load(request, fmt),
                specs,
                opset,
                staging / f"{stem}.onnx",
                request,
                runs,
                source,
                report,
                timings,
                log,
            )
            chosen.runner = chosen.runner or OnnxRunner(chosen.exported.path)
            report.latency = _latency(reference_ms, latency_runs, chosen.runner, first_inputs)
        except ConversionError as exc:
            report.error = exc.one_line()
            report.timings = {**timings, "total": round(time.perf_counter() - started, 4)}
            _write_reports(report, staging, stem, request.output_dir)
            _publish(staging, request.output_dir)
            return report
        exported, facts, validation = chosen.exported, chosen.facts, chosen.validation
        report.warnings.extend(chosen.warnings)
        fallback_reason = exported.fallback_reason
        earlier = report.export_attempts[: report.export_attempts.index(chosen.attempt)]
        if earlier:  # the routes preferred to the one whose file is kept, and why they lost
            fallback_reason = "; ".join(f"{a.route}: {a.reason}" for a in earlier)
        if fallback_reason:
            report.warnings.append(
                f"exported with {exported.export_path} after the preferred path failed: {fallback_reason}"
            )
        final_dir = request.output_dir
        report.onnx = OnnxInfo(
            path=str(final_dir / exported.path.name),
            sha256=sha256_of(exported.path),
            bytes=sum(size_of(p) for p in [exported.path, *exported.extra_files]),
            opset=facts.opset,
            opsets=facts.opsets,
            ir_version=facts.ir_version,
            inputs=[t.to_dict() for t in facts.inputs],
            outputs=[t.to_dict() for t in facts.outputs],
            operators=facts.operators,
            exporter=exported.exporter,
            export_path=exported.export_path,
            fallback_reason=fallback_reason,
            files=[str(final_dir / p.name) for p in [exported.path, *exported.extra_files]],
        )
        report.validation = validation
        report.passed = validation.passed
        report.status = "passed" if validation.passed else "failed"
        report.versions["opset"] = str(facts.opset)
        if request.variants.names:  # each validated against the original model's runs, not the fp32 file
            chosen.runner = None  # the variants are timed against an fp32 session of their own
            job = VariantJob(exported.path, runs, loaded.label_outputs, final_dir)
            with _timed(timings, "variants"):
                add_variants(report, request, job, log)
        report.timings = {**timings, "total": round(time.perf_counter() - started, 4)}
        _write_reports(report, staging, stem, final_dir)
        _publish(staging, final_dir)
    return report


def _first_reproducing(
    backend: Backend,
    loaded: LoadedModel,
    reload: Callable[[], LoadedModel],
    specs: list[TensorSpec],
    opset: int,
    path: Path,
    request: ConversionRequest,
    runs: list[Run],
    source: str,
    report: Report,
    timings: dict[str, float],
    log: Log,
) -> _Candidate:
    """Export and validate with each of the backend's routes until one reproduces the model.

    Every attempt is recorded in ``report.export_attempts``. When none reproduces, the first
    file that exported is kept (its validation says how it differs); when none exported,
    the first route's error is raised, with the others' reasons. The model is released after
    each export (``Backend.release``) and loaded again only if a later route needs it.
    """
    routes = backend.export_routes(loaded)
    chosen: _Candidate | None = None
    failures: list[ConversionError] = []
    for index, route in enumerate(routes):
        # Several routes: each writes into its own folder, so a kept file is never overwritten.
        folder = path.parent / f"route-{index}" if len(routes) > 1 else path.parent
        folder.mkdir(exist_ok=True)
        started = time.perf_counter()
        try:
            if loaded.released:
                with _timed(timings, "load"):
                    loaded = reload()
            loaded_file = _export_and_load(
                backend, loaded, specs, opset, folder / path.name, route, request, timings, log
            )
            problems = _fixed_axis_problems(loaded_file.facts, specs, request.dynamic_batch)
            with _timed(timings, "validate"):
                validation = validate(
                    loaded_file.runner, runs, request.rtol, request.atol, loaded.label_outputs, problems, source
                )
        except ConversionError as exc:
            if folder != path.parent:
                shutil.rmtree(folder, ignore_errors=True)
            seconds = round(time.perf_counter() - started, 2)
            report.export_attempts.append(ExportAttempt(route or backend.name, "error", exc.one_line(), seconds))
            failures.append(exc)
            continue
        passed = validation.passed
        attempt = ExportAttempt(
            loaded_file.exported.export_path or route,
            "passed" if passed else "mismatch",
            "" if passed else _mismatch_reason(validation),
            round(time.perf_counter() - started, 2),
        )
        report.export_attempts.append(attempt)
        candidate = _Candidate(
            loaded_file.exported, loaded_file.facts, loaded_file.runner, loaded_file.warnings, validation, attempt
        )
        if chosen is None or passed:
            if chosen is not None:  # an earlier file that mismatched: this one wins
                _discard(chosen, path.parent)
            chosen = candidate
        else:
            _discard(candidate, path.parent)
        if passed:
            break
        chosen.runner = None  # free its onnxruntime session before the next route
    if chosen is None:
        raise _all_routes_failed(failures)
    exported = chosen.exported
    if exported.path.parent != path.parent:  # its files move up, where they are published from
        for written in [exported.path, *exported.extra_files]:
            written.replace(path.parent / written.name)
        shutil.rmtree(exported.path.parent)
        exported.path = path.parent / exported.path.name
        exported.extra_files = [path.parent / p.name for p in exported.extra_files]
    return chosen


@dataclass
class _LoadedFile:
    """One route's file, checked and loaded in onnxruntime, not yet validated."""

    exported: ExportResult
    facts: OnnxFacts
    runner: OnnxRunner
    warnings: list[str]


@dataclass
class _Candidate:
    """One route's validated file; its runner is dropped while later routes are tried."""

    exported: ExportResult
    facts: OnnxFacts
    runner: OnnxRunner | None
    warnings: list[str]
    validation: Validation
    attempt: ExportAttempt


def _export_and_load(
    backend: Backend,
    loaded: LoadedModel,
    specs: list[TensorSpec],
    opset: int,
    path: Path,
    route: str,
    request: ConversionRequest,
    timings: dict[str, float],
    log: Log,
) -> _LoadedFile:
    if route:
        log(f"export route: {route}")
    with _timed(timings, "export"):
        exported = backend.export(loaded, specs, opset, path, request.dynamic_batch, route)
        backend.release(loaded)
        return_freed_memory()
    with _timed(timings, "check"):
        facts = check_and_describe(exported.path)
        if request.dynamic_batch and name_batch_axes(exported.path, facts):
            facts = check_and_describe(exported.path)
    warnings = list(exported.warnings) + _opset_warnings(request.opset, facts)
    log("validating in onnxruntime")
    with _timed(timings, "validate"):
        runner = OnnxRunner(exported.path)
    return _LoadedFile(exported, facts, runner, warnings)


def _mismatch_reason(validation: Validation) -> str:
    """What a failed validation found, in one line: the first problem or failing output."""
    return next(iter(validation.failures()), "validation failed")


def _discard(candidate: _Candidate, staging: Path) -> None:
    candidate.runner = None
    folder = candidate.exported.path.parent
    if folder != staging:
        shutil.rmtree(folder, ignore_errors=True)


def _all_routes_failed(failures: list[ConversionError]) -> ConversionError:
    """The first route's error; with several routes, the others' one-line reasons follow."""
    first = failures[0]
    if len(failures) == 1:
        return first
    others = "; ".join(f.one_line() for f in failures[1:])
    return ConversionError(
        first.message, f"{first.hint + '; ' if first.hint else ''}the other export routes failed too: {others}"
    )


def choose_opset(requested: int | None, backend: Backend) -> int:
    """The requested opset if the exporter and onnxruntime support it; else the highest both do."""
    low, high = backend.opset_range()
    runtime = runtime_max_opset()
    best = min(high, runtime)
    if requested is None:
        return best
    if requested < low or requested > best:
        raise UserError(
            f'--opset "{requested}": the {backend.name} exporter writes opsets {low} to {high} '
            f"and onnxruntime {md.version('onnxruntime')} loads up to {runtime}",
            f"use an opset from {low} to {best}, or auto",
        )
    return requested


def _opset_warnings(requested: int | None, facts: OnnxFacts) -> list[str]:
    if requested is None or facts.opset == requested:
        return []
    if facts.opset > requested:
        raise ConversionError(
            f"asked for opset {requested} but the exporter wrote opset {facts.opset}; "
            f"runtimes limited to opset {requested} cannot load it"
        )
    return [
        f"asked for opset {requested}; the exporter wrote opset {facts.opset}, the lowest that holds every operator "
        f"of this model (any runtime that supports opset {requested} loads it)"
    ]


def _fixed_axis_problems(facts: OnnxFacts, specs: list[TensorSpec], dynamic_batch: bool) -> list[str]:
    """A batch axis the user asked to be dynamic that the file fixed is a failure."""
    if not dynamic_batch:
        return []
    batch_inputs = {s.name for s in specs if s.shape and s.shape[0] == BATCH}
    problems = []
    for kind, tensors in (("input", facts.inputs), ("output", facts.outputs)):
        for tensor in tensors:
            if kind == "input" and tensor.name not in batch_inputs:
                continue
            if tensor.shape and isinstance(tensor.shape[0], int):
                problems.append(
                    f"{kind} {tensor.name}: the batch axis is fixed at {tensor.shape[0]} in the ONNX file "
                    f"(shape {_shape_text(tensor.shape)}); --dynamic-batch true expects it dynamic"
                )
    return problems


def _shape_text(shape: list[int | str | None]) -> str:
    return "x".join("?" if d is None else str(d) for d in shape)


def _second_inputs(
    specs: list[TensorSpec], first: dict[str, np.ndarray], request: ConversionRequest, from_samples: bool
) -> dict[str, np.ndarray] | None:
    """Inputs at a second batch size (and second size of other dynamic axes), if any axis is dynamic."""
    runs = validation_batches(specs, next(iter(first.values())).shape[0])
    if len(runs) == 1:
        return None
    batch, other_size = runs[1]
    if from_samples:
        return resize_batch(first, specs, batch)
    return generate_inputs(specs, batch, request.seed + 1, other_size)


def _median_ms(fn: Callable[[], object]) -> tuple[float, int]:
    """Median time of a few runs, in ms, and how many ran."""
    times: list[float] = []
    spent = 0.0
    while len(times) < LATENCY_RUNS and (len(times) < 3 or spent < LATENCY_BUDGET_S):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
    return statistics.median(times) * 1000, len(times)


def _latency(reference_ms: float, runs: int, runner: OnnxRunner, inputs: dict[str, np.ndarray]) -> dict:
    onnx_ms, _ = _median_ms(lambda: runner.run(inputs))
    return {
        "batch_size": int(next(iter(inputs.values())).shape[0]),
        "runs": runs,
        "reference_ms": round(reference_ms, 4),
        "onnxruntime_ms": round(onnx_ms, 4),
    }


def _versions(backend: Backend) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("numpy", "onnx", "onnxruntime"):
        versions[package] = md.version(package)
    versions.update(backend.versions())
    versions["onnx-convert-action"] = _own_version()
    return versions


def _own_version() -> str:
    try:
        return md.version("onnx-convert-action")
    except md.PackageNotFoundError:
        return "dev"


def _safe_stem(path: Path) -> str:
    stem = path.name if path.is_dir() else path.stem
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._")
    return cleaned or "model"


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return None


def return_freed_memory() -> None:
    """Give the memory the process has freed back to the system (glibc ``malloc_trim``).

    glibc keeps freed memory in its arenas, one per thread that allocated it, and TensorFlow's
    threads leave much there: after a ConvNeXtLarge reference run 600 MB of RSS is freed memory
    that the next phase (tf2onnx, onnxruntime's session, on other threads) cannot reuse.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:  # a stage run more than once (one export per route) adds up
        timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - start, 4)


@contextmanager
def _staging(output_dir: Path) -> Iterator[Path]:
    """A temporary directory next to the output, removed whatever happens.

    Files are made here and renamed into ``output_dir`` only when complete, so a failed
    run leaves no half-written file and an output directory it created is removed again.
    """
    created = not output_dir.exists()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f'--output-dir "{output_dir}" cannot be created ({exc.strerror})', "give a writable directory"
        ) from None
    try:
        staging = Path(tempfile.mkdtemp(prefix=".onnx-convert-", dir=output_dir))
    except OSError as exc:  # it exists but is read-only, or not ours
        raise UserError(
            f'--output-dir "{output_dir}": cannot write in it ({exc.strerror})', "give a writable directory"
        ) from None
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(output_dir.iterdir()):
            output_dir.rmdir()


def _write_reports(report: Report, staging: Path, stem: str, output_dir: Path) -> None:
    report.reports = {
        "json": str(output_dir / f"{stem}.report.json"),
        "markdown": str(output_dir / f"{stem}.report.md"),
    }
    (staging / f"{stem}.report.json").write_text(report.to_json(), encoding="utf-8")
    (staging / f"{stem}.report.md").write_text(report.to_markdown(), encoding="utf-8")


def _publish(staging: Path, output_dir: Path) -> None:
    """Rename every finished file into place (same filesystem: atomic per file)."""
    for path in sorted(staging.iterdir(), key=lambda p: p.suffix == ".json"):  # JSON last: it marks completion
        path.replace(output_dir / path.name)
