"""Keras models (.keras archives and legacy .h5): loading, the reference run, and three export routes.

Keras 3 broke ``tf2onnx.convert.from_keras`` (``KeyError: 'keras_tensor_N'``,
https://github.com/onnx/tensorflow-onnx/issues/2448 and #2329), so the model is traced through a
``tf.function`` with an explicit input signature. Routes, preferred first: the traced graph with
its variables kept out of the TensorFlow graph and written as ONNX initializers (graph.py says
why: light on memory, inlines nested functions, maps Erfc); ``tf2onnx.convert.from_function``
(variables frozen first); and a SavedModel written by ``keras.export.ExportArchive`` converted the
way ``python -m tf2onnx.convert --saved-model`` does it.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeGuard

import numpy as np

from converter.archives import check_archive_bounds
from converter.errors import ConversionError, UserError, shorten
from converter.frameworks.base import ExportJob, LoadedModel, TensorSpec
from converter.frameworks.tensorflow import saved_model
from converter.frameworks.tensorflow.common import DEFAULT_SIGNATURE, Importer, signature_of
from converter.frameworks.tensorflow.onnx_model import LightModel
from converter.model_code import ModelCode, defined_here, import_file

KERAS_ARCHIVE_MEMBERS = {"config.json", "metadata.json"}
INITIALIZERS = "tf2onnx, variables kept as initializers"
FROM_FUNCTION = "tf2onnx.convert.from_function"
SAVED_MODEL = "keras ExportArchive + tf2onnx saved-model"
ROUTES = (INITIALIZERS, FROM_FUNCTION, SAVED_MODEL)
CONSUMING = (INITIALIZERS,)  # frees the model as soon as it is traced (see export_initializers)


@dataclass
class KerasState:
    specs: list[TensorSpec]  # the inputs, in the order the model takes them
    input_structure: Any  # one tensor, a list or a dict: how the model takes its inputs
    graph_call: Any = None  # the model's inference as one tf.function, made at the first run


KerasModel = LoadedModel[KerasState]


def owns(loaded: LoadedModel[Any]) -> TypeGuard[KerasModel]:
    """True when ``loaded`` was loaded by this module."""
    return isinstance(loaded.state, KerasState)


def is_keras_archive(path: Path) -> bool:
    """A Keras 3 archive is a zip with config.json and metadata.json at its root."""
    try:
        with zipfile.ZipFile(path) as archive:
            return set(archive.namelist()) >= KERAS_ARCHIVE_MEMBERS
    except (zipfile.BadZipFile, OSError):
        return False


# -- load ---------------------------------------------------------------------------------------


def load(importer: Importer, path: Path, fmt: str, allow_unsafe: bool, code: ModelCode) -> LoadedModel[Any]:
    if fmt == "keras":
        _check_keras_archive(path)
    else:
        _check_h5(importer, path)
    importer("tensorflow")
    keras = importer("keras")
    custom_objects = _custom_objects(code)
    with _loadable_name(path, ".keras" if fmt == "keras" else ".h5") as loadable:
        try:
            # safe_mode stays on with --model-code: the file's code runs, a Lambda's pickled code does not.
            model = keras.saving.load_model(
                loadable, custom_objects=custom_objects, compile=False, safe_mode=not allow_unsafe
            )
        except Exception as exc:  # Keras raises ValueError, TypeError, OSError... for bad files
            raise _keras_load_error(path, exc, keras.__version__, code) from None
    if keras.backend.backend() != "tensorflow":
        raise ConversionError(f"Keras runs on {keras.backend.backend()} here, not TensorFlow")
    inputs, input_names = _keras_io(model, "input", keras)
    _, output_names = _keras_io(model, "output", keras)
    specs = []
    for name, tensor in zip(input_names, inputs, strict=True):
        high, bound = _vocabulary_size(tensor, keras)
        specs.append(TensorSpec(name=name, shape=tuple(tensor.shape), dtype=str(tensor.dtype), high=high, bound=bound))
    return LoadedModel(
        model=model,
        format=fmt,
        description=f"Keras {type(model).__name__} {model.name!r} ({model.count_params():,} parameters)",
        state=KerasState(specs, _structure(model, "input", inputs)),
        output_names=tuple(output_names),
    )


def _check_h5(importer: Importer, path: Path) -> None:
    h5py = importer("h5py")
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


def _check_keras_archive(path: Path) -> None:
    """Keras reports a damaged archive as "File not found"; say what is wrong instead.

    Bounded first: ``testzip`` inflates every member, and so does Keras (a 1.5 MB archive
    inflating to 1.5 GB converted at a 3.7 GB peak).
    """
    check_archive_bounds(path, "--model-path")
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
# Keras imports these packages' classes by the module named in the file, when the package is installed.
_MISSING_PACKAGE = re.compile(r"parent module ((keras_hub|keras_nlp|keras_cv)(?:\.[\w.]+)?) cannot be imported")
_DISTRIBUTIONS = {"keras_hub": "keras-hub", "keras_nlp": "keras-nlp", "keras_cv": "keras-cv"}


def _custom_objects(code: ModelCode) -> dict[str, object]:
    """The --model-code file imported: what it registers with keras.saving.register_keras_serializable is
    found by its registered name, and what it defines without registering by its own name."""
    if not code.given:
        return {}
    file_part, name = code.split()
    if name:
        raise code.bad(
            "a Keras model takes the file only (its layers are found by the names they are saved under)",
            f"give --{code.option} {file_part}",
        )
    return defined_here(import_file(code, file_part))


def _keras_load_error(path: Path, exc: Exception, keras_version: str, code: ModelCode) -> UserError:
    text = str(exc)
    if "Lambda" in text and "safe_mode" in text:
        return UserError(
            f"{path.name} contains a Lambda layer, whose Python code would run while the model loads",
            "pass --allow-unsafe-load true if you trust the file, or replace the Lambda with a built-in or registered layer",
        )
    found = _CUSTOM_OBJECT.search(text)
    package = _MISSING_PACKAGE.search(text)
    if found and package:
        name = next(g for g in found.groups() if g)
        distribution = _DISTRIBUTIONS[package.group(2)]
        return UserError(
            f"{path.name} is built from {package.group(2)}'s {name}, and {distribution} is not installed here",
            f"list {distribution} in --requirements (a requirements file installed before the conversion), "
            "or install it beside onnx-convert",
        )
    if found:
        name = next(g for g in found.groups() if g)
        if code.given:
            return UserError(
                f"{path.name} uses the custom Keras object {name}, which --{code.option} {Path(code.text).name} "
                "neither registers nor defines",
                "register it in that file with @keras.saving.register_keras_serializable(), as when the model was saved",
            )
        return UserError(
            f"{path.name} uses the custom Keras object {name}, whose Python code is not in the file",
            "pass --model-code path/to/file.py, the file that defines and registers it (it is imported, so run), "
            'or export the model with model.export("saved_model_dir") and convert the SavedModel directory',
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


def _vocabulary_size(tensor: Any, keras: ModuleType) -> tuple[int | None, str]:
    """For an integer input that feeds Embedding layers: ids below the smallest of their input_dim."""
    if "int" not in str(tensor.dtype):
        return None, ""
    try:
        consumers = [node.operation for node in tensor._keras_history.operation._outbound_nodes]
    except AttributeError:
        return None, ""
    sizes = [layer.input_dim for layer in consumers if isinstance(layer, keras.layers.Embedding)]
    if not sizes:
        return None, ""
    return min(sizes), f"the {min(sizes):,}-row Embedding it feeds (graph)"


# -- reference run and release ----------------------------------------------------------------


def run(importer: Importer, loaded: KerasModel, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    keras = importer("keras")
    names = [s.name for s in loaded.state.specs]
    values = keras.tree.pack_sequence_as(loaded.state.input_structure, [inputs[n] for n in names])
    flat = keras.tree.flatten(_graph_call(importer, loaded)(values))
    return {name: np.asarray(value) for name, value in zip(loaded.output_names, flat, strict=True)}


def _graph_call(importer: Importer, loaded: KerasModel) -> Any:
    """The Keras model's inference as one tf.function, traced at the first call.

    Called eagerly, a functional model keeps every intermediate output until the call
    returns: NASNetLarge at 331x331 passed 16 GB for a batch of 16 (NASNetMobile at 224x224:
    +2.2 GB eagerly, +35 MB as a graph, whose executor frees each tensor after its last use).
    reduce_retracing: the second batch size gives one trace with a free batch axis.
    """
    if loaded.state.graph_call is None:
        tf = importer("tensorflow")
        model = loaded.model
        loaded.state.graph_call = tf.function(lambda values: model(values, training=False), reduce_retracing=True)
    return loaded.state.graph_call


def release(loaded: KerasModel) -> None:
    """Drop what refers to the layers; the backend drops the model and collects the cycles."""
    loaded.state.input_structure = None
    loaded.state.graph_call = None


# -- export routes ---------------------------------------------------------------------------------


def convert(importer: Importer, loaded: KerasModel, job: ExportJob, release_model: Callable[[], None]) -> LightModel:
    """The ONNX model by ``job.route``; ``release_model`` frees the model (the initializers route does)."""
    if job.route.name == INITIALIZERS:
        return export_initializers(importer, loaded, job, release_model)
    if job.route.name == FROM_FUNCTION:
        return export_from_function(importer, loaded, job.specs, job.opset)
    return export_saved_model_archive(importer, loaded, job.specs, job.opset)


def _serving_function(importer: Importer, loaded: KerasModel, specs: list[TensorSpec]) -> tuple[Any, list[Any]]:
    """The Keras model as a function of named tensors that returns a dict of named outputs."""
    keras = importer("keras")
    model = loaded.model
    structure = loaded.state.input_structure
    order = [s.name for s in loaded.state.specs]
    given = [s.name for s in specs]

    def serve(*args: Any) -> dict[str, Any]:
        by_name = dict(zip(given, args, strict=True))
        values = keras.tree.pack_sequence_as(structure, [by_name[n] for n in order])
        flat = keras.tree.flatten(model(values, training=False))
        # A dict result makes tf2onnx name the ONNX outputs after its keys.
        return dict(zip(loaded.output_names, flat, strict=True))

    return serve, signature_of(importer("tensorflow"), specs)


def export_initializers(
    importer: Importer, loaded: KerasModel, job: ExportJob, release_model: Callable[[], None]
) -> LightModel:
    """Preferred route: trace ``model(x, training=False)``; variables become ONNX initializers."""
    tf = importer("tensorflow")
    graphs = importer("converter.frameworks.tensorflow.graph")
    serve, signature = _serving_function(importer, loaded, job.specs)
    function = tf.function(serve, input_signature=signature).get_concrete_function(*signature)
    prepared = graphs.prepare_function(function)
    del function, serve
    # Traced, and ``prepared`` holds the variables: the model can go now rather than after
    # the export (the pipeline releases it then), so that ``to_onnx`` frees each variable
    # as its value enters tf2onnx's graph and the weights are never held twice.
    name = loaded.model.name
    release_model()
    return graphs.convert_prepared(prepared, job.opset, name)


def export_from_function(importer: Importer, loaded: KerasModel, specs: list[TensorSpec], opset: int) -> LightModel:
    """``tf2onnx.convert.from_function``: variables frozen into the TensorFlow graph first."""
    tf = importer("tensorflow")
    graphs = importer("converter.frameworks.tensorflow.graph")
    serve, signature = _serving_function(importer, loaded, specs)
    function = tf.function(serve, input_signature=signature).get_concrete_function(*signature)
    return graphs.convert_frozen(graphs.freeze_function(function, loaded.model.name), opset)


def export_saved_model_archive(
    importer: Importer, loaded: KerasModel, specs: list[TensorSpec], opset: int
) -> LightModel:
    """A SavedModel written by Keras itself, converted like ``tf2onnx --saved-model``."""
    keras = importer("keras")
    serve, signature = _serving_function(importer, loaded, specs)
    with tempfile.TemporaryDirectory(prefix="onnx-convert-keras-") as directory:
        archive = keras.export.ExportArchive()
        archive.track(loaded.model)
        archive.add_endpoint(DEFAULT_SIGNATURE, serve, input_signature=signature)
        archive.write_out(directory, verbose=False)
        return saved_model.convert_directory(importer, Path(directory), DEFAULT_SIGNATURE, opset)
