"""The conversion, and a many-model run, in a child process: a crash becomes a report, not silence.

The shells call these instead of ``pipeline.convert`` and ``batch.run_batch``. The child converts
(``converter/child_process.py``) and sends back the report, or the error a user sees, or each
model's index row; a child killed by a signal becomes a report with status "error" that says
what killed it, after which step, and how to run it again with --debug, written where the
pipeline writes its reports. In a many-model run one child converts the models one after the
other (each framework imported once, as before); when it dies, the model it was converting gets
that report and a new child goes on with the next.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from converter import child_process
from converter.batch import BatchIndex, IndexRow, run_batch
from converter.child_process import Options
from converter.errors import ConversionError, ConverterError, UserError
from converter.manifest import Entry
from converter.report import ModelInfo, Report
from converter.request import ConversionRequest

Log = Callable[[str], None]
STAGING_PREFIX = ".onnx-convert-"  # pipeline._staging's folders: a dead child leaves its own behind


def convert(request: ConversionRequest, log: Log, child: Options | None) -> Report:
    """``pipeline.convert`` in a child process run with ``child`` (None, or no fork: in this one)."""
    from converter.pipeline import convert as convert_here

    if child is None or not child_process.available():
        return convert_here(request, log)
    got: dict[str, Any] = {"progress": ""}
    started = time.perf_counter()

    def work(channel: child_process.Channel) -> None:
        try:
            report = convert_here(request, _reporting(log, channel))
        except ConverterError as exc:
            channel.send("error", _error_fields(exc, child.debug))
        else:
            channel.send("report", report.to_dict())

    before = _staging_folders(request.output_dir)
    death = child_process.run_in_child(work, got.__setitem__, child)
    if death is not None:
        _remove_staging_left_by(request.output_dir, before)
        return crash_report(request, death, got["progress"], time.perf_counter() - started)
    if "error" in got:
        raise _rebuilt(got["error"])
    return Report.from_dict(got["report"])


def run_many(
    entries: list[Entry], log: Log, on_result: Callable[[IndexRow], None] | None, child: Options | None
) -> BatchIndex:
    """``batch.run_batch`` in child processes: a crash costs the model being converted, not the others."""
    if child is None or not child_process.available():
        return run_batch(entries, log, on_result)
    index = BatchIndex()
    while len(index.rows) < len(entries):
        first = len(index.rows)
        progress: dict[str, Any] = {"line": "", "since": time.perf_counter()}  # since: the current model's start
        before = {e.request.output_dir: _staging_folders(e.request.output_dir) for e in entries[first:]}

        def work(channel: child_process.Channel, first: int = first) -> None:
            row = lambda done: channel.send("row", asdict(done))  # noqa: E731
            run_batch(entries, _reporting(log, channel), on_result=row, first=first)

        def on_message(kind: str, value: Any, progress: dict[str, Any] = progress) -> None:
            if kind == "progress":
                progress["line"] = value
            elif kind == "row":
                progress["since"] = time.perf_counter()
                index.rows.append(IndexRow(**value))
                if on_result:
                    on_result(index.rows[-1])

        death = child_process.run_in_child(work, on_message, child)
        if death is None or len(index.rows) == len(entries):  # done, or killed once every row was in
            break
        entry = entries[len(index.rows)]  # the model it was converting when it died
        _remove_staging_left_by(entry.request.output_dir, before[entry.request.output_dir])
        report = crash_report(entry.request, death, progress["line"], time.perf_counter() - progress["since"])
        index.rows.append(IndexRow.from_report(entry.name, report))
        if on_result:
            on_result(index.rows[-1])
    return index


def crash_report(request: ConversionRequest, death: child_process.Death, progress: str, seconds: float) -> Report:
    """The report of a conversion whose process died, written into the output folder."""
    from converter.onnx_file import sha256_of, size_of

    step = f' at the step "{progress}"' if progress else " before it reported any step"
    problem = ConversionError(
        f"the conversion process was {death.describe()}{step}",
        "a native library crashed on this model or ran out of memory: the file may be damaged or hostile; "
        "run the command under Reproduce (with --debug) to see where",
    )
    framework, fmt = _framework_of(request)
    model = request.model_path
    report = Report(
        passed=False,
        status="error",
        model=ModelInfo(str(model), framework, fmt, "", sha256_of(model), size_of(model)),
        error=problem.one_line(),
        timings={"total": round(seconds, 4)},
        command=f"{request.command_line()} --debug",
    )
    try:
        request.check_output_dir()
    except UserError as exc:  # a link appeared there: the report goes to the summary and the log only
        report.warnings.append(f"reports not written: {exc.one_line()}")
        return report
    _write_reports(report, request.output_dir)
    return report


# -- helpers ------------------------------------------------------------------------------


def _reporting(log: Log, channel: child_process.Channel) -> Log:
    """The shell's log, each line also sent to the parent: the last one says where a crash happened."""

    def report_and_log(message: str) -> None:
        channel.send("progress", message)
        log(message)

    return report_and_log


def _error_fields(exc: ConverterError, debug: bool) -> dict[str, Any]:
    if debug:  # the parent raises a copy: the child's traceback is the one that says where
        import traceback

        traceback.print_exc()
    return {"message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}


def _rebuilt(fields: dict[str, Any]) -> ConverterError:
    kind = UserError if fields["exit_code"] == UserError.exit_code else ConversionError
    return kind(fields["message"], fields["hint"])


def _framework_of(request: ConversionRequest) -> tuple[str, str]:
    from converter.frameworks import resolve_backend

    try:
        backend, fmt = resolve_backend(request.framework, request.model_path)
    except ConverterError:
        return request.framework, ""
    return backend.name, fmt


def _staging_folders(output_dir: Path) -> set[Path]:
    return set(output_dir.glob(f"{STAGING_PREFIX}*")) if output_dir.is_dir() else set()


def _remove_staging_left_by(output_dir: Path, before: set[Path]) -> None:
    """The staging folders the dead child made: half-written files must not be published."""
    for folder in _staging_folders(output_dir) - before:
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)


def _write_reports(report: Report, output_dir: Path) -> None:
    """Where and how the pipeline writes a report: staged, then renamed into place."""
    from converter.pipeline import _publish, _staging
    from converter.pipeline import _write_reports as write_staged

    with _staging(output_dir) as staging:
        write_staged(report, staging, output_dir)
        _publish(staging, output_dir)
