"""make demo: train the example models, convert and validate each, print one line per model."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from converter.cli import main as onnx_convert  # noqa: E402
from converter.frameworks.tensorflow.startup import native_notices_filtered  # noqa: E402

# One module per framework; each has build(out_dir) -> [(model path, extra CLI args)].
EXAMPLE_MODULES = ["examples.sklearn_models", "examples.pytorch_models", "examples.tensorflow_models"]
MODELS_DIR = ROOT / "examples" / "models"
OUTPUT_DIR = ROOT / "onnx-models"


def main() -> int:
    failures = 0
    for module_name in EXAMPLE_MODULES:
        module = importlib.import_module(module_name)
        print(f"== {module_name.rsplit('.', 1)[-1]}: training examples", flush=True)
        with native_notices_filtered():  # training imports TensorFlow here: its C++ start-up notices stay out
            built = module.build(MODELS_DIR)
        for model_path, extra in built:
            args = [
                "--model-path",
                str(model_path.relative_to(ROOT)),
                "--output-dir",
                str(OUTPUT_DIR.relative_to(ROOT)),
                "--quiet",
                *extra,
            ]
            code = onnx_convert(args)
            failures += code != 0
    print(f"\nreports: {OUTPUT_DIR.relative_to(ROOT)}/<model>.report.md and .report.json")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
