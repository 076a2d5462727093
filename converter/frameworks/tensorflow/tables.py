"""Which table each integer input of a SavedModel signature indexes, read from its graph.

A KerasHub BERT export failed with ``GatherV2 indices out of range``: its ``segment_ids`` index a
2-row embedding. The signature's graph, with its function calls inlined, shows it: a ``GatherV2``
or ``ResourceGather`` whose indices come from the input through reshaping or casting ops, and
whose table is a captured variable of known shape. Imports TensorFlow through graph.py: called
only once the model is loaded.
"""

from __future__ import annotations

from typing import Any

from converter.frameworks.tensorflow.graph import _split, inline_function_calls

GATHERS = {"GatherV2": 0, "ResourceGather": 0, "Gather": 0}  # op -> the input that holds the table
# Ops whose first input carries the same integers, only reshaped, cast or read.
SAME_VALUES = {"Identity", "Cast", "Reshape", "ExpandDims", "Squeeze", "ReadVariableOp", "IdentityN"}


def signature_tables(function: Any, inputs: dict[str, str]) -> dict[str, int]:
    """Per input name (``inputs``: placeholder op name -> input name), the rows of the smallest table it indexes."""
    graph_def = function.graph.as_graph_def()
    inline_function_calls(graph_def)
    nodes = {node.name: node for node in graph_def.node}
    variables = {id(v.handle): v for v in function.graph.variables}
    tables = {
        internal.op.name: int(variables[id(external)].shape[0])
        for external, internal in function.graph.captures
        if id(external) in variables and variables[id(external)].shape.rank
    }
    found: dict[str, int] = {}
    for node in graph_def.node:
        if node.op not in GATHERS or len(node.input) < 2:
            continue
        rows = [tables[n] for n in _sources(nodes, node.input[GATHERS[node.op]]) if n in tables]
        for name in (inputs[n] for n in _sources(nodes, node.input[1]) if n in inputs):
            if rows:
                found[name] = min(found.get(name, rows[0]), *rows)
    return found


def _sources(nodes: dict[str, Any], tensor: str) -> set[str]:
    """The nodes a tensor's values come from, through ops that keep them (and both branches of a
    SelectV2: Keras's Embedding selects between the ids and the ids wrapped from below 0)."""
    found, stack = set(), [_split(tensor)[0]]
    while stack:
        name = stack.pop()
        node = nodes.get(name)
        if node is not None and node.op in SAME_VALUES and node.input:
            stack.append(_split(node.input[0])[0])
        elif node is not None and node.op == "SelectV2" and len(node.input) == 3:
            stack += [_split(node.input[1])[0], _split(node.input[2])[0]]
        else:
            found.add(name)
    return found
