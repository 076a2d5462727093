"""Touch-ups on the ONNX graphs tf2onnx writes: names, declared input dimensions, unmapped ops;
and the writer of models whose large initializers are kept apart until the file is written.

Plain onnx, no TensorFlow, so they are cheap to test.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import onnx
from onnx import numpy_helper

from converter.frameworks.base import TensorSpec
from converter.onnx_file import DEFAULT_DOMAINS, graphs

# Initializers above this size go to a .data file beside the .onnx (ONNX external data).
EXTERNAL_DATA_BYTES = 512 * 1024 * 1024
EXTERNAL_DATA_ALIGNMENT = 4096


def unsupported_ops(model: onnx.ModelProto) -> list[str]:
    """TensorFlow ops tf2onnx left in the graph unconverted, e.g. ``Lgamma``.

    tf2onnx only logs an op it has no handler for and keeps the TensorFlow node, which no
    ONNX runtime can run; such a node has an op type the ONNX default domain does not know.
    """
    found: Counter[str] = Counter()
    for graph in graphs(model.graph):
        for node in graph.node:
            if node.domain in DEFAULT_DOMAINS and not onnx.defs.has(node.op_type):
                found[node.op_type] += 1
    return sorted(found)


def rename_values(model: onnx.ModelProto, names: dict[str, str]) -> None:
    """Rename graph inputs and outputs (and every reference to them), old name -> new name."""
    if not names:
        return
    for graph in graphs(model.graph):
        for value in [*graph.input, *graph.output, *graph.value_info]:
            value.name = names.get(value.name, value.name)
        for node in graph.node:
            node.input[:] = [names.get(n, n) for n in node.input]
            node.output[:] = [names.get(n, n) for n in node.output]


def declare_input_dims(model: onnx.ModelProto, specs: list[TensorSpec]) -> None:
    """Declare the requested dimensions on the graph inputs.

    tf2onnx names unknown dimensions ``unk__12``; a dimension the request names (``batch``)
    gets that name, and a dimension the request fixes is fixed. A dimension the exported
    file already fixes is left alone, so that a fixed batch axis is reported, not hidden.
    """
    by_name = {spec.name: spec for spec in specs}
    for value in model.graph.input:
        spec = by_name.get(value.name)
        dims = value.type.tensor_type.shape.dim
        if spec is None or spec.shape is None or len(dims) != len(spec.shape):
            continue
        for dim, wanted in zip(dims, spec.shape, strict=True):
            if dim.HasField("dim_value"):
                continue
            if isinstance(wanted, int):
                dim.dim_value = wanted
            elif isinstance(wanted, str):
                dim.dim_param = wanted


def name_output_dims(model: onnx.ModelProto) -> None:
    """Give output dimensions the names ONNX shape inference traces back to the inputs.

    tf2onnx names every unknown output dimension ``unk__N``; when shape inference shows it
    is the input's ``batch``, say so. Dimensions it cannot trace keep tf2onnx's name.
    """
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.value_info[:]  # tf2onnx's own guesses, with unk__ names, would win
    for value in probe.graph.output:
        value.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, strict_mode=False)
    except (onnx.shape_inference.InferenceError, ValueError):
        return
    input_names = {d.dim_param for v in model.graph.input for d in v.type.tensor_type.shape.dim if d.dim_param}
    for value, guess in zip(model.graph.output, inferred.graph.output, strict=True):
        dims, guessed = value.type.tensor_type.shape.dim, guess.type.tensor_type.shape.dim
        if len(dims) != len(guessed):
            continue
        for dim, new in zip(dims, guessed, strict=True):
            if dim.dim_param.startswith("unk__") and new.dim_param in input_names:
                dim.dim_param = new.dim_param


@dataclass
class LightModel:
    """An ONNX model whose large initializers are held apart until it is written.

    In ``model`` they are graph inputs (typed, so shape inference and the touch-ups above
    work on the light model); ``save`` writes them as initializers.
    """

    model: onnx.ModelProto
    initializers: dict[str, onnx.TensorProto] = field(default_factory=dict)

    def save(self, path: Path, external_over: int = EXTERNAL_DATA_BYTES) -> list[Path]:
        """Write the model, one initializer at a time; return the files written beside it.

        ``onnx.save_model`` on the whole model would hold the message and its serialised
        bytes at once: two copies of every weight (2.7 GB for ConvNeXtXLarge). A message
        is its fields in any order, so the graph is written as the light graph's bytes
        followed by one ``initializer`` field per tensor. When the held initializers
        exceed ``external_over`` bytes they go to ``<file>.data`` (ONNX external data):
        the ONNX checker and onnxruntime then read a small protobuf and the weights from
        their own file (ConvNeXtXLarge, 1.35 GB: the pipeline's check peaks at 55 MB
        instead of 6.7 GB, onnxruntime at 1.5 GB instead of 1.6), and protobuf's 2 GB
        limit no longer applies.
        """
        graph = self.model.graph
        kept = [value for value in graph.input if value.name not in self.initializers]
        del graph.input[:]
        graph.input.extend(kept)
        head = onnx.ModelProto()
        head.CopyFrom(self.model)
        head.ClearField("graph")
        light_graph = graph.SerializeToString()
        names = sorted(self.initializers)
        external = sum(self.initializers[n].ByteSize() for n in names) > external_over
        data_path = path.with_name(path.name + ".data")
        if external:
            with data_path.open("wb") as data:
                for name in names:
                    self.initializers[name] = _to_external(self.initializers[name], data, data_path.name)
        sizes = [self.initializers[n].ByteSize() for n in names]
        graph_size = len(light_graph) + sum(len(_INITIALIZER_KEY) + len(_varint(n)) + n for n in sizes)
        with path.open("wb") as handle:
            handle.write(head.SerializeToString())
            handle.write(_GRAPH_KEY + _varint(graph_size) + light_graph)
            for name, size in zip(names, sizes, strict=True):
                _write_field(handle, _INITIALIZER_KEY, self.initializers.pop(name).SerializeToString(), size)
        return [data_path] if external else []


def _to_external(tensor: onnx.TensorProto, data: BinaryIO, location: str) -> onnx.TensorProto:
    """Append the tensor's bytes to the data file (page-aligned, so it can be mapped); return
    the tensor that points there."""
    raw = tensor.raw_data if tensor.HasField("raw_data") else numpy_helper.to_array(tensor).tobytes()
    offset = data.tell()
    padding = -offset % EXTERNAL_DATA_ALIGNMENT
    data.write(b"\0" * padding)
    data.write(raw)
    pointer = onnx.TensorProto(name=tensor.name, data_type=tensor.data_type, dims=tensor.dims)
    pointer.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", offset + padding), ("length", len(raw))):
        entry = pointer.external_data.add()
        entry.key, entry.value = key, str(value)
    return pointer


def _key(message: type[onnx.ModelProto] | type[onnx.GraphProto], field_name: str) -> bytes:
    """The tag of a length-delimited field: (field number << 3) | 2."""
    return _varint(message.DESCRIPTOR.fields_by_name[field_name].number << 3 | 2)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _write_field(handle: BinaryIO, key: bytes, data: bytes, size: int) -> None:
    assert len(data) == size
    handle.write(key + _varint(size))
    handle.write(data)


_GRAPH_KEY = _key(onnx.ModelProto, "graph")
_INITIALIZER_KEY = _key(onnx.GraphProto, "initializer")
