"""7: optimised variants, onnx-convert's against onnxruntime's tools and Optimum used directly.

For a ResNet-50-sized CNN, a small BERT and a scikit-learn MLP: onnx-convert makes its four
variants (each validated against the original model); the same fp32 file then goes through the
tools directly, with their defaults: onnxscript's optimizer, onnxruntime's float16 converter and
onnxconverter-common's, ``quantize_dynamic``, ``quantize_static`` (calibrated on the same sample
rows) and Optimum's ``optimum-cli onnxruntime optimize -O2`` / ``quantize --avx512_vnni`` (in a
virtualenv of its own, ``OPTIMUM_VENV``, default /tmp/optimum-venv; skipped when absent). Every
file is then measured the same way in this process: size against the fp32 file, onnxruntime
latency against the fp32 file (alternating, ``converter.variants.timing.side_by_side``), and the
error against the fp32 file's outputs on the sample rows (the fp32 file reproduces the original
model, validated by the run). A variant onnx-convert failed (and deleted) is made again here by
the same code from the same file and rows, checked to be the same bytes, and measured like the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import models

ROOT = Path(__file__).resolve().parent.parent
OPTIMUM_VENV = Path(os.environ.get("OPTIMUM_VENV", "/tmp/optimum-venv"))
VARIANTS = ("optimized", "fp16", "int8-dynamic", "int8-static")
OURS = "onnx-convert"

BERT_CONFIG = {  # Optimum's transformer fusions read the model type from a config.json beside the file
    "model_type": "bert",
    "architectures": ["BertForSequenceClassification"],
    "vocab_size": 30522,
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 1024,
    "num_labels": 2,
}
CASES: tuple[tuple[str, Callable[[Path], tuple[Path, Path]], dict | None], ...] = (
    ("ResNet-50-sized CNN (PyTorch .pt2, 25.6 M parameters), batch 8 of 3x224x224", models.resnet50, None),
    (
        "small BERT classifier (PyTorch .pt2, 4 layers, hidden 256, 11 M parameters), batch 8 of 128 tokens",
        models.bert_small,
        BERT_CONFIG,
    ),
    ("scikit-learn MLP classifier (512 and 256 hidden units), 297 held-out digits", models.mlp_digits, None),
)


@dataclass
class Row:
    variant: str
    maker: str
    result: str  # onnx-convert: its verdict; the direct tools: "made" (nothing validated it) or the error
    size_ratio: float | None = None
    latency_ratio: float | None = None
    max_abs_diff: float | None = None
    agreement: float | None = None  # labels and argmax over the class axis, against the fp32 file


@dataclass
class ModelResult:
    name: str
    fp32_bytes: int = 0
    fp32_ms: float = 0.0
    self_ratios: list[float] = field(default_factory=list)  # the fp32 file against itself: the noise
    convert_seconds: float = 0.0
    rows: list[Row] = field(default_factory=list)


def measure(work: Path) -> list[ModelResult]:
    results = []
    for name, build, config in CASES:
        print(f"- {name}", flush=True)
        folder = work / build.__name__
        folder.mkdir()
        model, samples = build(folder)
        results.append(_one_model(name, model, samples, folder, config))
    return results


def _one_model(name: str, model: Path, samples: Path, folder: Path, config: dict | None) -> ModelResult:
    from converter.validate import OnnxRunner
    from converter.variants.timing import timing_session

    out = folder / "out"
    started = time.perf_counter()
    command = [sys.executable, "-m", "converter", "--model-path", str(model), "--sample-data", str(samples)]
    command += ["--output-dir", str(out), "--variants", ",".join(VARIANTS), "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    result = ModelResult(name, convert_seconds=time.perf_counter() - started)
    if done.returncode != 0:
        raise SystemExit(f"onnx-convert failed on {model.name}: {done.stdout[-400:]} {done.stderr[-800:]}")
    report = json.loads((out / f"{model.stem}.report.json").read_text())
    fp32 = Path(report["onnx"]["path"])
    inputs = _inputs(samples, OnnxRunner(fp32).input_names)
    reference = OnnxRunner(fp32).run(inputs)
    runner = timing_session(fp32)  # the sessions timed are onnx-convert's: threads that do not spin
    result.fp32_bytes = fp32.stat().st_size
    result.self_ratios, result.fp32_ms = _noise(fp32, runner, inputs)
    measuring = (runner, inputs, reference)
    for variant in report["variants"]["results"]:
        result.rows.append(_ours(variant, fp32, measuring))
        _remeasure_failed(result.rows[-1], variant, fp32, measuring, folder)
    for variant, maker, make in _direct_tools(fp32, samples, folder / "direct", config):
        print(f"  {variant} by {maker}", flush=True)
        result.rows.append(_theirs(Row(variant, maker, "made (not validated)"), make, fp32, measuring))
    return result


def _inputs(samples: Path, names: list[str]) -> dict[str, np.ndarray]:
    if samples.suffix == ".npz":
        with np.load(samples) as archive:
            return {name: archive[name] for name in names}
    return {names[0]: np.load(samples)}


def _noise(fp32: Path, runner, inputs: dict[str, np.ndarray]) -> tuple[list[float], float]:
    from converter.variants.timing import side_by_side, timing_session

    twin = timing_session(fp32)
    timed = [side_by_side(lambda: twin(inputs), lambda: runner(inputs)) for _ in range(3)]
    return [t.ratio for t in timed], float(np.median([t.fp32_ms for t in timed]))


def _ours(variant: dict, fp32: Path, measuring: tuple) -> Row:
    verdict = variant["status"] + (f": {variant['reason']}" if variant["reason"] else "")
    row = Row(variant["name"], OURS, verdict)
    if variant["status"] == "passed":
        return _measured(row, Path(variant["path"]), fp32, measuring)
    return row


def _remeasure_failed(row: Row, variant: dict, fp32: Path, measuring: tuple, folder: Path) -> None:
    """A failed variant's file was deleted: make it again (same code, file and rows) to measure it."""
    from converter.onnx_file import sha256_of
    from converter.variants.make import MakeInputs
    from converter.variants.run import MAKERS

    if variant["status"] != "failed":
        return
    inputs = measuring[1]
    target = folder / f"remade.{variant['name']}.onnx"
    MAKERS[variant["name"]](fp32, target, MakeInputs(inputs=inputs, calibration=inputs))
    if sha256_of(target) != variant["sha256"]:
        row.result += " (made again here: NOT the same bytes)"
    _measured(row, target, fp32, measuring)


def _theirs(row: Row, make: Callable[[], Path], fp32: Path, measuring: tuple) -> Row:
    try:
        path = make()
    except Exception as exc:  # a tool that fails on this model: its error is the row
        row.result = f"error: {_one_line(exc)}"
        return row
    return _measured(row, path, fp32, measuring)


def _measured(row: Row, path: Path, fp32: Path, measuring: tuple) -> Row:
    """Size, latency against the fp32 session and error against its outputs; ``measuring`` is
    (the fp32 timing session, the sample inputs, the fp32 outputs)."""
    from converter.validate import OnnxRunner
    from converter.variants.timing import side_by_side, timing_session

    runner, inputs, reference = measuring
    try:
        outputs = OnnxRunner(path).run(inputs)
    except Exception as exc:  # onnxruntime refuses the file
        row.result = f"does not load: {_one_line(exc)}"
        return row
    other = timing_session(path)
    row.size_ratio = path.stat().st_size / fp32.stat().st_size
    row.latency_ratio = side_by_side(lambda: other(inputs), lambda: runner(inputs)).ratio
    row.max_abs_diff, row.agreement = _errors(reference, outputs)
    return row


def _errors(reference: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> tuple[float, float | None]:
    diffs, agreements = [0.0], []
    for name, ref in reference.items():
        out = outputs[name].reshape(ref.shape)
        if ref.dtype.kind != "f":
            agreements.append(float(np.mean(ref == out)))
            continue
        diffs.append(float(np.max(np.abs(out.astype(np.float64) - ref))))
        if ref.ndim == 2 and ref.shape[1] >= 2:
            agreements.append(float(np.mean(ref.argmax(1) == out.argmax(1))))
    return max(diffs), (min(agreements) if agreements else None)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160] + ("..." if len(text) > 160 else "")


# -- the tools, used directly with their defaults ----------------------------------------------


def _direct_tools(
    fp32: Path, samples: Path, folder: Path, config: dict | None
) -> list[tuple[str, str, Callable[[], Path]]]:
    folder.mkdir()
    tools: list[tuple[str, str, Callable[[], Path]]] = [
        ("optimized", "onnxscript optimizer", lambda: _onnxscript(fp32, folder / "onnxscript.onnx")),
        ("fp16", "onnxruntime float16", lambda: _ort_fp16(fp32, folder / "ort_fp16.onnx")),
        ("int8-dynamic", "onnxruntime quantize_dynamic", lambda: _dynamic(fp32, folder / "dynamic.onnx")),
        ("int8-static", "onnxruntime quantize_static", lambda: _static(fp32, samples, folder / "static.onnx")),
    ]
    if (OPTIMUM_VENV / "bin" / "optimum-cli").exists():
        tools[2:2] = [("fp16", "onnxconverter-common", lambda: _occ_fp16(fp32, folder / "occ_fp16.onnx"))]
        tools[1:1] = [("optimized", "Optimum -O2", lambda: _optimum(fp32, folder, config, "optimize", "-O2"))]
        tools.append(("int8-dynamic", "Optimum --avx512_vnni", lambda: _optimum(fp32, folder, config, "quantize")))
    return tools


def _onnxscript(fp32: Path, target: Path) -> Path:
    import onnx
    import onnxscript.optimizer

    onnx.save(onnxscript.optimizer.optimize(onnx.load(str(fp32))), str(target))
    return target


def _ort_fp16(fp32: Path, target: Path) -> Path:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True), str(target))
    return target


def _dynamic(fp32: Path, target: Path) -> Path:
    from onnxruntime.quantization import quantize_dynamic

    quantize_dynamic(str(fp32), str(target))
    return target


def _static(fp32: Path, samples: Path, target: Path) -> Path:
    from onnxruntime.quantization import quantize_static

    from converter.validate import OnnxRunner

    rows = _inputs(samples, OnnxRunner(fp32).input_names)
    count = len(next(iter(rows.values())))

    class Reader:  # one row at a time, as onnxruntime's examples feed it
        def __init__(self) -> None:
            self.rows = iter([{k: v[i : i + 1] for k, v in rows.items()} for i in range(count)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.rows, None)

    quantize_static(str(fp32), str(target), Reader())
    return target


def _occ_fp16(fp32: Path, target: Path) -> Path:
    script = (
        "import sys, onnx; from onnxconverter_common import float16; "
        "onnx.save(float16.convert_float_to_float16(onnx.load(sys.argv[1]), keep_io_types=True), sys.argv[2])"
    )
    _venv_run([str(OPTIMUM_VENV / "bin" / "python"), "-c", script, str(fp32), str(target)])
    return target


def _optimum(fp32: Path, folder: Path, config: dict | None, command: str, *options: str) -> Path:
    source = folder / "optimum-in"
    if not source.exists():
        source.mkdir()
        shutil.copy(fp32, source / "model.onnx")
        if config:
            (source / "config.json").write_text(json.dumps(config))
    out = folder / f"optimum-{command}"
    flags = options or ("--avx512_vnni",)
    _venv_run(
        [
            str(OPTIMUM_VENV / "bin" / "optimum-cli"),
            "onnxruntime",
            command,
            *flags,
            "--onnx_model",
            str(source),
            "-o",
            str(out),
        ]
    )
    made = sorted(p for p in out.glob("*.onnx"))
    if not made:
        raise RuntimeError(f"optimum-cli onnxruntime {command} wrote no .onnx")
    return made[0]


def _venv_run(command: list[str]) -> None:
    done = subprocess.run(
        command, capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    )
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"exit {done.returncode}")


# -- the section -----------------------------------------------------------------------------------


def render(results: list[ModelResult]) -> list[str]:
    lines = [
        "## 7. Optimised variants: onnx-convert against the tools used directly",
        "",
        "`python bench/run.py --only variants` (`bench/variants.py`). onnx-convert makes the four variants of each model "
        "(`--variants optimized,fp16,int8-dynamic,int8-static --sample-data ...`) and validates each against the original "
        "model; the same fp32 file then goes through onnxruntime's tools, onnxscript's optimizer, onnxconverter-common "
        "and Optimum (`optimum-cli onnxruntime`, its own virtualenv) with their defaults. Every file is measured the same "
        "way in one process: size and onnxruntime CPU latency as ratios to the fp32 file (alternating runs, median), the "
        "largest absolute difference from the fp32 file's outputs on the sample rows and the share of rows whose label "
        "(argmax over the classes) agrees. Random weights for the CNN and BERT (near-tie logits: any rounding may flip a "
        "label); the MLP is trained. A variant onnx-convert failed, and so deleted, is made again by the same code "
        "(the same bytes: its sha256 is checked against the report's) to be measured the same way.",
        "",
    ]
    for model in results:
        noise = ", ".join(f"{r:.2f}" for r in model.self_ratios)
        lines += [
            f"**{model.name}**: fp32 file {model.fp32_bytes / 1e6:.1f} MB, {model.fp32_ms:.1f} ms a batch; "
            f"the fp32 file timed against itself: {noise}x (the noise); onnx-convert with four variants took "
            f"{model.convert_seconds:.0f} s.",
            "",
            "| variant | made by | result | size vs fp32 | latency vs fp32 | max abs diff | label agreement |",
            "|---|---|---|---|---|---|---|",
        ]
        order = {name: index for index, name in enumerate(VARIANTS)}
        for row in sorted(model.rows, key=lambda r: (order[r.variant], r.maker != OURS)):
            lines.append(
                f"| {row.variant} | {row.maker} | {row.result.replace('|', '/')} | {_ratio(row.size_ratio)} | "
                f"{_ratio(row.latency_ratio)} | {_number(row.max_abs_diff)} | "
                f"{'-' if row.agreement is None else f'{row.agreement:.1%}'} |"
            )
        lines.append("")
    lines += [
        "Reading: the tools used directly write files nothing checked. `quantize_dynamic` and Optimum quantize every "
        "Conv of the CNN through ConvInteger, which onnxruntime runs several times slower than float32 (and its labels "
        "moved); on the BERT file (opset 23) they take the ONNX `Attention` op for onnxruntime's own and write a "
        "QAttention that onnxruntime refuses to load; onnxconverter-common's fp16 file of the scikit-learn MLP does not "
        "load. onnx-convert's int8-dynamic leaves Conv in float32 (a CNN's file barely shrinks: its int8-static is the "
        "small and fast one), its int8-static (weights per channel, uint8 activations) runs faster than "
        "`quantize_static`'s defaults, and a variant outside its tolerance (the random CNN's int8-static, whose near-tie "
        "logits flip a label) is reported and not kept. fp16 halves the file but is no faster on this CPU: onnxruntime's "
        "CPU provider computes most float16 ops through float32; it is for size and for GPU providers. The optimized "
        "file equals what onnxruntime builds at every session start, so its runs are as fast as the fp32 file's "
        "within the noise; onnxscript's optimizer made no file smaller or faster either.",
        "",
    ]
    return lines


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
