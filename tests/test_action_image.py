"""The image a user's run gets (action/image.py): pulled whenever one is published for the ref the
action is used at, built from the Dockerfile only when none is; and the docker action it writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from action import image

ROOT = Path(__file__).resolve().parent.parent
SHA = "0123456789abcdef0123456789abcdef01234567"


def published(_image: str) -> bool:
    return True


@pytest.mark.parametrize(
    ("ref", "variant", "tag"),
    [
        ("v1.2.3", "full", "1.2.3"),
        ("v1.2", "full", "1.2"),
        ("v1", "sklearn", "1-sklearn"),
        (SHA, "full", f"sha-{SHA}"),
        (SHA, "pytorch", f"sha-{SHA}-pytorch"),
        ("main", "tensorflow", "main-tensorflow"),
    ],
)
def test_a_release_tag_a_commit_sha_or_main_pulls_the_published_image(ref: str, variant: str, tag: str) -> None:
    choice = image.choose("Some-Org/onnx-convert-action", ref, variant, "/action", published)
    assert choice.image == f"docker://ghcr.io/some-org/onnx-convert-action:{tag}"  # registry names are lower case
    assert choice.reason == f"pulling ghcr.io/some-org/onnx-convert-action:{tag}"


@pytest.mark.parametrize("ref", ["feature/x", "v1.2.3-rc1", SHA[:7], ""])
def test_a_ref_without_a_published_image_builds_from_the_dockerfile(ref: str) -> None:
    choice = image.choose("org/onnx-convert-action", ref, "sklearn", "/action", published)
    assert choice.image == "/action/Dockerfile"
    assert choice.reason == f"no image is published for ref {ref}: built from the Dockerfile (full)"


def test_an_image_the_registry_does_not_have_is_built_instead() -> None:
    asked = []
    choice = image.choose("fork/onnx-convert-action", "v1", "full", "/action", lambda i: asked.append(i) or False)
    assert asked == ["ghcr.io/fork/onnx-convert-action:1"]
    assert choice.image == "/action/Dockerfile"


def test_the_repository_testing_itself_uses_its_own_checkout() -> None:
    # `uses: ./`: no action_repository. Under act the image of that docker action is the one
    # tests/e2e builds beforehand, so nothing is pulled or built there.
    choice = image.choose("", "", "full", "/github/workspace", published)
    assert choice.image == "/github/workspace/Dockerfile"


def test_an_unknown_variant_is_refused_on_one_line() -> None:
    with pytest.raises(ValueError, match=r"^image 'slim\\n::warning::x': unknown value; use one of full, sklearn"):
        image.choose("org/onnx-convert-action", "v1", "slim\n::warning::x", "/action", published)


def test_the_script_writes_the_docker_action_into_the_workspace(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GITHUB_ACTION_PATH": str(ROOT),
        "GITHUB_WORKSPACE": str(tmp_path),
        "ACTION_REPOSITORY": "",
        "ACTION_REF": "",
        "IMAGE_VARIANT": "full",
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "action" / "image.py")], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "onnx-convert image: uses: ./ (this repository's own checkout): built from its Dockerfile\n"
    generated = yaml.safe_load((tmp_path / image.GENERATED / "action.yml").read_text())
    assert generated["runs"] == {"using": "docker", "image": str(ROOT / "Dockerfile")}
    assert list(generated["inputs"]) == list(yaml.safe_load((ROOT / "action.yml").read_text())["inputs"])


def test_only_a_clear_not_found_from_the_registry_means_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a stand-in docker CLI: what the registry answers decides; an unreachable one does not force a build
    docker = tmp_path / "docker"
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    for stderr, code, has in [
        ("", 0, True),
        ("manifest unknown: manifest unknown", 1, False),
        ("no such manifest: ghcr.io/o/onnx-convert-action:9", 1, False),
        ("Get https://ghcr.io/v2/: dial tcp: i/o timeout", 1, True),
    ]:
        docker.write_text(f"#!/bin/sh\necho '{stderr}' >&2\nexit {code}\n")
        docker.chmod(0o755)
        assert image.registry_has("ghcr.io/o/onnx-convert-action:9") is has, stderr


DIGEST = "sha256:" + "ab" * 32


def test_a_pulled_image_is_pulled_by_digest_and_recorded_for_provenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a stand-in docker CLI answering `docker buildx imagetools inspect --format '{{json .Manifest}}'`
    docker = tmp_path / "docker"
    docker.write_text(f'#!/bin/sh\necho \'{{"mediaType": "index", "digest": "{DIGEST}", "size": 1}}\'\n')
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")

    pinned = image.by_digest("ghcr.io/o/onnx-convert-action:1.2.3-sklearn")
    generated = yaml.safe_load(image.docker_action(f"docker://{pinned}", ["model-path"]))

    assert pinned == f"ghcr.io/o/onnx-convert-action@{DIGEST}"
    assert generated["runs"] == {
        "using": "docker",
        "image": f"docker://ghcr.io/o/onnx-convert-action@{DIGEST}",
        "env": {"ONNX_CONVERT_IMAGE": f"ghcr.io/o/onnx-convert-action@{DIGEST}"},
    }


@pytest.mark.parametrize("answer", ["", "not json", '{"digest": "sha256:short"}', '["x"]'])
def test_without_a_digest_the_image_is_pulled_by_its_tag(answer: str) -> None:
    assert image.manifest_digest(answer) == ""
