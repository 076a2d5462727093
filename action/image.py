"""Which image a run of the action uses, and the docker action that runs it (the action's trampoline).

action.yml is a composite action: this script (the runner's python3, standard library only) writes
a docker action into the workspace, at ``GENERATED``, whose image is the one chosen below; the next
step of action.yml runs it with every input. A docker action's ``image:`` is fixed text, so an action
pinned to a commit SHA or a branch would build the 2.2 GB image from its Dockerfile on every run; a
composite step can compute the image from ``github.action_ref`` instead (as pypa/gh-action-pypi-publish
does). The rule:

- ``uses: owner/onnx-convert-action@v1.2.3`` (or ``@v1.2``, ``@v1``): ``ghcr.io/owner/onnx-convert-action:1.2.3``
- ``@<40-hex commit SHA>``: ``...:sha-<sha>``; ``@main``: ``...:main`` (release.yml publishes all three)
- the variant (input ``image``) other than full adds ``-sklearn``, ``-pytorch`` or ``-tensorflow``
- any other ref, a ref whose image is not published (``docker manifest inspect`` says so, e.g. a
  fork that never ran release.yml), or ``uses: ./`` (the repository testing itself, no
  action_repository): build from the Dockerfile, the full image (a Dockerfile build cannot pick a
  target). Under act, that local docker action is the image tests/e2e builds beforehand.

A pulled image is pulled by digest, and the same reference goes to the container as
``ONNX_CONVERT_IMAGE``, which each report records as its provenance (converter/provenance.py: a
container cannot read its own image digest); a built image has no digest and records "".
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REGISTRY = "ghcr.io"
IMAGE_NAME = "onnx-convert-action"
VARIANTS = ("full", "sklearn", "pytorch", "tensorflow")
# Where the generated docker action goes, relative to the workspace (composite steps resolve
# `uses: ./...` there, not in the action's folder); act names its image after this path.
GENERATED = ".github/.tmp/.generated-actions/onnx-convert"
_VERSION = re.compile(r"v(\d+(?:\.\d+){0,2})")
_SHA = re.compile(r"[0-9a-f]{40}")
PUBLISHED_BRANCHES = ("main",)


@dataclass(frozen=True)
class Choice:
    image: str  # docker://... to pull, or the path of the Dockerfile to build
    reason: str  # one line for the log


def published_tag(ref: str, variant: str) -> str | None:
    """The image tag release.yml publishes for ``ref``, or None when it publishes none."""
    suffix = "" if variant == "full" else f"-{variant}"
    if match := _VERSION.fullmatch(ref):
        return match.group(1) + suffix
    if _SHA.fullmatch(ref):
        return f"sha-{ref}{suffix}"
    if ref in PUBLISHED_BRANCHES:
        return ref + suffix
    return None


def choose(repository: str, ref: str, variant: str, action_path: str, exists: Callable[[str], bool]) -> Choice:
    """The image for the action at ``repository@ref``; ``exists`` asks the registry about an image."""
    if variant not in VARIANTS:
        # ascii(): the value is printed in a workflow command, so no newline may reach the log
        raise ValueError(f"image {variant!a}: unknown value; use one of {', '.join(VARIANTS)}")
    dockerfile = str(Path(action_path) / "Dockerfile")
    if not repository:
        return Choice(dockerfile, "uses: ./ (this repository's own checkout): built from its Dockerfile")
    tag = published_tag(ref, variant)
    if tag is None:
        return Choice(dockerfile, f"no image is published for ref {ref}: built from the Dockerfile (full)")
    image = f"{REGISTRY}/{repository.lower()}:{tag}"
    if not exists(image):
        return Choice(dockerfile, f"{image} is not published: built from the Dockerfile (full)")
    return Choice(f"docker://{image}", f"pulling {image}")


def registry_has(image: str) -> bool:
    """Whether the registry serves ``image`` (an anonymous manifest request; a public image needs no
    login). Only a clear "not found" means no: when the registry cannot be asked, the pull is tried,
    and its error says more than a 2.2 GB build would."""
    try:
        done = subprocess.run(
            ["docker", "manifest", "inspect", image], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return True
    return done.returncode == 0 or not _NOT_FOUND.search(done.stderr)


_NOT_FOUND = re.compile(r"manifest unknown|no such manifest|not found", re.I)


def by_digest(image: str) -> str:
    """``image`` (``registry/name:tag``) as ``registry/name@sha256:...``, the tag's digest now; ``image``
    itself when the registry or docker buildx cannot say (the pull by tag still works)."""
    try:
        done = subprocess.run(
            ["docker", "buildx", "imagetools", "inspect", image, "--format", "{{json .Manifest}}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return image
    digest = manifest_digest(done.stdout) if done.returncode == 0 else ""
    return f"{image.rsplit(':', 1)[0]}@{digest}" if digest else image


def manifest_digest(text: str) -> str:
    """The digest in ``docker buildx imagetools inspect --format '{{json .Manifest}}'``'s output, or ""."""
    try:
        digest = json.loads(text).get("digest", "")
    except (ValueError, AttributeError):
        return ""
    return digest if isinstance(digest, str) and _DIGEST.fullmatch(digest) else ""


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def input_names(action_yml: str) -> list[str]:
    """The inputs that action.yml declares (two-space keys under ``inputs:``): read without a YAML
    parser, which the runner's python3 may lack."""
    names, inside = [], False
    for line in action_yml.splitlines():
        if re.match(r"\S", line):
            inside = line.rstrip() == "inputs:"
        elif inside and (match := re.fullmatch(r"  ([a-z][a-z0-9-]*):\s*", line)):
            names.append(match.group(1))
    return names


def docker_action(image: str, inputs: list[str]) -> str:
    """The generated docker action (JSON is YAML): the inputs pass through as INPUT_* variables; a
    pulled image's reference is also ONNX_CONVERT_IMAGE, for the report's provenance."""
    runs: dict[str, object] = {"using": "docker", "image": image}
    if image.startswith("docker://"):
        runs["env"] = {"ONNX_CONVERT_IMAGE": image.removeprefix("docker://")}
    action = {
        "name": "onnx-convert (container)",
        "description": "Generated by onnx-convert-action's action.yml; runs its image.",
        "inputs": {name: {"description": name, "required": False} for name in inputs},
        "runs": runs,
    }
    return json.dumps(action, indent=2) + "\n"


def main() -> int:
    action_path = os.environ["GITHUB_ACTION_PATH"]
    try:
        choice = choose(
            os.environ.get("ACTION_REPOSITORY", ""),
            os.environ.get("ACTION_REF", ""),
            (os.environ.get("IMAGE_VARIANT") or "full").strip(),
            action_path,
            registry_has,
        )
    except ValueError as exc:
        print(f"::error title=onnx-convert::{exc}")
        return 2
    if choice.image.startswith("docker://"):
        choice = Choice("docker://" + by_digest(choice.image.removeprefix("docker://")), choice.reason)
    inputs = input_names((Path(action_path) / "action.yml").read_text(encoding="utf-8"))
    target = Path(os.environ.get("GITHUB_WORKSPACE", ".")) / GENERATED
    target.mkdir(parents=True, exist_ok=True)
    (target / "action.yml").write_text(docker_action(choice.image, inputs), encoding="utf-8")
    print(f"onnx-convert image: {choice.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
