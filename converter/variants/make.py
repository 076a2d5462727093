"""What every variant maker shares: its inputs, how it says no, and the graph helpers.

A maker takes the validated fp32 file and writes one variant next to it; it returns one line
that says how the file was made. A variant that cannot be made from this model raises
``CannotMake`` with the reason: the report lists it as skipped, and the run goes on.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx


class CannotMake(Exception):
    """This variant cannot be made from this model; the message says why."""


@dataclass(frozen=True)
class MakeInputs:
    """What a maker may use besides the fp32 file."""

    inputs: dict[str, np.ndarray]  # the first validation batch (the fp16 maker measures ranges on it)
    calibration: dict[str, np.ndarray] | None  # the --sample-data rows; None without real data


@contextmanager
def quiet_tools() -> Iterator[None]:
    """Keep onnxruntime's Python tools out of the user's log: the quantizer logs through the
    root logger ("Please consider to run pre-processing ...") and warns about shapes."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def name_unnamed_nodes(model: onnx.ModelProto) -> None:
    """Give every unnamed node of the main graph a name: the tools select nodes by name."""
    taken = {node.name for node in model.graph.node if node.name}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def strip_debug_info(graph: onnx.GraphProto) -> None:
    """Drop the nodes' doc strings and metadata (the torch exporter's stack traces and module
    paths: 98 of a small transformer's 127 kB). The fp32 file keeps them for debugging; a
    variant is made to be served, and the optimized variant loses them in onnxruntime anyway."""
    import onnx

    for node in graph.node:
        node.doc_string = ""
        del node.metadata_props[:]
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                strip_debug_info(attribute.g)
            for subgraph in attribute.graphs:
                strip_debug_info(subgraph)
    for value in [*graph.value_info, *graph.input, *graph.output]:
        value.doc_string = ""
        del value.metadata_props[:]


def float_weights(model: onnx.ModelProto) -> dict[str, int]:
    """Names of the float32 initializers of rank 2 or more (weights, not biases) -> rank."""
    import onnx

    return {
        init.name: len(init.dims)
        for init in model.graph.initializer
        if init.data_type == onnx.TensorProto.FLOAT and len(init.dims) >= 2
    }


def nodes_with_weights(model: onnx.ModelProto, op_types: set[str]) -> list[onnx.NodeProto]:
    """The main graph's nodes of these op types (default ONNX domain) that read a float32 weight."""
    weights = float_weights(model)
    return [
        node
        for node in model.graph.node
        if node.op_type in op_types and node.domain in ("", "ai.onnx") and any(i in weights for i in node.input)
    ]


def count_text(counts: dict[str, int]) -> str:
    """{"MatMul": 3, "Gather": 1} -> "3 MatMul, 1 Gather" (sorted by op type: same text every run)."""
    return ", ".join(f"{count} {op}" for op, count in sorted(counts.items()))
