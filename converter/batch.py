"""Run many models in one process and write the index report.

One process pays each framework's import once; each model is isolated so that one failure
does not stop the rest. The index (markdown and JSON) is also what `merge` rebuilds from the
per-model reports of a fan-out run.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from converter.atomic import write_file
from converter.errors import ConverterError
from converter.manifest import Entry
from converter.report import Report

INDEX_STEM = "index"


@dataclass
class IndexRow:
    name: str
    model: str
    passed: bool
    status: str  # passed, failed, error
    framework: str = ""
    format: str = ""
    opset: int | None = None
    onnx_bytes: int | None = None
    max_abs_diff: float | None = None
    seconds: float = 0.0
    error: str = ""
    report: str = ""  # path of the model's JSON report, when there is one
    # The model's verdict, from its validation (converter.validate.OutputVerdict): the tolerance,
    # the worst output with its |diff| and allowed value there, how far over, and what would pass.
    atol: float | None = None
    rtol: float | None = None
    worst_output: str = ""
    worst_diff: float | None = None
    worst_allowed: float | None = None
    over_by: float | None = None  # None with a worst_output: unbounded (nothing was allowed)
    tolerance_applies: bool = False  # False: labels, a missing output or a shape failed, no tolerance helps
    passing_atol: float | None = None
    passing_rtol: float | None = None

    @classmethod
    def from_report(cls, name: str, report: Report, seconds: float | None = None) -> IndexRow:
        row = cls(
            name=name,
            model=report.model.path,
            passed=report.passed,
            status=report.status,
            framework=report.model.framework,
            format=report.model.format,
            opset=report.onnx.opset if report.onnx else None,
            onnx_bytes=report.onnx.bytes if report.onnx else None,
            max_abs_diff=report.max_abs_diff,
            seconds=round(seconds if seconds is not None else report.timings.get("total", 0.0), 3),
            error=report.error
            or (", ".join(report.validation.failing_outputs()) if report.validation and not report.passed else "")
            or "; ".join(report.baseline.failures if report.baseline else []),
            report=report.reports.get("json", ""),
        )
        validation = report.validation
        worst = validation.worst_verdict() if validation else None
        if validation and worst:
            row.atol, row.rtol = validation.atol, validation.rtol
            row.worst_output, row.worst_diff, row.worst_allowed = worst.name, worst.worst_diff, worst.worst_allowed
            row.over_by, row.tolerance_applies = worst.max_ratio, worst.tolerance_applies
            if not report.passed:
                row.passing_atol, row.passing_rtol = validation.passing_tolerance()
        return row

    def to_markdown(self) -> str:
        """This model's row of the index table (converter/markdown/index.py)."""
        from converter.markdown.index import index_row

        return index_row(self)


@dataclass
class BatchIndex:
    rows: list[IndexRow] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)

    def to_json(self) -> str:
        return json.dumps({"passed": self.passed, "models": [asdict(r) for r in self.rows]}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BatchIndex:
        return cls([IndexRow(**row) for row in json.loads(text)["models"]])

    def to_markdown(self, limit: int | None = None) -> str:
        """The index (converter/markdown/index.py); with ``limit``, in at most that many bytes (GitHub
        refuses a job summary over 1 MiB): failures first; index.json always lists every model."""
        from converter.markdown.index import render_index

        return render_index(self.rows, sys.maxsize if limit is None else limit)

    def write(self, output_dir: Path) -> tuple[Path, Path]:
        """Write index.json and index.md into ``output_dir`` (renamed into place)."""
        output_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for suffix, text in ((".md", self.to_markdown()), (".json", self.to_json())):
            paths.append(write_file(output_dir / f"{INDEX_STEM}{suffix}", text))
        return paths[0], paths[1]


def run_batch(
    entries: list[Entry],
    log: Callable[[str], None],
    on_result: Callable[[IndexRow], None] | None = None,
    first: int = 0,
) -> BatchIndex:
    """Convert every entry from ``entries[first]`` on; a failure is recorded and the next model runs."""
    from converter.pipeline import convert

    index = BatchIndex()
    for number, entry in enumerate(entries[first:], start=first + 1):
        log(f"[{number}/{len(entries)}] {entry.name}")
        start = time.perf_counter()
        try:
            report = convert(entry.request, log)
            row = IndexRow.from_report(entry.name, report, time.perf_counter() - start)
        except ConverterError as exc:
            row = _error_row(entry, exc.one_line(), start)
        except Exception as exc:  # a bug in this tool or a framework: keep going, keep the traceback
            traceback.print_exc(file=sys.stderr)
            row = _error_row(entry, f"internal error: {type(exc).__name__}: {exc}", start)
        index.rows.append(row)
        if on_result:
            on_result(row)
    return index


def _error_row(entry: Entry, message: str, start: float) -> IndexRow:
    return IndexRow(
        name=entry.name,
        model=entry.model,
        passed=False,
        status="error",
        error=message,
        seconds=round(time.perf_counter() - start, 3),
    )


def merge_reports(report_paths: list[Path]) -> BatchIndex:
    """The index of a fan-out run, rebuilt from the per-model JSON reports."""
    from converter.merged import read_row  # other jobs wrote them: read as untrusted

    rows = [read_row(path.parent.name or path.stem, path) for path in sorted(report_paths)]
    return BatchIndex(sorted(rows, key=lambda r: r.name))
