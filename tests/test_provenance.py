"""The report's provenance block: what was converted, by which packages, in which image and run;
and none of it in the .onnx, whose bytes stay the same from run to run."""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import pytest

RUN = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
    "GITHUB_REF_NAME": "v1.3.0",
    "GITHUB_REPOSITORY": "acme/models",
    "GITHUB_WORKFLOW_REF": "acme/models/.github/workflows/release.yml@refs/tags/v1.3.0",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_RUN_ID": "42",
    "GITHUB_RUN_ATTEMPT": "2",
    "ONNX_CONVERT_IMAGE": "ghcr.io/acme/onnx-convert-action@sha256:" + "a" * 64,
}


def test_provenance_records_the_files_packages_image_and_run_and_the_onnx_does_not_change(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, iris_skops: Path
) -> None:
    model = tmp_path / "iris.skops"
    model.write_bytes(iris_skops.read_bytes())
    for name in RUN:  # outside Actions, whatever runs this test
        monkeypatch.delenv(name, raising=False)
    local = run_cli("--model-path", str(model), "--output-dir", str(tmp_path / "local"))
    for name, value in RUN.items():
        monkeypatch.setenv(name, value)
    in_actions = run_cli("--model-path", str(model), "--output-dir", str(tmp_path / "actions"))
    assert local.code == in_actions.code == 0

    report = in_actions.report("iris")
    provenance = report["provenance"]
    assert provenance["model_sha256"] == report["model"]["sha256"]
    assert provenance["onnx_sha256"] == report["onnx"]["sha256"]
    assert provenance["command"] == report["command"]
    assert provenance["packages"]["numpy"] == md.version("numpy")
    assert provenance["packages"]["onnxruntime"] == md.version("onnxruntime")
    assert provenance["image"] == RUN["ONNX_CONVERT_IMAGE"]
    assert provenance["git"] == {
        "commit": RUN["GITHUB_SHA"],
        "ref": "v1.3.0",
        "repository": "acme/models",
        "workflow": RUN["GITHUB_WORKFLOW_REF"],
        "run": "https://github.com/acme/models/actions/runs/42/attempts/2",
    }
    assert local.report("iris")["provenance"]["git"] == {} and local.report("iris")["provenance"]["image"] == ""
    # the run's identity is in the report only: the .onnx is the same bytes
    assert (tmp_path / "local" / "iris.onnx").read_bytes() == (tmp_path / "actions" / "iris.onnx").read_bytes()
