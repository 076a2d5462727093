"""The same PyTorch model file, options and versions give a byte-identical .onnx file, for every format.

Two separate processes convert copies of the same files, kept in two different folders and written
to two different output folders, with different string hash seeds (hash randomisation only shows
across processes, and a seed fixed by the environment would hide it). A file that records a temporary
path, a per-process name or the order of a set differs between the two.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.fixtures.tiers import model_fixture

pytestmark = pytest.mark.converts
ROOT = Path(__file__).resolve().parent.parent
# Manifest entry (named after its format) -> the .onnx file it writes into out/<entry>/.
ONNX_FILES = {
    "state_dict": "mlp.onnx",
    "safetensors": "cnn.onnx",
    "torchscript": "lstm_scripted.onnx",
    "exported_program": "mlp.onnx",
    "pickled_module": "two_in_two_out.onnx",
}
MANIFEST = """\
models:
  - name: state_dict
    model-path: mlp.pt
    model-class: classes.py:MLP
    input-shapes: batchx4
  - name: safetensors
    model-path: cnn.safetensors
    model-class: classes.py:make_cnn
    input-shapes: batchx3x16x16
  - name: torchscript
    model-path: lstm_scripted.pt
    input-shapes: batchx7x6
  - name: exported_program
    model-path: mlp.pt2
  - name: pickled_module
    model-path: two_in_two_out.pt
    allow-unsafe-load: true
    input-shapes: ids:batchx6;features:batchx3
    input-dtypes: ids:int64
"""


def _save_models(folder: Path, pm: ModuleType) -> None:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    torch.save(pm.trained("mlp").state_dict(), folder / "mlp.pt")
    save_file(pm.trained("cnn").state_dict(), str(folder / "cnn.safetensors"))
    torch.jit.save(torch.jit.script(pm.trained("lstm")), str(folder / "lstm_scripted.pt"))
    program = torch.export.export(
        pm.trained("mlp"), (torch.randn(4, 4),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(program, str(folder / "mlp.pt2"))
    torch.save(pm.trained("two_in_two_out"), folder / "two_in_two_out.pt")  # its class: tests.fixtures.pytorch_models
    shutil.copy(pm.__file__, folder / "classes.py")
    (folder / "onnx-models.yml").write_text(MANIFEST)


def _convert(folder: Path, seed: str) -> dict[str, bytes]:
    """Convert every model of the folder in a new process; the bytes of each .onnx by format."""
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "converter", "--model-path", "onnx-models.yml", "--output-dir", "out", "--quiet"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {name: (folder / "out" / name / file).read_bytes() for name, file in ONNX_FILES.items()}


Runs = tuple[dict[str, bytes], dict[str, bytes], list[Path]]


@model_fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, pytorch_models: ModuleType) -> Runs:
    first = tmp_path_factory.mktemp("checkout-a") / "models"
    _save_models(first, pytorch_models)
    second = tmp_path_factory.mktemp("checkout-b") / "elsewhere" / "models"
    shutil.copytree(first, second)
    return _convert(first, "1"), _convert(second, "2"), [first, second]


@pytest.mark.parametrize("name", ONNX_FILES)
def test_converting_twice_gives_the_same_file(two_runs: Runs, name: str) -> None:
    first, second, _ = two_runs
    assert hashlib.sha256(first[name]).hexdigest() == hashlib.sha256(second[name]).hexdigest()


@pytest.mark.parametrize("name", ONNX_FILES)
def test_the_file_names_no_folder_of_this_machine(two_runs: Runs, name: str, torch: ModuleType) -> None:
    # Another runner has other folders: a path in the file would make its file differ.
    first, _, folders = two_runs
    for folder in [*folders, ROOT, Path(sys.prefix), Path(torch.__file__).parent]:
        assert str(folder).encode() not in first[name], folder
