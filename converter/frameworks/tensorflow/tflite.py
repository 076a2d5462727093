"""TFLite flatbuffers: the interpreter as reference, one export route (``tf2onnx.convert.from_tflite``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from converter.errors import UserError, shorten
from converter.frameworks.base import ExportJob, LoadedModel, TensorSpec
from converter.frameworks.tensorflow.common import Importer, notices_hidden
from converter.frameworks.tensorflow.onnx_model import LightModel, rename_values
from converter.frameworks.tensorflow.startup import native_notices_filtered
from converter.tensors import dtype_name

TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier, bytes 4..8
FROM_TFLITE = "tf2onnx.convert.from_tflite"
ROUTES = (FROM_TFLITE,)
CONSUMING: tuple[str, ...] = ()  # the interpreter is small: kept


@dataclass
class TfliteState:
    path: Path
    specs: list[TensorSpec]
    inputs: dict[str, int]  # input name -> interpreter tensor index
    outputs: list[tuple[str, int]]  # (output name, interpreter tensor index), in order
    renames: dict[str, str]  # tensor name -> signature key, the names the ONNX file gets
    allocated: dict[str, tuple[int, ...]]  # the input shapes the interpreter was built with
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # the shapes it is resized to now


Tflite = LoadedModel[TfliteState]


def owns(loaded: LoadedModel[Any]) -> TypeGuard[Tflite]:
    """True when ``loaded`` was loaded by this module."""
    return isinstance(loaded.state, TfliteState)


def load(importer: Importer, path: Path) -> LoadedModel[Any]:
    interpreter = _interpreter(importer, path)
    names = _signature_names(interpreter)
    specs, allocated = [], {}
    for detail in interpreter.get_input_details():
        dims = detail["shape_signature"] if len(detail["shape_signature"]) else detail["shape"]
        shape = tuple(None if d < 0 else int(d) for d in dims)
        name = names.get(detail["name"], detail["name"])
        specs.append(TensorSpec(name=name, shape=shape, dtype=dtype_name(detail["dtype"])))
        allocated[name] = tuple(int(d) for d in detail["shape"])
    outputs = [(names.get(d["name"], d["name"]), d["index"]) for d in interpreter.get_output_details()]
    inputs = {names.get(d["name"], d["name"]): d["index"] for d in interpreter.get_input_details()}
    signatures = interpreter.get_signature_list()
    return LoadedModel(
        model=interpreter,
        format="tflite",
        description="TFLite model" + (f", signature {next(iter(signatures))}" if len(signatures) == 1 else ""),
        state=TfliteState(path, specs, inputs, outputs, names, allocated),
        output_names=tuple(name for name, _ in outputs),
    )


def _interpreter(importer: Importer, path: Path) -> Any:
    tf = importer("tensorflow")
    schema = importer("tensorflow.lite.python.schema_py_generated")
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
    return interpreter


def _signature_names(interpreter: Any) -> dict[str, str]:
    """Tensor name -> signature key, for a model with exactly one signature (tf2onnx converts subgraph 0)."""
    signatures = interpreter.get_signature_list()
    if len(signatures) != 1:
        return {}
    runner = interpreter.get_signature_runner(next(iter(signatures)))
    names = {}
    for details in (runner.get_input_details(), runner.get_output_details()):
        names.update({detail["name"]: key for key, detail in details.items()})
    return names


def input_specs(loaded: Tflite, dynamic_batch: bool) -> list[TensorSpec]:
    """The inputs; without a dynamic batch, a resizable batch (shape_signature -1) is the size the
    interpreter was built with (1 as TFLiteConverter writes it): the model's own interface, not
    the validation batch."""
    specs = list(loaded.state.specs)
    if dynamic_batch:
        return specs
    allocated = loaded.state.allocated
    return [
        replace(s, shape=(allocated[s.name][0], *s.shape[1:])) if s.shape and s.shape[0] is None else s for s in specs
    ]


def run(loaded: Tflite, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    interpreter = loaded.model
    shapes = loaded.state.shapes
    indices = loaded.state.inputs
    if any(shapes.get(name) != array.shape for name, array in inputs.items()):
        for name, array in inputs.items():
            interpreter.resize_tensor_input(indices[name], array.shape, strict=False)
        interpreter.allocate_tensors()
        shapes.update({name: array.shape for name, array in inputs.items()})
    for name, array in inputs.items():
        interpreter.set_tensor(indices[name], array)
    interpreter.invoke()
    return {name: np.array(interpreter.get_tensor(index)) for name, index in loaded.state.outputs}


def convert(importer: Importer, loaded: Tflite, job: ExportJob) -> LightModel:
    tf2onnx_convert = importer("tf2onnx.convert")
    # tf2onnx opens the file in a default TFLite interpreter to read tensor shapes, and
    # TFLite's C++ logger prints "Created TensorFlow Lite XNNPACK delegate" whatever
    # TF_CPP_MIN_LOG_LEVEL says; anything else it prints still reaches the user.
    with native_notices_filtered(enabled=notices_hidden()):
        proto, _ = tf2onnx_convert.from_tflite(str(loaded.state.path), opset=job.opset)
    # from_tflite names inputs and outputs after tensors (serving_default_x:0); use the signature's names.
    rename_values(proto, loaded.state.renames)
    return LightModel(proto)
