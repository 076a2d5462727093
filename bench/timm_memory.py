"""Peak memory of onnx-convert next to the bare export, on timm architectures, phase by phase.

    python bench/timm_memory.py                                  # the default architectures, both formats
    python bench/timm_memory.py --archs swin_tiny_patch4_window7_224 --formats pt2 --phases

For each architecture and format (``.pt2`` with a dynamic batch, state_dict + factory; built by
bench/coverage_families/timm.py in a process of its own) two processes run side by side from the
same file: the bare export (import torch, load the file or build the model and load the weights,
``torch.onnx.export(dynamo=True)`` with a dynamic batch on a 16-row example, save) and
``converter.pipeline.convert`` (validation and latency included), once with ``--validation-samples
16`` (the default until auto) and once with ``auto`` (6 rows of 224x224), side by side. Each peak is the
child's max RSS (``os.wait4``). With ``--phases`` the converter's child also prints the peak of
each stage of ``Timings``: VmHWM is reset when a stage starts (``/proc/self/clear_refs``, 5) and
read when it ends (tracemalloc does not see torch's or onnxruntime's allocations).
Nothing here is part of ``make bench`` (it needs timm: ``make coverage`` installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_ARCHS = (
    "resnet50",
    "efficientnet_b0",
    "mobilenetv3_large_100",
    "vit_tiny_patch16_224",
    "swin_tiny_patch4_window7_224",
    "convnext_atto",
    "levit_128s",
    "maxvit_nano_rw_256",
)
EXAMPLE_ROWS = 16  # the bare export's example (the textbook one; its size barely moves the export's peak)
# The converter is measured at the former default (16 rows) and at auto (fewer rows for large images).
VALIDATION_ROWS = ("16", "auto")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default=",".join(DEFAULT_ARCHS))
    parser.add_argument("--formats", default="pt2,state_dict")
    parser.add_argument("--phases", action="store_true", help="print the converter's peak per stage")
    parser.add_argument("--child", nargs=2, metavar=("ROLE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        CHILDREN[args.child[0]](Path(args.child[1]))
        return 0
    ratios: dict[str, list[float]] = {rows: [] for rows in VALIDATION_ROWS}
    print(f"{'case':48} {'bare MB':>8}" + "".join(f" {'rows ' + r + ' MB':>13} {'ratio':>6}" for r in VALIDATION_ROWS))
    for arch in args.archs.split(","):
        for fmt in args.formats.split(","):
            bare, converted, phases = measure(arch, fmt, args.phases)
            line = f"{arch + ' (' + fmt + ')':48} {bare:8.0f}"
            for rows, peak in converted.items():
                ratios[rows].append(peak / bare)
                line += f" {peak:13.0f} {peak / bare:6.2f}"
            print(line, flush=True)
            for rows, stages in phases.items():
                print(f"    {rows}: " + ", ".join(f"{stage} {mb:.0f}" for stage, mb in stages.items()), flush=True)
    for rows, values in ratios.items():
        print(f"rows {rows}: median {statistics.median(values):.2f}x, max {max(values):.2f}x over {len(values)} cases")
    return 0


def measure(arch: str, fmt: str, phases: bool) -> tuple[float, dict[str, float], dict[str, dict[str, float]]]:
    """Peak MB of the bare export and of the converter (at each --validation-samples) on one model file,
    and the converter's stages."""
    converted, stages = {}, {}
    with tempfile.TemporaryDirectory(prefix="timm-memory-") as folder:
        work = Path(folder)
        (work / "case.json").write_text(json.dumps({"arch": arch, "format": fmt, "phases": phases}))
        _child("build", work)
        bare = _child("bare", work)
        for rows in VALIDATION_ROWS:
            converted[rows] = _child(f"convert-{rows}", work)
            if phases:
                stages[rows] = json.loads((work / "phases.json").read_text())
    return bare, converted, stages


def _child(role: str, work: Path) -> float:
    """Run one role in a fresh process; its peak RSS in MB."""
    process = subprocess.Popen([sys.executable, __file__, "--child", role, str(work)])
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"the {role} child failed ({status}) in {work}")
    return usage.ru_maxrss / 1024  # Linux reports KiB


# -- the children ---------------------------------------------------------------------------------


def _build(work: Path) -> None:
    from bench.coverage_families import timm as family

    case = json.loads((work / "case.json").read_text())
    (work / "model").mkdir()
    built = family._build(case["arch"], case["format"], work / "model")
    (work / "options.json").write_text(json.dumps(built.options))


def _bare(work: Path) -> None:
    """The textbook export: load or build, torch.onnx.export(dynamo=True) with a dynamic batch, save."""
    import torch

    options = json.loads((work / "options.json").read_text())
    if options["model-path"].endswith(".pt2"):
        model: Any = torch.export.load(options["model-path"])
        size = tuple(model.example_inputs[0][0].shape[1:])
    else:
        from bench.coverage_families.timm import import_timm

        model = import_timm().create_model(json.loads((work / "case.json").read_text())["arch"], pretrained=False)
        model.load_state_dict(torch.load(options["model-path"], weights_only=True))
        model.eval()
        size = tuple(model.pretrained_cfg["input_size"])
    example = (torch.randn(EXAMPLE_ROWS, *size),)
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(model, example, dynamo=True, dynamic_shapes=({0: batch},), optimize=True)
    program.save(str(work / "bare.onnx"))


def _convert(work: Path, rows: str) -> None:
    from converter.pipeline import Timings, convert
    from converter.request import ConversionRequest

    options = json.loads((work / "options.json").read_text())
    if "model-class" in options:
        from bench.coverage_families.timm import import_timm

        import_timm()  # torchvision from bench/.torchvision, as the coverage family does
    if json.loads((work / "case.json").read_text())["phases"]:
        peaks = _record_phases(Timings)
    request = {**options, "output-dir": str(work / f"out-{rows}"), "validation-samples": rows}
    report = convert(ConversionRequest.from_mapping(request))
    if report.status != "passed":
        raise SystemExit(f"the conversion did not pass: {report.status} {report.error}")
    if json.loads((work / "case.json").read_text())["phases"]:
        (work / "phases.json").write_text(json.dumps(peaks))


def _record_phases(timings: Any) -> dict[str, float]:
    """Wrap ``Timings.stage`` so that each stage records its own peak RSS (VmHWM reset at its start)."""
    import contextlib

    peaks: dict[str, float] = {}
    stage = timings.stage

    @contextlib.contextmanager
    def measured(self: Any, name: str) -> Any:
        Path("/proc/self/clear_refs").write_text("5")
        with stage(self, name):
            yield
        peaks[name] = max(peaks.get(name, 0.0), _vm("VmHWM"))
        peaks[f"{name} end"] = _vm("VmRSS")  # what the stage left behind

    timings.stage = measured
    return peaks


def _vm(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


CHILDREN = {"build": _build, "bare": _bare} | {
    f"convert-{rows}": partial(_convert, rows=rows) for rows in VALIDATION_ROWS
}

if __name__ == "__main__":
    sys.exit(main())
