"""Coverage benchmark: convert whole families of models and publish which reproduce.

    make coverage                         # every family in bench/coverage_families/
    FAMILIES=sklearn,xgboost make coverage
    python bench/coverage.py --families sklearn --only KMeans,PCA --timeout 300

Each model runs in its own child process (``--child FAMILY NAME DIR``), so one model's memory
does not count against the next and a crash or hang is contained: the child builds the model
file, converts it with ``converter.pipeline.convert`` from a ``ConversionRequest`` (the CLI's
code path, which validates at two batch sizes), and re-checks every pass independently: a fresh
onnxruntime session on new random inputs, compared with the original framework by numpy here,
not through ``converter.validate``. A pass the re-check contradicts is reported as such (a bug).

The parent reads each child's peak RSS with ``os.wait4`` (the child and the processes it waited
for: a model's build and reference runs), stops it after ``--timeout`` seconds, runs ``--jobs``
children at a time, and writes bench/COVERAGE.md and bench/coverage.json after every model
(rows of families and models not run are kept).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata as md
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.coverage_families import Built, ModelCase, SkipCase  # noqa: E402

BENCH = ROOT / "bench"
FAMILY_DIR = BENCH / "coverage_families"
RECHECK_SEED = 20240611
RESULTS = ("pass", "mismatch", "error", "contradicted", "timeout", "crash", "skip")


@dataclass
class Row:
    family: str
    name: str
    result: str = "crash"  # one of RESULTS
    reason: str = ""  # one line, for anything but pass
    group: str = ""
    description: str = ""
    format: str = ""
    export_path: str = ""
    opset: int | None = None
    max_abs_diff: float | None = None  # the pipeline's validation, worst over outputs and batch sizes
    recheck_max_abs_diff: float | None = None  # the independent re-check
    seconds: float | None = None  # the pipeline (load, export, check, validate)
    wall_seconds: float | None = None  # the child process, building the model included
    peak_rss_mb: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# -- discovery ---------------------------------------------------------------------------------------


def family_names() -> list[str]:
    return sorted(p.stem for p in FAMILY_DIR.glob("*.py") if not p.name.startswith("_"))


def family_cases(family: str) -> list[ModelCase]:
    module = importlib.import_module(f"bench.coverage_families.{family}")
    return list(module.models())


# -- the child: one model -------------------------------------------------------------------------------


def run_child(family: str, name: str, workdir: Path) -> None:
    """Build, convert and re-check one model; write ``result.json`` into ``workdir``."""
    started = time.perf_counter()
    row = Row(family=family, name=name)
    out = workdir / "result.json"
    try:
        case = next(c for c in family_cases(family) if c.name == name)
        row.group = case.group
        _convert_and_recheck(case, workdir, row)
    except SkipCase as exc:
        row.result, row.reason = "skip", _one_line(exc)
    except Exception as exc:  # a bug in the family or the converter: keep the last frame
        row.result = "crash"
        where = traceback.extract_tb(exc.__traceback__)[-1]
        row.reason = _one_line(f"{type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})")
    row.wall_seconds = round(time.perf_counter() - started, 2)
    out.write_text(json.dumps(asdict(row)), encoding="utf-8")


def _convert_and_recheck(case: ModelCase, workdir: Path, row: Row) -> None:
    from converter.errors import ConverterError
    from converter.pipeline import convert
    from converter.request import ConversionRequest

    model_dir = workdir / "model"
    model_dir.mkdir()
    built = case.build(model_dir)
    row.note = built.note
    options = {**built.options, "output-dir": str(workdir / "out")}
    try:
        request = ConversionRequest.from_mapping(options)
        report = convert(request)
    except ConverterError as exc:  # bad input (exit 2): the options or sample data did not fit
        row.result, row.reason = "error", _one_line(exc.one_line())
        return
    row.description = report.model.description
    row.format = report.model.format
    row.seconds = report.timings.get("total")
    if report.onnx is not None:
        row.export_path = report.onnx.export_path
        row.opset = report.onnx.opset
    if report.validation is not None:
        row.max_abs_diff = report.validation.worst("max_abs_diff")
    if report.status == "error":
        row.result, row.reason = "error", _one_line(report.error)
        return
    if not report.passed:
        row.result, row.reason = "mismatch", _one_line(_failure_text(report))
        return
    assert report.onnx is not None
    try:
        problem, worst = recheck(Path(report.onnx.path), built, request.rtol, request.atol)
    except Exception as exc:  # onnxruntime refused the new inputs: the pass does not hold
        problem, worst = _one_line(f"the re-check failed on new inputs: {type(exc).__name__}: {exc}"), None
    row.recheck_max_abs_diff = worst
    row.result, row.reason = ("contradicted", problem) if problem else ("pass", "")


def _failure_text(report: Any) -> str:
    return "; ".join(report.validation.failures()) or "validation failed"


def recheck(onnx_path: Path, built: Built, rtol: float, atol: float) -> tuple[str, float]:
    """A fresh onnxruntime session on new inputs against the original; ("", worst) when it agrees."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(RECHECK_SEED)
    declared = {i.name: i for i in session.get_inputs()}
    raw = (
        built.inputs(rng, built.recheck_batch) if built.inputs else _standard_normal(session, rng, built.recheck_batch)
    )
    feed = {name: np.asarray(raw[name]).astype(_numpy_type(declared[name].type)) for name in declared}
    names = [o.name for o in session.get_outputs()]
    actual = dict(zip(names, session.run(None, feed), strict=True))
    del session  # the original model is loaded next: not both at once (ConvNeXtLarge: 4.1 GB with both)
    reference = built.reference(feed, names)
    problems: list[str] = []
    worst = 0.0
    for name in names:
        if name not in reference:
            problems.append(f"output {name}: the original has nothing to compare it with")
            continue
        ref, out = np.asarray(reference[name]), np.asarray(actual[name])
        if ref.size != out.size:
            problems.append(f"output {name}: {out.shape} in ONNX, {ref.shape} in the original")
            continue
        mask = feed.get(built.padding_mask) if built.padding_mask else None
        ref, out = _real_positions(ref.reshape(out.shape), mask), _real_positions(out, mask)
        if name in built.labels or ref.dtype.kind in "OUSb" or out.dtype.kind in "OUSb":
            differ = int(np.count_nonzero(ref.astype(str) != out.astype(str)))
            if differ:
                problems.append(f"output {name}: {differ} of {ref.size} labels differ")
            continue
        ref64, out64 = ref.astype(np.float64), out.astype(np.float64)
        same_nan = np.isnan(ref64) & np.isnan(out64)
        diff = np.where(same_nan, 0.0, np.abs(out64 - ref64))
        diff = np.where(np.isnan(diff), np.inf, diff)
        over = int(np.count_nonzero(diff > atol + rtol * np.abs(np.nan_to_num(ref64))))
        worst = max(worst, float(diff.max(initial=0.0)))
        if over:
            problems.append(f"output {name}: {over} of {ref.size} elements over tolerance (max abs diff {worst:.3g})")
    return "; ".join(problems), (worst if np.isfinite(worst) else float(np.finfo(np.float64).max))


def _real_positions(array: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The elements at real tokens (mask 1) of an output laid out (batch, sequence, ...); all others as they are."""
    if mask is None or array.ndim < 2 or array.shape[:2] != mask.shape:
        return array.reshape(-1)
    return array[mask.astype(bool)].reshape(-1)


def _standard_normal(session: Any, rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    inputs = {}
    for spec in session.get_inputs():
        shape = [d if isinstance(d, int) else batch for d in spec.shape]
        dtype = _numpy_type(spec.type)
        if dtype is bool:
            inputs[spec.name] = rng.random(shape) < 0.5
        elif np.issubdtype(dtype, np.integer):
            inputs[spec.name] = rng.integers(0, 10, size=shape).astype(dtype)
        else:
            inputs[spec.name] = rng.standard_normal(shape).astype(dtype)
    return inputs


def _numpy_type(onnx_type: str) -> Any:
    return {
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(bool)": bool,
        "tensor(string)": object,
    }.get(onnx_type, np.float32)


def _one_line(text: object, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# -- the parent: every model, one child each -------------------------------------------------------------


def run_case(family: str, case: ModelCase, timeout: float) -> Row:
    with tempfile.TemporaryDirectory(prefix="coverage-") as tmp:
        workdir = Path(tmp)
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", family, case.name, str(workdir)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so a timeout stops its helpers too
        )
        status, usage, timed_out = _wait(child, timeout)
        stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
        result_file = workdir / "result.json"
        if result_file.exists():
            row = Row(**json.loads(result_file.read_text()))
        else:
            row = Row(family=family, name=case.name, group=case.group)
            if timed_out:
                row.result, row.reason = "timeout", f"stopped after {timeout:.0f} s"
            else:
                row.result = "crash"
                row.reason = _one_line(f"{_exit_text(status)}: {stderr.strip().splitlines()[-1:] or ''}")
            row.wall_seconds = round(time.perf_counter() - started, 2)
        row.peak_rss_mb = round(usage.ru_maxrss / 1024, 1)  # Linux reports KiB
        return row


def _wait(child: subprocess.Popen[bytes], timeout: float) -> tuple[int, Any, bool]:
    """Wait for the child with os.wait4 (its own rusage); kill its process group on timeout."""
    deadline = time.monotonic() + timeout
    timed_out = False
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid == child.pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            return status, usage, timed_out
        if time.monotonic() > deadline and not timed_out:
            timed_out = True
            os.killpg(child.pid, signal.SIGKILL)
        time.sleep(0.05)


def _exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


# -- results -----------------------------------------------------------------------------------------------


def totals(rows: list[Row]) -> dict[str, int]:
    counted = [r for r in rows if r.result != "skip"]
    return {
        "models": len(counted),
        "converted": sum(r.result in ("pass", "mismatch", "contradicted") for r in counted),
        "reproduce": sum(r.result == "pass" for r in counted),
        "mismatch": sum(r.result == "mismatch" for r in counted),
        "contradicted": sum(r.result == "contradicted" for r in counted),
        "error": sum(r.result in ("error", "crash", "timeout") for r in counted),
        "skipped": len(rows) - len(counted),
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in (
        "numpy",
        "onnx",
        "onnxruntime",
        "scikit-learn",
        "skl2onnx",
        "onnxmltools",
        "xgboost-cpu",
        "lightgbm",
        "torch",
        "tensorflow-cpu",
        "tf2onnx",
    ):
        with contextlib.suppress(md.PackageNotFoundError):
            found[package] = md.version(package)
    return found


def write_results(rows: list[Row], ran: list[str], some: bool = False, jobs: int = 1) -> None:
    """Merge into bench/coverage.json (families not run keep their rows) and render COVERAGE.md.

    ``some``: only some models of each family ran (--only); they replace their own rows.
    """
    json_path = BENCH / "coverage.json"
    previous = json.loads(json_path.read_text()) if json_path.exists() else {"families": {}}
    families: dict[str, Any] = previous.get("families", {})
    for family in ran:
        family_rows = [r for r in rows if r.family == family]
        if some and family in families:
            fresh = {r.name: r for r in family_rows}
            old = [Row(**m) for m in families[family]["models"]]
            family_rows = [fresh.pop(r.name, r) for r in old] + list(fresh.values())
        families[family] = {
            "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {jobs} model{'s' if jobs > 1 else ''} at a time",
            "versions": versions(),
            "totals": totals(family_rows),
            "models": [asdict(r) for r in family_rows],
        }
    json_path.write_text(json.dumps({"families": dict(sorted(families.items()))}, indent=1) + "\n", encoding="utf-8")
    (BENCH / "COVERAGE.md").write_text(render_markdown(families), encoding="utf-8")


def render_markdown(families: dict[str, Any]) -> str:
    lines = [
        "# Coverage",
        "",
        "Every model goes through `converter.pipeline.convert` (the CLI's code path: export, ONNX checker,",
        "validation in onnxruntime at two batch sizes), then every pass is re-checked with a fresh",
        "onnxruntime session on new random inputs against the original framework (numpy, not",
        "`converter.validate`). Generated by `make coverage` (`bench/coverage.py`); each model runs in its",
        "own process, whose peak RSS is shown (the largest of it and the processes it waits for: a Keras",
        "model's build and reference runs). *reproduce* = converted and within tolerance (default",
        "rtol 1e-3, atol 1e-3) in both checks. `--only` runs replace single rows and the family's",
        "Generated time; the machine line says how many models ran at a time.",
        "",
        "| Family | Models | Converted | Reproduce | Mismatch | Contradicted | Not converted | Skipped | Generated |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for family, data in families.items():
        t = data["totals"]
        lines.append(
            f"| {family} | {t['models']} | {t['converted']} | **{t['reproduce']}** | {t['mismatch']} | "
            f"{t['contradicted']} | {t['error']} | {t['skipped']} | {data['generated']} |"
        )
    for family, data in families.items():
        lines += ["", f"## {family}", ""]
        lines.append(
            "Versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items()) + f". Machine: {data['machine']}."
        )
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in data["models"]:
            groups.setdefault(row.get("group") or "", []).append(row)
        for group, rows in groups.items():
            if group:
                lines += ["", f"### {group}"]
            lines += [
                "",
                "| Model | Format | Export path | Opset | Max abs diff | Re-check diff | Seconds | Peak RSS | Result |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for row in rows:
                lines.append(_markdown_row(row))
    return "\n".join(lines) + "\n"


def _markdown_row(row: dict[str, Any]) -> str:
    def number(value: float | None, spec: str) -> str:
        return "" if value is None else format(value, spec)

    icon = {"pass": "✅ reproduces", "skip": "➖ skipped"}.get(row["result"], f"❌ {row['result']}")
    reason = f": {row['reason']}" if row["reason"] else ""
    name = row["name"] + (f" <br><sub>{row['note']}</sub>" if row.get("note") else "")
    cells = [
        name,
        row["format"],
        f"`{row['export_path']}`" if row["export_path"] else "",
        "" if row["opset"] is None else str(row["opset"]),
        number(row["max_abs_diff"], ".2g"),
        number(row["recheck_max_abs_diff"], ".2g"),
        number(row["seconds"], ".1f"),
        "" if row["peak_rss_mb"] is None else f"{row['peak_rss_mb']:.0f} MB",
        (icon + reason).replace("|", "\\|"),
    ]
    return "| " + " | ".join(cells) + " |"


def run_all(families: list[str], only: set[str], timeout: float, jobs: int, write: bool) -> list[Row]:
    """Every chosen case, ``jobs`` children at a time; rows come back in the families' order.

    Results are written after each model (from this thread only), so a stopped run keeps them.
    """
    cases = [(family, case) for family in families for case in family_cases(family) if not only or case.name in only]
    counts = {family: sum(f == family for f, _ in cases) for family in families}
    done: dict[int, Row] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # each thread waits on one child
        futures = {pool.submit(run_case, family, case, timeout): i for i, (family, case) in enumerate(cases)}
        for future in as_completed(futures):
            row = done[futures[future]] = future.result()
            finished = sum(r.family == row.family for r in done.values())
            detail = f": {row.reason}" if row.reason else ""
            print(
                f"[{row.family} {finished}/{counts[row.family]}] {row.result.upper():12} {row.name} "
                f"({row.wall_seconds or 0:.1f} s, {row.peak_rss_mb or 0:.0f} MB){detail}"[:400],
                flush=True,
            )
            if write:  # a long run that is stopped keeps the rows it measured
                write_results([row], [row.family], some=True, jobs=jobs)
    return [done[i] for i in sorted(done)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=os.environ.get("FAMILIES", ""), help="comma-separated; default all")
    parser.add_argument(
        "--only", default="", help="comma-separated model names (default all); their rows replace the recorded ones"
    )
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("COVERAGE_TIMEOUT", "600")))
    parser.add_argument(
        "--jobs",
        type=int,
        default=int(os.environ.get("COVERAGE_JOBS", "1")),
        help="models converted at a time (default 1; more shortens the run, and makes seconds noisier)",
    )
    parser.add_argument("--child", nargs=3, metavar=("FAMILY", "NAME", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print rows only; leave COVERAGE.md as it is")
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child[0], args.child[1], Path(args.child[2]))
        return 0
    available = family_names()
    chosen = [f.strip() for f in args.families.split(",") if f.strip()] or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        print(f"error: no family {', '.join(unknown)}; the families are {', '.join(available)}", file=sys.stderr)
        return 2
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    rows = run_all(chosen, only, args.timeout, args.jobs, write=not args.no_write)
    for family in chosen:
        t = totals([r for r in rows if r.family == family])
        print(
            f"{family}: {t['reproduce']} of {t['models']} reproduce ({t['converted']} converted, {t['skipped']} skipped)"
        )
    if not args.no_write:
        write_results(rows, chosen, some=bool(only), jobs=args.jobs)
        print(f"wrote {BENCH / 'COVERAGE.md'} and {BENCH / 'coverage.json'}")
    return 1 if any(r.result == "contradicted" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
