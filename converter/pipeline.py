"""load -> reference run -> export -> check -> validate -> report, the same for every framework."""

from __future__ import annotations

import importlib.metadata as md
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from converter.errors import ConversionError, UserError
from converter.frameworks import resolve_backend
from converter.frameworks.base import Backend, LoadedModel, TensorSpec
from converter.inputs import (
    BATCH,
    OTHER_DYNAMIC_SIZES,
    check_samples_fit,
    generate_inputs,
    load_sample_data,
    resize_batch,
    resolve_specs,
    second_batch_size,
)
from converter.onnx_file import OnnxFacts, check_and_describe, runtime_max_opset, sha256_of, size_of
from converter.report import ModelInfo, OnnxInfo, Report
from converter.request import ConversionRequest
from converter.validate import OnnxRunner, validate

LATENCY_RUNS = 5
LATENCY_BUDGET_S = 0.5  # per side: fast models get 5 runs, slow ones 3 (bench: latency was 9% of a ResNet-18 run)
Log = Callable[[str], None]


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
    first_inputs = (
        check_samples_fit(samples, specs)
        if samples is not None
        else generate_inputs(specs, request.validation_samples, request.seed)
    )
    report = Report(passed=False, status="error", model=model_info, command=request.command_line())
    report.versions = _versions(backend)
    report.warnings.extend(loaded.notes)
    with _staging(request.output_dir) as staging:
        try:
            with _timed(timings, "reference_run"):
                first_reference = backend.run(loaded, first_inputs)
            log(f"exporting at opset {opset}")
            stem = _safe_stem(request.model_path)
            with _timed(timings, "export"):
                exported = backend.export(loaded, specs, opset, staging / f"{stem}.onnx", request.dynamic_batch)
            with _timed(timings, "check"):
                facts = check_and_describe(exported.path)
            report.warnings.extend(exported.warnings)
            if exported.fallback_reason:
                report.warnings.append(
                    f"exported with {exported.export_path} after the preferred path failed: {exported.fallback_reason}"
                )
            _check_opset(request.opset, facts, report)
            log("validating in onnxruntime")
            with _timed(timings, "validate"):
                runner = OnnxRunner(exported.path)
                runs = [(first_inputs, first_reference)]
                problems = _fixed_axis_problems(facts, specs, request.dynamic_batch)
                second = _second_inputs(specs, first_inputs, request, samples is not None)
                if second is not None:
                    runs.append((second, backend.run(loaded, second)))
                source = f"{request.sample_data.name}" if request.sample_data else f"generated (seed {request.seed})"
                validation = validate(runner, runs, request.rtol, request.atol, loaded.label_outputs, problems, source)
            report.latency = _latency(backend, loaded, runner, first_inputs)
        except ConversionError as exc:
            report.error = exc.one_line()
            report.timings = {**timings, "total": round(time.perf_counter() - started, 4)}
            _write_reports(report, staging, _safe_stem(request.model_path), request.output_dir)
            _publish(staging, request.output_dir)
            return report
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
            fallback_reason=exported.fallback_reason,
            files=[str(final_dir / p.name) for p in [exported.path, *exported.extra_files]],
        )
        report.validation = validation
        report.passed = validation.passed
        report.status = "passed" if validation.passed else "failed"
        report.versions["opset"] = str(facts.opset)
        report.timings = {**timings, "total": round(time.perf_counter() - started, 4)}
        _write_reports(report, staging, stem, final_dir)
        _publish(staging, final_dir)
    return report


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


def _check_opset(requested: int | None, facts: OnnxFacts, report: Report) -> None:
    if requested is None or facts.opset == requested:
        return
    if facts.opset > requested:
        raise ConversionError(
            f"asked for opset {requested} but the exporter wrote opset {facts.opset}; "
            f"runtimes limited to opset {requested} cannot load it"
        )
    report.warnings.append(
        f"asked for opset {requested}; the exporter wrote opset {facts.opset}, the lowest that holds every operator "
        f"of this model (any runtime that supports opset {requested} loads it)"
    )


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
    if not any(isinstance(d, str) for s in specs for d in (s.shape or ())):
        return None
    first_batch = next(iter(first.values())).shape[0]
    batch = second_batch_size(first_batch)
    if from_samples:
        return resize_batch(first, specs, batch)
    return generate_inputs(specs, batch, request.seed + 1, OTHER_DYNAMIC_SIZES[1])


def _latency(backend: Backend, loaded: LoadedModel, runner: OnnxRunner, inputs: dict[str, np.ndarray]) -> dict:
    def median_ms(fn: Callable[[], object]) -> tuple[float, int]:
        times: list[float] = []
        spent = 0.0
        while len(times) < LATENCY_RUNS and (len(times) < 3 or spent < LATENCY_BUDGET_S):
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            times.append(elapsed)
            spent += elapsed
        return statistics.median(times) * 1000, len(times)

    reference_ms, runs = median_ms(lambda: backend.run(loaded, inputs))
    onnx_ms, _ = median_ms(lambda: runner.run(inputs))
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


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round(time.perf_counter() - start, 4)


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
    staging = Path(tempfile.mkdtemp(prefix=".onnx-convert-", dir=output_dir))
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
