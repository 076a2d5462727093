"""The action shell: INPUT_* -> ConversionRequest -> pipeline -> outputs, summary, annotations, artifact.

Exit codes are the CLI's (0 passed, 1 failed, 2 bad input). A bad input is one ``::error``
line and exit 2, before any work; a bug keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

from converter import isolated
from converter.errors import EXIT_FAILED, EXIT_OK, ConverterError, exit_code_for
from converter.github import commands
from converter.github.artifacts import UploadedArtifact
from converter.github.inputs import ActionSettings, read_input, read_inputs, read_values
from converter.github.many import run_many, run_merge, run_plan
from converter.github.matrix import artifact_name
from converter.github.outputs import annotate, outputs_for, publish, publish_error, relative_path
from converter.github.upload import runtime_context, upload
from converter.manifest import is_batch
from converter.naming import file_stem
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
        if settings.select or is_batch(values.get("model-path") or "", workspace):
            return run_many(values, settings.select, workspace, settings)
        request, settings = read_inputs(workspace)
        with commands.group(f"onnx-convert: {request.model_path.name}"):
            # In a child process: a crash there still leaves this one to write the summary and outputs.
            report = isolated.convert(request, lambda message: commands.log(f"onnx-convert: {message}"), commands.CHILD)
    except ConverterError as exc:
        publish_error(exc)
        return exc.exit_code
    annotate(report, request.fail_on_mismatch)
    code = exit_code_for(report.status, request.fail_on_mismatch)
    published = publish(
        settings,
        lambda: _upload(report, request, settings),
        lambda room: report.to_markdown(limit=room),
        lambda artifact: outputs_for(report, workspace, artifact),
        relative_path(str(request.output_dir), workspace),
    )
    commands.log(report.headline())
    return max(code, EXIT_OK if published else EXIT_FAILED)


def _upload(report: Report, request: ConversionRequest, settings: ActionSettings) -> UploadedArtifact | None:
    context = runtime_context()
    if context is None:
        return None
    files = [Path(p) for p in (report.onnx.files if report.onnx else [])]
    files += [Path(p) for p in (report.variants.kept_files() if report.variants else [])]  # passing ones only
    files += [Path(report.reports[kind]) for kind in ("json", "markdown") if kind in report.reports]
    if report.onnx and report.provenance and report.provenance.signature:  # the .sig beside the .onnx
        files.append(Path(report.onnx.path).with_name(report.provenance.signature["file"]))
    name = settings.artifact_name or artifact_name(file_stem(request.model_path))
    return upload(context, name, files, settings)
