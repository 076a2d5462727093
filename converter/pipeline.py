"""load -> reference run -> export attempts (export -> check -> validate) -> baseline, variants,
signature -> report, the same for every framework.

``convert`` reads in one sitting: the request picks a backend, the backend loads the model and
says what it takes, the original model is run for every reference output, ``attempts`` tries the
export routes until one reproduces the model, the kept file is compared with the baseline, its
variants are made and it is signed, and the report is written whatever happened.
A ``Conversion`` carries what every step shares.
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from converter.attempts import Candidate, first_reproducing
from converter.baseline.compare import OpenedBaseline, ThisRun, compare_with_baseline, judge, open_baseline
from converter.errors import ConversionError, UserError
from converter.frameworks import resolve_backend
from converter.frameworks.base import Backend, ExportJob, ExportResult, LoadedModel, TensorSpec
from converter.inputs import (
    check_generated_size,
    generate_inputs,
    input_plans,
    resize_batch,
    resolve_specs,
    second_run_inputs,
    validation_rows,
)
from converter.memory import return_freed_memory
from converter.naming import file_stem
from converter.onnx_file import sha256_of, size_of
from converter.opsets import check_requested
from converter.packages import install_requirements
from converter.provenance import collect_provenance
from converter.report import ModelInfo, Report, onnx_info
from converter.request import ConversionRequest
from converter.samples import check_samples_fit, load_sample_data
from converter.signing import check_signing, sign
from converter.validate import Criteria, OnnxRunner, Reference
from converter.variants.run import VariantJob, add_variants

LATENCY_RUNS = 5
LATENCY_BUDGET_S = 0.5  # per side: fast models get 5 runs, slow ones 3 (bench: latency was 9% of a ResNet-18 run)
Log = Callable[[str], None]


def convert(request: ConversionRequest, log: Log = lambda _msg: None) -> Report:
    """Convert and validate one model; write the .onnx and reports into ``request.output_dir``.

    Raises ``UserError`` for bad input (nothing written). A model that cannot be converted
    returns a report with status "error" (reports written, no .onnx).
    """
    timings = Timings()
    backend, fmt = resolve_backend(request.framework, request.model_path)
    log(f"{request.model_path}: {backend.name} model ({fmt})")
    check_requested(request.opset, backend)
    # The baseline and the signing key are checked before any work: a bad one costs no model load.
    opened = open_baseline(request.baseline, file_stem(request.model_path))
    check_signing(request.sign)
    installed = None
    if request.requirements is not None:  # before the load: the model-code file imports them
        log("installing --requirements")  # the step a crashed child names (converter/isolated.py)
        with timings.stage("requirements"):
            installed = install_requirements(request.requirements, request.import_root)
    log("loading the model")  # the step a crashed child names (converter/isolated.py)
    with timings.stage("load"):
        loaded = backend.load(request, fmt)
    specs, first_inputs, originals = _inputs(backend, loaded, request)
    report = Report(
        passed=False, status="error", model=_model_info(request, backend, loaded), command=request.command_line()
    )
    report.versions = _versions(backend)
    report.requirements = asdict(installed) if installed else {}
    report.inputs = [] if originals is not None else [plan.to_dict() for plan in input_plans(specs)]
    report.warnings.extend(loaded.notes)
    request.check_output_dir()  # when it is written: a link may have appeared since the option was parsed
    with _staging(request.output_dir) as staging:
        run = Conversion(request, backend, loaded, specs, report, timings, log, staging)
        try:
            run.reference_runs(first_inputs, originals)
            chosen = first_reproducing(run)
            run.measure_latency(chosen)  # a kept file that mismatched, if it ran
        except ConversionError as exc:
            report.error = exc.one_line()
            report.provenance = collect_provenance(report.model.sha256, "", report.command)
        else:
            _finish(run, chosen)
            _after_validation(run, chosen, opened)
        report.timings = timings.with_total()
        _write_reports(report, staging, request.output_dir)
        _publish(staging, request.output_dir)
    return report


@dataclass
class Conversion:
    """One conversion in progress: what every step reads, and the report they fill."""

    request: ConversionRequest
    backend: Backend[Any]
    loaded: LoadedModel[Any]
    specs: list[TensorSpec]
    report: Report
    timings: Timings
    log: Log
    staging: Path  # a temporary folder in the output dir; finished files are renamed out of it
    references: list[Reference] = field(default_factory=list)  # inputs and the original's outputs, per batch size
    reference_latency: tuple[float, int] = (0.0, 0)  # median ms of the original model, and over how many runs

    @property
    def first_inputs(self) -> dict[str, np.ndarray]:
        """The first validation inputs: the example the exporters that trace are given."""
        return self.references[0][0]

    @property
    def file_name(self) -> str:
        return f"{file_stem(self.request.model_path)}.onnx"

    @property
    def criteria(self) -> Criteria:
        return Criteria(self.request.rtol, self.request.atol, self.loaded.label_outputs)

    @property
    def input_source(self) -> str:
        sample = self.request.sample_data
        return sample.name if sample else f"generated (seed {self.request.seed})"

    def reference_runs(self, first: dict[str, np.ndarray], originals: dict[str, np.ndarray] | None) -> None:
        """Every run of the original model, before the first export: the backend may free the
        model after an export, before onnxruntime loads the file, so the two never hold the weights at once.

        ``originals``: the sample data as read, which a backend that ``runs_on_samples_as_read`` gets
        instead of the file's input dtypes (scikit-learn: float64 from a CSV, as the model was fitted)."""
        second = second_run_inputs(self.specs, first, self.request, originals is not None)
        as_read = originals if originals is not None and self.backend.runs_on_samples_as_read else None
        first_reference = as_read if as_read is not None else first
        self.log("running the original model")
        with self.timings.stage("reference_run"):
            self.references = [(first, self.backend.run(self.loaded, first_reference))]
            if second is not None:
                rows = len(next(iter(second.values())))
                second_reference = second if as_read is None else resize_batch(as_read, self.specs, rows)
                self.references.append((second, self.backend.run(self.loaded, second_reference)))
        self.reference_latency = _median_ms(lambda: self.backend.run(self.loaded, first_reference))
        return_freed_memory()

    def export(self, job: ExportJob) -> ExportResult:
        """One export; the model is loaded again first if an earlier export released it (base.py's lifecycle)."""
        if self.loaded.released:
            with self.timings.stage("load"):
                self.loaded = self.backend.reload(self.loaded, self.request)
        self.log(f"exporting with {job.route.name} at opset {job.opset}")
        with self.timings.stage("export"):
            exported = self.backend.export(self.loaded, job)
            self.backend.release(self.loaded)
            return_freed_memory()
        return exported

    def measure_latency(self, candidate: Candidate) -> None:
        """The median time of the original and of the file on the first inputs, into the report: once, and
        only for a file that ran on them."""
        if self.report.latency or candidate.validation.batches[0].problem:
            return
        runner = candidate.runner or OnnxRunner(candidate.exported.path)
        candidate.runner = runner
        onnx_ms, _ = _median_ms(lambda: runner.run(self.first_inputs))
        reference_ms, runs = self.reference_latency
        self.report.latency = {
            "batch_size": int(next(iter(self.first_inputs.values())).shape[0]),
            "runs": runs,
            "reference_ms": round(reference_ms, 4),
            "onnxruntime_ms": round(onnx_ms, 4),
        }


def _inputs(
    backend: Backend[Any], loaded: LoadedModel[Any], request: ConversionRequest
) -> tuple[list[TensorSpec], dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """The resolved input specs, the first validation inputs (the sample data in the file's dtypes,
    or generated ones) and the sample data as read (None when generated)."""
    model_specs = backend.input_specs(loaded, request)
    samples = load_sample_data(request.sample_data, model_specs) if request.sample_data else None
    specs = resolve_specs(model_specs, request, samples)
    if samples is not None:
        return specs, check_samples_fit(samples, specs), samples
    rows = validation_rows(specs, request.validation_samples)
    check_generated_size(specs, rows)
    first = generate_inputs(specs, rows, request.seed)
    tables = backend.index_tables(loaded, first)
    if not tables:
        return specs, first, None
    # Each input now kept below the table it indexes, not below the smallest of the model.
    specs = [_bounded(spec, tables.get(spec.name)) for spec in specs]
    return specs, generate_inputs(specs, rows, request.seed), None


def _bounded(spec: TensorSpec, rows: int | None) -> TensorSpec:
    if rows is None:
        return spec
    return replace(spec, high=rows, bound=f"the {rows:,}-row table it indexes (seen in a run)")


def _finish(run: Conversion, chosen: Candidate) -> None:
    """The report of the kept file: its facts, its validation, the attempts that lost to it."""
    report, validation = run.report, chosen.validation
    report.warnings.extend(chosen.warnings)
    fallback_reason = chosen.route.fallback_reason
    position = next(i for i, attempt in enumerate(report.export_attempts) if attempt is chosen.attempt)
    earlier = report.export_attempts[:position]
    if earlier:  # the attempts preferred to the one whose file is kept, and why they lost
        fallback_reason = "; ".join(f"{a.route}: {a.reason}" for a in earlier)
    if fallback_reason:
        report.warnings.append(f"exported with {chosen.route.name} after the preferred path failed: {fallback_reason}")
    report.onnx = onnx_info(chosen.exported, chosen.facts, chosen.route.name, fallback_reason, run.request.output_dir)
    report.validation = validation
    report.passed = validation.passed
    report.status = "passed" if validation.passed else "failed"
    report.versions["opset"] = str(chosen.facts.opset)


def _after_validation(run: Conversion, chosen: Candidate, opened: OpenedBaseline | None) -> None:
    """The comparison with the baseline, the variants and the signature of the kept file, then its provenance."""
    report, request, exported = run.report, run.request, chosen.exported
    assert report.onnx is not None
    if opened is not None:  # both files on this run's inputs, while its session is loaded
        runner = chosen.runner or OnnxRunner(exported.path)
        judge(
            report,
            compare_with_baseline(
                opened, request.baseline, ThisRun.of(report.onnx, chosen.validation, runner, run.references)
            ),
        )
    chosen.runner = None  # the variants are timed against an fp32 session of their own
    if request.variants.names:  # each validated against the original model's runs, not the fp32 file
        job = VariantJob(exported.path, run.references, run.loaded.label_outputs, request.output_dir)
        with run.timings.stage("variants"):
            add_variants(report, request, job, run.log)
    files = [exported.path, *exported.extra_files]
    signature = sign(request.sign, files) if report.passed and request.sign != "none" else {}
    report.provenance = collect_provenance(report.model.sha256, report.onnx.sha256, report.command, signature)


def _model_info(request: ConversionRequest, backend: Backend[Any], loaded: LoadedModel[Any]) -> ModelInfo:
    return ModelInfo(
        path=str(request.model_path),
        framework=backend.name,
        format=loaded.format,
        description=loaded.description,
        sha256=sha256_of(request.model_path),
        bytes=size_of(request.model_path),
    )


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


def _versions(backend: Backend[Any]) -> dict[str, str]:
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


class Timings:
    """Seconds per stage; a stage run more than once (an export per attempt) adds up."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 4)

    def with_total(self) -> dict[str, float]:
        return {**self.seconds, "total": round(time.perf_counter() - self.started, 4)}


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


def _write_reports(report: Report, staging: Path, output_dir: Path) -> None:
    stem = file_stem(Path(report.model.path))
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
