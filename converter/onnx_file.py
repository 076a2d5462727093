"""Facts about ONNX files and the installed runtime: checks, opsets, inputs and outputs."""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from converter.errors import ConversionError, shorten
from converter.tensors import dtype_name

DEFAULT_DOMAINS = ("", "ai.onnx")  # the names of ONNX's own operator set
_ONNX_DTYPES = {v: k for k, v in onnx.TensorProto.DataType.items()}


def _element_type_name(elem_type: int) -> str:
    """The numpy-style name (float32, int64, string) of an ONNX element type."""
    try:
        return dtype_name(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError):  # a type numpy has no name for
        return _ONNX_DTYPES.get(elem_type, "unknown").lower()


def graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """The graph and every subgraph (Loop, If and Scan bodies) in it."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from graphs(sub)


@dataclass
class TensorInfo:
    name: str
    shape: list[int | str | None]
    dtype: str

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype}


@dataclass
class OnnxFacts:
    opset: int
    opsets: dict[str, int]
    ir_version: int
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    operators: dict[str, int] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of every file below a directory (paths and contents)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def check_and_describe(path: Path) -> OnnxFacts:
    """Run the ONNX checker (full check, with shape inference) and read the file's facts."""
    try:
        # A path, not a loaded proto, so that models with external data are checked too.
        # full_check runs strict shape inference in C++; a second, non-strict pass in Python
        # would only repeat it, at the cost of four copies of the weights (6.7 GB for a
        # 1.35 GB model).
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.load(str(path), load_external_data=False)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError) as exc:
        raise ConversionError(f"the exported file fails the ONNX checker: {shorten(exc, 300)}") from None
    opsets = {imp.domain or "ai.onnx": imp.version for imp in model.opset_import}
    return OnnxFacts(
        opset=max(imp.version for imp in model.opset_import if imp.domain in DEFAULT_DOMAINS),
        opsets=opsets,
        ir_version=model.ir_version,
        inputs=[_tensor_info(v) for v in model.graph.input if v.name not in {i.name for i in model.graph.initializer}],
        outputs=[_tensor_info(v) for v in model.graph.output],
        operators=dict(sorted(Counter(_op_name(n) for g in graphs(model.graph) for n in g.node).items())),
    )


def _op_name(node: onnx.NodeProto) -> str:
    return f"{node.domain}.{node.op_type}" if node.domain not in DEFAULT_DOMAINS else node.op_type


def _tensor_info(value: onnx.ValueInfoProto) -> TensorInfo:
    tensor = value.type.tensor_type
    dims: list[int | str | None] = []
    for d in tensor.shape.dim:
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    dtype = _element_type_name(tensor.elem_type)
    return TensorInfo(name=value.name, shape=dims, dtype=dtype)


@functools.cache
def runtime_max_opset() -> int:
    """Highest default-domain opset the installed onnxruntime loads (probed, not guessed)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    def loads(version: int) -> bool:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", version)])
        model.ir_version = 8
        options = ort.SessionOptions()
        options.log_severity_level = 4
        try:
            ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        except Exception:
            return False
        return True

    for version in range(onnx.defs.onnx_opset_version(), 0, -1):
        if loads(version):
            return version
    raise ConversionError("the installed onnxruntime loads no ONNX opset at all")


BATCH_AXIS = "batch"
# torch.export's own names for a dynamic dimension (s0, s77): they say nothing to a user.
_INTERNAL_SYMBOL = re.compile(r"s\d+")


def name_batch_axes(path: Path, facts: OnnxFacts) -> bool:
    """Name a dynamic batch axis ``batch`` where the exporter left it unnamed (skl2onnx, the boosters'
    converters) or named it by torch.export's internal symbol (``s77`` in a .pt2's export): every
    framework's file then reads ``batchx4``. Rewrites ``path`` only when a name changes; returns
    whether it did."""
    renames = {t.shape[0] for t in facts.inputs if t.shape and _unnamed(t.shape[0])}
    if not renames or any(_uses_batch_elsewhere(t.shape) for t in [*facts.inputs, *facts.outputs]):
        return False
    model = onnx.load(str(path), load_external_data=False)  # external weights stay where they are
    graph = model.graph
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value") and (not dims[0].dim_param or dims[0].dim_param in renames):
            dims[0].dim_param = BATCH_AXIS
    for value in graph.value_info:  # the same symbol inside the graph, so that shapes stay consistent
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param and dim.dim_param in renames:
                dim.dim_param = BATCH_AXIS
    onnx.save(model, str(path))
    return True


def _unnamed(dim: int | str | None) -> bool:
    return dim is None or (isinstance(dim, str) and _INTERNAL_SYMBOL.fullmatch(dim) is not None)


def _uses_batch_elsewhere(shape: list[int | str | None]) -> bool:
    return BATCH_AXIS in shape[1:]
