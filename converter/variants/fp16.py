"""fp16: float16 weights and compute, float32 inputs and outputs, risky nodes kept in float32.

Made by onnxruntime's float16 converter (``onnxruntime.transformers.float16``), which ships
inside onnxruntime: no package to add, in every image. It is the same algorithm as
onnxconverter-common's (onnxruntime's copy is the maintained one) and has the same lists of
ops that stay float32 (tree ensembles, TopK, Range, Resize's scales, ...).

Two things are added here:

- values: float16 overflows above 65504. The fp32 file is run on the validation inputs with
  every intermediate tensor as an output, one row at a time (memory stays one row's
  activations), and every node that reads or writes a value beyond ``FLOAT16_LIMIT`` stays
  float32, as does every node that reads a weight beyond it (the converter would clip it);
- repairs: the converter surrounds each float32 node with its own Casts, so between two float32
  nodes a value makes a float32 -> float16 -> float32 round trip and overflows all the same
  (onnxruntime#20346): those Cast pairs are removed (only those: a Cast chain of the original
  model, such as float -> int -> float, is left alone). It declares a weight it kept in float32
  as float16 in ``value_info``, which the checker refuses: declarations of weights are dropped.
  With ``keep_io_types`` it appends the input Casts after the nodes that read them, so the
  checker refuses the order too (onnxconverter-common#208, #240): the graph is sorted again.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from converter.errors import describe
from converter.variants.make import (
    CannotMake,
    MakeInputs,
    count_text,
    name_unnamed_nodes,
    quiet_tools,
    strip_debug_info,
)

if TYPE_CHECKING:
    import onnx
    import onnxruntime as ort

# float16's largest value is 65504; a margin of 6.5x for inputs larger than the validation rows.
FLOAT16_LIMIT = 1e4
PROBE_ROWS = 16  # rows of the validation batch the ranges are measured on


def make_fp16(source: Path, target: Path, data: MakeInputs) -> str:
    import onnx
    import onnxruntime as ort
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = onnx.load(str(source))
    strip_debug_info(model.graph)
    name_unnamed_nodes(model)
    blocked_ops = set(DEFAULT_OP_BLOCK_LIST)
    large = _nodes_with_large_values(model, data.inputs)
    if not _convertible_weights(model, blocked_ops, set(large)):
        kept = count_text(Counter(n.op_type for n in model.graph.node if n.op_type in blocked_ops))
        raise CannotMake(
            "no float32 weight to convert: the model's weights are held by ops that stay float32"
            + (f" ({kept})" if kept else "")
        )
    try:
        with quiet_tools():
            converted = convert_float_to_float16(
                model, keep_io_types=True, op_block_list=sorted(blocked_ops), node_block_list=list(large)
            )
    except Exception as exc:  # the converter's own failure on this graph
        raise CannotMake(f"onnxruntime's float16 converter failed: {describe(exc)}") from None
    _drop_float16_round_trips(converted.graph)
    weights = {i.name for i in converted.graph.initializer}
    kept_infos = [v for v in converted.graph.value_info if v.name not in weights]
    del converted.graph.value_info[:]
    converted.graph.value_info.extend(kept_infos)
    # A graph it cannot sort (outer names used in a subgraph) is left as it is: the checker judges it.
    with contextlib.suppress(RuntimeError):
        OnnxModel.graph_topological_sort(converted.graph)
    onnx.save(converted, str(target))
    return _method(ort.__version__, Counter(n.op_type for n in model.graph.node if n.op_type in blocked_ops), large)


def _method(version: str, kept_ops: Counter[str], large: dict[str, str]) -> str:
    text = f"onnxruntime {version} float16 converter, float32 inputs and outputs kept (keep_io_types), node metadata dropped"
    kept = []
    if kept_ops:
        kept.append(f"{count_text(kept_ops)} (onnxruntime's float32 list)")
    if large:  # counted, not named: node names come from the model file and the report is markup
        kept.append(
            f"{count_text(Counter(large.values()))} with values beyond {FLOAT16_LIMIT:g} on the validation inputs"
        )
    return text + (f"; kept in float32: {'; '.join(kept)}" if kept else "; every op in float16")


def _drop_float16_round_trips(graph: onnx.GraphProto) -> None:
    """Read x where the converter wrote Cast(Cast(x, to=float16), to=float32) for a float32 x."""
    import onnx

    float32 = {
        v.name for v in [*graph.input, *graph.value_info] if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    }
    float32 |= {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    producer = {name: node for node in graph.node for name in node.output}
    outputs = {o.name for o in graph.output}
    source: dict[str, str] = {}  # the second Cast's output -> x
    for node in graph.node:
        first = producer.get(node.input[0]) if _is_cast(node, onnx.TensorProto.FLOAT) else None
        if first is None or node.output[0] in outputs:
            continue
        if _is_cast(first, onnx.TensorProto.FLOAT16) and first.input[0] in float32:
            source[node.output[0]] = first.input[0]
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in source:
                node.input[index] = source[name]
    while True:  # the second Casts are unread now, then the first ones
        read = {name for node in graph.node for name in node.input} | outputs
        kept = [n for n in graph.node if not (n.op_type == "Cast" and n.output[0] not in read)]
        if len(kept) == len(graph.node):
            return
        del graph.node[:]
        graph.node.extend(kept)


def _is_cast(node: onnx.NodeProto, to: int) -> bool:
    return node.op_type == "Cast" and any(a.name == "to" and a.i == to for a in node.attribute)


def _convertible_weights(model: onnx.ModelProto, blocked_ops: set[str], blocked_nodes: set[str]) -> bool:
    """True when some float32 initializer is read by a node that will run in float16."""
    import onnx

    floats = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    return any(
        name in floats
        for node in model.graph.node
        if node.op_type not in blocked_ops and node.name not in blocked_nodes
        for name in node.input
    )


def _nodes_with_large_values(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> dict[str, str]:
    """The nodes that read or write a value beyond FLOAT16_LIMIT (name -> op type), in graph order."""
    import onnx

    large = {i.name for i in model.graph.initializer if _beyond(onnx.numpy_helper.to_array(i))}
    large |= {name for name, array in inputs.items() if _beyond(array)}
    large |= _large_intermediates(model, inputs)
    return {
        node.name: node.op_type
        for node in model.graph.node
        if any(name in large for name in [*node.input, *node.output] if name)
    }


def _large_intermediates(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> set[str]:
    """Tensors computed by the fp32 graph that reach beyond FLOAT16_LIMIT on the inputs."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    declared = {o.name for o in probe.graph.output}
    probe.graph.output.extend(
        onnx.ValueInfoProto(name=name)
        for node in probe.graph.node
        for name in node.output
        if name and name not in declared
    )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        large: set[str] = set()
        for rows in _row_batches(inputs, session):
            for name, value in zip(names, session.run(None, rows), strict=True):
                if _beyond(value):
                    large.add(name)
    except Exception as exc:  # onnxruntime refused the probe: convert without the measurement
        raise CannotMake(f"onnxruntime could not measure the value ranges: {describe(exc)}") from None
    return large


def _row_batches(inputs: dict[str, np.ndarray], session: ort.InferenceSession) -> list[dict[str, np.ndarray]]:
    """One row at a time when the batch axis is dynamic; the whole batch when the file fixes it."""
    fixed = any(isinstance(i.shape[0], int) for i in session.get_inputs() if i.shape)
    rows = min(PROBE_ROWS, len(next(iter(inputs.values()))))
    if fixed or not inputs:
        return [inputs]
    return [{name: array[i : i + 1] for name, array in inputs.items()} for i in range(rows)]


def _beyond(array: np.ndarray) -> bool:
    if array.dtype.kind != "f" or not array.size:
        return False
    finite = array[np.isfinite(array)]
    return bool(finite.size and np.abs(finite).max() > FLOAT16_LIMIT)
