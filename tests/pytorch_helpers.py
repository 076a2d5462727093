"""Fixtures for the PyTorch tests: model files in every format, built once per test session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests import pytorch_models as pm

MODELS_FILE = Path(pm.__file__)
# With it torch reads a file as it would: the trust tests' proof that a payload they refuse is live.
TRUSTED = ["--allow-unsafe-load", "true"]


def model_class(name: str) -> str:
    """The --model-class value for a class or factory in tests/pytorch_models.py."""
    return f"{MODELS_FILE}:{name}"


def _save_state_dict(model: torch.nn.Module, path: Path) -> None:
    torch.save(model.state_dict(), path)


def _save_safetensors(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    save_file(model.state_dict(), str(path))


def _export(model: torch.nn.Module, args: tuple[torch.Tensor, ...], path: Path, dynamic: bool) -> None:
    shapes = tuple({0: torch.export.Dim("batch")} for _ in args) if dynamic else None
    torch.export.save(torch.export.export(model, args, dynamic_shapes=shapes), str(path))


BUILDERS: dict[str, Callable[[Path], None]] = {
    "mlp.pt": lambda p: _save_state_dict(pm.trained("mlp"), p),
    "cnn.safetensors": lambda p: _save_safetensors(pm.trained("cnn"), p),
    "lstm.pt": lambda p: _save_state_dict(pm.trained("lstm"), p),
    "lstm_scripted.pt": lambda p: torch.jit.save(torch.jit.script(pm.trained("lstm")), str(p)),
    "transformer.pt2": lambda p: _export(
        pm.trained("transformer"), (torch.randint(0, pm.VOCAB, (4, pm.SEQ)),), p, True
    ),
    "two_in_two_out.pt": lambda p: torch.save(pm.trained("two_in_two_out"), p),
    "mlp_traced.pt": lambda p: torch.jit.save(torch.jit.trace(pm.trained("mlp"), torch.randn(2, 4)), str(p)),
    "mlp_fixed_batch.pt2": lambda p: _export(pm.trained("mlp"), (torch.randn(16, 4),), p, False),
    "value_branch.pt": lambda p: _save_state_dict(pm.ValueBranch().eval(), p),
    "value_branch_scripted.pt": lambda p: torch.jit.save(torch.jit.script(pm.ValueBranch().eval()), str(p)),
    "fixed_batch.pt": lambda p: _save_state_dict(pm.FixedBatch().eval(), p),
    "eigenvalues.pt": lambda p: _save_state_dict(pm.Eigenvalues().eval(), p),
}
_BUILT: dict[str, Path] = {}


class ModelFiles:
    """Builds a model file the first time a test asks for it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __getitem__(self, name: str) -> Path:
        if name not in _BUILT:
            torch.manual_seed(0)
            path = self.directory / name
            BUILDERS[name](path)
            _BUILT[name] = path
        return _BUILT[name]


_SESSION: list[ModelFiles] = []


def session_model_files(tmp_path_factory: pytest.TempPathFactory) -> ModelFiles:
    """One ModelFiles per test session, shared by every PyTorch test module's ``model_files`` fixture."""
    if not _SESSION:
        _SESSION.append(ModelFiles(tmp_path_factory.mktemp("pytorch-models")))
    return _SESSION[0]


def error_lines(stderr: str) -> list[str]:
    """stderr without the progress lines the CLI prints when not --quiet."""
    return [line for line in stderr.splitlines() if not line.startswith("onnx-convert: ")]


def assert_one_line_error(result, code: int, message: str) -> None:
    """Bad input: the exit code, exactly one line on stderr, nothing on stdout, nothing written."""
    # Plain asserts in a helper module are not rewritten by pytest: say what differed.
    lines = error_lines(result.stderr)
    assert lines == [message], f"stderr lines: {lines!r}"
    assert result.code == code, result.code
    assert result.stdout == "", result.stdout
    assert "Traceback" not in result.stderr
    assert result.written() == [], result.written()
