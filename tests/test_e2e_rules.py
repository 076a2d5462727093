"""The rule that keeps CI honest: without the container sandbox the e2e layer is skipped on a
developer's machine, and fails under CI (CI=true, which .ci/run sets). Run without Docker: the
sandbox tool is a stand-in that cannot start, and pytest runs the e2e module in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_e2e_module(tools: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["ONNX_CONVERT_SANDBOX_TOOLS"] = str(tools)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "e2e",
            "tests/e2e/test_action_e2e.py",
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def broken_sandbox(tmp_path: Path) -> Path:
    """A container-sandbox that cannot start, as on a machine without Docker."""
    tool = tmp_path / "container-sandbox"
    tool.write_text("#!/bin/sh\necho 'docker: cannot connect to the Docker daemon' >&2\nexit 3\n")
    tool.chmod(0o755)
    return tmp_path


def test_without_ci_an_e2e_layer_that_cannot_start_is_skipped_with_the_reason(broken_sandbox: Path) -> None:
    done = run_e2e_module(broken_sandbox, ci=None)

    assert done.returncode == 0, done.stdout + done.stderr
    assert " skipped" in done.stdout and "failed" not in done.stdout


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_under_ci_an_e2e_layer_that_cannot_start_fails_the_run(broken_sandbox: Path, ci: str) -> None:
    done = run_e2e_module(broken_sandbox, ci=ci)

    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        f"CI is '{ci}' and the e2e layer cannot run: container-sandbox up failed (3): "
        "docker: cannot connect to the Docker daemon"
    ) in done.stdout


def test_under_ci_a_missing_sandbox_fails_the_run_too(tmp_path: Path) -> None:
    done = run_e2e_module(tmp_path, ci="true")

    assert done.returncode == 1, done.stdout + done.stderr
    assert f"CI is 'true' and the e2e layer cannot run: no {tmp_path}/container-sandbox" in done.stdout


def test_ci_run_sets_ci_before_it_runs_the_tests() -> None:
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "export CI=true" in script
    assert script.index("export CI=true") < script.index("make test")
