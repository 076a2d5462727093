"""TensorFlow / Keras backend: .keras, legacy .h5, SavedModel directories and .tflite, via tf2onnx.

One module per format (keras, saved_model, tflite) loads, runs and exports it; this class picks
the module and does what every route shares: the TensorFlow ops tf2onnx left unconverted, the
input dimensions the request names, a canonical node order, and writing the file.
TensorFlow is imported inside the methods only, never by ``detect``.
"""

from __future__ import annotations

import gc
import importlib.metadata as md
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from converter.errors import ConversionError, ConverterError, UnsupportedByRoute, UserError, shorten
from converter.frameworks.base import Backend, ExportJob, ExportResult, ExportRoute, LoadedModel, TensorSpec
from converter.frameworks.tensorflow import keras, saved_model, tflite
from converter.frameworks.tensorflow.canonical import canonicalize
from converter.frameworks.tensorflow.common import DEFAULT_SIGNATURE, notices_hidden, quiet
from converter.frameworks.tensorflow.onnx_model import LightModel, declare_input_dims, name_output_dims, unsupported_ops
from converter.frameworks.tensorflow.startup import native_notices_filtered

if TYPE_CHECKING:
    from converter.request import ConversionRequest

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# tf2onnx tests opsets 14 to 18 ("opset-6 to opset-13 should work but we don't test them") and
# refuses opsets it has no IR version for (tf2onnx.constants.OPSET_TO_IR_VERSION; a test checks
# this stays in step). Kept here because importing tf2onnx imports TensorFlow.
TF2ONNX_OPSETS = (14, 18)

TensorFlowState = keras.KerasState | saved_model.SavedModelState | tflite.TfliteState
Loaded = LoadedModel[TensorFlowState]


class TensorFlowBackend(Backend[TensorFlowState]):
    name = "tensorflow"
    requirements = {"tensorflow": "tensorflow-cpu", "keras": "keras", "tf2onnx": "tf2onnx", "h5py": "h5py"}  # noqa: RUF012
    image_variant = "tensorflow"
    formats_help = "a .keras, .h5 or .tflite file or a SavedModel directory (TensorFlow/Keras)"

    @classmethod
    def detect(cls, path: Path) -> str | None:
        if path.is_dir():
            return "saved-model" if saved_model.is_saved_model(path) else None
        if not path.is_file():
            return None
        suffix = path.suffix.lower()
        head = _head(path, 8)
        if suffix == ".keras" or keras.is_keras_archive(path):
            return "keras"
        if suffix in {".h5", ".hdf5"} or head.startswith(HDF5_MAGIC):
            return "keras-h5"
        if suffix == ".tflite" or head[4:8] == tflite.TFLITE_IDENTIFIER:
            return "tflite"
        return None

    # -- imports ------------------------------------------------------------------------------
    def import_module(self, module: str) -> ModuleType:
        """Import a TensorFlow-stack module without its start-up noise reaching the user."""
        # Read once by the C++ runtime when it loads: hides what TensorFlow logs after absl is
        # initialised. A value the user set (to debug) is kept.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        if "keras" not in sys.modules:
            # Keras 3 can run on JAX or torch; this backend traces TensorFlow graphs.
            os.environ["KERAS_BACKEND"] = "tensorflow"
        # What it logs before (oneDNN, CPU features) ignores that variable: filtered from fd 2.
        loading = "tensorflow" not in sys.modules
        with quiet(), native_notices_filtered(enabled=loading and notices_hidden()):
            return self.require(module)

    # -- load, inputs, reference run ----------------------------------------------------------
    def load_impl(self, request: ConversionRequest, fmt: str) -> Loaded:
        if fmt != "saved-model" and request.signature != DEFAULT_SIGNATURE:
            raise UserError(
                f'--signature "{request.signature}": only SavedModel directories have signatures to choose, '
                f"and {request.model_path.name} is a {fmt} file",
                "remove --signature, or convert the SavedModel directory",
            )
        code = request.model_code
        if fmt not in {"keras", "keras-h5"} and code.given:
            raise UserError(
                f"{request.model_path.name} is a {fmt} model, which carries its own code; "
                f"--{code.option} is only for .keras files (and PyTorch state_dicts)",
                f"remove --{code.option}",
            )
        with quiet():
            if fmt in {"keras", "keras-h5"}:
                return keras.load(
                    self.import_module, request.model_path, fmt, request.allow_unsafe_load, request.model_code
                )
            if fmt == "saved-model":
                return saved_model.load(self.import_module, request.model_path, request.signature)
            return tflite.load(self.import_module, request.model_path)

    def input_specs_impl(self, loaded: Loaded, request: ConversionRequest) -> list[TensorSpec]:
        if tflite.owns(loaded):
            return tflite.input_specs(loaded, request.dynamic_batch)
        return list(loaded.state.specs)

    def run_impl(self, loaded: Loaded, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        with quiet():
            if keras.owns(loaded):
                return keras.run(self.import_module, loaded, inputs)
            if saved_model.owns(loaded):
                return saved_model.run(self.import_module, loaded, inputs)
            assert tflite.owns(loaded)
            return tflite.run(loaded, inputs)

    # -- release ------------------------------------------------------------------------------
    def release_impl(self, loaded: Loaded) -> bool:
        """Drop the Keras model or SavedModel, so that its weights are gone before onnxruntime
        loads the file's (ConvNeXtLarge: 790 MB). A TFLite interpreter is kept: it is small."""
        if tflite.owns(loaded):
            return False
        if keras.owns(loaded):
            keras.release(loaded)
        elif saved_model.owns(loaded):
            saved_model.release(loaded)
        loaded.model = None
        gc.collect()  # a Keras model's layers and tracked functions refer to each other
        return True

    # -- export -------------------------------------------------------------------------------
    def export_routes(self, loaded: Loaded) -> list[ExportRoute]:
        module = _format_module(loaded)
        return [ExportRoute(name, TF2ONNX_OPSETS, consumes_model=name in module.CONSUMING) for name in module.ROUTES]

    def export_impl(self, loaded: Loaded, job: ExportJob) -> ExportResult:
        with quiet():
            tf2onnx = self.import_module("tf2onnx")
            try:
                exported = self._convert(loaded, job)
            except ConverterError:
                raise
            except Exception as exc:  # tracing, grappler and tf2onnx raise anything; the next route may work
                graphs = sys.modules.get("converter.frameworks.tensorflow.graph")
                error = UnsupportedByRoute if graphs and isinstance(exc, graphs.GraphSurgeryError) else ConversionError
                raise error(
                    f"tf2onnx could not convert {loaded.description}: {type(exc).__name__}: {shorten(exc, 240)}"
                ) from None
            _check_converted(exported.model, loaded.description)
            declare_input_dims(exported.model, job.specs)
            name_output_dims(exported.model)
            exported.initializers = canonicalize(exported.model, exported.initializers)  # the same file every run
            extra_files = exported.save(job.path)
        return ExportResult(path=job.path, exporter=f"tf2onnx {tf2onnx.__version__}", extra_files=extra_files)

    def _convert(self, loaded: Loaded, job: ExportJob) -> LightModel:
        def release_model() -> None:
            self.release(loaded)

        if keras.owns(loaded):
            return keras.convert(self.import_module, loaded, job, release_model)
        if saved_model.owns(loaded):
            return saved_model.convert(self.import_module, loaded, job, release_model)
        assert tflite.owns(loaded)
        return tflite.convert(self.import_module, loaded, job)

    def opset_range(self) -> tuple[int, int]:
        return TF2ONNX_OPSETS

    def versions(self) -> dict[str, str]:
        tf = self.import_module("tensorflow")  # imported by now; its wheel may be tensorflow or tensorflow-cpu
        return {"tensorflow": tf.__version__, "keras": md.version("keras"), "tf2onnx": md.version("tf2onnx")}


# -- helpers ------------------------------------------------------------------------------------


def _format_module(loaded: Loaded) -> Any:
    """The module of the model's format: its ROUTES and CONSUMING."""
    if keras.owns(loaded):
        return keras
    return saved_model if saved_model.owns(loaded) else tflite


def _check_converted(model: Any, description: str) -> None:
    """tf2onnx only logs an op it has no handler for and keeps the TensorFlow node: refuse the file."""
    missing = unsupported_ops(model)
    if missing:
        plural = "s" if len(missing) > 1 else ""
        # tf2onnx registers a handler from one opset up: missing at this opset, it is missing below it too.
        raise UnsupportedByRoute(
            f"tf2onnx cannot convert the TensorFlow op{plural} {', '.join(missing)} in {description}",
            "rewrite that part of the model with ops tf2onnx supports "
            "(https://github.com/onnx/tensorflow-onnx/blob/main/support_status.md)",
        )


def _head(path: Path, size: int) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError:
        return b""
