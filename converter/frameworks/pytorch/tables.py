"""Which embedding table each integer input indexes, so generated ids stay below ITS rows.

One bound for every input (the smallest table of the model) validated ALBERT with input_ids of 0
and 1 only (its token-type table has 2 rows). A torch.export program's graph says it: the
``aten.embedding`` (or ``index_select``) an input reaches through view-like ops. A module's forward
cannot be read before it runs, so hooks on its ``nn.Embedding`` layers record which input reached
them during one run; a TorchScript module's inlined graph is read as a program's is. torch is
passed in, never imported here.
"""

from __future__ import annotations

from typing import Any

# aten ops whose output holds the same integers as their input, only reshaped or cast.
_SAME_VALUES = {
    "view",
    "_unsafe_view",
    "reshape",
    "unsqueeze",
    "squeeze",
    "expand",
    "slice",
    "select",
    "clone",
    "contiguous",
    "alias",
    "detach",
    "flatten",
    "_to_copy",
    "to",
    "permute",
    "transpose",
}
# op -> the argument that holds the indices (the table is argument 0).
_INDEXING = {"embedding": 1, "embedding_bag": 1, "_embedding_bag": 1, "index_select": 2}


def smallest_table(model: Any, kind: str) -> int | None:
    """The smallest num_embeddings of the model's embeddings: the bound of an input whose own table is unknown."""
    rows: list[int] = []
    if kind == "program":
        rows = [rows for _, rows in _program_lookups(model)]
    else:
        for module in model.modules():
            name = getattr(module, "original_name", type(module).__name__)
            if name in ("Embedding", "EmbeddingBag") and hasattr(module, "num_embeddings"):
                rows.append(int(module.num_embeddings))
    return min(rows) if rows else None


def program_tables(program: Any) -> dict[str, int]:
    """Per user input of a torch.export program, the rows of the smallest table it indexes."""
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    found: dict[str, int] = {}
    for name in program.graph_signature.user_inputs:
        rows = [rows for source, rows in _program_lookups(program) if _reaches(placeholders[name], source)]
        if rows:
            found[name] = min(rows)
    return found


def _op_name(node: Any) -> str:
    """``aten.embedding.default`` -> ``embedding``."""
    return str(node.target).split(".")[1] if node.op == "call_function" and "." in str(node.target) else ""


def _program_lookups(program: Any) -> list[tuple[Any, int]]:
    """(the node holding the indices, rows of the table) of every table lookup in the graph."""
    lookups = []
    for node in program.graph.nodes:
        position = _INDEXING.get(_op_name(node))
        if position is None or len(node.args) <= position:
            continue
        table = node.args[0].meta.get("val") if hasattr(node.args[0], "meta") else None
        if table is not None and hasattr(table, "shape"):
            lookups.append((node.args[position], int(table.shape[0])))
    return lookups


def _reaches(start: Any, target: Any) -> bool:
    """True when ``target`` is ``start`` or made from it by view-like ops only."""
    node = target
    while node is not start:
        if not hasattr(node, "args") or _op_name(node) not in _SAME_VALUES or not node.args:
            return False
        node = node.args[0]
    return True


def script_tables(model: Any) -> dict[str, int]:
    """Per forward parameter of a TorchScript module, the rows of the smallest table it indexes in
    the inlined graph: an ``aten::embedding`` whose indices are the parameter, or a view of it, and
    whose weight is an attribute path from ``self`` (``self.embeddings.word.weight``)."""
    graph = model.inlined_graph
    parameters = list(graph.inputs())
    found: dict[str, int] = {}
    for node in graph.nodes():
        if node.kind() != "aten::embedding":
            continue
        weight, indices = list(node.inputs())[:2]
        rows = _attribute_rows(model, weight, parameters[0])
        source = _script_source(indices)
        if rows is not None and source in parameters[1:]:
            name = source.debugName().split(".")[0]
            found[name] = min(found.get(name, rows), rows)
    return found


def _attribute_rows(model: Any, value: Any, self_value: Any) -> int | None:
    """Rows of the tensor at the end of a ``prim::GetAttr`` chain from ``self``, if that is what ``value`` is."""
    path: list[str] = []
    while value is not self_value:
        node = value.node()
        if node.kind() != "prim::GetAttr":
            return None
        path.append(node.s("name"))
        value = next(iter(node.inputs()))
    target = model
    for name in reversed(path):
        target = getattr(target, name, None)
    shape = getattr(target, "shape", None)
    return int(shape[0]) if shape else None


def _script_source(value: Any) -> Any:
    """The value ``value`` is made from by view-like ops only (``aten::view``, ``aten::to``, ...)."""
    while value.node().kind().startswith("aten::") and value.node().kind()[6:] in _SAME_VALUES:
        value = next(iter(value.node().inputs()))
    return value


def module_tables(torch: Any, model: Any, call: Any, tensors: dict[str, Any]) -> dict[str, int]:
    """Per input, the rows of the smallest ``nn.Embedding`` it reached in one run of ``call``.

    An input reaches a table when the table's indices share its storage (the input itself, or a
    view of it); ids shifted or computed on the way are not matched, and keep the smallest bound.
    """
    storages = {name: t.untyped_storage().data_ptr() for name, t in tensors.items()}
    found: dict[str, int] = {}

    def record(module: Any, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], torch.Tensor):
            pointer = args[0].untyped_storage().data_ptr()
            for name, storage in storages.items():
                if storage == pointer:
                    found[name] = min(found.get(name, module.num_embeddings), module.num_embeddings)

    kinds = (torch.nn.Embedding, torch.nn.EmbeddingBag)
    handles = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            call(*tensors.values())
    finally:
        for handle in handles:
            handle.remove()
    return found
