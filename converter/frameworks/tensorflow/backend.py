"""TensorFlow / Keras backend: .keras, legacy .h5, SavedModel directories and .tflite, via tf2onnx.

Keras 3 broke ``tf2onnx.convert.from_keras`` (``KeyError: 'keras_tensor_N'``,
https://github.com/onnx/tensorflow-onnx/issues/2448 and #2329), so a Keras model is traced
through a ``tf.function`` with an explicit input signature. The export routes (``ROUTES``)
are tried in order by the pipeline until one reproduces the model: first the traced graph
with its variables kept out of the TensorFlow graph and written as ONNX initializers
(``tensorflow_graph``: light on memory, inlines nested functions, maps Erfc), then tf2onnx's
own recipes, ``from_function`` and a SavedModel written by ``keras.export.ExportArchive``
converted the way ``python -m tf2onnx.convert --saved-model`` does it.
TensorFlow is imported inside the methods only, never by ``detect``.
"""

from __future__ import annotations

import gc
import importlib.metadata as md
import logging
import os
import re
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from converter.archives import check_archive_bounds
from converter.errors import ConversionError, ConverterError, UserError, shorten
from converter.frameworks.base import Backend, ExportResult, LoadedModel, TensorSpec
from converter.frameworks.tensorflow.canonical import canonicalize
from converter.frameworks.tensorflow.onnx_model import (
    LightModel,
    declare_input_dims,
    name_output_dims,
    rename_values,
    unsupported_ops,
)
from converter.frameworks.tensorflow.startup import native_notices_filtered

if TYPE_CHECKING:
    from converter.request import ConversionRequest

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier, bytes 4..8
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
KERAS_ARCHIVE_MEMBERS = {"config.json", "metadata.json"}
DEFAULT_SIGNATURE = "serving_default"
# tf2onnx tests opsets 14 to 18 ("opset-6 to opset-13 should work but we don't test them") and
# refuses opsets it has no IR version for (tf2onnx.constants.OPSET_TO_IR_VERSION; a test checks
# this stays in step). Kept here because importing tf2onnx imports TensorFlow.
TF2ONNX_OPSETS = (14, 18)
# Loggers that print through Python's last-resort handler when nothing is configured.
QUIET_LOGGERS = {"tensorflow": logging.ERROR, "absl": logging.ERROR, "tf2onnx": logging.CRITICAL}

# Export routes, preferred first (the pipeline validates each until one reproduces the model).
# The "variables kept as initializers" routes convert the traced graph without freezing the
# weights into it (converter/frameworks/tensorflow/graph.py says why); the routes after them
# are tf2onnx's own recipes, kept for graphs those cannot take apart (a variable read inside
# a while loop, a hash table).
KERAS_INITIALIZERS = "tf2onnx, variables kept as initializers"
KERAS_FROM_FUNCTION = "tf2onnx.convert.from_function"
KERAS_SAVED_MODEL = "keras ExportArchive + tf2onnx saved-model"
SAVED_MODEL_INITIALIZERS = "tf2onnx saved-model signature, variables kept as initializers"
SAVED_MODEL = "tf2onnx saved-model"
TFLITE = "tf2onnx.convert.from_tflite"
ROUTES = {
    "keras": (KERAS_INITIALIZERS, KERAS_FROM_FUNCTION, KERAS_SAVED_MODEL),
    "saved-model": (SAVED_MODEL_INITIALIZERS, SAVED_MODEL),
    "tflite": (TFLITE,),
}


class TensorFlowBackend(Backend):
    name = "tensorflow"
    requirements = {"tensorflow": "tensorflow-cpu", "keras": "keras", "tf2onnx": "tf2onnx", "h5py": "h5py"}  # noqa: RUF012
    image_variant = "tensorflow"
    formats_help = "a .keras, .h5 or .tflite file or a SavedModel directory (TensorFlow/Keras)"

    @classmethod
    def detect(cls, path: Path) -> str | None:
        if path.is_dir():
            return "saved-model" if any((path / name).is_file() for name in SAVED_MODEL_FILES) else None
        if not path.is_file():
            return None
        suffix = path.suffix.lower()
        head = _head(path, 8)
        if suffix == ".keras" or _is_keras_archive(path):
            return "keras"
        if suffix in {".h5", ".hdf5"} or head.startswith(HDF5_MAGIC):
            return "keras-h5"
        if suffix == ".tflite" or head[4:8] == TFLITE_IDENTIFIER:
            return "tflite"
        return None

    # -- imports ------------------------------------------------------------------------------
    def _import(self, module: str) -> ModuleType:
        """Import a TensorFlow-stack module without its start-up noise reaching the user."""
        # Read once by the C++ runtime when it loads: hides what TensorFlow logs after absl is
        # initialised. A value the user set (to debug) is kept.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        if "keras" not in sys.modules:
            # Keras 3 can run on JAX or torch; this backend traces TensorFlow graphs.
            os.environ["KERAS_BACKEND"] = "tensorflow"
        # What it logs before (oneDNN, CPU features) ignores that variable: filtered from fd 2.
        loading = "tensorflow" not in sys.modules
        with _quiet(), native_notices_filtered(enabled=loading and _notices_hidden()):
            return self.require(module)

    # -- load ---------------------------------------------------------------------------------
    def load_impl(self, request: ConversionRequest, fmt: str) -> LoadedModel:
        if fmt != "saved-model" and request.signature != DEFAULT_SIGNATURE:
            raise UserError(
                f'--signature "{request.signature}": only SavedModel directories have signatures to choose, '
                f"and {request.model_path.name} is a {fmt} file",
                "remove --signature, or convert the SavedModel directory",
            )
        with _quiet():
            if fmt in {"keras", "keras-h5"}:
                return self._load_keras(request.model_path, fmt, request.allow_unsafe_load)
            if fmt == "saved-model":
                return self._load_saved_model(request.model_path, request.signature)
            return self._load_tflite(request.model_path)

    def _load_keras(self, path: Path, fmt: str, allow_unsafe: bool) -> LoadedModel:
        if fmt == "keras":
            _check_keras_archive(path)
        else:
            self._check_h5(path)
        self._import("tensorflow")
        keras = self._import("keras")
        with _loadable_name(path, ".keras" if fmt == "keras" else ".h5") as loadable:
            try:
                model = keras.saving.load_model(loadable, compile=False, safe_mode=not allow_unsafe)
            except Exception as exc:  # Keras raises ValueError, TypeError, OSError... for bad files
                raise _keras_load_error(path, exc, keras.__version__) from None
        if keras.backend.backend() != "tensorflow":
            raise ConversionError(f"Keras runs on {keras.backend.backend()} here, not TensorFlow")
        inputs, input_names = _keras_io(model, "input", keras)
        _, output_names = _keras_io(model, "output", keras)
        specs = [
            TensorSpec(name=name, shape=tuple(t.shape), dtype=str(t.dtype), high=_vocabulary_size(t, keras))
            for name, t in zip(input_names, inputs, strict=True)
        ]
        return LoadedModel(
            model=model,
            format=fmt,
            description=f"Keras {type(model).__name__} {model.name!r} ({model.count_params():,} parameters)",
            output_names=tuple(output_names),
            extra={"kind": "keras", "specs": specs, "input_structure": _structure(model, "input", inputs)},
        )

    def _check_h5(self, path: Path) -> None:
        h5py = self._import("h5py")
        try:
            with h5py.File(path, "r") as handle:
                has_model = "model_config" in handle.attrs
        except OSError as exc:
            raise UserError(
                f"{path.name} is not a readable HDF5 file ({shorten(exc, 120)})",
                'save the model again with model.save("model.keras")',
            ) from None
        if not has_model:
            raise UserError(
                f"{path.name} holds weights only (no model_config), so there is no model to convert",
                'build the model in Python, load these weights into it and save it whole with model.save("model.keras")',
            )

    def _load_saved_model(self, path: Path, signature: str) -> LoadedModel:
        tf = self._import("tensorflow")
        try:
            module = tf.saved_model.load(str(path))
        except Exception as exc:  # a damaged protobuf or missing variables raise many types
            raise UserError(
                f"{path.name} is not a readable SavedModel ({shorten(exc, 160)})",
                "save it again with model.export(path) or tf.saved_model.save",
            ) from None
        available = sorted(name for name in module.signatures if not name.startswith("_"))
        if signature not in module.signatures:
            if not available:
                raise UserError(
                    f"the SavedModel {path.name} has no signatures",
                    "save it with model.export(path), or tf.saved_model.save(module, path, signatures=...)",
                )
            raise UserError(
                f'--signature "{signature}": the SavedModel {path.name} has no such signature; '
                f"its signatures are {', '.join(available)}",
                "pass one of them with --signature",
            )
        function = module.signatures[signature]
        _, kwargs = function.structured_input_signature
        # tf2onnx names the ONNX inputs after the TensorSpec names and the outputs after the
        # signature's output keys (tf2onnx tf_loader._from_saved_model_v2).
        specs, arguments = [], {}
        for key, spec in sorted(kwargs.items()):
            name = spec.name or key
            arguments[name] = key
            shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
            specs.append(TensorSpec(name=name, shape=shape, dtype=_dtype_name(spec.dtype)))
        output_names = tuple(sorted(function.structured_outputs))
        return LoadedModel(
            model=function,
            format="saved-model",
            description=f"SavedModel signature {signature} ({len(specs)} inputs, {len(output_names)} outputs)",
            output_names=output_names,
            extra={
                "kind": "saved-model",
                "path": path,
                "module": module,
                "signature": signature,
                "specs": specs,
                "arguments": arguments,
            },
        )

    def _load_tflite(self, path: Path) -> LoadedModel:
        tf = self._import("tensorflow")
        schema = self._import("tensorflow.lite.python.schema_py_generated")
        try:
            # The interpreter does not verify the flatbuffer: a truncated file crashes the
            # process (SIGSEGV). Unpacking it in Python first turns that into an exception.
            schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
            # No default delegate: the reference runs TFLite's own kernels, and XNNPACK
            # would print "Created TensorFlow Lite XNNPACK delegate" to stderr.
            interpreter = tf.lite.Interpreter(
                model_path=str(path),
                experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
            interpreter.allocate_tensors()
        except Exception as exc:  # the flatbuffer reader raises ValueError or RuntimeError
            raise UserError(
                f"{path.name} is not a readable TFLite model ({shorten(exc, 160)})",
                "convert the model again with tf.lite.TFLiteConverter",
            ) from None
        names = _tflite_signature_names(interpreter)
        specs, allocated = [], {}
        for detail in interpreter.get_input_details():
            dims = detail["shape_signature"] if len(detail["shape_signature"]) else detail["shape"]
            shape = tuple(None if d < 0 else int(d) for d in dims)
            name = names.get(detail["name"], detail["name"])
            specs.append(TensorSpec(name=name, shape=shape, dtype=_dtype_name(detail["dtype"])))
            allocated[name] = tuple(int(d) for d in detail["shape"])
        outputs = [(names.get(d["name"], d["name"]), d["index"]) for d in interpreter.get_output_details()]
        inputs = {names.get(d["name"], d["name"]): d["index"] for d in interpreter.get_input_details()}
        signatures = interpreter.get_signature_list()
        return LoadedModel(
            model=interpreter,
            format="tflite",
            description="TFLite model" + (f", signature {next(iter(signatures))}" if len(signatures) == 1 else ""),
            output_names=tuple(name for name, _ in outputs),
            extra={
                "kind": "tflite",
                "path": path,
                "specs": specs,
                "inputs": inputs,
                "outputs": outputs,
                "renames": names,
                "shapes": {},
                "allocated": allocated,  # the shapes the interpreter was built with
            },
        )

    # -- inputs -------------------------------------------------------------------------------
    def input_specs_impl(self, loaded: LoadedModel, request: ConversionRequest) -> list[TensorSpec]:
        specs = list(loaded.extra["specs"])
        if loaded.format == "tflite" and not request.dynamic_batch:
            # A resizable batch (shape_signature -1) runs at the size the interpreter was built
            # with (shape, 1 as TFLiteConverter writes it): without a dynamic batch, that is the
            # model's own interface, not the validation batch.
            allocated = loaded.extra["allocated"]
            specs = [
                replace(s, shape=(allocated[s.name][0], *s.shape[1:])) if s.shape and s.shape[0] is None else s
                for s in specs
            ]
        return specs

    # -- reference run ------------------------------------------------------------------------
    def run_impl(self, loaded: LoadedModel, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        with _quiet():
            kind = loaded.extra["kind"]
            if kind == "keras":
                keras = self._import("keras")
                names = [s.name for s in loaded.extra["specs"]]
                values = keras.tree.pack_sequence_as(loaded.extra["input_structure"], [inputs[n] for n in names])
                flat = keras.tree.flatten(self._graph_call(loaded)(values))
                return {name: np.asarray(value) for name, value in zip(loaded.output_names, flat, strict=True)}
            if kind == "saved-model":
                tf = self._import("tensorflow")
                arguments = loaded.extra["arguments"]
                outputs = loaded.model(**{arguments[n]: tf.constant(a) for n, a in inputs.items()})
                return {name: value.numpy() for name, value in outputs.items()}
            return _run_tflite(loaded, inputs)

    def _graph_call(self, loaded: LoadedModel) -> Any:
        """The Keras model's inference as one tf.function, traced at the first call.

        Called eagerly, a functional model keeps every intermediate output until the call
        returns: NASNetLarge at 331x331 passed 16 GB for a batch of 16 (NASNetMobile at 224x224:
        +2.2 GB eagerly, +35 MB as a graph, whose executor frees each tensor after its last use).
        reduce_retracing: the second batch size gives one trace with a free batch axis.
        """
        call = loaded.extra.get("graph_call")
        if call is None:
            tf = self._import("tensorflow")
            model = loaded.model
            call = tf.function(lambda values: model(values, training=False), reduce_retracing=True)
            loaded.extra["graph_call"] = call
        return call

    # -- release ------------------------------------------------------------------------------
    def release_impl(self, loaded: LoadedModel) -> bool:
        """Drop the Keras model or SavedModel, so that its weights are gone before onnxruntime
        loads the file's (ConvNeXtLarge: 790 MB). A TFLite interpreter is kept: it is small."""
        if loaded.extra["kind"] == "tflite":
            return False
        loaded.model = None
        for key in ("input_structure", "module", "graph_call"):  # these refer to the layers
            loaded.extra.pop(key, None)
        gc.collect()  # a Keras model's layers and tracked functions refer to each other
        return True

    # -- export -------------------------------------------------------------------------------
    def export_routes(self, loaded: LoadedModel) -> list[str]:
        return list(ROUTES[loaded.extra["kind"]])

    def export_impl(
        self, loaded: LoadedModel, specs: list[TensorSpec], opset: int, path: Path, dynamic_batch: bool
    ) -> ExportResult:
        route = self.export_routes(loaded)[0]
        return self.export_route_impl(loaded, specs, opset, path, dynamic_batch, route)

    def export_route_impl(
        self, loaded: LoadedModel, specs: list[TensorSpec], opset: int, path: Path, dynamic_batch: bool, route: str
    ) -> ExportResult:
        with _quiet():
            tf2onnx = self._import("tf2onnx")
            exporters: dict[str, Callable[[], LightModel]] = {
                KERAS_INITIALIZERS: lambda: self.export_keras_initializers(loaded, specs, opset),
                KERAS_FROM_FUNCTION: lambda: self.export_keras_from_function(loaded, specs, opset),
                KERAS_SAVED_MODEL: lambda: self.export_keras_saved_model(loaded, specs, opset),
                SAVED_MODEL_INITIALIZERS: lambda: self.export_saved_model_initializers(loaded, opset),
                SAVED_MODEL: lambda: self.export_saved_model(loaded.extra["path"], loaded.extra["signature"], opset),
                TFLITE: lambda: self.export_tflite(loaded, opset),
            }
            try:
                exported = exporters[route]()
            except ConverterError:
                raise
            except Exception as exc:  # tracing, grappler and tf2onnx raise anything; the next route may work
                raise ConversionError(
                    f"tf2onnx could not convert {loaded.description}: {type(exc).__name__}: {shorten(exc, 240)}"
                ) from None
            proto = exported.model
            missing = unsupported_ops(proto)
            if missing:
                plural = "s" if len(missing) > 1 else ""
                raise ConversionError(
                    f"tf2onnx cannot convert the TensorFlow op{plural} {', '.join(missing)} in {loaded.description}",
                    "rewrite that part of the model with ops tf2onnx supports "
                    "(https://github.com/onnx/tensorflow-onnx/blob/main/support_status.md)",
                )
            declare_input_dims(proto, specs)
            name_output_dims(proto)
            exported.initializers = canonicalize(proto, exported.initializers)  # the same file every run
            extra_files = exported.save(path)
        return ExportResult(
            path=path, exporter=f"tf2onnx {tf2onnx.__version__}", export_path=route, extra_files=extra_files
        )

    def _serving_function(self, loaded: LoadedModel, specs: list[TensorSpec]) -> tuple[Any, list[Any]]:
        """The Keras model as a function of named tensors that returns a dict of named outputs."""
        tf = self._import("tensorflow")
        keras = self._import("keras")
        model = loaded.model
        structure = loaded.extra["input_structure"]
        order = [s.name for s in loaded.extra["specs"]]
        given = [s.name for s in specs]
        signature = [
            tf.TensorSpec([d if isinstance(d, int) else None for d in s.shape or ()], tf.as_dtype(s.dtype), name=s.name)
            for s in specs
        ]

        def serve(*args: Any) -> dict[str, Any]:
            by_name = dict(zip(given, args, strict=True))
            values = keras.tree.pack_sequence_as(structure, [by_name[n] for n in order])
            flat = keras.tree.flatten(model(values, training=False))
            # A dict result makes tf2onnx name the ONNX outputs after its keys.
            return dict(zip(loaded.output_names, flat, strict=True))

        return serve, signature

    def export_keras_initializers(self, loaded: LoadedModel, specs: list[TensorSpec], opset: int) -> LightModel:
        """Preferred route: trace ``model(x, training=False)``; variables become ONNX initializers."""
        tf = self._import("tensorflow")
        graphs = self._import("converter.frameworks.tensorflow.graph")
        serve, signature = self._serving_function(loaded, specs)
        function = tf.function(serve, input_signature=signature).get_concrete_function(*signature)
        prepared = graphs.prepare_function(function)
        del function, serve
        # Traced, and ``prepared`` holds the variables: the model can go now rather than after
        # the export (the pipeline releases it then), so that ``to_onnx`` frees each variable
        # as its value enters tf2onnx's graph and the weights are never held twice.
        name = loaded.model.name
        self.release(loaded)
        return graphs.convert_prepared(prepared, opset, name)

    def export_keras_from_function(self, loaded: LoadedModel, specs: list[TensorSpec], opset: int) -> LightModel:
        """``tf2onnx.convert.from_function``: variables frozen into the TensorFlow graph first."""
        tf = self._import("tensorflow")
        graphs = self._import("converter.frameworks.tensorflow.graph")
        serve, signature = self._serving_function(loaded, specs)
        function = tf.function(serve, input_signature=signature).get_concrete_function(*signature)
        return graphs.convert_frozen(*graphs.freeze_function(function), opset=opset, name=loaded.model.name)

    def export_keras_saved_model(self, loaded: LoadedModel, specs: list[TensorSpec], opset: int) -> LightModel:
        """A SavedModel written by Keras itself, converted like ``tf2onnx --saved-model``."""
        keras = self._import("keras")
        serve, signature = self._serving_function(loaded, specs)
        with tempfile.TemporaryDirectory(prefix="onnx-convert-keras-") as directory:
            archive = keras.export.ExportArchive()
            archive.track(loaded.model)
            archive.add_endpoint(DEFAULT_SIGNATURE, serve, input_signature=signature)
            archive.write_out(directory, verbose=False)
            return self.export_saved_model(Path(directory), DEFAULT_SIGNATURE, opset)

    def export_saved_model_initializers(self, loaded: LoadedModel, opset: int) -> LightModel:
        """Preferred SavedModel route: the signature's graph; variables become ONNX initializers."""
        graphs = self._import("converter.frameworks.tensorflow.graph")
        prepared = graphs.prepare_function(loaded.model)
        self.release(loaded)  # as in export_keras_initializers
        return graphs.convert_prepared(prepared, opset, loaded.extra["path"].name)

    def export_saved_model(self, directory: Path, signature: str, opset: int) -> LightModel:
        """What ``python -m tf2onnx.convert --saved-model DIR --signature_def SIG`` does, in process."""
        tf_loader = self._import("tf2onnx.tf_loader")
        graphs = self._import("converter.frameworks.tensorflow.graph")
        graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
            str(directory),
            None,
            None,
            tag=["serve"],
            signatures=[signature],
            return_initialized_tables=True,
            return_tensors_to_rename=True,
        )
        return graphs.convert_frozen(
            graph_def, inputs, outputs, renames, opset=opset, name=directory.name, tables=tables
        )

    def export_tflite(self, loaded: LoadedModel, opset: int) -> LightModel:
        convert = self._import("tf2onnx.convert")
        # tf2onnx opens the file in a default TFLite interpreter to read tensor shapes, and
        # TFLite's C++ logger prints "Created TensorFlow Lite XNNPACK delegate" whatever
        # TF_CPP_MIN_LOG_LEVEL says; anything else it prints still reaches the user.
        with native_notices_filtered(enabled=_notices_hidden()):
            proto, _ = convert.from_tflite(str(loaded.extra["path"]), opset=opset)
        # from_tflite names inputs and outputs after tensors (serving_default_x:0); use the signature's names.
        rename_values(proto, loaded.extra["renames"])
        return LightModel(proto)

    def opset_range(self) -> tuple[int, int]:
        return TF2ONNX_OPSETS

    def versions(self) -> dict[str, str]:
        tf = self._import("tensorflow")  # imported by now; its wheel may be tensorflow or tensorflow-cpu
        return {"tensorflow": tf.__version__, "keras": md.version("keras"), "tf2onnx": md.version("tf2onnx")}


# -- helpers ------------------------------------------------------------------------------------


@contextmanager
def _quiet() -> Iterator[None]:
    """Keep Python-side warnings and log records of TF, Keras and tf2onnx out of the user's log."""
    saved = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _notices_hidden() -> bool:
    """TensorFlow's native notices are filtered unless the user asked for them (TF_CPP_MIN_LOG_LEVEL 0 or 1)."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") in {"2", "3"}


def _head(path: Path, size: int) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


def _is_keras_archive(path: Path) -> bool:
    """A Keras 3 archive is a zip with config.json and metadata.json at its root."""
    try:
        with zipfile.ZipFile(path) as archive:
            return set(archive.namelist()) >= KERAS_ARCHIVE_MEMBERS
    except (zipfile.BadZipFile, OSError):
        return False


def _check_keras_archive(path: Path) -> None:
    """Keras reports a damaged archive as "File not found"; say what is wrong instead.

    Bounded first: ``testzip`` inflates every member, and so does Keras (a 1.5 MB archive
    inflating to 1.5 GB converted at a 3.7 GB peak).
    """
    check_archive_bounds(path, path.name)
    if not zipfile.is_zipfile(path):
        problem = "is not a zip archive"
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                missing = sorted(KERAS_ARCHIVE_MEMBERS - set(archive.namelist()))
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError) as exc:
            missing, damaged = [], str(exc)
        if not missing and damaged is None:
            return
        problem = f"lacks {', '.join(missing)}" if missing else f"has a damaged member ({damaged})"
    raise UserError(
        f"{path.name} is not a readable Keras archive (it {problem})",
        'save the model again with model.save("model.keras")',
    )


@contextmanager
def _loadable_name(path: Path, suffix: str) -> Iterator[str]:
    """Keras picks its loader by file name; give a file detected by content the suffix it needs."""
    if path.suffix.lower() == suffix or (suffix == ".h5" and path.suffix.lower() == ".hdf5"):
        yield str(path)
        return
    with tempfile.TemporaryDirectory(prefix="onnx-convert-") as directory:
        link = Path(directory) / f"model{suffix}"
        link.symlink_to(path.resolve())
        yield str(link)


_CUSTOM_OBJECT = re.compile(
    r"Could not locate (?:class|function) '([^']+)'"
    r"|Unknown [a-z ]+: '([^']+)'"
    r"|Could not deserialize (?:class|function) '([^']+)'"
)


def _keras_load_error(path: Path, exc: Exception, keras_version: str) -> UserError:
    text = str(exc)
    if "Lambda" in text and "safe_mode" in text:
        return UserError(
            f"{path.name} contains a Lambda layer, whose Python code would run while the model loads",
            "pass --allow-unsafe-load true if you trust the file, or replace the Lambda with a built-in or registered layer",
        )
    found = _CUSTOM_OBJECT.search(text)
    if found:
        name = next(g for g in found.groups() if g)
        return UserError(
            f"{path.name} uses the custom Keras object {name}, whose Python code is not in the file",
            'export the model where that code is importable with model.export("saved_model_dir") '
            "and convert the SavedModel directory",
        )
    return UserError(
        f"{path.name} could not be loaded by Keras {keras_version} ({type(exc).__name__}: {shorten(text, 160)})",
        'save the model again with model.save("model.keras")',
    )


def _keras_io(model: Any, which: str, keras: ModuleType) -> tuple[list[Any], list[str]]:
    """The model's input or output tensors in call order, and their names.

    Names are the keys of a dict-structured model, else the names of the layers that
    hold the tensors (keras.Input(name=...), the output layer's name).
    """
    try:
        tensors = list(getattr(model, f"{which}s"))
    except (AttributeError, ValueError):
        tensors = []
    if not tensors:
        raise UserError(
            f"the Keras model {model.name} has no defined {which}s (it was saved before it was built)",
            "build it with keras.Input(shape=...) as its first layer, save it again and convert that file",
        )
    structure = _structure(model, which, tensors)
    paths = keras.tree.flatten_with_path(structure)
    names = []
    for path, tensor in paths:
        key = path[-1] if path else None
        names.append(str(key) if isinstance(key, str) else tensor._keras_history.operation.name)
    return [t for _, t in paths], _unique(names)


def _structure(model: Any, which: str, tensors: list[Any]) -> Any:
    """How the model takes inputs or returns outputs: one tensor, a list, or a dict."""
    try:
        return getattr(model, which)  # a Sequential that was never called has none
    except (AttributeError, ValueError):
        return tensors[0] if len(tensors) == 1 else tensors


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name] - 1}")
    return unique


def _vocabulary_size(tensor: Any, keras: ModuleType) -> int | None:
    """For an integer input that only feeds Embedding layers: generate ids below their input_dim."""
    if "int" not in str(tensor.dtype):
        return None
    try:
        consumers = [node.operation for node in tensor._keras_history.operation._outbound_nodes]
    except AttributeError:
        return None
    sizes = [layer.input_dim for layer in consumers if isinstance(layer, keras.layers.Embedding)]
    return min(sizes) if consumers and len(sizes) == len(consumers) else None


def _dtype_name(dtype: Any) -> str:
    """numpy-style name of a TensorFlow or numpy dtype; "string" for tf.string."""
    numpy_dtype = np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
    return "string" if numpy_dtype.kind in "OSU" else numpy_dtype.name


def _tflite_signature_names(interpreter: Any) -> dict[str, str]:
    """Tensor name -> signature key, for a model with exactly one signature (tf2onnx converts subgraph 0)."""
    signatures = interpreter.get_signature_list()
    if len(signatures) != 1:
        return {}
    runner = interpreter.get_signature_runner(next(iter(signatures)))
    names = {}
    for details in (runner.get_input_details(), runner.get_output_details()):
        names.update({detail["name"]: key for key, detail in details.items()})
    return names


def _run_tflite(loaded: LoadedModel, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    interpreter = loaded.model
    shapes: dict[str, tuple[int, ...]] = loaded.extra["shapes"]
    indices: dict[str, int] = loaded.extra["inputs"]
    if any(shapes.get(name) != array.shape for name, array in inputs.items()):
        for name, array in inputs.items():
            interpreter.resize_tensor_input(indices[name], array.shape, strict=False)
        interpreter.allocate_tensors()
        shapes.update({name: array.shape for name, array in inputs.items()})
    for name, array in inputs.items():
        interpreter.set_tensor(indices[name], array)
    interpreter.invoke()
    return {name: np.array(interpreter.get_tensor(index)) for name, index in loaded.extra["outputs"]}
