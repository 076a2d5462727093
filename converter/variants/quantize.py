"""int8-dynamic and int8-static: onnxruntime's quantization tools, with defaults chosen here.

int8-dynamic (``quantize_dynamic``): int8 weights, activations quantised at run time. Conv is
left in float32: onnxruntime has no fast ConvInteger kernel and recommends static quantization
for CNNs (onnxruntime#12854; a small CNN ran 5.2x slower with it here). The ONNX Attention op of
opset 23 is left alone: the quantizer takes every node named Attention for onnxruntime's own
and writes a QAttention that onnxruntime refuses to load.

int8-static (``quantize_static``): QDQ format, weights int8 per output channel, activations
uint8 (onnxruntime's advice for x86 CPUs) with MinMax ranges calibrated on --sample-data only:
ranges measured on generated inputs would be wrong for real ones. The calibration model reduces
each tensor to its min and max inside onnxruntime and feeds a few rows at a time, so memory
stays one small batch's activations. (``CalibMaxIntermediateOutputs`` is not used: it drops the
ranges collected so far instead of merging them, onnxruntime#18893.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from converter.errors import describe
from converter.variants.make import (
    CannotMake,
    MakeInputs,
    count_text,
    name_unnamed_nodes,
    nodes_with_weights,
    quiet_tools,
    strip_debug_info,
)

if TYPE_CHECKING:
    import onnx

CALIBRATION_ROWS = 256  # MinMax needs the extremes: more rows only widen the ranges a little
CALIBRATION_BATCH = 4  # rows per calibration run when the batch axis is dynamic


def make_int8_dynamic(source: Path, target: Path, data: MakeInputs) -> str:
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    model = _prepared(source)
    op_types = sorted(set(IntegerOpsRegistry) - {"Conv"})
    convs = len(nodes_with_weights(model, {"Conv"}))
    if convs and not nodes_with_weights(model, {*op_types, "Gemm"}):
        raise CannotMake(
            "the only float32 weights are Conv's, which int8-dynamic leaves in float32 (onnxruntime has no "
            "fast ConvInteger kernel); use int8-static with --sample-data"
        )
    # quantize_dynamic rewrites Gemm as MatMul first, so a Gemm's weight is quantised too.
    weighted = _weighted_or_skip(model, {*op_types, "Gemm"})
    attention = [n.name for n in model.graph.node if n.op_type == "Attention" and n.domain in ("", "ai.onnx")]
    try:
        with quiet_tools():
            quantize_dynamic(
                model, target, op_types_to_quantize=op_types, weight_type=QuantType.QInt8, nodes_to_exclude=attention
            )
    except Exception as exc:  # the quantizer's own failure on this graph
        raise CannotMake(f"onnxruntime's quantize_dynamic failed: {describe(exc)}") from None
    text = (
        f"onnxruntime {ort.__version__} quantize_dynamic: int8 weights (per tensor) for {weighted}, "
        "uint8 activations quantised at run time, node metadata dropped"
    )
    if convs:
        text += f"; {convs} Conv stay float32 (onnxruntime has no fast ConvInteger kernel: use int8-static)"
    return text


def make_int8_static(source: Path, target: Path, data: MakeInputs) -> str:
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.registry import QDQRegistry

    if data.calibration is None:  # the request refuses int8-static without --sample-data
        raise CannotMake("static quantization needs --sample-data to calibrate on")
    model = _prepared(source)
    weighted = _weighted_or_skip(model, set(QDQRegistry))
    fixed = _batch_is_fixed(model)
    total = len(next(iter(data.calibration.values())))
    rows = total if fixed else min(CALIBRATION_ROWS, total)  # a fixed batch is fed whole
    try:
        with quiet_tools():
            quantize_static(
                model,
                target,
                _CalibrationRows(data.calibration, rows, fixed),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
    except Exception as exc:  # the quantizer's own failure on this graph
        raise CannotMake(f"onnxruntime's quantize_static failed: {describe(exc)}") from None
    return (
        f"onnxruntime {ort.__version__} quantize_static, QDQ: int8 weights per channel for {weighted}, "
        f"uint8 activations with MinMax ranges from {rows} rows of the sample data, node metadata dropped"
    )


def _prepared(source: Path) -> onnx.ModelProto:
    """The fp32 model, ready for the quantizer: no debug metadata, nodes named, each opset imported once."""
    import onnx

    model = onnx.load(str(source))
    strip_debug_info(model.graph)
    name_unnamed_nodes(model)
    # skl2onnx can import the default domain twice; the quantizer then finds no "proper" one.
    seen: dict[str, onnx.OperatorSetIdProto] = {}
    for opset in model.opset_import:
        domain = opset.domain or ""
        if domain not in seen or opset.version > seen[domain].version:
            seen[domain] = opset
    if len(seen) != len(model.opset_import):
        kept = list(seen.values())
        del model.opset_import[:]
        model.opset_import.extend(kept)
    return model


def _weighted_or_skip(model: onnx.ModelProto, op_types: set[str]) -> str:
    nodes = nodes_with_weights(model, op_types)
    if not nodes:
        raise CannotMake(
            f"no float32 weight to quantise: no {', '.join(sorted(op_types & _COMMON))} node reads one "
            "(a tree ensemble or a linear model keeps its numbers in node attributes)"
        )
    return count_text(Counter(n.op_type for n in nodes))


_COMMON = {"Conv", "Gemm", "MatMul", "Gather", "LSTM"}


def _batch_is_fixed(model: onnx.ModelProto) -> bool:
    initializers = {i.name for i in model.graph.initializer}
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name not in initializers and dims and dims[0].HasField("dim_value"):
            return True
    return False


class _CalibrationRows:
    """The sample rows in small batches (onnxruntime's CalibrationDataReader protocol)."""

    def __init__(self, inputs: dict[str, np.ndarray], rows: int, fixed_batch: bool) -> None:
        step = rows if fixed_batch else CALIBRATION_BATCH
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            [{name: array[start : start + step] for name, array in inputs.items()} for start in range(0, rows, step)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)
