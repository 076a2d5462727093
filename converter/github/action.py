"""The action shell: INPUT_* -> ConversionRequest -> pipeline -> outputs, summary, annotations, artifact.

Exit codes are the CLI's (0 passed, 1 failed, 2 bad input). A bad input is one ``::error``
line and exit 2, before any work; a bug keeps its traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import github_action_utils as gha

from converter.errors import EXIT_FAILED, ConverterError, exit_code_for
from converter.github.artifacts import ArtifactClient, RuntimeContext, UploadedArtifact
from converter.github.inputs import ActionSettings, read_input, read_inputs, read_values
from converter.github.many import run_many, run_merge, run_plan
from converter.github.outputs import annotate, outputs_for, write_outputs, write_summary
from converter.manifest import is_batch
from converter.report import Report


def run(workspace: Path) -> int:
    """Run the action in ``workspace`` (GITHUB_WORKSPACE); returns the exit code."""
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
        with gha.group(f"onnx-convert: {request.model_path.name}"):
            from converter.pipeline import convert  # after the inputs: a bad input costs no import

            report = convert(request, log=lambda message: print(f"onnx-convert: {message}", flush=True))
    except ConverterError as exc:
        gha.error(exc.one_line(), title="onnx-convert")
        return exc.exit_code
    annotate(report, request.fail_on_mismatch)
    # As the CLI: a model that could not be converted fails even with fail-on-mismatch false.
    code = EXIT_FAILED if report.status == "error" else exit_code_for(report.passed, request.fail_on_mismatch)
    artifact = None
    if settings.upload_artifact:
        try:
            artifact = _upload(report, settings)
        except ConverterError as exc:
            gha.error(f"artifact upload failed: {exc.one_line()}", title="onnx-convert")
            code = code or EXIT_FAILED
    if settings.summary:
        write_summary(report, artifact)
    write_outputs(outputs_for(report, workspace, artifact))
    print(report.headline(), flush=True)
    return code


def _upload(report: Report, settings: ActionSettings) -> UploadedArtifact | None:
    context = RuntimeContext.from_env(os.environ)
    if context is None:
        gha.notice(
            "artifact upload skipped: not running in GitHub Actions (no ACTIONS_RUNTIME_TOKEN)", title="onnx-convert"
        )
        return None
    retention, cut = context.retention(settings.retention_days)
    if cut:
        gha.warning(cut, title="onnx-convert")
    files = [Path(p) for p in (report.onnx.files if report.onnx else [])]
    files += [Path(p) for p in (report.variants.kept_files() if report.variants else [])]  # passing ones only
    files += [Path(report.reports[kind]) for kind in ("json", "markdown") if kind in report.reports]
    name = settings.artifact_name or f"{_stem(report)}-onnx"
    with gha.group(f"upload artifact {name}"):
        client = ArtifactClient(context, log=lambda message: print(message, flush=True))
        return client.upload(name, files, retention)


def _stem(report: Report) -> str:
    # The pipeline names every file it writes <stem>.*: take it from the JSON report's name.
    return Path(report.reports["json"]).name.removesuffix(".report.json")
