"""The action shell: INPUT_* -> ConversionRequest -> pipeline -> outputs, summary, annotations, artifact.

Exit codes are the CLI's (0 passed, 1 failed, 2 bad input). A bad input is one ``::error``
line and exit 2, before any work; a bug keeps its traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

from converter.errors import EXIT_FAILED, EXIT_OK, ConverterError, exit_code_for
from converter.github import commands
from converter.github.artifacts import ArtifactClient, RuntimeContext, UploadedArtifact
from converter.github.inputs import ActionSettings, read_input, read_inputs, read_values
from converter.github.many import run_many, run_merge, run_plan
from converter.github.outputs import (
    annotate,
    artifact_footer,
    attempt,
    outputs_for,
    publish_error,
    relative_path,
    write_outputs,
    write_summary,
)
from converter.manifest import is_batch
from converter.report import Report
from converter.request import ConversionRequest


def run(workspace: Path) -> int:
    """Run the action in ``workspace`` (GITHUB_WORKSPACE); returns the exit code.

    From its first line, the runner acts on no workflow command but the action's own
    (converter/github/commands.py): names and framework output come from the repository.
    """
    with commands.commands_stopped():
        return _run(workspace)


def _run(workspace: Path) -> int:
    try:
        settings = ActionSettings.from_inputs(read_input)
        values = read_values()
        if settings.mode == "plan":
            return run_plan(values, workspace)
        if settings.mode == "merge":
            return run_merge(values, workspace, settings)
        if settings.select or is_batch(values.get("model-path") or ""):
            return run_many(values, settings.select, workspace, settings)
        request, settings = read_inputs(workspace)
        with commands.group(f"onnx-convert: {request.model_path.name}"):
            from converter.pipeline import convert  # after the inputs: a bad input costs no import

            report = convert(request, log=lambda message: commands.log(f"onnx-convert: {message}"))
    except ConverterError as exc:
        publish_error(exc)
        return exc.exit_code
    annotate(report, request.fail_on_mismatch)
    # As the CLI: a model that could not be converted fails even with fail-on-mismatch false.
    code = EXIT_FAILED if report.status == "error" else exit_code_for(report.passed, request.fail_on_mismatch)
    return _publish(report, request, settings, workspace) or code


def _publish(report: Report, request: ConversionRequest, settings: ActionSettings, workspace: Path) -> int:
    """Upload, summary and outputs, each attempted whatever happened to the others: exit 1 if one failed."""
    artifact, upload_failed = None, ""
    if settings.upload_artifact:
        artifact, upload_failed = attempt("artifact upload", lambda: _upload(report, settings))
    failed = [upload_failed]
    if settings.summary:
        footer = artifact_footer(artifact, upload_failed, relative_path(str(request.output_dir), workspace))
        failed.append(attempt("job summary", lambda: write_summary(report, footer))[1])
    failed.append(attempt("step outputs", lambda: write_outputs(outputs_for(report, workspace, artifact)))[1])
    commands.log(report.headline())
    return EXIT_FAILED if any(failed) else EXIT_OK


def _upload(report: Report, settings: ActionSettings) -> UploadedArtifact | None:
    context = RuntimeContext.from_env(os.environ)
    if context is None:
        commands.notice(
            "artifact upload skipped: not running in GitHub Actions (no ACTIONS_RUNTIME_TOKEN)", title="onnx-convert"
        )
        return None
    retention, cut = context.retention(settings.retention_days)
    if cut:
        commands.warning(cut, title="onnx-convert")
    files = [Path(p) for p in (report.onnx.files if report.onnx else [])]
    files += [Path(p) for p in (report.variants.kept_files() if report.variants else [])]  # passing ones only
    files += [Path(report.reports[kind]) for kind in ("json", "markdown") if kind in report.reports]
    name = settings.artifact_name or f"{_stem(report)}-onnx"
    with commands.group(f"upload artifact {name}"):
        client = ArtifactClient(context, log=commands.log)
        return client.upload(name, files, retention)


def _stem(report: Report) -> str:
    # The pipeline names every file it writes <stem>.*: take it from the JSON report's name.
    return Path(report.reports["json"]).name.removesuffix(".report.json")
