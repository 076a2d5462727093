"""The contract every framework backend fulfils.

The public methods here do the checks that are the same for every framework; a backend
implements only the ``*_impl`` methods, for what only its framework knows.
A backend module must not import its framework at module level: ``detect`` runs for
every backend on every conversion.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from converter.errors import ConversionError, ConverterError, MissingFrameworkError, UserError, shorten

if TYPE_CHECKING:
    from converter.request import ConversionRequest


def image_hint(variant: str) -> str:
    """The Docker image that holds a framework: its build target and its release tag.

    release.yml tags the full image ``onnx-convert-action:<version>`` and the others
    ``<version>-<variant>``; there is no tag named after the variant alone.
    """
    tag = "<version>" if variant == "full" else f"<version>-{variant}"
    return f"the {variant} image (docker build --target {variant}; released as onnx-convert-action:{tag})"


Dim = int | str | None
"""A dimension: fixed size, dynamic name, or None (dynamic, unnamed)."""


@dataclass
class TensorSpec:
    """One model input as the exporter will see it."""

    name: str
    shape: tuple[Dim, ...] | None  # None: rank unknown (the user must give --input-shapes)
    dtype: str  # numpy dtype name, or "string"
    dtype_known: bool = True  # False: a default guess that sample data may correct
    # Generation hints: integers are drawn from [low, high); strings from categories.
    low: int = 0
    high: int | None = None
    categories: tuple[str, ...] = ()


@dataclass
class LoadedModel:
    """A model in memory plus what the backend learnt while loading it."""

    model: Any
    format: str  # e.g. "skops", "torchscript", "keras"
    description: str  # e.g. the estimator or module class
    label_outputs: frozenset[str] = frozenset()  # outputs compared as labels (exact match)
    output_names: tuple[str, ...] = ()  # names the export will give the outputs, when known
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # backend-private state
    released: bool = False  # the backend freed the model (``Backend.release``); load it again to use it


@dataclass
class ExportResult:
    """What an export wrote and how."""

    path: Path
    exporter: str  # e.g. "skl2onnx 1.20.0"
    export_path: str = ""  # which route produced the file, e.g. "dynamo", "from_function"
    fallback_reason: str = ""  # why the preferred route was not used
    extra_files: list[Path] = field(default_factory=list)  # external data next to the .onnx
    warnings: list[str] = field(default_factory=list)


class Backend(ABC):
    """One framework. Subclasses set ``name`` and implement the ``*_impl`` methods."""

    name: str = ""
    #: modules the framework needs, imported on first use (name -> pip package)
    requirements: ClassVar[dict[str, str]] = {}
    #: Docker image variant that contains this framework
    image_variant: str = ""
    #: the formats it reads, for error messages ("a .skops or .joblib file (scikit-learn)")
    formats_help: str = ""

    # -- detection (no framework import) --------------------------------------------------
    @classmethod
    @abstractmethod
    def detect(cls, path: Path) -> str | None:
        """The format name if this backend can open ``path``, else None."""

    # -- lazy imports ------------------------------------------------------------------------
    def require(self, module: str) -> ModuleType:
        """Import a framework module, or explain what to install."""
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            package = self.requirements.get(module.split(".")[0], module)
            raise MissingFrameworkError(
                f"the {self.name} backend needs {package}, which is not installed ({exc.name or module})",
                f"pip install 'onnx-convert-action[{self.name}]', or use {image_hint(self.image_variant or 'full')}",
            ) from None

    # -- the pipeline's questions ----------------------------------------------------------
    def load(self, request: ConversionRequest, fmt: str) -> LoadedModel:
        return self.load_impl(request, fmt)

    def input_specs(self, loaded: LoadedModel, request: ConversionRequest) -> list[TensorSpec]:
        """The model's own view of its inputs (names always; shapes where it knows them)."""
        specs = self.input_specs_impl(loaded, request)
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ConversionError(f"the {self.name} backend found duplicate input names {names}")
        return specs

    def run(self, loaded: LoadedModel, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the original model; outputs keyed by the names the ONNX file will use."""
        if loaded.released:
            raise ConversionError(f"the {self.name} model was released and cannot run (a bug)")
        try:
            outputs = self.run_impl(loaded, inputs)
        except ConverterError:
            raise
        except Exception as exc:
            shapes = ", ".join(f"{n} {'x'.join(map(str, a.shape))} {a.dtype}" for n, a in inputs.items())
            raise UserError(
                f"the original model failed on inputs {shapes}: {type(exc).__name__}: {shorten(exc, 240)}",
                "check --input-shapes and --input-dtypes, or give --sample-data",
            ) from exc
        if not isinstance(outputs, dict) or not outputs:
            raise ConversionError(f"the {self.name} backend returned no named outputs")
        return {name: np.asarray(value) for name, value in outputs.items()}

    def release(self, loaded: LoadedModel) -> None:
        """Free the model's memory: the pipeline has run it and exported it, and onnxruntime
        is about to load the file. A backend that can (``release_impl``) marks it released;
        the pipeline loads the model again if a later export route needs it."""
        if not loaded.released and self.release_impl(loaded):
            loaded.released = True

    def release_impl(self, loaded: LoadedModel) -> bool:
        """Drop the model's memory, return True; or keep it (the default: small models)."""
        return False

    def export_routes(self, loaded: LoadedModel) -> list[str]:
        """The export routes to try for this model, preferred first.

        The pipeline exports and validates with each in turn and keeps the first whose file
        reproduces the model; a route that fails or mismatches is reported with its reason.
        A backend with a single route keeps the default and implements ``export_impl`` only.
        """
        return [""]

    def export(
        self, loaded: LoadedModel, specs: list[TensorSpec], opset: int, path: Path, dynamic_batch: bool, route: str = ""
    ) -> ExportResult:
        result = self.export_route_impl(loaded, specs, opset, path, dynamic_batch, route)
        for written in [result.path, *result.extra_files]:
            if not written.is_file():
                raise ConversionError(f"the {self.name} exporter reported success but wrote no {written.name}")
        return result

    @abstractmethod
    def load_impl(self, request: ConversionRequest, fmt: str) -> LoadedModel: ...

    @abstractmethod
    def input_specs_impl(self, loaded: LoadedModel, request: ConversionRequest) -> list[TensorSpec]: ...

    @abstractmethod
    def run_impl(self, loaded: LoadedModel, inputs: dict[str, np.ndarray]) -> dict[str, Any]: ...

    @abstractmethod
    def export_impl(
        self, loaded: LoadedModel, specs: list[TensorSpec], opset: int, path: Path, dynamic_batch: bool
    ) -> ExportResult: ...

    def export_route_impl(
        self, loaded: LoadedModel, specs: list[TensorSpec], opset: int, path: Path, dynamic_batch: bool, route: str
    ) -> ExportResult:
        """Export by one of ``export_routes``; backends with more than one route override this."""
        return self.export_impl(loaded, specs, opset, path, dynamic_batch)

    @abstractmethod
    def opset_range(self) -> tuple[int, int]:
        """Lowest and highest default-domain opset the exporter can write."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the framework and exporter packages (imported by now)."""
