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
from converter.escape import markdown_code, markdown_text
from converter.manifest import Entry
from converter.markdown import table_head, table_row
from converter.report import Report

INDEX_STEM = "index"
MAX_ERROR_CHARS = 300  # of an error in the index table; the model's own report has all of it
CUT_NOTE_BYTES = 512  # room kept for the note that says how many rows were cut
INDEX_HEADER = ("Model", "Framework", "Format", "Opset", "ONNX size", "Max abs diff", "Result", "Time")


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

    @classmethod
    def from_report(cls, name: str, report: Report, seconds: float | None = None) -> IndexRow:
        return cls(
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

    def to_markdown(self) -> str:
        """This model's row of the index table; every value escaped (names come from the repository)."""
        result = "✅ pass" if self.passed else f"❌ {markdown_text(self.status)}"
        if not self.passed and self.error:
            cut = self.error if len(self.error) <= MAX_ERROR_CHARS else self.error[: MAX_ERROR_CHARS - 3] + "..."
            result += f": {markdown_text(cut)}"
        cells = [
            markdown_code(self.name),
            markdown_text(self.framework or "-"),
            markdown_text(self.format or "-"),
            str(self.opset) if self.opset is not None else "-",
            f"{self.onnx_bytes:,} bytes" if self.onnx_bytes is not None else "-",
            f"{self.max_abs_diff:.3g}" if self.max_abs_diff is not None else "-",
            result,
            f"{self.seconds:.1f} s",
        ]
        return table_row(cells)


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
        """The index table; with ``limit``, in at most that many bytes (GitHub refuses a job summary over 1 MiB).

        When every row does not fit, failures come first and the table says how many were cut;
        index.json always lists every model.
        """
        lines = [self._heading(), "", *table_head(INDEX_HEADER)]
        rows = [row.to_markdown() for row in self.rows]
        text = "\n".join(lines + rows) + "\n"
        if limit is None or len(text.encode()) <= limit:
            return text
        ordered = [md for row, md in zip(self.rows, rows, strict=True) if not row.passed]
        ordered += [md for row, md in zip(self.rows, rows, strict=True) if row.passed]
        shown = _fitting(ordered, limit - len("\n".join(lines).encode()) - CUT_NOTE_BYTES)
        return "\n".join(lines + shown) + "\n" + self._cut_note(len(shown)) + "\n"

    def _heading(self) -> str:
        failed = sum(not r.passed for r in self.rows)
        if not failed:
            return f"## ✅ {len(self.rows)} models converted and validated"
        return f"## ❌ {failed} of {len(self.rows)} models failed"

    def _cut_note(self, shown: int) -> str:
        cut = len(self.rows) - shown
        cut_failed = max(0, sum(not r.passed for r in self.rows) - shown)
        return (
            f"\n_{cut:,} of {len(self.rows):,} models not shown ({cut_failed:,} failed, {cut - cut_failed:,} passed), "
            "to keep this under GitHub's job summary limit; failures are listed first, and index.json has every "
            "model._"
        )

    def write(self, output_dir: Path) -> tuple[Path, Path]:
        """Write index.json and index.md into ``output_dir`` (renamed into place)."""
        output_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for suffix, text in ((".md", self.to_markdown()), (".json", self.to_json())):
            paths.append(write_file(output_dir / f"{INDEX_STEM}{suffix}", text))
        return paths[0], paths[1]


def _fitting(lines: list[str], budget: int) -> list[str]:
    """The first of ``lines`` that fit in ``budget`` bytes, a newline after each."""
    kept, used = [], 0
    for line in lines:
        used += len(line.encode()) + 1
        if used > budget:
            break
        kept.append(line)
    return kept


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
