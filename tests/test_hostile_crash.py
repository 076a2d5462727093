"""A process that dies of a signal loses nothing: the conversion runs in a child process.

The models here really crash the process that loads them: pickles (loaded with
--allow-unsafe-load) that read address 0 (SIGSEGV) or send themselves SIGKILL, as the kernel's
OOM killer does. The action and the CLI run in their own processes, as the runner and a user
start them.
"""

from __future__ import annotations

import ctypes
import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from converter import child_process
from converter.escape import inert
from tests.fixtures.action import parse_output_file
from tests.fixtures.artifact_server import FakeResultsServer
from tests.fixtures.runner import read_as_runner
from tests.fixtures.sklearn import dataset, lazy
from tests.fixtures.tiers import model_fixture

sklearn = lazy("sklearn")
ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "converter", "--model-path"]  # run from ROOT: this checkout's converter
CRASH_HINT = (
    "a native library crashed on this model or ran out of memory: the file may be damaged or hostile; "
    "run the command under Reproduce (with --debug) to see where"
)


class _ReadsAddressZero:
    def __reduce__(self) -> tuple:
        return (ctypes.string_at, (0,))


class _Pid:
    def __reduce__(self) -> tuple:
        return (os.getpid, ())


class _KillsItself:
    def __reduce__(self) -> tuple:
        return (os.kill, (_Pid(), signal.SIGKILL))


@model_fixture
def workspace(tmp_path: Path, iris_skops: Path) -> Path:
    ws = tmp_path / "workspace"
    (ws / "models").mkdir(parents=True)
    (ws / "models" / "iris.skops").write_bytes(iris_skops.read_bytes())
    (ws / "models" / "segfault.pkl").write_bytes(pickle.dumps(_ReadsAddressZero()))
    (ws / "models" / "killed.pkl").write_bytes(pickle.dumps(_KillsItself()))
    return ws


def run_action(workspace: Path, env: dict[str, str] | None = None, **inputs: str) -> dict:
    """The container's entry point in its own process, with the runner's files."""
    output, summary = workspace.parent / "output.txt", workspace.parent / "summary.md"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "ACTIONS_", "GITHUB_"))}
    base |= {"GITHUB_WORKSPACE": str(workspace), "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
    base |= {"INPUT_" + key.replace("_", "-").upper(): value for key, value in inputs.items()}
    output.write_text("")
    summary.write_text("")
    done = subprocess.run(
        [sys.executable, str(ROOT / "entrypoint.py")],
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=600,
    )
    return {
        "code": done.returncode,
        "stdout": done.stdout,
        "outputs": parse_output_file(output.read_text()),
        "summary": summary.read_text(),
    }


def test_a_segfault_in_the_action_still_writes_the_annotation_summary_outputs_and_artifact(workspace: Path) -> None:
    with FakeResultsServer() as server:
        done = run_action(workspace, server.env(), model_path="models/segfault.pkl", allow_unsafe_load="true")

    crash = 'the conversion process was killed by SIGSEGV (Segmentation fault) at the step "loading the model"'
    assert done["code"] == 1, done["stdout"]
    assert [c for c in read_as_runner(done["stdout"]).commands if c.startswith("::error")] == [
        f"::error title=ONNX conversion failed::FAIL segfault.pkl: {crash}; {CRASH_HINT}"
    ]
    assert done["summary"].startswith(f"## ❌ segfault.pkl: conversion failed\n\n**Error:** {crash}; ")
    assert (
        "<summary>Reproduce</summary>\n\n```sh\nonnx-convert \\\n  --model-path models/segfault.pkl \\\n"
        "  --allow-unsafe-load true \\\n  --debug\n```" in done["summary"]
    )
    outputs = done["outputs"]
    assert (outputs["passed"], outputs["onnx-path"]) == ("false", "")
    assert outputs["report-path"] == "onnx-models/segfault.report.json"
    assert server.artifacts["segfault-onnx"].finalized
    assert sorted(p.name for p in (workspace / "onnx-models").iterdir()) == [
        "segfault.report.json",
        "segfault.report.md",
    ]  # the dead child's staging folder, with whatever it held, is gone
    report = json.loads((workspace / "onnx-models" / "segfault.report.json").read_text())
    assert (report["status"], report["model"]["framework"], report["model"]["format"]) == ("error", "sklearn", "pickle")


MANIFEST = """\
defaults:
  allow-unsafe-load: true
models:
  - name: first
    model-path: models/iris.skops
  - name: killed
    model-path: models/killed.pkl
  - name: last
    model-path: models/iris.skops
"""


def test_a_model_killed_in_a_manifest_costs_that_model_only(workspace: Path) -> None:
    (workspace / "onnx-models.yml").write_text(MANIFEST)

    done = run_action(workspace, model_path="onnx-models.yml", upload_artifact="false")

    assert done["code"] == 1, done["stdout"]
    index = json.loads((workspace / "onnx-models" / "index.json").read_text())
    rows = {row["name"]: row for row in index["models"]}
    assert [rows[name]["status"] for name in ("first", "killed", "last")] == ["passed", "error", "passed"]
    assert rows["killed"]["error"] == (
        "the conversion process was killed by SIGKILL (Killed), which is how the kernel's out-of-memory killer ends "
        f'a process at the step "loading the model"; {CRASH_HINT}'
    )
    assert rows["killed"]["report"] == f"{workspace}/onnx-models/killed/killed.report.json"
    assert "❌ 1 of 3 models failed" in done["summary"]
    assert (workspace / "onnx-models" / "last" / "iris.onnx").is_file()


def test_the_cli_says_in_one_line_that_the_conversion_crashed(tmp_path: Path, workspace: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [*CLI, str(workspace / "models" / "segfault.pkl"), "--allow-unsafe-load", "true", "--output-dir", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )

    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == (
        "FAIL segfault.pkl: the conversion process was killed by SIGSEGV (Segmentation fault) at the step "
        f'"loading the model"; {CRASH_HINT}'
    )
    assert "Traceback" not in done.stderr and "Fatal Python error" not in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["segfault.report.json", "segfault.report.md"]


def test_with_debug_the_cli_shows_where_the_child_crashed(tmp_path: Path, workspace: Path) -> None:
    done = subprocess.run(
        [
            *CLI,
            str(workspace / "models" / "segfault.pkl"),
            "--allow-unsafe-load",
            "true",
            "--output-dir",
            str(tmp_path / "o"),
            "--debug",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )

    assert done.returncode == 1
    assert "Fatal Python error: Segmentation fault" in done.stderr
    assert 'File "' in done.stderr and "joblib" in done.stderr  # the stack: the pickle was being loaded


# -- item 7: under `docker run` or a run step, what frameworks print cannot be a workflow command -----


class _Prints:
    def __reduce__(self) -> tuple:
        return (print, ("::warning title=pwned::printed while loading\n  ::error::indented, and ##[error]legacy",))


class _WritesToFd2:
    def __reduce__(self) -> tuple:
        return (os.write, (2, b"::add-mask::written to fd 2 as C code would\n"))


@pytest.mark.converts
def test_what_a_model_prints_reaches_the_cli_output_as_no_command(tmp_path: Path) -> None:
    model = sklearn.linear_model.LogisticRegression(max_iter=1000).fit(*dataset("iris"))
    model.printed, model.written = _Prints(), _WritesToFd2()  # unpickled (run) as the model loads
    (tmp_path / "noisy.pkl").write_bytes(pickle.dumps(model))

    done = subprocess.run(
        [*CLI, str(tmp_path / "noisy.pkl"), "--allow-unsafe-load", "true", "--output-dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )

    assert done.returncode == 0, done.stderr
    assert read_as_runner(done.stdout).commands == []
    assert read_as_runner(done.stderr).commands == []
    assert "\\x3a:warning title=pwned::printed while loading\n  \\x3a:error::indented, and ##\\x5berror]legacy\n" in (
        done.stdout
    )
    assert "\\x3a:add-mask::written to fd 2 as C code would\n" in done.stderr


# -- the child process itself ------------------------------------------------------------------------


def _write_in_pieces(pieces: list[str]) -> child_process.Death | None:
    def work(_channel: child_process.Channel) -> None:
        for piece in pieces:
            sys.stdout.write(piece)
            sys.stdout.flush()

    return child_process.run_in_child(work, lambda _k, _v: None, child_process.Options(line_filter=inert))


def test_lines_are_made_inert_whatever_pieces_they_come_in(capsys: pytest.CaptureFixture[str]) -> None:
    assert _write_in_pieces(["::war", "ning::a\r::x::b\n#", "#", "[error]c"]) is None
    assert capsys.readouterr().out == "\\x3a:warning::a\r\\x3a:x::b\n##\\x5berror]c\n"  # a line of ours starts after


def test_a_line_too_long_to_hold_is_passed_on_in_pieces_still_inert(capsys: pytest.CaptureFixture[str]) -> None:
    long = "::" + "x" * (child_process.MAX_LINE_CHARS - 3) + "##[e" + "y" * 10 + "\n"
    assert (
        _write_in_pieces([long[: child_process.MAX_LINE_CHARS + 1], long[child_process.MAX_LINE_CHARS + 1 :]]) is None
    )
    assert capsys.readouterr().out == inert(long)


def test_messages_arrive_in_order_and_an_exit_before_the_end_is_a_death() -> None:
    got: list[tuple[str, object]] = []

    def work(channel: child_process.Channel) -> None:
        channel.send("progress", "one")
        channel.send("report", {"big": "x" * 200_000})  # more than a pipe holds
        os._exit(3)

    death = child_process.run_in_child(work, lambda kind, value: got.append((kind, value)), child_process.Options())

    assert death == child_process.Death(exit_code=3)
    assert death.describe() == "exited with code 3 before it finished"
    assert got == [("progress", "one"), ("report", {"big": "x" * 200_000})]


def test_an_exception_the_work_does_not_handle_is_a_bug_with_its_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    def work(_channel: child_process.Channel) -> None:
        raise KeyError("lost")

    with pytest.raises(child_process.ChildBugError, match=r"^KeyError: 'lost'$"):
        child_process.run_in_child(work, lambda _k, _v: None, child_process.Options())
    assert 'raise KeyError("lost")' in capsys.readouterr().err
