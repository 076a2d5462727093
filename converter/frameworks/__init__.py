"""Backend registry: picks the backend by ``--framework`` or by detection from the path.

Backend modules are imported here (they are light); their frameworks are not.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from converter.errors import UserError
from converter.frameworks.base import Backend

# framework name -> "module:Class"; order is the detection order.
BACKENDS: dict[str, str] = {
    "sklearn": "converter.frameworks.sklearn.backend:SklearnBackend",
    "pytorch": "converter.frameworks.pytorch.backend:PytorchBackend",
    "tensorflow": "converter.frameworks.tensorflow.backend:TensorFlowBackend",
    "xgboost": "converter.frameworks.boosters.xgboost:XGBoostBackend",
    "lightgbm": "converter.frameworks.boosters.lightgbm:LightGBMBackend",
}


def backend_class(name: str) -> type[Backend]:
    module_name, _, class_name = BACKENDS[name].partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def resolve_backend(framework: str, path: Path) -> tuple[Backend, str]:
    """The backend and the model format for ``path``."""
    if framework != "auto":
        if framework not in BACKENDS:
            raise UserError(
                f'--framework "{framework}": this build has no {framework} backend',
                f"use one of {', '.join(BACKENDS)}",
            )
        cls = backend_class(framework)
        fmt = cls.detect(path)
        if fmt is None:
            raise UserError(
                f"{path} is not a {framework} model this tool can read",
                _formats_hint(),
            )
        return cls(), fmt
    detected = detect(path)
    if detected is not None:
        name, fmt = detected
        return backend_class(name)(), fmt
    what = "directory holds no model" if path.is_dir() else "file is not a model format this tool knows"
    raise UserError(f"{path}: the {what}", _formats_hint())


def detect(path: Path) -> tuple[str, str] | None:
    """The first backend, in detection order, that recognises ``path``: (framework, format)."""
    for name in BACKENDS:
        fmt = backend_class(name).detect(path)
        if fmt is not None:
            return name, fmt
    return None


def _formats_hint() -> str:
    formats = ", ".join(backend_class(name).formats_help for name in BACKENDS)
    return f"give {formats}, or set --framework"
