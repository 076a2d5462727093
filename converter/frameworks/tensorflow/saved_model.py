"""SavedModel directories: one signature loaded and run, and two export routes.

Routes, preferred first: the signature's graph with its variables kept as ONNX initializers
(graph.py), and what ``python -m tf2onnx.convert --saved-model DIR --signature_def SIG`` does,
for graphs the first cannot take apart (a variable read inside a while loop, a hash table).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from converter.errors import UserError, shorten
from converter.frameworks.base import ExportJob, LoadedModel, TensorSpec
from converter.frameworks.tensorflow.common import Importer
from converter.frameworks.tensorflow.onnx_model import LightModel
from converter.tensors import dtype_name

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
INITIALIZERS = "tf2onnx saved-model signature, variables kept as initializers"
TF2ONNX = "tf2onnx saved-model"
ROUTES = (INITIALIZERS, TF2ONNX)
CONSUMING = (INITIALIZERS,)  # frees the SavedModel once its graph is prepared, as the Keras route


@dataclass
class SavedModelState:
    path: Path  # the directory
    signature: str
    specs: list[TensorSpec]
    arguments: dict[str, str]  # input name -> the signature's keyword for it
    module: Any  # what tf.saved_model.load returned: it keeps the signature's variables alive


SavedModel = LoadedModel[SavedModelState]


def owns(loaded: LoadedModel[Any]) -> TypeGuard[SavedModel]:
    """True when ``loaded`` was loaded by this module."""
    return isinstance(loaded.state, SavedModelState)


def is_saved_model(path: Path) -> bool:
    return any((path / name).is_file() for name in SAVED_MODEL_FILES)


def load(importer: Importer, path: Path, signature: str) -> LoadedModel[Any]:
    tf = importer("tensorflow")
    try:
        module = tf.saved_model.load(str(path))
    except Exception as exc:  # a damaged protobuf or missing variables raise many types
        raise UserError(
            f"{path.name} is not a readable SavedModel ({shorten(exc, 160)})",
            "save it again with model.export(path) or tf.saved_model.save",
        ) from None
    function = _signature(module, path, signature)
    _, kwargs = function.structured_input_signature
    # tf2onnx names the ONNX inputs after the TensorSpec names and the outputs after the
    # signature's output keys (tf2onnx tf_loader._from_saved_model_v2).
    specs, arguments = [], {}
    for key, spec in sorted(kwargs.items()):
        name = spec.name or key
        arguments[name] = key
        shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
        specs.append(TensorSpec(name=name, shape=shape, dtype=dtype_name(spec.dtype)))
    _bound_by_tables(importer, function, specs)
    output_names = tuple(sorted(function.structured_outputs))
    return LoadedModel(
        model=function,
        format="saved-model",
        description=f"SavedModel signature {signature} ({len(specs)} inputs, {len(output_names)} outputs)",
        state=SavedModelState(path, signature, specs, arguments, module),
        output_names=output_names,
    )


def _bound_by_tables(importer: Importer, function: Any, specs: list[TensorSpec]) -> None:
    """Each integer input below the table it indexes in the signature's graph (tables.py)."""
    if not any(np.issubdtype(np.dtype(s.dtype), np.integer) for s in specs if s.dtype != "string"):
        return
    tables = importer("converter.frameworks.tensorflow.tables")
    # The signature's placeholders come first, in the order of its sorted keyword arguments (as specs).
    placeholders = {tensor.op.name: spec.name for tensor, spec in zip(function.inputs, specs, strict=False)}
    found = tables.signature_tables(function, placeholders)
    for spec in specs:
        rows = found.get(spec.name)
        if rows is not None:
            spec.high, spec.bound = rows, f"the {rows:,}-row table it indexes (graph)"


def _signature(module: Any, path: Path, signature: str) -> Any:
    available = sorted(name for name in module.signatures if not name.startswith("_"))
    if signature in module.signatures:
        return module.signatures[signature]
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


def run(importer: Importer, loaded: SavedModel, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    tf = importer("tensorflow")
    arguments = loaded.state.arguments
    outputs = loaded.model(**{arguments[n]: tf.constant(a) for n, a in inputs.items()})
    return {name: value.numpy() for name, value in outputs.items()}


def release(loaded: SavedModel) -> None:
    loaded.state.module = None


def convert(importer: Importer, loaded: SavedModel, job: ExportJob, release_model: Callable[[], None]) -> LightModel:
    """The ONNX model by ``job.route``; ``release_model`` frees the SavedModel (the initializers route does)."""
    if job.route.name == INITIALIZERS:
        graphs = importer("converter.frameworks.tensorflow.graph")
        prepared = graphs.prepare_function(loaded.model)
        release_model()  # as the Keras initializers route: the variables are in ``prepared`` now
        return graphs.convert_prepared(prepared, job.opset, loaded.state.path.name)
    return convert_directory(importer, loaded.state.path, loaded.state.signature, job.opset)


def convert_directory(importer: Importer, directory: Path, signature: str, opset: int) -> LightModel:
    """What ``python -m tf2onnx.convert --saved-model DIR --signature_def SIG`` does, in process."""
    tf_loader = importer("tf2onnx.tf_loader")
    graphs = importer("converter.frameworks.tensorflow.graph")
    graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
        str(directory),
        None,
        None,
        tag=["serve"],
        signatures=[signature],
        return_initialized_tables=True,
        return_tensors_to_rename=True,
    )
    graph = graphs.GraphToConvert(graph_def, inputs, outputs, directory.name, renames=renames, tables=tables)
    return graphs.convert_frozen(graph, opset)
