"""What every e2e test module shares: the sandbox, the action's image, and one workflow run by act.

A test module copies the repository (``new_repository``), adds its models and its workflow, and
calls ``run_workflow`` inside ``exclusive_sandbox()``; it then reads act's JSON log (``events``)
and the artifact server's directory.

Needs ../shared/tools (container-sandbox, act-local) beside the repository; ``exclusive_sandbox``
skips, with the reason, where the sandbox cannot start, and fails under CI=true (.ci/run sets it:
CI must not pass without the e2e layer). .ci/run starts the sandbox first. Every run builds
the image (target full, the action's default) from the copy, so it holds the work tree's code;
each stage's last layer is tagged so that `container-sandbox prune` keeps the layer cache for the
next build, which then takes a minute or two instead of most of an hour.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("ONNX_CONVERT_SANDBOX_TOOLS", ROOT.parent / "shared" / "tools"))
WHEELS = Path("/opt/container-sandbox/wheels")  # torch CPU wheels that `container-sandbox up` leaves
# action.yml is a trampoline: under `uses: ./` it runs the docker action it writes at
# action/image.py's GENERATED path, built from the Dockerfile. act names the image of a local
# docker action after its path (`./x/y` -> act-x-y-dockeraction) and uses an image of that name
# as it is (--rebuild=false): the one we build below. No registry is reachable, so nothing is pulled.
IMAGE = "act-github--tmp--generated-actions-onnx-convert-dockeraction:latest"
CACHE_TAG = "onnx-convert-e2e-cache"
LOCK = Path("/tmp/onnx-convert-e2e.lock")
BUILD_TIMEOUT = 45 * 60
ACT_TIMEOUT = 20 * 60


@dataclass
class ActRun:
    repo: Path
    artifacts: Path  # act's artifact server stores uploads under <run>/<name>/<name>.zip
    log: Path  # act's stdout and stderr
    stdout: str
    minutes: dict[str, float] = field(default_factory=dict)


def sandbox_or_skip() -> None:
    """Start the sandbox, or skip the test where it cannot start; under CI fail instead."""
    tool = TOOLS / "container-sandbox"
    if not tool.exists():
        _unavailable(f"no {tool}: the e2e tests need the shared container sandbox beside the repository")
    up = subprocess.run([str(tool), "up"], capture_output=True, text=True, timeout=30 * 60)
    if up.returncode != 0:
        _unavailable(f"container-sandbox up failed ({up.returncode}): {(up.stderr or up.stdout)[-1500:]}")


def _unavailable(reason: str) -> NoReturn:
    """Skip; but under CI (CI=true, as .ci/run and GitHub set it) fail: a CI run whose e2e layer
    was skipped would be green without having run the action at all."""
    if os.environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail(f"CI is {os.environ['CI']!r} and the e2e layer cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def exclusive_sandbox() -> Iterator[None]:
    """Skip without the sandbox; else hold the machine-wide e2e lock, and prune afterwards.

    One run at a time on a machine: runs share the image tag, and a prune during another run's
    build can delete the layer that build is about to use.
    """
    sandbox_or_skip()
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            # Each image build leaves GBs of dangling layers; the tagged stages stay as cache.
            subprocess.run([str(TOOLS / "container-sandbox"), "prune"], check=False)


def new_repository(base: Path) -> Path:
    """``base/repo``: the work tree as a developer has it (tracked and new files, nothing
    ignored), without tests/ and .github/ (each test writes the workflow it runs)."""
    repo = base / "repo"
    repo.mkdir()
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listing.split("\0")):
        source = ROOT / name
        if name.startswith(("tests/", ".github/")) or not source.is_file():
            continue
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, repo / name)
    (repo / ".github" / "workflows").mkdir(parents=True)
    return repo


def build_model(name: str, models: Path) -> Path:
    """A builder of tests/e2e/models.py, in a process of its own; the model's path."""
    models.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        [sys.executable, "-m", "tests.e2e.models", name, str(models)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, f"building the {name} model failed:\n{made.stderr[-3000:]}"
    return Path(made.stdout.strip().splitlines()[-1])


def run_workflow(repo: Path, workflow: str, base: Path) -> ActRun:
    """Build the image from ``repo``, commit it, run ``.github/workflows/<workflow>`` under act.

    Fails the test when the image does not build or act exits non-zero (a failing job), with the
    end of act's stderr and the path of the full log.
    """
    for wheel in WHEELS.glob("torch-*.whl"):  # the build context only; never in git
        shutil.copy2(wheel, repo / "docker" / "wheels" / wheel.name)
    minutes = {}
    start = time.monotonic()
    _build_image(repo, base / "docker-build.log")
    minutes["image build"] = (time.monotonic() - start) / 60
    for wheel in (repo / "docker" / "wheels").glob("*.whl"):
        wheel.unlink()  # act copies the workspace into its job containers: keep it small

    git = ["git", "-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "e2e"], cwd=repo, check=True)
    artifacts, log = base / "artifacts", base / "act.log"
    start = time.monotonic()
    act = subprocess.run(
        [
            *(str(TOOLS / "act-local"), str(artifacts), "push", "-W", f".github/workflows/{workflow}"),
            *("--rebuild=false", "--json"),
            # act's default, 34567, may be taken by another act
            *("--artifact-server-port", str(_free_port())),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=ACT_TIMEOUT,
    )
    minutes["act run"] = (time.monotonic() - start) / 60
    log.write_text(act.stdout + act.stderr)
    (base / "minutes.json").write_text(json.dumps(minutes))
    print(f"e2e {workflow}: {', '.join(f'{k} {v:.1f} min' for k, v in minutes.items())}; logs in {base}")
    assert act.returncode == 0, f"act failed ({act.returncode}); log: {log}\n{act.stderr[-3000:]}"
    return ActRun(repo, artifacts, log, act.stdout, minutes)


def events(run: ActRun) -> Iterator[dict]:
    """act's --json log entries (one JSON object a line; other lines are skipped)."""
    for line in run.stdout.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            yield entry


def step_events(run: ActRun) -> Iterator[dict]:
    """``events`` as GitHub would report them: without the summary act reports twice for a composite
    action. act gives a composite step and the steps nested in it one SUMMARY.md, and reads it after
    each (nektos/act pkg/runner/step.go), so the outer step repeats its nested docker step's summary;
    GitHub gives every step a file of its own (actions/runner ActionRunner.cs: a FileCommandManager
    per step), so the summary appears once. The nested step's event is kept."""
    entries = list(events(run))
    nested = {(e.get("jobID"), json.dumps(e.get("matrix")), e["stepID"][0]) for e in entries if _nested_summary(e)}
    for entry in entries:
        outer = entry.get("command") == "summary" and len(entry.get("stepID") or []) == 1
        if outer and (entry.get("jobID"), json.dumps(entry.get("matrix")), entry["stepID"][0]) in nested:
            continue
        yield entry


def _nested_summary(entry: dict) -> bool:
    return entry.get("command") == "summary" and len(entry.get("stepID") or []) > 1


def zips(run: ActRun) -> list[str]:
    """Every zip the artifact server holds, as <run>/<name>/<name>.zip."""
    return sorted(p.relative_to(run.artifacts).as_posix() for p in run.artifacts.rglob("*.zip"))


def _build_image(context: Path, log: Path) -> None:
    """docker build --target full; then tag the last layer of every stage so prune keeps it."""
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the builder act uses; no buildx needed
    with log.open("w") as out:
        build = subprocess.run(
            ["docker", "build", "--target", "full", "-t", IMAGE, str(context)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=BUILD_TIMEOUT,
        )
    text = log.read_text(errors="replace")
    if build.returncode != 0:
        pytest.fail(f"docker build failed ({build.returncode}):\n{text[-4000:]}")
    stage, last = None, None
    for line in text.splitlines():
        if match := re.match(r"Step \d+/\d+ : FROM \S+ AS (\S+)", line, re.I):
            if stage and last:
                subprocess.run(["docker", "tag", last, f"{CACHE_TAG}:{stage}"], check=True)
            stage, last = match.group(1), None
        elif match := re.match(r" ---> ([0-9a-f]{12})$", line):
            last = match.group(1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
