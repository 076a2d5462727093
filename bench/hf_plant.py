"""A planted mismatch: run one tool on a folder with its exported file perturbed before it validates.

    python bench/hf_plant.py ours FOLDER OUTPUT_DIR          # onnx-convert (this venv)
    python bench/hf_plant.py optimum FOLDER OUTPUT_DIR TASK  # optimum-cli export onnx (its venv)

Each tool's export function is wrapped so that the file it writes gets 0.05 added to the
classifier's bias (the one float initializer whose length is the number of labels) before the
tool's own validation reads it: the file then disagrees with the model by 0.05 on every logit,
beyond both tools' tolerances. What matters is what the tool then says and its exit code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SHIFT = 0.05


def perturb(path: Path, labels: int) -> str:
    """Add SHIFT to the classifier's bias in the ONNX file at ``path``; returns its name."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    for tensor in model.graph.initializer:
        array = numpy_helper.to_array(tensor)
        if array.ndim == 1 and array.shape[0] == labels and array.dtype == np.float32:
            tensor.CopyFrom(numpy_helper.from_array(array + np.float32(SHIFT), tensor.name))
            onnx.save(model, str(path))
            return tensor.name
    raise SystemExit(f"no bias of {labels} values in {path}")


def _wrap(module: Any, name: str, labels: int, output_of: Any) -> None:
    original = getattr(module, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        print(f"planted: {perturb(Path(output_of(args, kwargs, result)), labels)} += {SHIFT}", file=sys.stderr)
        return result

    setattr(module, name, wrapped)


def ours(folder: Path, output: Path, labels: int) -> int:
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
