"""Families of models for bench/coverage.py: one module per family, each with ``models()``.

A family module ``bench/coverage_families/<family>.py`` exposes::

    def models() -> list[ModelCase]: ...

``models()`` must be cheap (it runs in the parent process to list the cases): import the
framework inside ``build``, which runs in the model's own child process. ``build(directory)``
trains or builds the model, saves its file into ``directory`` and returns a ``Built``: the CLI
options that convert it (``model-path`` and anything else, as on the command line), and how to
run the original model for the independent re-check. Raise ``SkipCase`` when the case does not
apply (e.g. an estimator that does not fit with default parameters); it is listed, not counted.

A family is added by dropping a file here; ``FAMILIES=name make coverage`` runs one.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Inputs = dict[str, np.ndarray]


class SkipCase(Exception):
    """The case does not apply; the message says why (one line)."""


@dataclass
class Built:
    """A saved model and how to check it."""

    options: dict[str, str]  # CLI options, e.g. {"model-path": ".../m.skops", "framework": "xgboost"}
    # Run the original framework on ``inputs``; return the outputs under the ONNX output names
    # asked for (``names``). Must not use converter code: it is the independent side of the check.
    reference: Callable[[Inputs, list[str]], Inputs]
    # New random inputs for the re-check (rng, batch size); None: standard normal values of the
    # dtype and shape the ONNX file declares (dynamic axes get the batch size).
    inputs: Callable[[np.random.Generator, int], Inputs] | None = None
    labels: frozenset[str] = frozenset({"label"})  # outputs that must agree exactly
    recheck_batch: int = 37  # rows of the re-check: neither validation size; cheap models take more
    # A 0/1 input marking real tokens (attention_mask): outputs laid out (batch, sequence, ...) are
    # re-checked where it is 1, as callers read them. A padded position's value is never read, and the
    # converter reports its difference apart (converter/padding.py); ModernBERT's differs by 3e-3.
    padding_mask: str | None = None
    note: str = ""  # e.g. the data it was fitted on, shown in the table


@dataclass(frozen=True)
class ModelCase:
    name: str
    build: Callable[[Path], Built] = field(compare=False)
    group: str = ""  # optional sub-heading within the family (e.g. "binary")


def import_beside(folder: Path, module: str) -> Any:
    """``module``, with ``folder`` (a --target install that make coverage keeps out of the venv) on
    sys.path, in the model's child process only; SkipCase when it does not import."""
    if folder.is_dir() and str(folder) not in sys.path:
        sys.path.append(str(folder))
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SkipCase(f"{module} does not import ({exc}); make coverage installs it") from None


def import_skops() -> Any:
    """skops.io, imported without torch or TensorFlow.

    At import skops lists sklearn's estimators with all_estimators(), which imports every sklearn
    package, and sklearn.externals.array_api_compat.torch imports torch when it is installed
    (seconds and ~190 MB per child). The walk skips packages that fail to import, so those fail
    meanwhile.
    """
    blocker = _Blocker(("torch", "tensorflow", "jax", "cupy"))
    sys.meta_path.insert(0, blocker)
    try:
        import skops.io

        return skops.io
    finally:
        sys.meta_path.remove(blocker)


class _Blocker(importlib.abc.MetaPathFinder):
    def __init__(self, roots: tuple[str, ...]) -> None:
        self.roots = tuple(r for r in roots if r not in sys.modules)

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] in self.roots:
            raise ImportError(f"{name} is not needed here")


def save_sample(directory: Path, name: str, inputs: Inputs) -> Path:
    """Write validation inputs for --sample-data (.npy for one input, .npz for several)."""
    if len(inputs) == 1:
        path = directory / f"{name}.npy"
        np.save(path, next(iter(inputs.values())))
    else:
        path = directory / f"{name}.npz"
        np.savez(path, **inputs)
    return path
