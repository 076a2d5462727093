"""Export attempts: each of the backend's routes, at each opset the opset rule gives it, exported,
checked, loaded in onnxruntime and validated the same way, until one reproduces the model.

Every attempt is recorded in ``report.export_attempts``. When none reproduces, the first file
that exported and ran is kept (its validation says how it differs); when none did, the run ends
with an error naming each route's first failure. Each attempt writes into a folder of its own,
so a kept file is never overwritten; the kept file's files move up to the staging folder.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from converter.errors import ConversionError, UnsupportedByRoute
from converter.frameworks.base import ExportJob, ExportResult, ExportRoute
from converter.onnx_file import OnnxFacts, check_and_describe, name_batch_axes
from converter.opsets import OpsetSearch, Outcome, check_written
from converter.report import ExportAttempt
from converter.validate import OnnxRunner, Validation, fixed_axis_problems, validate

if TYPE_CHECKING:
    from converter.pipeline import Conversion


@dataclass
class Candidate:
    """One attempt's validated file; its runner is dropped while later attempts run."""

    route: ExportRoute
    exported: ExportResult
    facts: OnnxFacts
    runner: OnnxRunner | None
    warnings: list[str]
    validation: Validation
    attempt: ExportAttempt


@dataclass
class Failure:
    """An attempt that left no file to keep."""

    route: ExportRoute
    opset: int | None
    error: ConversionError


@dataclass
class _Search:
    """The attempts so far."""

    kept: Candidate | None = None
    failures: list[Failure] = field(default_factory=list)
    count: int = 0


def first_reproducing(run: Conversion) -> Candidate:
    """The first attempt whose file reproduces the model, else the first that exported and ran.

    Raises the routes' ``ConversionError`` when no attempt left a file that ran.
    """
    search = _Search()
    for route in run.backend.export_routes(run.loaded):
        if _try_route(run, route, search):
            break
    if search.kept is None:
        raise _all_failed(search.failures, run.loaded.description)
    return _moved_up(search.kept, run.staging)


def _try_route(run: Conversion, route: ExportRoute, search: _Search) -> bool:
    """Every opset the rule gives this route, until one reproduces (True) or the route is done."""
    opsets = OpsetSearch(route, run.request.opset)
    try:
        opset: int | None = opsets.first()
    except ConversionError as exc:  # the route cannot write the opset asked for
        _record_failure(run, search, Failure(route, run.request.opset, exc), 0.0)
        return False
    while opset is not None:
        search.count += 1
        attempt = _Attempt(run, route, opset, run.staging / f"attempt-{search.count}")
        outcome = attempt.run(search)
        if search.kept is not None and search.kept.validation.passed:
            return True
        opset = opsets.next(outcome)
    return False


class _Attempt:
    """One route at one opset, as far as it got."""

    def __init__(self, run: Conversion, route: ExportRoute, opset: int, folder: Path) -> None:
        self.conversion, self.route, self.opset, self.folder = run, route, opset, folder
        self.facts: OnnxFacts | None = None
        self.started = time.perf_counter()

    def validated(self) -> Candidate:
        """Export, check, load and validate; raises ``ConversionError`` when the file cannot be kept."""
        run = self.conversion
        self.folder.mkdir()
        path = self.folder / run.file_name
        exported = run.export(
            ExportJob(self.route, self.opset, run.specs, path, run.request.dynamic_batch, run.first_inputs)
        )
        with run.timings.stage("check"):
            self.facts = check_and_describe(exported.path)
            if run.request.dynamic_batch and name_batch_axes(exported.path, self.facts):
                self.facts = check_and_describe(exported.path)
        warnings = exported.warnings + check_written(run.request.opset, self.facts.opset)
        run.log("validating in onnxruntime")
        with run.timings.stage("validate"):
            runner = OnnxRunner(exported.path)
            problems = fixed_axis_problems(self.facts, run.specs, run.request.dynamic_batch)
            validation = validate(runner, run.references, run.criteria, problems, run.input_source)
        return Candidate(self.route, exported, self.facts, runner, warnings, validation, self._attempt(validation))

    def run(self, search: _Search) -> Outcome:
        """Make the attempt and record it in the report and ``search``; what the next opset depends on."""
        try:
            candidate = self.validated()
            if candidate.validation.passed:
                self.conversion.measure_latency(candidate)
        except ConversionError as exc:
            shutil.rmtree(self.folder, ignore_errors=True)
            _record_failure(self.conversion, search, Failure(self.route, self.opset, exc), self._seconds())
            return self._outcome(isinstance(exc, UnsupportedByRoute))
        self.conversion.report.export_attempts.append(candidate.attempt)
        _keep_first_or_passing(search, candidate)
        return self._outcome(bool(candidate.validation.problems))

    def _attempt(self, validation: Validation) -> ExportAttempt:
        passed = validation.passed
        reason = "" if passed else next(iter(validation.failures()), "validation failed")
        return ExportAttempt(self.route.name, "passed" if passed else "mismatch", reason, self._seconds(), self.opset)

    def _outcome(self, same_at_any_opset: bool) -> Outcome:
        if self.facts is None:
            return Outcome(self.opset, same_at_any_opset=same_at_any_opset)
        return Outcome(self.opset, self.facts.opset, frozenset(self.facts.operators), same_at_any_opset)

    def _seconds(self) -> float:
        return round(time.perf_counter() - self.started, 2)


def _record_failure(run: Conversion, search: _Search, failure: Failure, seconds: float) -> None:
    search.failures.append(failure)
    attempt = ExportAttempt(failure.route.name, "error", failure.error.one_line(), seconds, failure.opset)
    run.report.export_attempts.append(attempt)


def _keep_first_or_passing(search: _Search, candidate: Candidate) -> None:
    """Keep the first file that ran, unless this one reproduces the model; discard the other."""
    kept = search.kept
    if kept is None or candidate.validation.passed:
        if kept is not None:  # an earlier file that mismatched: this one wins
            _discard(kept)
        search.kept = candidate
    else:
        _discard(candidate)
    if not candidate.validation.passed:
        candidate.runner = None  # free its onnxruntime session before the next attempt


def _discard(candidate: Candidate) -> None:
    candidate.runner = None
    shutil.rmtree(candidate.exported.path.parent, ignore_errors=True)


def _moved_up(candidate: Candidate, staging: Path) -> Candidate:
    """The kept file's files move up from its attempt's folder into ``staging``, where they are published from."""
    exported = candidate.exported
    folder = exported.path.parent
    for written in [exported.path, *exported.extra_files]:
        written.replace(staging / written.name)
    shutil.rmtree(folder)
    exported.path = staging / exported.path.name
    exported.extra_files = [staging / p.name for p in exported.extra_files]
    return candidate


def _all_failed(failures: list[Failure], description: str) -> ConversionError:
    """One route, or the same error from every route: that error. Else each route's first error, in one line."""
    firsts: dict[str, Failure] = {}
    for failure in failures:
        firsts.setdefault(failure.route.name, failure)
    if len({f.error.one_line() for f in firsts.values()}) == 1:
        return next(iter(firsts.values())).error
    reasons = "; ".join(f"{f.route.name} at opset {f.opset}: {f.error.message}" for f in firsts.values())
    hints = "; ".join(dict.fromkeys(f.error.hint for f in firsts.values() if f.error.hint))
    return ConversionError(f"no export route could convert {description}: {reasons}", hints)
