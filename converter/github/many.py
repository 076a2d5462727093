"""The action's many-model modes: a manifest or glob in one job, `plan`, `select` and `merge`.

Fan-out across runners: `mode: plan` sets the `matrix` output; each matrix job converts one
entry (`select`) and uploads `<name>-onnx`; `mode: merge` downloads the reports of those
artifacts from this run (ListArtifacts, GetSignedArtifactURL) and writes the index.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import github_action_utils as gha

from converter.batch import BatchIndex, IndexRow, run_batch
from converter.errors import EXIT_FAILED, EXIT_OK, ConverterError, UserError
from converter.github.artifacts import ArtifactClient, RuntimeContext, UploadedArtifact
from converter.github.inputs import ActionSettings
from converter.github.outputs import relative_path, write_outputs
from converter.manifest import Entry, load_entries, plan
from converter.report import MARKDOWN_LIMIT, Report
from converter.request import parse_path

DEFAULT_COMBINED_ARTIFACT = "onnx-models"


def artifact_name_for(entry: Entry) -> str:
    """The artifact a matrix job uploads for one entry, and the one merge looks for."""
    return f"{entry.name}-onnx"


def run_plan(values: dict[str, str | None], workspace: Path) -> int:
    entries = load_entries(values, base_dir=workspace)
    matrix = plan(entries)
    write_outputs({"matrix": json.dumps(matrix)})
    _summary(
        f"## onnx-convert plan: {len(entries)} models\n\n| Name | Model |\n|---|---|\n"
        + "".join(f"| `{e.name}` | `{e.model}` |\n" for e in entries)
    )
    print(json.dumps(matrix), flush=True)
    return EXIT_OK


def run_many(values: dict[str, str | None], select: str, workspace: Path, settings: ActionSettings) -> int:
    """Convert every entry (or the selected one) and upload one artifact."""
    entries = load_entries(values, base_dir=workspace, select=select)  # all checked before any conversion
    output_dir = _output_dir(values, workspace)
    with gha.group(f"onnx-convert: {len(entries)} model(s)"):
        index = run_batch(entries, log=lambda message: print(f"onnx-convert: {message}", flush=True))
    index.write(output_dir)
    for row, entry in zip(index.rows, entries, strict=True):
        if row.status == "failed" and not entry.request.fail_on_mismatch:
            # As a single model: a mismatch the user forgave is a warning, the step passes.
            gha.warning(f"{row.name}: {row.status}: {row.error} (fail-on-mismatch is false)", title="onnx-convert")
        elif not row.passed:
            gha.error(f"{row.name}: {row.status}: {row.error}", title="onnx-convert")
    artifact = None
    upload_failed = False
    if settings.upload_artifact:
        try:
            artifact = _upload_many(entries, output_dir, settings, single=bool(select))
        except ConverterError as exc:
            gha.error(f"artifact upload failed: {exc.one_line()}", title="onnx-convert")
            upload_failed = True
    reports = [Report.from_json(Path(r.report).read_text()) for r in index.rows if r.report]
    if settings.summary:
        if select and reports:
            _summary(reports[0].to_markdown(limit=MARKDOWN_LIMIT - 2048) + _artifact_line(artifact))
        else:
            _summary(index.to_markdown() + _artifact_line(artifact))
    write_outputs(_outputs(index, reports, output_dir, workspace, artifact, single=bool(select)))
    for row in index.rows:
        print(f"{'PASS' if row.passed else 'FAIL'} {row.name}: {row.error or row.status}", flush=True)
    forgiven = all(
        row.passed or (row.status == "failed" and not entry.request.fail_on_mismatch)
        for row, entry in zip(index.rows, entries, strict=True)
    )
    return EXIT_OK if forgiven and not upload_failed else EXIT_FAILED


def run_merge(values: dict[str, str | None], workspace: Path, settings: ActionSettings) -> int:
    """The index of a fan-out run, from the `<name>-onnx` artifacts its matrix jobs uploaded."""
    entries = load_entries(values, base_dir=workspace)
    context = RuntimeContext.from_env(os.environ)
    if context is None:
        raise UserError(
            "mode merge downloads this run's artifacts, so it runs only in GitHub Actions (no ACTIONS_RUNTIME_TOKEN)",
            "outside Actions, download the reports and run onnx-convert merge --output-dir DIR",
        )
    client = ArtifactClient(context, log=lambda message: print(message, flush=True))
    available = {a.name for a in client.list_artifacts()}
    output_dir = _output_dir(values, workspace)
    index = BatchIndex()
    with gha.group(f"download the reports of {len(entries)} model(s)"):
        for entry in entries:
            name = artifact_name_for(entry)
            if name not in available:
                index.rows.append(
                    IndexRow(
                        name=entry.name,
                        model=entry.model,
                        passed=False,
                        status="missing",
                        error=f"no artifact {name}: its job failed before uploading, or did not run",
                    )
                )
                continue
            paths = client.download_reports(name, output_dir)
            if not paths:
                index.rows.append(
                    IndexRow(entry.name, entry.model, False, "missing", error=f"artifact {name} holds no report")
                )
                continue
            row = IndexRow.from_report(entry.name, Report.from_json(paths[0].read_text()))
            row.report = str(paths[0])
            index.rows.append(row)
    index.write(output_dir)
    for row in index.rows:
        if not row.passed:
            gha.error(f"{row.name}: {row.status}: {row.error}", title="onnx-convert merge")
    if settings.summary:
        _summary(index.to_markdown())
    write_outputs(
        {
            "passed": "true" if index.passed else "false",
            "report-path": relative_path(str(output_dir / "index.json"), workspace),
            "max-abs-diff": _worst([r.max_abs_diff for r in index.rows]),
        }
    )
    return EXIT_OK if index.passed else EXIT_FAILED


# -- helpers ------------------------------------------------------------------------------------


def _output_dir(values: dict[str, str | None], workspace: Path) -> Path:
    return parse_path("output-dir", values.get("output-dir") or "onnx-models", workspace)


def _upload_many(
    entries: list[Entry], output_dir: Path, settings: ActionSettings, single: bool
) -> UploadedArtifact | None:
    context = RuntimeContext.from_env(os.environ)
    if context is None:
        gha.notice(
            "artifact upload skipped: not running in GitHub Actions (no ACTIONS_RUNTIME_TOKEN)", title="onnx-convert"
        )
        return None
    client = ArtifactClient(context, log=lambda message: print(message, flush=True))
    if single:
        # One matrix job, one model: the artifact merge looks for.
        folder = entries[0].request.output_dir
        name = settings.artifact_name or artifact_name_for(entries[0])
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        root = folder
    else:
        name = settings.artifact_name or DEFAULT_COMBINED_ARTIFACT
        files = sorted(p for p in output_dir.rglob("*") if p.is_file())
        root = output_dir
    if not files:
        gha.warning("nothing to upload: no model wrote any file", title="onnx-convert")
        return None
    retention, cut = context.retention(settings.retention_days)
    if cut:
        gha.warning(cut, title="onnx-convert")
    with gha.group(f"upload artifact {name}"):
        return client.upload(name, files, retention, root=root)


def _outputs(
    index: BatchIndex,
    reports: list[Report],
    output_dir: Path,
    workspace: Path,
    artifact: UploadedArtifact | None,
    single: bool,
) -> dict[str, str]:
    values = {
        "passed": "true" if index.passed else "false",
        "max-abs-diff": _worst([r.max_abs_diff for r in index.rows]),
        "max-rel-diff": _worst([r.max_rel_diff for r in reports]),
        "report-path": relative_path(str(output_dir / "index.json"), workspace),
        "artifact-id": artifact.id if artifact else "",
        "artifact-url": artifact.url if artifact else "",
    }
    if single and reports and reports[0].onnx:
        values["onnx-path"] = relative_path(reports[0].onnx.path, workspace)
        values["opset"] = str(reports[0].onnx.opset)
        values["report-path"] = relative_path(reports[0].reports["json"], workspace)
        if reports[0].variants and reports[0].variants.best_path:
            values["best-variant-path"] = relative_path(reports[0].variants.best_path, workspace)
            values["variants-passed"] = ",".join(r.name for r in reports[0].variants.passed())
    return values


def _worst(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return repr(float(max(known))) if known else ""


def _artifact_line(artifact: UploadedArtifact | None) -> str:
    if not artifact:
        return ""
    return f"\n**Artifact:** [{artifact.name}]({artifact.url}) ({artifact.size:,} bytes, {len(artifact.files)} files)\n"


def _summary(markdown: str) -> None:
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        gha.append_job_summary(markdown)
