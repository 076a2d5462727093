"""The size and latency ratios of the release-gate test pairs (tests/test_baseline_release.py).

Each pair: a baseline converted first, then the second model with --baseline; prints the size
ratio and the side-by-side latency ratio (median of the alternating pairs, and their middle half).

    python bench/baseline_pairs.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from converter.cli import main
from tests.test_baseline_release import iris, skops_model, torch_model


def convert(model: Path, out: Path, *options: str) -> dict:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(["--model-path", str(model), "--output-dir", str(out), "--quiet", *options])
    return json.loads(next(out.glob("*.report.json")).read_text())


def pairs(root: Path) -> dict[str, tuple[Path, Path, tuple[str, ...]]]:
    from sklearn.ensemble import RandomForestClassifier

    small = skops_model(root / "small" / "forest.skops", RandomForestClassifier(n_estimators=10, random_state=0))
    large = skops_model(root / "large" / "forest.skops", RandomForestClassifier(n_estimators=80, random_state=0))
    same = iris(root)
    return {
        "same model re-exported": (same, same, ()),
        "retrained (C=0.1)": (same, iris(root, "retrained", c=0.1), ()),
        "renamed input": (
            torch_model(root / "a" / "net.pt2", "x"),
            torch_model(root / "b" / "net.pt2", "features"),
            (),
        ),
        "batch axis fixed": (same, same, ("--dynamic-batch", "false")),
        "output float32 -> float64": (
            torch_model(root / "a" / "net.pt2", "x"),
            torch_model(root / "c" / "net.pt2", "float64"),
            (),
        ),
        "larger model (10 -> 80 trees)": (small, large, ()),
    }


def run(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for number, (name, (old, new, options)) in enumerate(pairs(root).items()):
            convert(old, root / f"base{number}")
            for attempt in range(repeat):
                report = convert(
                    new, root / f"new{number}-{attempt}", "--baseline", str(root / f"base{number}"), *options
                )
                b = report["baseline"]
                lat = b["latency"]
                latency = (
                    f"latency ×{lat['ratio']:.2f} (middle half ×{lat['ratio_low']:.2f}–{lat['ratio_high']:.2f}, "
                    f"{lat['runs']} pairs, {lat['baseline_ms']:.3g} vs {lat['onnx_ms']:.3g} ms)"
                    if lat
                    else "latency not compared: " + "; ".join(b["notes"])[:100]
                )
                print(f"{name}: {report['status']}, size ×{b['size']['ratio']:.3f}, {latency}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    run(parser.parse_args().repeat)
