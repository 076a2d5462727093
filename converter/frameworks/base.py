"""The contract every framework backend fulfils.

The public methods here do the checks that are the same for every framework; a backend
implements only the abstract ``*_impl`` methods and ``export_routes``, for what only its
framework knows. A backend module must not import its framework at module level: ``detect``
runs for every backend on every conversion.

The model's lifecycle, which the pipeline follows and ``tests/test_backend_contract.py`` checks:

1. ``load`` reads the model; ``input_specs`` says what it takes.
2. ``run`` computes every reference output (both batch sizes, the latency runs) before the
   first export, so that the model and an onnxruntime session never hold the weights at once.
3. ``export`` writes one file by one ``ExportRoute`` at one opset (an ``ExportJob``). A route
   that ``consumes_model`` frees the model during its export (``release``), to convert without
   holding the weights twice; ``export`` makes sure it is released when it returns.
4. After every export the pipeline calls ``release``: a backend whose models are large frees the
   model there (``release_impl`` returns True), the others keep it.
5. ``run`` and ``export`` refuse a released model: the pipeline calls ``reload`` before a later
   route's export needs it (``load`` and ``input_specs`` again; what the reference run learnt, the
   output names, carries over, with whatever else ``reload_impl`` copies).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import numpy as np

from converter.errors import ConversionError, ConverterError, MissingFrameworkError, UserError, shorten
from converter.tensors import shape_text

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

StateT = TypeVar("StateT")
"""What a backend learnt while loading a model, as its own dataclass (``PytorchState``, ...)."""


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
    # The named columns this input holds, in order (a model fitted on a DataFrame): sample data
    # with a header is mapped to them by name.
    columns: tuple[str, ...] = ()
    missing: bool = False  # generation hint: the model takes missing values here (NaN, or "nan" for strings)
    nonnegative: bool = False  # generation hint: floats drawn >= 0 (the input feeds log, log1p or sqrt)
    # What the backend knows of the input (converter/input_roles.py decides the rest): where
    # ``high`` came from, e.g. "the 2-row table it indexes (graph)", and its role ("mask",
    # "positions", "token_types", "ids"; empty: guessed from the name).
    bound: str = ""
    role: str = ""
    pad: int | None = None  # token ids: the id padded positions hold (converter/input_roles.py)


@dataclass
class LoadedModel(Generic[StateT]):
    """A model in memory plus what the backend learnt while loading it (``state``, typed per backend)."""

    model: Any
    format: str  # e.g. "skops", "torchscript", "keras"
    description: str  # e.g. the estimator or module class
    state: StateT
    label_outputs: frozenset[str] = frozenset()  # outputs compared as labels (exact match)
    output_names: tuple[str, ...] = ()  # names the export will give the outputs, when known
    notes: list[str] = field(default_factory=list)
    released: bool = False  # the backend freed the model (``Backend.release``); load it again to use it


@dataclass(frozen=True)
class ExportRoute:
    """One way a backend can write the file: an exporter, or a recipe of one."""

    name: str  # shown in the report, e.g. "torch.onnx.export(dynamo=True)"
    opsets: tuple[int, int]  # lowest and highest default-domain opset it can write
    consumes_model: bool = False  # its export frees the model (see the module docstring)
    fallback_reason: str = ""  # why routes preferred to it are not proposed for this model


@dataclass
class ExportJob:
    """Everything one export needs: the pipeline decides each field, the backend writes the file."""

    route: ExportRoute
    opset: int  # the default-domain opset to ask the exporter for
    specs: list[TensorSpec]
    path: Path  # where the .onnx goes (external data beside it)
    dynamic_batch: bool
    example_inputs: dict[str, np.ndarray]  # the first validation inputs, for exporters that trace


@dataclass
class ExportResult:
    """What an export wrote and with what."""

    path: Path
    exporter: str  # e.g. "skl2onnx 1.20.0"
    extra_files: list[Path] = field(default_factory=list)  # external data next to the .onnx
    warnings: list[str] = field(default_factory=list)


class Backend(ABC, Generic[StateT]):
    """One framework. Subclasses set ``name`` and implement the abstract methods."""

    name: str = ""
    #: modules the framework needs, imported on first use (name -> pip package)
    requirements: ClassVar[dict[str, str]] = {}
    #: Docker image variant that contains this framework
    image_variant: str = ""
    #: the formats it reads, for error messages ("a .skops or .joblib file (scikit-learn)")
    formats_help: str = ""
    # True: the reference run gets sample data as read (float64 from a CSV, strings with missing
    # cells), not cast to the file's input dtypes first.
    runs_on_samples_as_read: ClassVar[bool] = False

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
    def load(self, request: ConversionRequest, fmt: str) -> LoadedModel[StateT]:
        return self.load_impl(request, fmt)

    def input_specs(self, loaded: LoadedModel[StateT], request: ConversionRequest) -> list[TensorSpec]:
        """The model's own view of its inputs (names always; shapes where it knows them)."""
        specs = self.input_specs_impl(loaded, request)
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ConversionError(f"the {self.name} backend found duplicate input names {names}")
        return specs

    def run(self, loaded: LoadedModel[StateT], inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the original model; outputs keyed by the names the ONNX file will use."""
        self._check_not_released(loaded, "run")
        try:
            outputs = self.run_impl(loaded, inputs)
        except ConverterError:
            raise
        except Exception as exc:
            shapes = ", ".join(f"{n} {shape_text(a.shape)} {a.dtype}" for n, a in inputs.items())
            raise UserError(
                f"the original model failed on inputs {shapes}: {type(exc).__name__}: {shorten(exc, 240)}",
                "check --input-shapes and --input-dtypes, or give --sample-data",
            ) from exc
        if not isinstance(outputs, dict) or not outputs:
            raise ConversionError(f"the {self.name} backend returned no named outputs")
        return {name: np.asarray(value) for name, value in outputs.items()}

    def release(self, loaded: LoadedModel[StateT]) -> None:
        """Free the model's memory where the backend can (``release_impl``); it is then marked released."""
        if not loaded.released and self.release_impl(loaded):
            loaded.released = True

    def reload(self, released: LoadedModel[StateT], request: ConversionRequest) -> LoadedModel[StateT]:
        """The model loaded again after ``release``, ready to export as it was before."""
        again = self.load(request, released.format)
        self.input_specs(again, request)
        again.output_names = again.output_names or released.output_names
        self.reload_impl(released, again)
        return again

    def export(self, loaded: LoadedModel[StateT], job: ExportJob) -> ExportResult:
        """Write ``job.path`` by ``job.route`` at ``job.opset``; every file it reports must exist."""
        self._check_not_released(loaded, "export")
        if job.route not in self.export_routes(loaded):
            raise ConversionError(f"the {self.name} backend has no export route {job.route.name} here (a bug)")
        result = self.export_impl(loaded, job)
        if job.route.consumes_model:
            self.release(loaded)  # it did, or will now: either way the model is gone
        for written in [result.path, *result.extra_files]:
            if not written.is_file():
                raise ConversionError(f"the {self.name} exporter reported success but wrote no {written.name}")
        return result

    def _check_not_released(self, loaded: LoadedModel[StateT], what: str) -> None:
        if loaded.released:
            raise ConversionError(f"the {self.name} model was released and cannot {what} (a bug)")

    # -- what each backend implements ----------------------------------------------------------
    @abstractmethod
    def load_impl(self, request: ConversionRequest, fmt: str) -> LoadedModel[StateT]: ...

    @abstractmethod
    def input_specs_impl(self, loaded: LoadedModel[StateT], request: ConversionRequest) -> list[TensorSpec]: ...

    @abstractmethod
    def run_impl(self, loaded: LoadedModel[StateT], inputs: dict[str, np.ndarray]) -> dict[str, Any]: ...

    @abstractmethod
    def export_routes(self, loaded: LoadedModel[StateT]) -> list[ExportRoute]:
        """The routes to try for this model, preferred first; the pipeline validates each file
        and keeps the first that reproduces the model (every attempt is in the report)."""

    @abstractmethod
    def export_impl(self, loaded: LoadedModel[StateT], job: ExportJob) -> ExportResult:
        """Write the file; raise ``ConversionError`` (the next attempt follows) when the route cannot."""

    def index_tables(self, loaded: LoadedModel[StateT], inputs: dict[str, np.ndarray]) -> dict[str, int]:
        """Per integer input, the rows of the smallest table it indexes, learnt by running the
        model once on ``inputs`` (generated within the smallest table of the model, so safe).

        For models whose graph cannot be read before a run (a PyTorch module); the default, for
        backends that found the tables in ``input_specs``: nothing to add.
        """
        return {}

    def release_impl(self, loaded: LoadedModel[StateT]) -> bool:
        """Drop the model's memory, return True; or keep it (the default: small models)."""
        return False

    def reload_impl(self, released: LoadedModel[StateT], again: LoadedModel[StateT]) -> None:
        """Carry over to ``again`` what the reference run taught the backend about ``released`` (default: nothing)."""

    @abstractmethod
    def opset_range(self) -> tuple[int, int]:
        """Lowest and highest default-domain opset any of its routes can write (known before loading)."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the framework and exporter packages (imported by now)."""
