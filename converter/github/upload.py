"""The artifact upload every action mode shares: the runtime's context, the retention, the upload step."""

from __future__ import annotations

import os
from pathlib import Path

from converter.github import commands
from converter.github.artifacts import ArtifactClient, RuntimeContext, UploadedArtifact
from converter.github.inputs import ActionSettings


def runtime_context() -> RuntimeContext | None:
    """The artifact service's context, or None (with a notice) outside GitHub Actions."""
    context = RuntimeContext.from_env(os.environ)
    if context is None:
        commands.notice(
            "artifact upload skipped: not running in GitHub Actions (no ACTIONS_RUNTIME_TOKEN)", title="onnx-convert"
        )
    return context


def upload(
    context: RuntimeContext, name: str, files: list[Path], settings: ActionSettings, root: Path | None = None
) -> UploadedArtifact:
    """Upload ``files`` as artifact ``name``, kept as long as the settings ask (within the repository's limit)."""
    retention, cut = context.retention(settings.retention_days)
    if cut:
        commands.warning(cut, title="onnx-convert")
    with commands.group(f"upload artifact {name}"):
        return ArtifactClient(context, log=commands.log).upload(name, files, retention, root=root)
