"""The same model gives the same bytes: what skl2onnx leaves to chance, put in a fixed order.

Measured by converting every model twice, in processes with different string hash seeds
(tests/fixtures/cli.py ``sha256_of_two_runs``; all 164 exportable scikit-learn coverage models):
- the graph name is a random uuid4 unless given (the backend passes one);
- opset imports follow a set of (domain, version) pairs, whose order is the hash seed's;
- the cdist graphs of manhattan and minkowski distances (KNeighbors*, RadiusNeighbors* with those
  metrics) name their nodes after ``id()`` of a Python object, a memory address
  (skl2onnx/algebra/complex_functions.py: ``"norm_%d" % id(norm)``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# A memory address as a decimal number: 12 digits or more, not part of a longer number.
_ADDRESS = re.compile(r"(?<!\d)\d{12,}(?!\d)")


def make_reproducible(onx: Any) -> None:
    """Sort the opset imports by domain and number address-named values in order of appearance."""
    ordered = sorted(onx.opset_import, key=lambda o: o.domain)
    del onx.opset_import[:]
    onx.opset_import.extend(ordered)
    _number_addresses(onx.graph)


def _number_addresses(graph: Any) -> None:
    """Replace each address in a name by ``id<n>``, n counting distinct addresses as they first
    appear; the model's own inputs and outputs keep their names (they are its interface)."""
    interface = {v.name for v in [*graph.input, *graph.output]}
    before = set(_names(graph))
    numbers: dict[str, str] = {}

    def renamed(name: str) -> str:
        if name in interface:
            return name
        return _ADDRESS.sub(lambda m: numbers.setdefault(m.group(), f"id{len(numbers)}"), name)

    mapping = {name: renamed(name) for name in _names(graph)}
    if not numbers or len(set(mapping.values())) != len(before):
        return  # nothing to do, or two names would become one: leave the file as skl2onnx wrote it
    for g in _graphs(graph):
        for node in g.node:
            node.name = mapping.get(node.name, node.name)
            node.input[:] = [mapping.get(n, n) for n in node.input]
            node.output[:] = [mapping.get(n, n) for n in node.output]
        for value in [*g.input, *g.output, *g.value_info, *g.initializer]:
            value.name = mapping.get(value.name, value.name)


def _names(graph: Any) -> Iterator[str]:
    """Every node and value name, subgraphs included, in the order they appear."""
    for g in _graphs(graph):
        for value in [*g.input, *g.initializer]:
            yield value.name
        for node in g.node:
            yield node.name
            yield from node.input
            yield from node.output
        for value in [*g.output, *g.value_info]:
            yield value.name


def _graphs(graph: Any) -> Iterator[Any]:
    """The graph and every subgraph held in node attributes (Scan, Loop, If bodies), depth first."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _graphs(attribute.g)
            for sub in attribute.graphs:
                yield from _graphs(sub)
