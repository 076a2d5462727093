"""A Report back into GitHub: step outputs, the job summary and annotations.

Everything goes through github-action-utils (random heredoc delimiters for GITHUB_OUTPUT,
escaped workflow commands). Each writer does nothing when its runner file is not set, so the
action also runs under plain ``docker run`` with INPUT_* variables.
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import github_action_utils as gha

from converter.errors import EXIT_USAGE, ConverterError, describe
from converter.escape import markdown_code, markdown_text
from converter.github import commands
from converter.github.artifacts import UploadedArtifact
from converter.github.inputs import ActionSettings
from converter.github.wording import action_wording
from converter.report import Report

# name -> description; action.yml declares exactly these (a test checks it).
OUTPUTS: dict[str, str] = {
    "onnx-path": "Path of the .onnx file, relative to the workspace (empty if the conversion failed).",
    "passed": "true if every output is within tolerance, else false.",
    "max-abs-diff": "Largest absolute difference between ONNX and original outputs (empty if not validated).",
    "max-rel-diff": "Largest relative difference between ONNX and original outputs (empty if not validated).",
    "opset": "Opset of the ONNX file.",
    "report-path": "Path of the JSON report, relative to the workspace; the markdown report is beside it.",
    "artifact-id": "Id of the uploaded artifact (empty if none was uploaded).",
    "artifact-url": "Download page of the uploaded artifact (empty if none was uploaded).",
    "matrix": "mode plan: the strategy.matrix JSON, one entry (name, model) per model of the manifest.",
    "interface-changed": "true if the inputs, outputs, opset or IR version differ from the baseline's; empty without a baseline.",
    "breaking-changes": "How many of those changes break clients written for the baseline; empty without a baseline.",
    "best-variant-path": "With variants: the file to serve, relative to the workspace: the smallest (pick fastest: "
    "the fastest) of the .onnx and the variants that passed (empty if none passed).",
    "variants-passed": "With variants: the variants that passed and were kept, comma-separated.",
    "status": "passed, failed (an output is over tolerance), rejected (validated, but the comparison with the baseline "
    "failed) or error (a bad input, or the model could not be converted).",
    "failing-outputs": 'The outputs over tolerance, as a JSON list (["probabilities"]; "model/output" with many models); [] if none.',
}
# GitHub refuses job summaries over 1 MiB; leave room for other steps' summaries.
JOB_SUMMARY_LIMIT = 900 * 1024
# GitHub shows at most 10 warning annotations per step; keep room for other steps.
MAX_WARNINGS = 5
MAX_LISTED_FILES = 10  # the artifact footer names up to this many files, else counts them
T = TypeVar("T")


def outputs_for(report: Report, workspace: Path, artifact: UploadedArtifact | None) -> dict[str, str]:
    """Every output, as the strings GITHUB_OUTPUT carries."""
    return {
        "onnx-path": relative_path(report.onnx.path, workspace) if report.onnx else "",
        "passed": "true" if report.passed else "false",
        "max-abs-diff": _number(report.max_abs_diff),
        "max-rel-diff": _number(report.max_rel_diff),
        "opset": str(report.onnx.opset) if report.onnx else "",
        "report-path": relative_path(report.reports["json"], workspace) if report.reports else "",
        "artifact-id": artifact.id if artifact else "",
        "artifact-url": artifact.url if artifact else "",
        "matrix": "",  # set by mode plan only
        **baseline_outputs(report),
        "best-variant-path": relative_path(report.variants.best_path, workspace)
        if report.variants and report.variants.best_path
        else "",
        "variants-passed": ",".join(r.name for r in report.variants.passed()) if report.variants else "",
        "status": report.status,
        "failing-outputs": json.dumps(report.validation.failing_outputs() if report.validation else []),
    }


def baseline_outputs(report: Report) -> dict[str, str]:
    """interface-changed and breaking-changes: empty when nothing was compared."""
    compared = report.baseline is not None and report.baseline.compared
    return {
        "interface-changed": ("true" if report.baseline.interface else "false") if compared and report.baseline else "",
        "breaking-changes": str(len(report.baseline.breaking)) if compared and report.baseline else "",
    }


def write_outputs(values: dict[str, str]) -> None:
    if not os.environ.get("GITHUB_OUTPUT"):
        return
    for name, value in values.items():
        gha.set_output(name, value)


def summary_with(footer: str, render: Callable[[int], str]) -> str:
    """What ``render`` makes in the room the job summary leaves beside ``footer``, then ``footer``."""
    return render(JOB_SUMMARY_LIMIT - len(footer.encode())) + footer


def write_job_summary(markdown: str) -> None:
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        gha.append_job_summary(markdown)


def artifact_footer(artifact: UploadedArtifact | None, problem: str, folder: str) -> str:
    """The summary's last line: the artifact, or why there is none and where its files are."""
    if problem:
        return (
            f"\n**Artifact:** not uploaded: {markdown_text(problem)}. The files are in {markdown_code(folder)} "
            "on the runner, for a later step to upload.\n"
        )
    if not artifact:
        return ""
    files = f"{len(artifact.files):,} files"
    if len(artifact.files) <= MAX_LISTED_FILES:
        files = ", ".join(markdown_code(name) for name in artifact.files)
    return f"\n**Artifact:** [{markdown_text(artifact.name)}]({artifact.url}) ({artifact.size:,} bytes: {files})\n"


def publish_error(exc: ConverterError) -> None:
    """A run that stopped on an error (exit 2 for a bad input): the annotation, the summary and the
    outputs say it in the action's terms (``sample-data:``, not ``--sample-data``)."""
    message, hint = action_wording(exc.message.rstrip(".")), action_wording(exc.hint)
    line = f"{message}; {hint}" if hint else message
    commands.error(" ".join(line.split()), title="onnx-convert")
    what = "the input is wrong, nothing was converted" if exc.exit_code == EXIT_USAGE else "failed"
    summary = [f"## ❌ onnx-convert: {what}", "", f"**Error:** {markdown_text(message)}", ""]
    if hint:
        summary += [f"**Fix:** {markdown_text(hint)}", ""]
    if _summary_wanted():
        attempt("job summary", lambda: write_job_summary("\n".join(summary)))
    values = {"passed": "false", "status": "error", "failing-outputs": "[]"}
    attempt("step outputs", lambda: write_outputs(values))


def _summary_wanted() -> bool:
    """The summary input, read leniently: a bad value of it is the error being reported."""
    return (os.environ.get("INPUT_SUMMARY") or "true").strip().lower() != "false"


def publish(
    settings: ActionSettings,
    upload: Callable[[], UploadedArtifact | None],
    summary: Callable[[int], str],
    outputs: Callable[[UploadedArtifact | None], dict[str, str]],
    folder: str,
) -> bool:
    """Upload, summary and outputs, each attempted whatever happened to the others: True if all went well.

    ``summary`` renders the job summary in a number of bytes; ``folder`` is where the files are
    when the upload failed (relative to the workspace).
    """
    artifact, upload_failed = None, ""
    if settings.upload_artifact:
        artifact, upload_failed = attempt("artifact upload", upload)
    failed = [upload_failed]
    if settings.summary:
        footer = artifact_footer(artifact, upload_failed, folder)
        failed.append(attempt("job summary", lambda: write_job_summary(summary_with(footer, summary)))[1])
    failed.append(attempt("step outputs", lambda: write_outputs(outputs(artifact)))[1])
    return not any(failed)


def attempt(what: str, step: Callable[[], T]) -> tuple[T | None, str]:
    """Run a step that follows the conversion: (its result, "") or (None, why it failed).

    The upload, the summary and the outputs are each attempted, so that one failing loses none of
    the others; the conversion's files stay on disk. A failure is an error annotation, and a bug
    (not a ConverterError or an OSError from a runner file) prints its traceback as well.
    """
    try:
        return step(), ""
    except ConverterError as exc:
        problem = exc.one_line()
    except OSError as exc:
        problem = describe(exc)
    except Exception as exc:
        traceback.print_exc()
        problem = f"internal error: {describe(exc)}"
    commands.error(f"{what} failed: {problem}", title="onnx-convert")
    return None, problem


def annotate(report: Report, fail_on_mismatch: bool) -> None:
    """Notable warnings (exporter fallback, opset change) and the verdict, as annotations."""
    for warning in report.warnings[:MAX_WARNINGS]:
        commands.warning(warning, title="onnx-convert")
    if len(report.warnings) > MAX_WARNINGS:
        commands.warning(f"{len(report.warnings) - MAX_WARNINGS} more warnings in the report", title="onnx-convert")
    if report.status == "error":
        commands.error(report.headline(), title="ONNX conversion failed")
    elif report.status == "rejected":
        commands.error(report.headline(), title="ONNX file rejected by the comparison with the baseline")
    elif not report.passed:
        if fail_on_mismatch:
            commands.error(report.headline(), title="ONNX output differs from the original")
        else:
            commands.warning(
                report.headline() + " (fail-on-mismatch is false)", title="ONNX output differs from the original"
            )


def relative_path(path: str, workspace: Path) -> str:
    """``path`` relative to the workspace: the same file for later steps outside the container."""
    resolved = Path(path).resolve()
    base = workspace.resolve()
    return str(resolved.relative_to(base)) if resolved.is_relative_to(base) else str(resolved)


def _number(value: float | None) -> str:
    return "" if value is None else repr(float(value))
