"""One ONNX file per model: the names and the node order tf2onnx leaves to chance, made canonical.

tf2onnx names what it creates ``<prefix>__<N>`` from one process-wide counter, and how often the
counter has been called differs from run to run (the same .h5 twice: ``new_shape__37`` and
``new_shape__42``; an LSTM SavedModel's two Expand nodes swap places; a .tflite MobileNetV2
differs in 99 of its 111 nodes). Its topological sort orders nodes by those names, so the
order differs too. Here the nodes are put in a topological order that does not depend on the
counter (ties broken by the name without its counters, the op and its inputs' identities), and
the counters are renumbered in order of first appearance. The graph's inputs and outputs keep
their names: validation pairs outputs by them.
"""

from __future__ import annotations

import hashlib
import heapq
import re
from typing import Any

import onnx

COUNTER = re.compile(r"__(\d+)")


class _Renamer:
    """Names without tf2onnx's counters, made unique again by a suffix given in order of first appearance.

    The same old name always maps to the same new one; reserved names (the graph's inputs and
    outputs) are kept and never given to another value.
    """

    def __init__(self, reserved: set[str]) -> None:
        self.reserved = set(reserved)
        self.names: dict[str, str] = {name: name for name in reserved}
        self.taken: set[str] = set(reserved)

    def __call__(self, name: str) -> str:
        if not name:
            return name
        new = self.names.get(name)
        if new is None:
            new = self.fresh(COUNTER.sub("", name))
            self.names[name] = new
        return new

    def fresh(self, base: str) -> str:
        """``base``, or ``base__2``, ``base__3``... whichever is free first."""
        candidate, count = base, 1
        while candidate in self.taken:
            count += 1
            candidate = f"{base}__{count}"
        self.taken.add(candidate)
        return candidate


def canonicalize(model: onnx.ModelProto, held: dict[str, onnx.TensorProto]) -> dict[str, onnx.TensorProto]:
    """Reorder and rename ``model`` in place; return ``held`` (initializers kept apart) under their new names.

    If renaming would make two values share a name, the model is left as it was.
    """
    graph = model.graph
    backup = onnx.ModelProto()
    backup.CopyFrom(model)
    reserved = {v.name for v in graph.output} | {v.name for v in graph.input if v.name not in held}
    rename = _Renamer(reserved)
    contents = {t.name: _digest(t) for t in graph.initializer} | {n: _digest(t) for n, t in held.items()}
    ordered = _canonical_graph(graph, rename, contents)
    for value in graph.input:
        value.name = rename(value.name)
    _sort(graph.initializer, rename)
    _sort(graph.value_info, rename)
    _rename_dims(model)
    renamed = {rename(name): tensor for name, tensor in held.items()}
    for name, tensor in renamed.items():
        tensor.name = name
    if not ordered or not _unique_values(graph):
        model.CopyFrom(backup)
        for name, tensor in held.items():
            tensor.name = name
        return held
    return renamed


def _canonical_graph(graph: onnx.GraphProto, rename: _Renamer, contents: dict[str, str], scope: str = "") -> bool:
    """Nodes in a counter-free topological order, renamed as they are emitted; subgraphs likewise.

    False (and the graph half done) if the nodes have no topological order.
    """
    nodes = list(graph.node)
    producer = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    needs = [{producer[name] for name in _all_inputs(node) if name in producer} for node in nodes]
    waiting = [len(found) for found in needs]
    consumers: dict[int, list[int]] = {}
    for i, found in enumerate(needs):
        for j in found:
            consumers.setdefault(j, []).append(i)
    identity = dict(contents)  # value name -> what it is, without counters
    ready = [(_key(nodes[i], identity), i) for i in range(len(nodes)) if waiting[i] == 0]
    heapq.heapify(ready)
    ordered: list[onnx.NodeProto] = []
    computed: dict[tuple, list[str]] = {}  # what a node computes -> the outputs of the node kept for it
    done = 0
    while ready:
        key, i = heapq.heappop(ready)
        node, done = nodes[i], done + 1
        twin = computed.get(key[:4]) if _mergeable(node, rename) else None
        if twin is not None and len(twin) == len(node.output):
            _alias(node, twin, rename, identity)  # the same op on the same inputs: one node
        else:
            ordered.append(_emit(node, rename, identity, f"{scope}{len(ordered)}"))
            computed.setdefault(key[:4], list(node.output))
        for j in consumers.get(i, []):
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, (_key(nodes[j], identity), j))
    if done != len(nodes):  # a cycle: not a valid graph
        return False
    del graph.node[:]
    graph.node.extend(ordered)
    return True


# Ops whose twins differ: each draws its own random numbers.
RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}


def _mergeable(node: onnx.NodeProto, rename: _Renamer) -> bool:
    """A node that may be replaced by an identical one: deterministic, no subgraph, no graph output."""
    return (
        node.op_type not in RANDOM_OPS
        and all(a.type not in _GRAPH_TYPES for a in node.attribute)
        and not any(name in rename.reserved for name in node.output)
    )


def _alias(node: onnx.NodeProto, twin: list[str], rename: _Renamer, identity: dict[str, str]) -> None:
    """Drop ``node``: its outputs are read from its twin's, which was emitted already."""
    for old, kept in zip(node.output, twin, strict=True):
        identity[old] = identity[kept]
        rename.names[old] = rename(kept)


def _all_inputs(node: onnx.NodeProto) -> list[str]:
    """The node's inputs and the outer values its subgraphs (Loop, If bodies) read."""
    names = list(node.input)
    for attribute in node.attribute:
        for sub in [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else attribute.graphs:
            for inner in sub.node:
                names += _all_inputs(inner)
    return names


def _emit(node: onnx.NodeProto, rename: _Renamer, identity: dict[str, str], position: str) -> onnx.NodeProto:
    """The node named after its op and its place in the new order, its outputs and the
    initializers it reads first after it.

    Not after the names tf2onnx gave: of two identical nodes or constants it merges, which one's
    name survives differs between runs (an LSTM's initial states: ``lstm_1/zeros`` one time,
    ``lstm_1/zeros_1`` the next; its slices' ``const_starts`` or ``const_axes``).
    """
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.name = f"{node.op_type}_{position}"
    for index, old in enumerate(node.input):  # initializers: after their first reader, for the same reason
        if identity.get(old, "").startswith("=") and old not in rename.names:
            rename.names[old] = rename.fresh(f"{copy.name}_in{index}")
    copy.input[:] = [rename(name) for name in node.input]
    for index, old in enumerate(node.output):
        if old and old not in rename.names:
            rename.names[old] = rename.fresh(f"{copy.name}:{index}")
        identity[old] = f"#{position}:{index}"
    copy.output[:] = [rename(name) for name in node.output]
    for attribute in copy.attribute:
        subgraphs = [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else attribute.graphs
        for number, sub in enumerate(subgraphs):
            scope = f"{position}.{attribute.name}{number}."
            # A body's inputs (iteration number, carried state) are known by their place.
            identity.update({value.name: f"#{scope}in{k}" for k, value in enumerate(sub.input)})
            identity.update({tensor.name: _digest(tensor) for tensor in sub.initializer})
            _canonical_graph(sub, rename, identity, scope)
            for value in [*sub.input, *sub.output, *sub.value_info]:
                value.name = rename(value.name)
            _sort(sub.initializer, rename)
    return copy


def _key(node: onnx.NodeProto, identity: dict[str, str]) -> tuple[str, str, tuple[str, ...], bytes, str]:
    """What the node computes from what; its name, without counters, only breaks the last ties."""
    attributes = b"".join(a.SerializeToString() for a in node.attribute if a.type not in _GRAPH_TYPES)
    inputs = tuple(identity.get(name, name) for name in node.input)  # else a graph input: its own name
    return (node.op_type, node.domain, inputs, attributes, COUNTER.sub("", node.name))


_GRAPH_TYPES = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)


def _digest(tensor: onnx.TensorProto) -> str:
    """An initializer's identity: its type, shape and values (its name may hold a counter)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((tensor.data_type, list(tensor.dims))).encode())
    if tensor.HasField("raw_data"):
        digest.update(tensor.raw_data)
    else:  # small tensors keep their values in typed fields
        values = onnx.TensorProto()
        values.CopyFrom(tensor)
        values.ClearField("name")
        digest.update(values.SerializeToString())
    return "=" + digest.hexdigest()


def _sort(values: Any, rename: _Renamer) -> None:
    """Rename the entries of a repeated field of initializers or value infos and sort them by name."""
    items = list(values)
    for item in items:
        item.name = rename(item.name)
    items.sort(key=lambda item: item.name)
    del values[:]
    values.extend(items)


def _rename_dims(model: onnx.ModelProto) -> None:
    """tf2onnx's names of unknown dimensions (``unk__43``) renumbered in order of appearance."""
    graph = model.graph
    rename = _Renamer(set())
    for value in [*graph.input, *graph.output, *graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param.startswith("unk__"):
                dim.dim_param = rename(dim.dim_param) if dim.dim_param != "unk" else dim.dim_param


def _unique_values(graph: onnx.GraphProto) -> bool:
    names = [out for node in graph.node for out in node.output if out]
    names += [t.name for t in graph.initializer] + [v.name for v in graph.input]
    return len(names) == len(set(names))
