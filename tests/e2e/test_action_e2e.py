"""The action end to end: its image built by Docker, run by nektos/act as GitHub's runner would.

A copy of the repository gets example models and a workflow that uses the action (``uses: ./``)
once per case in CASES; act runs it against its own artifact server (protocol v4). We check what a
user would see: the job summary, the step outputs, the annotations and the uploaded zips.

Needs ../shared/tools (container-sandbox, act-local) beside the repository; skipped, with the
reason, where the sandbox cannot start. .ci/run starts it first. One image build per run (target
full, the action's default), tagged per stage so that `container-sandbox prune` keeps the layer
cache for the next run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from converter.github.outputs import OUTPUTS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("ONNX_CONVERT_SANDBOX_TOOLS", ROOT.parent / "shared" / "tools"))
WHEELS = Path("/opt/container-sandbox/wheels")  # torch CPU wheels that `container-sandbox up` leaves
# act names the image of a local docker action after its path (`./` -> act-dockeraction) and, run
# with --rebuild=false, uses an image of that name as it is: the one we build below.
IMAGE = "act-dockeraction:latest"
CACHE_TAG = "onnx-convert-e2e-cache"
LOCK = Path("/tmp/onnx-convert-e2e.lock")
BUILD_TIMEOUT = 45 * 60
ACT_TIMEOUT = 20 * 60


# -- the cases: one entry per framework, and one that must fail ---------------------------------


@dataclass(frozen=True)
class Case:
    step: str  # step id in the workflow; the artifact is <step>-onnx
    model: str  # a builder in tests/e2e/models.py
    inputs: dict[str, str] = field(default_factory=dict)
    passes: bool = True

    @property
    def artifact(self) -> str:
        return f"{self.step}-onnx"


CASES = [
    Case("sklearn", "sklearn-iris"),
    Case("pytorch", "pytorch-mlp", {"input-shapes": "1x8"}),  # TorchScript does not record input shapes
    Case("tensorflow", "keras-mlp"),
    # float32 ONNX against float64 scikit-learn cannot be exact: a tolerance of 0 must fail.
    Case("sklearn-zero-tolerance", "sklearn-iris", {"atol": "0", "rtol": "0"}, passes=False),
]


def _build_model(name: str, models: Path) -> Path:
    made = subprocess.run(
        [sys.executable, "-m", "tests.e2e.models", name, str(models)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, f"building the {name} model failed:\n{made.stderr[-3000:]}"
    return Path(made.stdout.strip().splitlines()[-1])


# -- running it ---------------------------------------------------------------------------------


@dataclass
class StepLog:
    summary: str = ""
    errors: list[dict] = field(default_factory=list)
    result: str = ""


@dataclass
class E2ERun:
    repo: Path
    artifacts: Path
    steps: dict[str, dict]  # toJSON(steps) from the workflow: outputs, outcome, conclusion
    logs: dict[str, StepLog]
    minutes: dict[str, float]


def _sandbox_or_skip() -> None:
    tool = TOOLS / "container-sandbox"
    if not tool.exists():
        pytest.skip(f"no {tool}: the e2e tests need the shared container sandbox beside the repository")
    up = subprocess.run([str(tool), "up"], capture_output=True, text=True, timeout=30 * 60)
    if up.returncode != 0:
        pytest.skip(f"container-sandbox up failed ({up.returncode}): {(up.stderr or up.stdout)[-1500:]}")


def _copy_repository(destination: Path) -> None:
    """The work tree as a developer has it (tracked and new files, nothing ignored), tests left out."""
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
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination / name)


def _workflow(cases: list[Case], model_paths: dict[str, str]) -> str:
    steps: list[dict] = [{"uses": "actions/checkout@v4"}]
    for case in cases:
        step: dict = {
            "id": case.step,
            "uses": "./",
            "with": {
                "model-path": model_paths[case.step],
                "output-dir": f"out/{case.step}",
                "artifact-name": case.artifact,
                **case.inputs,
            },
        }
        if not case.passes:
            step["continue-on-error"] = True
        steps.append(step)
    steps.append(
        {
            "name": "steps",
            "if": "always()",
            "env": {"STEPS": "${{ toJSON(steps) }}"},
            "run": """python3 -c 'import json, os; print("E2E-STEPS " + json.dumps(json.loads(os.environ["STEPS"])))'""",
        }
    )
    workflow = {"name": "e2e", "on": "push", "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": steps}}}
    return yaml.safe_dump(workflow, sort_keys=False, width=1000)


def _build_image(context: Path, log: Path) -> None:
    """docker build --target full, once; then tag the last layer of every stage so prune keeps it."""
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


def _read_act_log(lines: list[str]) -> tuple[dict[str, dict], dict[str, StepLog]]:
    steps: dict[str, dict] = {}
    logs: dict[str, StepLog] = defaultdict(StepLog)
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        step_id = (entry.get("stepID") or [""])[0]
        message = entry.get("msg", "")
        if entry.get("command") == "summary":
            logs[step_id].summary += entry.get("content", "")
        elif entry.get("command") == "error":
            logs[step_id].errors.append(entry)
        elif entry.get("stepResult") and entry.get("stage") == "Main":
            logs[step_id].result = entry["stepResult"]
        elif entry.get("raw_output") and message.startswith("E2E-STEPS "):
            steps = json.loads(message[len("E2E-STEPS ") :])
    return steps, dict(logs)


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ERun]:
    _sandbox_or_skip()
    base = tmp_path_factory.mktemp("e2e")
    # One run at a time on a machine: runs share the image tag, and a prune during another
    # run's build can delete the layer that build is about to use.
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield _run(base)
        finally:
            # Each image build leaves GBs of dangling layers; the tagged stages stay as cache.
            subprocess.run([str(TOOLS / "container-sandbox"), "prune"], check=False)


def _run(base: Path) -> E2ERun:
    repo, artifacts = base / "repo", base / "artifacts"
    repo.mkdir()
    _copy_repository(repo)
    models = repo / "e2e-models"
    models.mkdir()
    built = {name: _build_model(name, models) for name in {case.model for case in CASES}}
    model_paths = {case.step: str(built[case.model].relative_to(repo)) for case in CASES}
    (repo / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
    (repo / ".github" / "workflows" / "e2e.yml").write_text(_workflow(CASES, model_paths))
    for wheel in WHEELS.glob("torch-*.whl"):  # the build context only; never in git
        shutil.copy2(wheel, repo / "docker" / "wheels" / wheel.name)

    minutes = {}
    start = time.monotonic()
    _build_image(repo, base / "docker-build.log")
    minutes["image build"] = (time.monotonic() - start) / 60
    for wheel in (repo / "docker" / "wheels").glob("*.whl"):
        wheel.unlink()  # act copies the workspace into its job container: keep it small

    git = ["git", "-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "e2e"], cwd=repo, check=True)
    start = time.monotonic()
    act = subprocess.run(
        [
            str(TOOLS / "act-local"),
            str(artifacts),
            "push",
            "-W",
            ".github/workflows/e2e.yml",
            "--rebuild=false",
            "--json",
            "--artifact-server-port",  # act's default, 34567, may be taken by another act
            str(_free_port()),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=ACT_TIMEOUT,
    )
    minutes["act run"] = (time.monotonic() - start) / 60
    (base / "act.log").write_text(act.stdout + act.stderr)
    (base / "minutes.json").write_text(json.dumps(minutes))
    steps, logs = _read_act_log(act.stdout.splitlines())
    print(f"e2e: {', '.join(f'{k} {v:.1f} min' for k, v in minutes.items())}; logs in {base}")
    assert act.returncode == 0, f"act failed ({act.returncode}); log: {base / 'act.log'}\n{act.stderr[-3000:]}"
    assert steps, f"the workflow's last step did not print the steps context; log: {base / 'act.log'}"
    return E2ERun(repo, artifacts, steps, logs, minutes)


# -- what a user sees ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.step)
def test_step_outputs_are_set_and_passed_is_right(e2e: E2ERun, case: Case) -> None:
    step = e2e.steps[case.step]
    outputs = step["outputs"]
    assert set(outputs) == set(OUTPUTS)
    assert outputs["passed"] == ("true" if case.passes else "false")
    assert step["outcome"] == ("success" if case.passes else "failure")
    assert outputs["onnx-path"].startswith(f"out/{case.step}/") and outputs["onnx-path"].endswith(".onnx")
    assert outputs["report-path"].startswith(f"out/{case.step}/") and outputs["report-path"].endswith(".report.json")
    assert int(outputs["opset"]) >= 7
    assert float(outputs["max-abs-diff"]) >= 0
    assert outputs["artifact-id"].isdigit()
    assert outputs["artifact-url"].endswith(f"/actions/runs/1/artifacts/{outputs['artifact-id']}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.step)
def test_job_summary_holds_the_report(e2e: E2ERun, case: Case) -> None:
    summary = e2e.logs[case.step].summary
    model = Path(e2e.steps[case.step]["outputs"]["onnx-path"]).stem
    verdict = "✅" if case.passes else "❌"
    assert summary.startswith(f"## {verdict} {model}")
    assert "### Comparison" in summary and "### Versions" in summary
    assert f"**Artifact:** [{case.artifact}](" in summary


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.step)
def test_only_the_failing_case_fails_its_step_with_an_error_annotation(e2e: E2ERun, case: Case) -> None:
    errors = e2e.logs[case.step].errors
    if case.passes:
        assert errors == []
        assert e2e.logs[case.step].result == "success"
    else:
        assert len(errors) == 1
        assert errors[0]["kvPairs"] == {"title": "ONNX output differs from the original"}
        assert errors[0]["arg"].startswith("FAIL ")
        assert e2e.logs[case.step].result == "failure"


def test_the_artifact_server_holds_one_zip_per_upload(e2e: E2ERun) -> None:
    zips = sorted(p.relative_to(e2e.artifacts).as_posix() for p in e2e.artifacts.rglob("*.zip"))
    assert zips == sorted(f"1/{case.artifact}/{case.artifact}.zip" for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.step)
def test_each_zip_holds_an_onnx_that_onnxruntime_loads_and_the_report_with_its_sha256(
    e2e: E2ERun, case: Case, tmp_path: Path
) -> None:
    import onnxruntime

    archive = zipfile.ZipFile(e2e.artifacts / "1" / case.artifact / f"{case.artifact}.zip")
    names = archive.namelist()
    onnx_name = Path(e2e.steps[case.step]["outputs"]["onnx-path"]).name
    stem = onnx_name.removesuffix(".onnx")
    assert sorted(names) == sorted([onnx_name, f"{stem}.report.json", f"{stem}.report.md"])
    archive.extractall(tmp_path)
    report = json.loads((tmp_path / f"{stem}.report.json").read_text())
    digest = hashlib.sha256((tmp_path / onnx_name).read_bytes()).hexdigest()
    assert digest == report["onnx"]["sha256"]
    assert f"| ONNX sha256 | `{digest}` |" in e2e.logs[case.step].summary
    session = onnxruntime.InferenceSession(str(tmp_path / onnx_name), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [i["name"] for i in report["onnx"]["inputs"]]
