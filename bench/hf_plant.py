"""A planted mismatch: run one tool on a folder with its exported file perturbed before it validates.

    python bench/hf_plant.py ours FOLDER OUTPUT_DIR          # onnx-convert (this venv)
    python bench/hf_plant.py optimum FOLDER OUTPUT_DIR TASK  # optimum-cli export onnx (its venv)

Each tool's export function is wrapped so that the file it writes has its classifier's weight
(the 2-D float initializer with a dimension of the number of labels) scaled by 1.5 before the
tool's own validation reads it: the file then disagrees with the model on every logit, far beyond
both tools' tolerances. What matters is what the tool then says and its exit code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCALE = 1.5  # the classifier's weights half as large again: every logit moves


def perturb(path: Path, labels: int) -> str:
    """Scale the classifier's weight in the ONNX file at ``path`` by SCALE; returns its name."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    for tensor in model.graph.initializer:
        array = numpy_helper.to_array(tensor)
        if array.ndim == 2 and labels in array.shape and array.dtype == np.float32:
            tensor.CopyFrom(numpy_helper.from_array(array * np.float32(SCALE), tensor.name))
            onnx.save(model, str(path))
            return tensor.name
    raise SystemExit(f"no classifier weight with {labels} labels in {path}")


def _wrap(module: Any, name: str, labels: int, output_of: Any) -> None:
    original = getattr(module, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        print(f"planted: {perturb(Path(output_of(args, kwargs, result)), labels)} *= {SCALE}", file=sys.stderr)
        return result

    setattr(module, name, wrapped)


def ours(folder: Path, output: Path, labels: int) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's converter, not the venv's
    from converter import cli
    from converter.frameworks.pytorch import routes

    _wrap(routes, "export_dynamo", labels, lambda args, kwargs, result: result.path)
    _wrap(routes, "export_torchscript", labels, lambda args, kwargs, result: result.path)
    return cli.main(["--model-path", str(folder), "--output-dir", str(output)])


def optimum(folder: Path, output: Path, labels: int, task: str) -> int:
    from optimum.commands.optimum_cli import main
    from optimum.exporters.onnx import convert

    _wrap(convert, "export_pytorch", labels, lambda args, kwargs, result: kwargs.get("output", args[3]))
    sys.argv = ["optimum-cli", "export", "onnx", "--model", str(folder), "--task", task, str(output)]
    try:
        main()
    except SystemExit as done:
        return int(done.code or 0)
    return 0


if __name__ == "__main__":
    tool, folder_arg, output_arg = sys.argv[1:4]
    folder = Path(folder_arg)
    labels = len(json.loads((folder / "config.json").read_text())["id2label"])
    if tool == "ours":
        sys.exit(ours(folder, Path(output_arg), labels))
    sys.exit(optimum(folder, Path(output_arg), labels, sys.argv[4]))
