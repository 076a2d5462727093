"""Section 8 of bench/run.py (``--only hf``): Hugging Face folders, onnx-convert beside ``optimum-cli export onnx``.

The same tiny folders (tests/fixtures/hf_folders.py: BERT, RoBERTa, DistilBERT, Llama-style,
ViT, Whisper, wav2vec2) go through both tools, side by side (ABBA), each from process start to
exit, with its peak RSS; Optimum gets the ``--task`` it needs (it cannot infer one for a local
folder: it asks the Hub) and is also run once without it. Then a truncated ``model.safetensors``,
and a planted mismatch (bench/hf_plant.py: the exported file's classifier weight scaled by 1.5
before each tool validates it): what each tool says and its exit code.

Optimum lives in a venv of its own (it pins transformers below ours): ``OPTIMUM_VENV``, default
/tmp/optimum-venv, made with ``pip install torch==2.13.0 optimum-onnx``. Without it the section
says so and measures nothing of Optimum's.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPTIMUM_VENV = Path(os.environ.get("OPTIMUM_VENV", "/tmp/optimum-venv"))
BUILD = """
import sys
from pathlib import Path
from tests.fixtures.hf_folders import RECIPES, save_folder, truncate
work = Path(sys.argv[1])
for name, recipe in RECIPES.items():
    save_folder(recipe, work / name)
save_folder(RECIPES["bert"], work / "truncated")
truncate(work / "truncated" / "model.safetensors")
"""


@dataclass
class Outcome:
    seconds: float
    peak_mb: float
    code: int
    last_line: str
    traceback: bool


@dataclass
class Row:
    name: str
    ours: list[Outcome] = field(default_factory=list)
    theirs: list[Outcome] = field(default_factory=list)
    untasked: Outcome | None = None  # optimum without --task


@dataclass
class Results:
    optimum: str  # its version, or why it was not measured
    rows: list[Row] = field(default_factory=list)
    broken: dict[str, Outcome] = field(default_factory=dict)  # the truncated folder, per tool
    planted: dict[str, Outcome] = field(default_factory=dict)


def run(command: list[str]) -> Outcome:
    """Wall time, max RSS, exit code and the last line of stderr/stdout of one child."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    lines = [line for line in output.splitlines() if line.strip()]
    return Outcome(
        seconds=time.perf_counter() - start,
        peak_mb=usage.ru_maxrss / 1024,
        code=os.waitstatus_to_exitcode(status),
        last_line=(lines[-1] if lines else "")[:300],
        traceback="Traceback (most recent call last)" in output,
    )


def optimum_version() -> str | None:
    python = OPTIMUM_VENV / "bin" / "python"
    if not (OPTIMUM_VENV / "bin" / "optimum-cli").exists():
        return None
    found = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m; print(m.version('optimum-onnx'), m.version('optimum'), m.version('transformers'))",
        ],
        capture_output=True,
        text=True,
    )
    onnx_version, optimum, transformers = found.stdout.split()
    return f"optimum-onnx {onnx_version} (optimum {optimum}, transformers {transformers})"


def measure(work: Path, runs: int) -> Results:
    from tests.fixtures.hf_folders import RECIPES

    subprocess.run([sys.executable, "-c", BUILD, str(work)], cwd=ROOT, check=True, capture_output=True)
    version = optimum_version()
    results = Results(version or f"not measured: no optimum-cli in {OPTIMUM_VENV} (set OPTIMUM_VENV)")
    for name, recipe in RECIPES.items():
        print(f"hf: {name}", file=sys.stderr)
        row = Row(name)
        for index in range(runs):
            order = ("ours", "theirs") if index % 2 == 0 else ("theirs", "ours")
            for side in order:
                if side == "ours":
                    row.ours.append(run(_ours(work / name, work / "out-ours" / f"{name}-{index}")))
                elif version:
                    extra = recipe.extra.get("optimum", [])
                    command = _optimum(work / name, work / "out-optimum" / f"{name}-{index}", recipe.optimum_task)
                    row.theirs.append(run(command + extra))
        if version:
            row.untasked = run(_optimum(work / name, work / "out-optimum" / f"{name}-untasked", None))
        results.rows.append(row)
    results.broken["onnx-convert"] = run(_ours(work / "truncated", work / "out-ours" / "truncated"))
    plant = [str(ROOT / "bench" / "hf_plant.py")]
    results.planted["onnx-convert"] = run(
        [sys.executable, *plant, "ours", str(work / "bert"), str(work / "plant-ours")]
    )
    if version:
        bert = RECIPES["bert"].optimum_task
        results.broken["optimum"] = run(_optimum(work / "truncated", work / "out-optimum" / "truncated", bert))
        python = str(OPTIMUM_VENV / "bin" / "python")
        results.planted["optimum"] = run(
            [python, *plant, "optimum", str(work / "bert"), str(work / "plant-optimum"), bert]
        )
    return results


def _ours(folder: Path, output: Path) -> list[str]:
    # python -m from the checkout (cwd ROOT), not the venv's onnx-convert: that one runs the copy it was installed from.
    return [sys.executable, "-m", "converter", "--model-path", str(folder), "--output-dir", str(output)]


def _optimum(folder: Path, output: Path, task: str | None) -> list[str]:
    command = [str(OPTIMUM_VENV / "bin" / "optimum-cli"), "export", "onnx", "--model", str(folder)]
    return command + (["--task", task] if task else []) + [str(output)]


def render(results: Results) -> list[str]:
    lines = [
        "## 8. Hugging Face folders: onnx-convert against optimum-cli export onnx",
        "",
        "`python bench/run.py --only hf`: the tiny folders of `tests/fixtures/hf_folders.py` (hidden size 32, 2 "
        "layers, random weights, no tokenizer files), each through `onnx-convert --model-path DIR` and "
        "`optimum-cli export onnx --model DIR --task TASK` side by side, alternating, from process start to exit. "
        f"Optimum: {results.optimum}. onnx-convert validates at two batch sizes (and two sequence lengths) "
        "and picks the opset; Optimum validates once at its default shapes.",
        "",
        "| folder | onnx-convert | s | peak MB | optimum --task | s | peak MB | optimum without --task |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(row) for row in results.rows]
    lines += ["", "| case | tool | exit | what it says | traceback |", "|---|---|---|---|---|"]
    for case, outcomes in (
        ("truncated model.safetensors", results.broken),
        ("planted mismatch (classifier weight x1.5)", results.planted),
    ):
        for tool, outcome in outcomes.items():
            said = outcome.last_line.replace("|", "\\|")
            lines.append(f"| {case} | {tool} | {outcome.code} | `{said}` | {'yes' if outcome.traceback else 'no'} |")
    return [*lines, ""]


def _row(row: Row) -> str:
    def cells(outcomes: list[Outcome]) -> str:
        if not outcomes:
            return "not run | | "
        passed = sum(1 for o in outcomes if o.code == 0)
        seconds = statistics.median(o.seconds for o in outcomes)
        peak = statistics.median(o.peak_mb for o in outcomes)
        return f"{passed}/{len(outcomes)} exit 0 | {seconds:.1f} | {peak:.0f}"

    untasked = f"exit {row.untasked.code}" if row.untasked else "not run"
    return f"| {row.name} | {cells(row.ours)} | {cells(row.theirs)} | {untasked} |"
