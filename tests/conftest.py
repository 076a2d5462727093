"""Shared fixtures: run the CLI in-process and read what a user would see."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from converter.cli import main


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str
    output_dir: Path

    @property
    def errors(self) -> str:
        """stderr without the progress lines."""
        return "".join(line for line in self.stderr.splitlines(keepends=True) if not line.startswith("onnx-convert: "))

    def report(self, stem: str) -> dict:
        return json.loads((self.output_dir / f"{stem}.report.json").read_text())

    def markdown(self, stem: str) -> str:
        return (self.output_dir / f"{stem}.report.md").read_text()

    def written(self) -> list[str]:
        if not self.output_dir.exists():
            return []
        return sorted(p.name for p in self.output_dir.iterdir())


@pytest.fixture
def run_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Run ``onnx-convert`` with the given arguments; --output-dir defaults to tmp_path/out."""

    def run(*args: str) -> CliResult:
        argv = list(args)
        if "--output-dir" not in argv:
            argv += ["--output-dir", str(tmp_path / "out")]
        output_dir = Path(argv[argv.index("--output-dir") + 1])
        capsys.readouterr()
        code = main(argv)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err, output_dir)

    return run


def sha256_of_two_runs(manifest: Path, output_dir: Path) -> dict[str, list[str]]:
    """Convert every model of ``manifest`` in two processes, each with its own string hash seed
    (set orders differ between them, as between two runs anywhere); the sha256 of each model's
    .onnx in the two runs, by model name."""
    digests: dict[str, list[str]] = {}
    # seeds whose set orders differ where it matters: skl2onnx lists the opsets of a LightGBM
    # multiclass model as "", ai.onnx.ml under seed 3 and ai.onnx.ml, "" under seed 4
    for seed in ("3", "4"):
        run = output_dir / f"run{seed}"
        done = subprocess.run(
            [sys.executable, "-m", "converter", "--model-path", str(manifest), "--output-dir", str(run), "--quiet"],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        for onnx in sorted(run.glob("*/*.onnx")):
            digests.setdefault(onnx.parent.name, []).append(hashlib.sha256(onnx.read_bytes()).hexdigest())
    return digests


def save_digits_mlp(folder: Path) -> tuple[Path, Path]:
    """A scikit-learn MLP classifier (StandardScaler + two hidden layers) fitted on the digits,
    saved as ``digits_mlp.skops``, and 64 of its rows as ``digits.npy`` (real sample data)."""
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=300, random_state=0))
    path, samples = folder / "digits_mlp.skops", folder / "digits.npy"
    sio.dump(model.fit(x, y), path)
    np.save(samples, x[::28][:64].astype(np.float32))
    return path, samples


# -- what GitHub's runner makes of a step's output --------------------------------------------

# The commands actions/runner registers (src/Runner.Worker/ActionCommandManager.cs and its extensions).
RUNNER_COMMANDS = frozenset(
    [
        "set-env",
        "set-output",
        "save-state",
        "add-path",
        "add-mask",
        "add-matcher",
        "remove-matcher",
        "warning",
        "error",
        "notice",
        "debug",
        "group",
        "endgroup",
        "echo",
        "stop-commands",
    ]
)


@dataclass
class RunnerView:
    commands: list[str]  # the lines the runner acts on, in order (stop and resume excluded)
    ignored: list[str]  # lines that hold a command but came while commands were stopped


def read_as_runner(output: str) -> RunnerView:
    """``output`` read line by line as actions/runner reads a step's output (ActionCommand.cs).

    A line is a command when, after leading whitespace, it starts with ``::name`` and has a second
    ``::``; or when it holds the legacy ``##[name]`` anywhere. After ``::stop-commands::TOKEN``
    only ``::TOKEN::`` is a command, and it resumes processing.
    """
    view = RunnerView([], [])
    token = None
    for line in re.split(r"\r\n|\r|\n", output):
        name = _command_name(line, RUNNER_COMMANDS | ({token} if token else set()))
        if name is None:
            continue
        if token is not None:
            if name == token:
                token = None
            else:
                view.ignored.append(line)
        elif name == "stop-commands":
            token = line.strip().split("::", 2)[2]
        else:
            view.commands.append(line.strip())
    return view


def _command_name(line: str, registered: frozenset[str] | set[str]) -> str | None:
    text = line.lstrip()
    if text.startswith("::") and (end := text.find("::", 2)) >= 0:
        name = text[2:end].split(" ", 1)[0]
        if name in registered:
            return name
    if (start := line.find("##[")) >= 0 and (end := line.find("]", start)) >= 0:
        name = line[start + 3 : end].split(" ", 1)[0]
        if name in registered:
            return name
    return None


# The reports' own raw HTML: folded sections with a title of ours (converter/markdown/report.py `folded`).
OWN_HTML = re.compile(r"<details><summary>[^<>]*</summary>\n|</details>\n")


def markdown_html(markdown: str) -> tuple[str, list[str]]:
    """GitHub-flavoured markdown (tables, strikethrough) as HTML, and the raw-HTML pieces it holds
    other than the reports' own ``<details>`` blocks."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    tokens = parser.parse(markdown)
    raw = [t.content for t in tokens if t.type == "html_block" and not OWN_HTML.fullmatch(t.content)]
    raw += [c.content for t in tokens for c in t.children or [] if c.type == "html_inline"]
    return parser.render(markdown), raw
