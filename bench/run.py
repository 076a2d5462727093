"""make bench: how fast and how lean onnx-convert is, next to the bare textbook recipes.

Every timing is a ratio measured side by side in one run: A and B alternate (ABBA order),
each from process start to exit, and the median of at least 5 runs is compared, because
these machines are noisy. Peak memory is the child's max RSS (os.wait4). Results are
printed and written to bench/RESULTS.md with the machine and versions.

    python bench/run.py [--runs 5] [--only e2e,import,docker,samples,many,variants,hf]

With --only, the sections measured replace theirs in bench/RESULTS.md and the others stay.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata as md
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from bench import hf_optimum, models  # noqa: E402
from bench import variants as variants_bench  # noqa: E402

BIN = Path(sys.executable).parent
ONNX_CONVERT = str(BIN / "onnx-convert")
RESULTS = ROOT / "bench" / "RESULTS.md"
DOCKER_IMAGE = os.environ.get("BENCH_IMAGE", "onnx-convert-action:full")
ALL = ("e2e", "import", "docker", "samples", "many", "variants", "hf")


@dataclass
class Run:
    seconds: float
    peak_mb: float
    code: int


@dataclass
class Pair:
    """A measured side by side against B (the baseline)."""

    name: str
    target: float | None  # ratio A/B that must not be exceeded
    a: list[Run] = field(default_factory=list)
    b: list[Run] = field(default_factory=list)

    def median(self, side: str, what: str) -> float:
        return statistics.median(getattr(r, what) for r in getattr(self, side))

    def ratio(self, what: str) -> float:
        return self.median("a", what) / self.median("b", what)


def run_process(command: list[str], cwd: Path | None = None) -> Run:
    """Wall time and max RSS of one child process, start to exit."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        print(f"  ! {' '.join(command[:4])}... exited {process.returncode}: {stderr.strip()[-400:]}", file=sys.stderr)
    return Run(seconds=elapsed, peak_mb=usage.ru_maxrss / 1024, code=process.returncode)


def side_by_side(pair: Pair, a: Callable[[], Run], b: Callable[[], Run], runs: int) -> Pair:
    for i in range(runs):
        order = ((pair.a, a), (pair.b, b)) if i % 2 == 0 else ((pair.b, b), (pair.a, a))
        for bucket, fn in order:
            bucket.append(fn())
    return pair


# -- the measurements ---------------------------------------------------------------------------


def end_to_end(work: Path, runs: int) -> list[Pair]:
    """1 and 3: onnx-convert against the bare recipe on the same file, time and peak memory."""
    cases = [
        ("RandomForest, 100 trees (sklearn)", models.random_forest, "sklearn_recipe.py", []),
        ("ResNet-18-sized CNN (PyTorch .pt2)", models.resnet18, "pytorch_recipe.py", ["--validation-samples", "4"]),
        ("MobileNetV2 (Keras .keras)", models.mobilenet_v2, "keras_recipe.py", ["--validation-samples", "4"]),
    ]
    pairs = []
    for name, build, recipe, options in cases:
        print(f"- {name}", flush=True)
        model = build(work)
        out = work / "out"

        def ours(model: Path = model, options: list[str] = options, out: Path = out) -> Run:
            shutil.rmtree(out, ignore_errors=True)
            return run_process(
                [ONNX_CONVERT, "--model-path", str(model), "--output-dir", str(out), "--quiet", *options]
            )

        def bare(model: Path = model, recipe: str = recipe) -> Run:
            return run_process(
                [sys.executable, str(ROOT / "bench" / "bare" / recipe), str(model), str(work / "bare.onnx")]
            )

        pairs.append(side_by_side(Pair(name, 1.3), ours, bare, runs))
    return pairs


def import_cost(work: Path, runs: int) -> Pair:
    """2: a whole scikit-learn conversion against importing what it needs."""
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    model = work / "iris.skops"
    sio.dump(LogisticRegression(max_iter=1000).fit(*load_iris(return_X_y=True)), model)

    def ours() -> Run:
        return run_process([ONNX_CONVERT, "--model-path", str(model), "--output-dir", str(work / "o"), "--quiet"])

    def imports() -> Run:
        return run_process([sys.executable, "-c", "import sklearn, skl2onnx, onnxruntime"])

    return side_by_side(Pair("sklearn conversion vs `import sklearn, skl2onnx, onnxruntime`", 1.5), ours, imports, runs)


@dataclass
class ManyModels:
    """One onnx-convert run over a manifest against the import plus the bare conversions."""

    models: int
    ours: list[Run] = field(default_factory=list)  # onnx-convert --model-path manifest, fresh process
    imports: list[Run] = field(default_factory=list)  # import sklearn, skl2onnx, onnxruntime, fresh process
    bare: list[float] = field(default_factory=list)  # seconds of the bare conversions, in one process

    def medians(self) -> tuple[float, float, float]:
        """(import, bare conversions, onnx-convert), median seconds of each."""
        return (
            statistics.median(r.seconds for r in self.imports),
            statistics.median(self.bare),
            statistics.median(r.seconds for r in self.ours),
        )

    def ratio(self) -> float:
        imports, bare, ours = self.medians()
        return ours / (imports + bare)


def many_models(work: Path, runs: int) -> ManyModels:
    """6: 20 small scikit-learn models in one run against the import plus 20 bare conversions."""
    print("- 20 small scikit-learn models in one run", flush=True)
    zoo = work / "zoo"
    zoo.mkdir()
    manifest = models.small_sklearn_zoo(zoo)
    result = ManyModels(models=len(list(zoo.glob("*.skops"))))
    out, bare_out = work / "many-out", work / "many-bare"

    def ours() -> None:
        shutil.rmtree(out, ignore_errors=True)
        result.ours.append(
            run_process([ONNX_CONVERT, "--model-path", str(manifest), "--output-dir", str(out), "--quiet"])
        )

    def baseline() -> None:
        result.imports.append(run_process([sys.executable, "-c", "import sklearn, skl2onnx, onnxruntime"]))
        shutil.rmtree(bare_out, ignore_errors=True)
        recipe = ROOT / "bench" / "bare" / "sklearn_many_recipe.py"
        done = subprocess.run(
            [sys.executable, str(recipe), str(zoo), str(bare_out)], capture_output=True, text=True, check=False
        )
        match = re.search(r"([0-9.]+) seconds, (\d+) of (\d+) agree", done.stdout)
        if done.returncode != 0 or not match:
            raise SystemExit(f"the bare recipe failed ({done.returncode}): {done.stderr.strip()[-800:]}")
        if match.group(2) != match.group(3):
            print(f"  ! bare recipe: only {match.group(2)} of {match.group(3)} models agree", file=sys.stderr)
        result.bare.append(float(match.group(1)))

    for i in range(runs):
        for side in (ours, baseline) if i % 2 == 0 else (baseline, ours):
            side()
    if failed := sum(1 for r in result.ours if r.code):
        print(
            f"  ! onnx-convert exited non-zero in {failed} of {runs} runs: a model of the manifest failed",
            file=sys.stderr,
        )
    return result


def docker_cold_start(work: Path, runs: int) -> Pair | str:
    """4: docker run of the full image against the same CLI in the venv."""
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "image", "inspect", DOCKER_IMAGE], capture_output=True).returncode
    ):
        return f"skipped: no image {DOCKER_IMAGE} (run ../shared/tools/container-sandbox up, then docker build -t {DOCKER_IMAGE} .)"
    model = models.random_forest(work)

    def container() -> Run:
        return run_process(
            [
                "docker",
                "run",
                "--rm",
                "-v",
                f"{work}:/github/workspace",
                "-w",
                "/github/workspace",
                DOCKER_IMAGE,
                "--model-path",
                model.name,
                "--output-dir",
                "docker-out",
                "--quiet",
            ]
        )

    def venv() -> Run:
        return run_process(
            [ONNX_CONVERT, "--model-path", str(model), "--output-dir", str(work / "venv-out"), "--quiet"]
        )

    return side_by_side(Pair("docker run (full image) vs the venv CLI", None), container, venv, runs)


def validation_cost(work: Path, runs: int) -> list[tuple[int, float, float]]:
    """5: validation time against the number of samples (in-process, the validate stage only)."""
    from converter.pipeline import convert
    from converter.request import ConversionRequest

    model = models.random_forest(work)
    rows = []
    for samples in (1, 16, 256, 4096):
        times = []
        for i in range(runs):
            request = ConversionRequest.from_mapping(
                {
                    "model-path": str(model),
                    "output-dir": str(work / f"v{samples}-{i}"),
                    "validation-samples": str(samples),
                }
            )
            report = convert(request)
            times.append(report.timings["validate"] + report.timings["reference_run"])
        median = statistics.median(times)
        rows.append((samples, median, median / samples))
    return rows


# -- output ---------------------------------------------------------------------------------------


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    memory_kb = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    )
    versions = []
    for package in (
        "onnx-convert-action",
        "numpy",
        "onnx",
        "onnxruntime",
        "scikit-learn",
        "skl2onnx",
        "torch",
        "onnxscript",
        "tensorflow-cpu",
        "keras",
        "tf2onnx",
    ):
        with contextlib.suppress(md.PackageNotFoundError):
            versions.append(f"{package} {md.version(package)}")
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kb / 1024 / 1024:.0f} GiB, {platform.platform()}, "
        f"Python {platform.python_version()}\n\n{' · '.join(versions)}"
    )


def render(
    e2e: list[Pair],
    imports: Pair | None,
    docker: Pair | str | None,
    samples: list | None,
    runs: int,
    many: ManyModels | None = None,
    variants: list[variants_bench.ModelResult] | None = None,
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.date.today().isoformat()} with `make bench` (median of {runs} runs per side, A and B alternating).",
        "",
        machine(),
        "",
    ]
    if e2e:
        lines += [
            "## 1 and 3. End to end and peak memory: onnx-convert against the bare recipe",
            "",
            "Process start to exit, on the same model file. onnx-convert validates at two batch sizes and measures latency; the bare recipe runs once.",
            "",
            "| model | bare s | onnx-convert s | time ratio | bare peak MB | onnx-convert peak MB | memory ratio | target |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for p in e2e:
            ok = "✅" if p.ratio("seconds") <= 1.3 and p.ratio("peak_mb") <= 1.3 else "❌"
            lines.append(
                f"| {p.name} | {p.median('b', 'seconds'):.2f} | {p.median('a', 'seconds'):.2f} | {p.ratio('seconds'):.2f}x | "
                f"{p.median('b', 'peak_mb'):.0f} | {p.median('a', 'peak_mb'):.0f} | {p.ratio('peak_mb'):.2f}x | < 1.3x {ok} |"
            )
        lines.append("")
    if imports:
        ok = "✅" if imports.ratio("seconds") <= 1.5 else "❌"
        lines += [
            "## 2. Import cost",
            "",
            "| | seconds |",
            "|---|---|",
            f'| `python -c "import sklearn, skl2onnx, onnxruntime"` | {imports.median("b", "seconds"):.2f} |',
            f"| onnx-convert on a LogisticRegression .skops | {imports.median('a', 'seconds'):.2f} |",
            f"| ratio (target < 1.5x) | {imports.ratio('seconds'):.2f}x {ok} |",
            "",
            "A test (tests/test_core_sklearn.py) asserts that a scikit-learn conversion imports neither torch nor tensorflow.",
            "",
        ]
    if docker is not None:
        lines += ["## 4. Container cold start", ""]
        if isinstance(docker, str):
            lines += [docker, ""]
        else:
            lines += [
                "| | seconds |",
                "|---|---|",
                f"| onnx-convert in the venv (RandomForest .skops) | {docker.median('b', 'seconds'):.2f} |",
                f"| `docker run` of the full image, same model | {docker.median('a', 'seconds'):.2f} |",
                f"| ratio | {docker.ratio('seconds'):.2f}x |",
                "",
            ]
    if samples:
        lines += [
            "## 5. Validation cost against sample count",
            "",
            "RandomForest (100 trees); reference run plus onnxruntime validation at both batch sizes, in-process.",
            "",
            "| samples | seconds | ms per sample |",
            "|---|---|---|",
        ]
        lines += [f"| {n} | {t:.4f} | {per * 1000:.4f} |" for n, t, per in samples]
        growth = samples[-1][1] / samples[-2][1]
        lines += [
            "",
            f"Growth from 256 to 4096 samples (16x the samples): {growth:.1f}x the time ({'at most linear ✅' if growth <= 16 else 'worse than linear ❌'}).",
            "",
        ]
    if many:
        import_s, bare_s, ours_s = many.medians()
        ok = "✅" if many.ratio() < 1.5 else "❌"
        lines += [
            "## 6. Many models in one run",
            "",
            f"{many.models} small scikit-learn models (11 classifiers, 7 regressors, PCA and KMeans; 300 rows, 8 features; "
            "`bench/models.py` `small_sklearn_zoo`) in one manifest. onnx-convert converts each, validates it at two "
            "batch sizes, measures its latency, writes its reports, then the index. The bare recipe "
            "(`bench/bare/sklearn_many_recipe.py`) loads each file, exports it with `skl2onnx.to_onnx`, opens an "
            "onnxruntime session, runs it once and compares; it times its own loop, so its imports are not counted twice.",
            "",
            "| | seconds |",
            "|---|---|",
            f'| `python -c "import sklearn, skl2onnx, onnxruntime"` (fresh process) | {import_s:.2f} |',
            f"| {many.models} bare conversions in one process (imports not counted) | {bare_s:.2f} |",
            f"| baseline: import + {many.models} bare conversions | {import_s + bare_s:.2f} |",
            f"| `onnx-convert --model-path onnx-models.yml` (fresh process, imports included) | {ours_s:.2f} |",
            f"| ratio (target < 1.5x) | {many.ratio():.2f}x {ok} |",
            "",
            "Every run, in seconds (the host is shared, so single runs vary): onnx-convert "
            + ", ".join(f"{r.seconds:.1f}" for r in many.ours)
            + "; import "
            + ", ".join(f"{r.seconds:.1f}" for r in many.imports)
            + "; bare conversions "
            + ", ".join(f"{s:.1f}" for s in many.bare)
            + ".",
            "",
        ]
    if variants:
        lines += variants_bench.render(variants)
    return "\n".join(lines)


def merge_sections(old: str, new: str, note: str) -> str:
    """``old`` (RESULTS.md) with the ``## `` sections of ``new`` put in place of theirs (or
    appended); each section taken from ``new`` gets ``note`` under its heading."""

    def split(text: str) -> tuple[str, dict[str, str]]:
        parts = re.split(r"^(## .*)$", text, flags=re.M)
        return parts[0], {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}

    old_head, old_sections = split(old)
    new_head, new_sections = split(new)
    merged = dict(old_sections)
    for heading, body in new_sections.items():
        merged[heading] = f"\n\n{note}\n" + body.removeprefix("\n")
    head = old_head if old_sections else new_head
    return head + "".join(f"{heading}{body}" for heading, body in merged.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default=",".join(ALL))
    args = parser.parse_args()
    only = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="onnx-convert-bench-") as tmp:
        work = Path(tmp)
        e2e = end_to_end(work, args.runs) if "e2e" in only else []
        imports = import_cost(work, args.runs) if "import" in only else None
        docker = docker_cold_start(work, args.runs) if "docker" in only else None
        samples = validation_cost(work, args.runs) if "samples" in only else None
        many = many_models(work, args.runs) if "many" in only else None
        variants = variants_bench.measure(work) if "variants" in only else None
        hf = hf_optimum.measure(work, args.runs) if "hf" in only else None
    text = render(e2e, imports, docker, samples, args.runs, many, variants)
    if hf:
        text = text.rstrip("\n") + "\n\n" + "\n".join(hf_optimum.render(hf))
    print(text)
    if only != set(ALL) and RESULTS.exists():
        note = (
            f"Measured {datetime.date.today().isoformat()} with `python bench/run.py --only {args.only}` "
            f"(median of {args.runs} runs per side, A and B alternating)."
        )
        text = merge_sections(RESULTS.read_text(encoding="utf-8"), text, note)
    RESULTS.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
