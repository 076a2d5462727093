"""The report's provenance block: what was converted and published, by what, where and how.

Volatile by nature (the run's URL and commit change with every run), so it lives in the report
only: nothing of it goes into the .onnx, whose bytes stay the same for the same inputs, and the
baseline comparison never compares it.

The image: a container cannot read its own image digest (the runner starts it by reference and
mounts no Docker socket). The action's trampoline (action/image.py) pulls a published image by
digest and passes the same reference in ``ONNX_CONVERT_IMAGE``, so the report records the exact
image; a local build (``uses: ./``, act, ``docker build``) has no digest and records "".
"""

from __future__ import annotations

import importlib.metadata as md
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

IMAGE_VARIABLE = "ONNX_CONVERT_IMAGE"


@dataclass
class Provenance:
    model_sha256: str
    onnx_sha256: str  # "" when no file was written
    command: str
    packages: dict[str, str]  # every installed distribution -> version
    image: str = ""  # the image reference by digest, when running in a published image
    git: dict[str, str] = field(default_factory=dict)  # in GitHub Actions: commit, ref, repository, workflow, run
    signature: dict[str, str] = field(default_factory=dict)  # method and path, when the file was signed


def collect_provenance(
    model_sha256: str,
    onnx_sha256: str,
    command: str,
    signature: dict[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Provenance:
    env = os.environ if env is None else env
    return Provenance(
        model_sha256=model_sha256,
        onnx_sha256=onnx_sha256,
        command=command,
        packages=installed_packages(),
        image=env.get(IMAGE_VARIABLE, ""),
        git=_github(env),
        signature=signature or {},
    )


def installed_packages() -> dict[str, str]:
    """Every distribution in this environment, by name (sorted), with its version."""
    found: dict[str, str] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(name, dist.version)
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def _github(env: Mapping[str, str]) -> dict[str, str]:
    """The commit and run, from the variables GitHub's runner sets (empty outside Actions)."""
    if env.get("GITHUB_ACTIONS") != "true":
        return {}
    git = {
        "commit": env.get("GITHUB_SHA", ""),
        "ref": env.get("GITHUB_REF_NAME", ""),
        "repository": env.get("GITHUB_REPOSITORY", ""),
        "workflow": env.get("GITHUB_WORKFLOW_REF", ""),
    }
    server, repo, run = env.get("GITHUB_SERVER_URL", ""), env.get("GITHUB_REPOSITORY", ""), env.get("GITHUB_RUN_ID", "")
    if server and repo and run:
        git["run"] = f"{server}/{repo}/actions/runs/{run}/attempts/{env.get('GITHUB_RUN_ATTEMPT', '1')}"
    return {k: v for k, v in git.items() if v}
