"""The release gate end to end: the action's image under act, compared with a previous release.

The workflow's first steps make the "previous release" (the action, into release/), as a release
workflow's download of the last release would put it on disk (act can run neither
`gh release download` nor a remote action, so the baseline comes from an earlier step of the same
run); the next steps convert the new models with `baseline:` pointing at it. A retrained model
passes, with its drift in the summary; a model whose input was renamed fails the step. A signed
conversion checks that the image can sign (`sign: key`, the key in the step's env).
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from converter.github.outputs import OUTPUTS
from tests.fixtures import act
from tests.fixtures.signing import require

pytestmark = [pytest.mark.e2e, pytest.mark.converts]

MODELS = ("sklearn-iris", "sklearn-iris-retrained", "pytorch-net-x", "pytorch-net-features")


@dataclass
class ReleaseRun:
    run: act.ActRun
    steps: dict[str, dict]
    logs: dict[str, act.StepLog]
    public_key: bytes


def _signing_key() -> tuple[str, bytes]:
    """A P-256 private key (PEM) and its public key, made by the openssl command."""
    private = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        capture_output=True,
        check=True,
    ).stdout
    public = subprocess.run(["openssl", "pkey", "-pubout"], input=private, capture_output=True, check=True).stdout
    return private.decode(), public


def _step(step_id: str, model: str, output: str, **inputs: str) -> dict:
    return {
        "id": step_id,
        "uses": "./",
        "with": {"model-path": model, "output-dir": output, "artifact-name": step_id, **inputs},
    }


def _workflow(paths: dict[str, str], private_key: str) -> str:
    renamed = _step("renamed", paths["pytorch-net-features"], "out/renamed", baseline="release/torch/net-x.report.json")
    renamed["continue-on-error"] = True
    signed = _step("signed", paths["sklearn-iris"], "out/signed", sign="key")
    signed["env"] = {"ONNX_CONVERT_SIGNING_KEY": private_key}
    signed["continue-on-error"] = True
    steps = [
        {"uses": "actions/checkout@v4"},
        # the previous release, as `gh release download` leaves it: the .onnx and its report
        _step("release-sklearn", paths["sklearn-iris"], "release/sklearn"),
        _step("release-torch", paths["pytorch-net-x"], "release/torch"),
        _step("retrain", paths["sklearn-iris-retrained"], "out/retrain", baseline="release/sklearn/iris.report.json"),
        renamed,
        signed,
        {
            "name": "steps",
            "if": "always()",
            "env": {"STEPS": "${{ toJSON(steps) }}"},
            "run": """python3 -c 'import json, os; print("E2E-STEPS " + json.dumps(json.loads(os.environ["STEPS"])))'""",
        },
    ]
    workflow = {"name": "release", "on": "push", "jobs": {"release": {"runs-on": "ubuntu-latest", "steps": steps}}}
    return yaml.safe_dump(workflow, sort_keys=False, width=1000)


@pytest.fixture(scope="module")
def release_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReleaseRun]:
    with act.exclusive_sandbox():
        base = tmp_path_factory.mktemp("release-e2e")
        repo = act.new_repository(base)
        models = repo / "e2e-models"
        paths = {name: str(act.build_model(name, models).relative_to(repo)) for name in MODELS}
        private, public = _signing_key()
        (repo / ".github" / "workflows" / "release.yml").write_text(_workflow(paths, private))
        run = act.run_workflow(repo, "release.yml", base)
        steps, logs = act.read_act_log(run)
        assert steps, f"the workflow's last step did not print the steps context; log: {run.log}"
        yield ReleaseRun(run, steps, logs, public)


def test_a_retrained_model_passes_with_its_drift_in_the_summary(release_run: ReleaseRun) -> None:
    step = release_run.steps["retrain"]
    assert step["outcome"] == "success"
    assert set(step["outputs"]) == set(OUTPUTS)
    assert step["outputs"]["interface-changed"] == "false"
    assert step["outputs"]["breaking-changes"] == "0"
    summary = release_run.logs["retrain"].summary
    assert summary.startswith("## ✅ iris-retrained.skops → iris-retrained.onnx: every output within tolerance")
    # the baseline's release is the ref its run recorded (act pushes master; a release workflow, the tag)
    assert "### Compared with master\n\nBaseline: `" in summary
    assert (
        "/release/sklearn/iris.report.json` and `" in summary and "/release/sklearn/iris.onnx`. ✅ passes.\n" in summary
    )
    assert "Interface unchanged; size ×1.00, latency ×" in summary
    assert "| Drift of `probabilities` from the baseline file | - | max abs diff " in summary
    assert release_run.logs["retrain"].errors == []


def test_a_renamed_input_fails_the_step_with_one_error(release_run: ReleaseRun) -> None:
    step = release_run.steps["renamed"]
    assert step["outcome"] == "failure"
    assert step["outputs"]["interface-changed"] == "true"
    assert step["outputs"]["breaking-changes"] == "1"
    assert step["outputs"]["passed"] == "false"
    [error] = release_run.logs["renamed"].errors
    assert error["kvPairs"] == {"title": "ONNX file rejected by the comparison with the baseline"}
    assert error["arg"].endswith(
        "rejected by the baseline: 1 breaking interface change from the baseline: input x: renamed to features: "
        "clients feed inputs and read outputs by name (--allow-interface-change true accepts them)"
    )
    summary = release_run.logs["renamed"].summary
    assert summary.startswith(
        "## ❌ net-features.pt2 → net-features.onnx: validated, but rejected by the comparison with the baseline\n\n"
        "❌ **Rejected by the comparison with the baseline:** 1 breaking interface change from the baseline: "
    )
    assert "| input `x` renamed | `x float32 [" in summary


def test_the_signed_file_verifies_with_the_public_key(release_run: ReleaseRun, tmp_path: Path) -> None:
    assert release_run.steps["signed"]["outcome"] == "success", release_run.logs["signed"].lines[-20:]
    archive = zipfile.ZipFile(release_run.run.artifacts / "1" / "signed" / "signed.zip")
    assert sorted(archive.namelist()) == ["iris.onnx", "iris.onnx.sig", "iris.report.json", "iris.report.md"]
    archive.extractall(tmp_path)
    report = json.loads((tmp_path / "iris.report.json").read_text())
    assert report["provenance"]["signature"]["file"] == "iris.onnx.sig"
    assert report["provenance"]["git"]["commit"]  # GITHUB_SHA, as act sets it
    (tmp_path / "key.pub").write_bytes(release_run.public_key)
    model_signing = require("model_signing")
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=tmp_path / "key.pub").verify(
        tmp_path / "iris.onnx", tmp_path / "iris.onnx.sig"
    )
