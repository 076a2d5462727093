"""The action's many-model modes: a manifest or glob in one job, `plan`, `select` and `merge`.

Fan-out across runners: `mode: plan` sets the `matrix` output; each matrix job converts one
entry (`select`) and uploads `<name>-onnx`; `mode: merge` downloads the reports of those
artifacts from this run (ListArtifacts, GetSignedArtifactURL) and writes the index.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from converter import isolated
from converter.batch import BatchIndex, IndexRow
from converter.errors import EXIT_FAILED, EXIT_OK, ConverterError, UserError, exit_code_for_many
from converter.escape import markdown_code
from converter.github import commands
from converter.github.artifacts import ArtifactClient, ListedArtifact, RuntimeContext, UploadedArtifact, files_under
from converter.github.inputs import ActionSettings
from converter.github.matrix import artifact_name, plan
from converter.github.outputs import (
    JOB_SUMMARY_LIMIT,
    baseline_outputs,
    publish,
    relative_path,
    write_job_summary,
    write_outputs,
)
from converter.github.upload import runtime_context, upload
from converter.manifest import Entry, load_entries
from converter.markdown.table import table
from converter.merged import read_row
from converter.report import Report
from converter.request import check_no_link, parse_path

DEFAULT_COMBINED_ARTIFACT = "onnx-models"
MAX_LISTED_LINKS = 5  # a warning names this many symbolic links, then counts the rest
# merge downloads an artifact whole, into memory, to read the report in it: bounded by the size
# the artifact service lists for it (what it verified at FinalizeArtifact).
MAX_DOWNLOAD_BYTES = 2 * 1024**3


def run_plan(values: dict[str, str | None], workspace: Path) -> int:
    entries = load_entries(values, base_dir=workspace)
    matrix = plan(entries, str(values.get("model-path") or ""))
    write_outputs({"matrix": json.dumps(matrix)})
    rows = [[markdown_code(e.name), markdown_code(e.model)] for e in entries]
    write_job_summary(
        f"## onnx-convert plan: {len(entries)} models\n\n"
        + "".join(f"{line}\n" for line in table(["Name", "Model"], rows))
    )
    print(json.dumps(matrix), flush=True)
    return EXIT_OK


@dataclass(frozen=True)
class _Converted:
    """A many-model run once every entry was converted: what the steps after it need."""

    entries: list[Entry]
    index: BatchIndex
    output_dir: Path
    workspace: Path
    single: bool  # one selected entry (a matrix job): its folder, report and artifact

    @property
    def folder(self) -> Path:
        """What is uploaded: the selected model's folder, or the whole output dir."""
        return self.entries[0].request.output_dir if self.single else self.output_dir

    @cached_property
    def reports(self) -> list[Report]:
        return [Report.from_json(Path(r.report).read_text()) for r in self.index.rows if r.report]


def run_many(values: dict[str, str | None], select: str, workspace: Path, settings: ActionSettings) -> int:
    """Convert every entry (or the selected one) and upload one artifact."""
    entries = load_entries(values, base_dir=workspace, select=select)  # all checked before any conversion
    output_dir = _output_dir(values, workspace)
    with commands.group(f"onnx-convert: {len(entries)} model(s)"):
        index = isolated.run_many(
            entries, lambda message: commands.log(f"onnx-convert: {message}"), None, commands.CHILD
        )
    check_no_link("output-dir", output_dir, workspace)  # when written: see ConversionRequest.check_output_dir
    index.write(output_dir)
    for row, entry in zip(index.rows, entries, strict=True):
        if row.status == "failed" and not entry.request.fail_on_mismatch:
            # As a single model: a mismatch the user forgave is a warning, the step passes.
            commands.warning(f"{row.name}: {row.status}: {row.error} (fail-on-mismatch is false)", title="onnx-convert")
        elif not row.passed:
            commands.error(f"{row.name}: {row.status}: {row.error}", title="onnx-convert")
    run = _Converted(entries, index, output_dir, workspace, bool(select))
    published = publish(
        settings,
        lambda: _upload_many(run, settings),
        lambda room: _many_summary(run, room),
        lambda artifact: _outputs(run, artifact),
        relative_path(str(run.folder), workspace),
    )
    for row in index.rows:
        commands.log(f"{'PASS' if row.passed else 'FAIL'} {row.name}: {row.error or row.status}")
    code = exit_code_for_many(
        (row.status, entry.request.fail_on_mismatch) for row, entry in zip(index.rows, entries, strict=True)
    )
    return max(code, EXIT_OK if published else EXIT_FAILED)


def _many_summary(run: _Converted, room: int) -> str:
    if run.single and run.reports:
        return run.reports[0].to_markdown(limit=room)
    return run.index.to_markdown(limit=room)


def run_merge(values: dict[str, str | None], workspace: Path, settings: ActionSettings) -> int:
    """The index of a fan-out run, from the `<name>-onnx` artifacts its matrix jobs uploaded."""
    entries = load_entries(values, base_dir=workspace)
    context = RuntimeContext.from_env(os.environ)
    if context is None:
        raise UserError(
            "mode merge downloads this run's artifacts, so it runs only in GitHub Actions (no ACTIONS_RUNTIME_TOKEN)",
            "outside Actions, download the reports and run onnx-convert merge --output-dir DIR",
        )
    client = ArtifactClient(context, log=commands.log)
    available = {a.name: a for a in client.list_artifacts()}
    output_dir = _output_dir(values, workspace)
    check_no_link("output-dir", output_dir, workspace)  # when written: see ConversionRequest.check_output_dir
    index = BatchIndex()
    with commands.group(f"download the reports of {len(entries)} model(s)"):
        for entry in entries:
            index.rows.append(_merged_row(client, entry, available.get(artifact_name(entry.name)), output_dir))
    index.write(output_dir)
    for row in index.rows:
        if not row.passed:
            commands.error(f"{row.name}: {row.status}: {row.error}", title="onnx-convert merge")
    if settings.summary:
        write_job_summary(index.to_markdown(limit=JOB_SUMMARY_LIMIT))
    write_outputs(
        {
            "passed": "true" if index.passed else "false",
            "report-path": relative_path(str(output_dir / "index.json"), workspace),
            "max-abs-diff": _worst([r.max_abs_diff for r in index.rows]),
            **_verdict_outputs(index),
        }
    )
    return exit_code_for_many((row.status, True) for row in index.rows)


# -- helpers ------------------------------------------------------------------------------------


def _merged_row(client: ArtifactClient, entry: Entry, artifact: ListedArtifact | None, output_dir: Path) -> IndexRow:
    """The index row of one model of a fan-out run, from the report in its artifact: anything wrong
    with the artifact (another job made it) is that model's row, never the end of the merge."""
    name = artifact_name(entry.name)
    if artifact is None:
        return _missing(entry, f"no artifact {name}: its job failed before uploading, or did not run")
    if artifact.size > MAX_DOWNLOAD_BYTES:
        return _missing(
            entry,
            f"artifact {name} is {artifact.size:,} bytes, more than the {MAX_DOWNLOAD_BYTES // 1024**3} GiB merge "
            "downloads to read a report",
        )
    try:
        check_no_link("output-dir", output_dir / name, output_dir)
        paths = client.download_reports(name, output_dir)
    except ConverterError as exc:
        return IndexRow(entry.name, entry.model, False, "error", error=exc.one_line())
    if not paths:
        return _missing(entry, f"artifact {name} holds no report")
    return read_row(entry.name, paths[0], entry.model)


def _missing(entry: Entry, why: str) -> IndexRow:
    return IndexRow(entry.name, entry.model, False, "missing", error=why)


def _output_dir(values: dict[str, str | None], workspace: Path) -> Path:
    return parse_path("output-dir", values.get("output-dir") or "onnx-models", workspace)


def _upload_many(run: _Converted, settings: ActionSettings) -> UploadedArtifact | None:
    context = runtime_context()
    if context is None:
        return None
    # One matrix job, one model: the artifact merge looks for.
    name = settings.artifact_name or (artifact_name(run.entries[0].name) if run.single else DEFAULT_COMBINED_ARTIFACT)
    files, links = files_under(run.folder)
    if links:
        _warn_links(links, run.folder, run.workspace)
    if not files:
        commands.warning("nothing to upload: no model wrote any file", title="onnx-convert")
        return None
    return upload(context, name, files, settings, root=run.folder)


def _warn_links(links: list[Path], folder: Path, workspace: Path) -> None:
    shown = ", ".join(f"{link.relative_to(folder)} -> {os.readlink(link)}" for link in links[:MAX_LISTED_LINKS])
    more = f" and {len(links) - MAX_LISTED_LINKS} more" if len(links) > MAX_LISTED_LINKS else ""
    commands.warning(
        f"not uploaded: {len(links)} symbolic link(s) in {relative_path(str(folder), workspace)} ({shown}{more}); "
        "links are never followed, the artifact holds the files the conversion wrote",
        title="onnx-convert",
    )


def _outputs(run: _Converted, artifact: UploadedArtifact | None) -> dict[str, str]:
    values = {
        "passed": "true" if run.index.passed else "false",
        "max-abs-diff": _worst([r.max_abs_diff for r in run.index.rows]),
        "max-rel-diff": _worst([r.max_rel_diff for r in run.reports]),
        "report-path": relative_path(str(run.output_dir / "index.json"), run.workspace),
        "artifact-id": artifact.id if artifact else "",
        "artifact-url": artifact.url if artifact else "",
    }
    values.update(_verdict_outputs(run.index))
    report = run.reports[0] if run.single and run.reports else None
    if report:
        values["failing-outputs"] = json.dumps(report.validation.failing_outputs() if report.validation else [])
    if report and report.onnx:
        values.update(baseline_outputs(report))
        values["onnx-path"] = relative_path(report.onnx.path, run.workspace)
        values["opset"] = str(report.onnx.opset)
        values["report-path"] = relative_path(report.reports["json"], run.workspace)
        if report.variants and report.variants.best_path:
            values["best-variant-path"] = relative_path(report.variants.best_path, run.workspace)
            values["variants-passed"] = ",".join(r.name for r in report.variants.passed())
    return values


def _verdict_outputs(index: BatchIndex) -> dict[str, str]:
    """status and failing-outputs of many models: error if one could not be converted (or is missing)."""
    statuses = {row.status for row in index.rows}
    status = "passed" if index.passed else ("failed" if statuses <= {"passed", "failed"} else "error")
    failing = []
    for row in index.rows:
        if row.status == "failed" and row.report and Path(row.report).is_file():
            report = Report.from_json(Path(row.report).read_text(encoding="utf-8"))
            failing += [
                f"{row.name}/{name}" for name in (report.validation.failing_outputs() if report.validation else [])
            ]
    return {"status": status, "failing-outputs": json.dumps(failing)}


def _worst(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return repr(float(max(known))) if known else ""
