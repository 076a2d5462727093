"""TensorFlow graph surgery and the tf2onnx driver behind the TensorFlow backend's export routes.

Imports TensorFlow and tf2onnx at module level: the backend imports this module only when
it exports (never from ``detect``).

Why not plain ``tf2onnx.convert.from_function``: it freezes every variable into a Const of
the TensorFlow graph, which is then copied by the freezer, by ``import_graph_def``, by
grappler (serialised both ways) and by tf2onnx; and tf2onnx's ONNX optimizers (about 50
passes) re-serialise every node's attributes into its NodeProto on each pass
(``Node.update_proto``: clear, then extend). upb keeps the cleared copy in the message's
arena until the message is freed, and ``optimize_graph(catch_errors=True)`` deep-copies the
graph before each pass, leaving the old one to the cyclic garbage collector: a copy of every
weight per pass. ResNet101 (170 MB of weights) peaks at 11.4 GB, 9.3 GB of it in the
optimizers. Here (``prepare_function`` + ``convert_prepared``) large captured variables
become Placeholders, so TensorFlow and grappler see a graph of a few MB; their values enter
tf2onnx's graph as Const nodes just before its op handlers run (which transpose convolution
kernels and must see them); and they are held out again, as graph inputs, while the
optimizers run, and written as initializers at the end. ResNet101: 1.9 GB, 35 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import tensorflow as tf
from tensorflow.core.framework import graph_pb2, node_def_pb2
from tensorflow.python.framework import function_def_to_graph, tensor_util
from tf2onnx import optimizer as tf2onnx_optimizer
from tf2onnx import tf_loader, tfonnx, utils
from tf2onnx.convert import tensor_names_from_structed

from converter.frameworks.tensorflow.onnx_model import LightModel

CALL_OPS = ("StatefulPartitionedCall", "PartitionedCall")
# Captured values up to this size are frozen into the TensorFlow graph as Const nodes, so
# grappler folds them (BatchNorm statistics, biases, layer scales); larger ones (kernels)
# stay Placeholders until tf2onnx's graph is built.
FREEZE_LIMIT_BYTES = 64 * 1024


class GraphSurgeryError(Exception):
    """The graph has something this route cannot handle; another route may."""


@dataclass
class PreparedGraph:
    """A TensorFlow graph with its large weights held apart."""

    graph_def: graph_pb2.GraphDef
    input_names: list[str]  # tensor names of the real inputs, "x:0"
    output_names: list[str]
    # Placeholder tensor name -> the variable or captured tensor holding its value, read only
    # when the value goes into tf2onnx's graph (one copy at a time, not all at once).
    weights: dict[str, Any] = field(default_factory=dict)
    tensors_to_rename: dict[str, str] = field(default_factory=dict)


# -- graph_def surgery -----------------------------------------------------------------------------


def _split(name: str) -> tuple[str, int]:
    """'node:2' -> ('node', 2); 'node' -> ('node', 0)."""
    node, _, port = name.partition(":")
    return node, int(port) if port else 0


def inline_function_calls(graph_def: graph_pb2.GraphDef) -> int:
    """Replace every (Stateful)PartitionedCall of a library function by the function's body.

    Keras runs grouped convolutions (ConvNeXt's depthwise 7x7) in a nested
    ``tf.function(jit_compile=True)``; grappler does not inline functions marked for XLA,
    so the frozen graph keeps a StatefulPartitionedCall, which tf2onnx cannot convert and
    onnxruntime then rejects. Inlining here is what TensorFlow's own function inliner does:
    the body's nodes get the call's name as a prefix, its arguments become the call's inputs
    and the call's outputs become the body's return values. Returns the number inlined.
    """
    library = {f.signature.name: f for f in graph_def.library.function}
    inlined = 0
    while True:
        calls = [n for n in graph_def.node if n.op in CALL_OPS and n.attr["f"].func.name in library]
        if not calls:
            return inlined
        for call in calls:
            _inline_one(graph_def, call, library[call.attr["f"].func.name])
            inlined += 1


def _inline_one(graph_def: graph_pb2.GraphDef, call: node_def_pb2.NodeDef, fdef: Any) -> None:
    body, nested_to_flat = function_def_to_graph.function_def_to_graph_def(fdef)
    prefix = call.name + "/inlined/"
    data_inputs = [i for i in call.input if not i.startswith("^")]
    controls = [i for i in call.input if i.startswith("^")]
    args = {arg.name: data_inputs[index] for index, arg in enumerate(fdef.signature.input_arg)}

    def mapped(name: str) -> str:
        control = name.startswith("^")
        node, port = _split(name.lstrip("^"))
        if node in args:
            source = args[node]
            return "^" + _split(source.lstrip("^"))[0] if control else source
        if control:
            return "^" + prefix + node
        return f"{prefix}{node}:{port}"

    new_nodes = []
    for node in body.node:
        if node.name in args:
            continue
        clone = node_def_pb2.NodeDef()
        clone.CopyFrom(node)
        clone.name = prefix + node.name
        del clone.input[:]
        clone.input.extend(mapped(i) for i in node.input)
        if not any(not i.startswith("^") for i in node.input):
            clone.input.extend(controls)  # a body node without data inputs still waits for the call's
        new_nodes.append(clone)
    returns = []
    for out in fdef.signature.output_arg:
        flat = nested_to_flat.get(fdef.ret[out.name], fdef.ret[out.name])
        returns.append(mapped(flat))
    first_return = "^" + _split(returns[0])[0] if returns else ""

    def rewire(name: str) -> str:
        if name == "^" + call.name:
            return first_return
        node, port = _split(name)
        if node == call.name:
            return returns[port]
        return name

    kept = [n for n in graph_def.node if n.name != call.name]
    del graph_def.node[:]
    graph_def.node.extend(kept)
    graph_def.node.extend(new_nodes)
    for node in graph_def.node:
        rewired = [rewire(i) for i in node.input]
        del node.input[:]
        node.input.extend(i for i in rewired if i)


def rewrite_erfc(graph_def: graph_pb2.GraphDef) -> int:
    """Erfc(x) -> 1 - Erf(x): tf2onnx maps Erf but not Erfc, which Keras's exact gelu uses
    (ConvNeXt). Returns the number rewritten."""
    count = 0
    extra = []
    for node in graph_def.node:
        if node.op != "Erfc":
            continue
        dtype = node.attr["T"].type
        erf = node_def_pb2.NodeDef(name=node.name + "/erf", op="Erf", input=list(node.input))
        erf.attr["T"].type = dtype
        one = node_def_pb2.NodeDef(name=node.name + "/one", op="Const")
        one.attr["dtype"].type = dtype
        one.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(1.0, dtype=tf.dtypes.as_dtype(dtype), shape=[]))
        node.op = "Sub"
        del node.input[:]
        node.input.extend([one.name, erf.name])
        extra += [erf, one]
        count += 1
    graph_def.node.extend(extra)
    return count


def _const_node(name: str, value: np.ndarray) -> node_def_pb2.NodeDef:
    node = node_def_pb2.NodeDef(name=name, op="Const")
    node.attr["dtype"].type = tf.dtypes.as_dtype(value.dtype).as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(value))
    return node


def _placeholder_node(name: str, dtype: Any, shape: tuple[int, ...]) -> node_def_pb2.NodeDef:
    node = node_def_pb2.NodeDef(name=name, op="Placeholder")
    node.attr["dtype"].type = dtype.as_datatype_enum
    node.attr["shape"].shape.CopyFrom(tf.TensorShape(shape).as_proto())
    return node


def prepare_function(function: Any) -> PreparedGraph:
    """The graph of a concrete function with its captured values taken out.

    Captured variables are read once; each becomes a Const (small) or a Placeholder whose
    value is kept in ``weights`` (large). ReadVariableOp becomes Identity, ResourceGather
    Gather, VariableShape Shape. Captured tensors (Keras keeps numpy constants such as the
    Normalization layer's mean this way) are handled the same way: tf2onnx's own freezing
    turns them into extra graph inputs that nobody feeds (tf2onnx #1992-like).
    """
    graph = function.graph
    graph_def = graph.as_graph_def()
    inline_function_calls(graph_def)
    rewrite_erfc(graph_def)
    weights, replacements = _take_out_captures(graph, graph_def)
    kept = [n for n in graph_def.node if n.name not in replacements]
    del graph_def.node[:]
    graph_def.node.extend(kept)
    graph_def.node.extend(replacements.values())

    capture_names = {internal.name for _, internal in graph.captures}
    input_names = [t.name for t in function.inputs if t.name not in capture_names and t.dtype != tf.resource]
    output_names = [t.name for t in function.outputs if t.dtype != tf.resource]
    return PreparedGraph(
        graph_def=graph_def,
        input_names=input_names,
        output_names=output_names,
        weights=weights,
        tensors_to_rename=_renames(function, input_names, output_names),
    )


def _take_out_captures(
    graph: Any, graph_def: graph_pb2.GraphDef
) -> tuple[dict[str, Any], dict[str, node_def_pb2.NodeDef]]:
    """The large captured values (placeholder tensor name -> source) and the node that replaces each capture."""
    captured = {internal.op.name: external for external, internal in graph.captures}
    variables = {id(v.handle): v for v in graph.variables}
    by_name = {n.name: n for n in graph_def.node}
    consumers: dict[str, list[node_def_pb2.NodeDef]] = {}
    for node in graph_def.node:
        for name in node.input:
            if not name.startswith("^"):
                consumers.setdefault(_split(name)[0], []).append(node)

    weights: dict[str, Any] = {}
    replacements: dict[str, node_def_pb2.NodeDef] = {}
    for internal_name, external in captured.items():
        if internal_name not in by_name:
            continue
        source: Any = external
        value_name = internal_name
        if external.dtype == tf.resource:
            source = variables.get(id(external))
            users = consumers.get(internal_name, [])
            if source is None:
                if not users:
                    continue  # a captured resource nothing reads (e.g. a table no longer used)
                raise GraphSurgeryError(
                    f"a captured resource that is not a variable is read by {sorted({n.op for n in users})}"
                )
            value_name = _value_name(internal_name, users)
            for user in users:
                _read_from_value(user, internal_name, value_name, source.dtype, graph_def)
        dtype, shape = tf.as_dtype(source.dtype), tuple(source.shape)
        if int(np.prod(shape, dtype=np.int64)) * dtype.size <= FREEZE_LIMIT_BYTES:
            replacements[internal_name] = _const_node(value_name, np.asarray(source.numpy()))
        else:
            replacements[internal_name] = _placeholder_node(value_name, dtype, shape)
            weights[value_name + ":0"] = source
    return weights, replacements


def _renames(function: Any, input_names: list[str], output_names: list[str]) -> dict[str, str]:
    """Graph tensor names -> the names the ONNX file uses: input specs' names, output keys.

    A dict of outputs is flattened in sorted key order (``tf.nest``), which is the order of
    ``function.outputs``; a restored SavedModel signature's outputs are not the graph's
    tensors, so they are paired by that order, as tf2onnx's saved-model loader does.
    """
    renames = tensor_names_from_structed(function, input_names, [])
    outputs = function.structured_outputs
    if isinstance(outputs, dict):
        renames.update(zip(output_names, sorted(outputs), strict=False))
    return renames


def _value_name(placeholder: str, users: list[node_def_pb2.NodeDef]) -> str:
    """Name the value after the first op that reads it (it carries the layer's scope)."""
    reads = sorted(n.name for n in users if n.op == "ReadVariableOp")
    return (reads[0] if reads else placeholder) + "/value"


def _read_from_value(
    node: node_def_pb2.NodeDef, resource: str, value_name: str, value_dtype: Any, graph_def: graph_pb2.GraphDef
) -> None:
    """Make one consumer of a variable's resource handle read the value tensor instead."""
    dtype = tf.as_dtype(value_dtype).as_datatype_enum
    if node.op == "ReadVariableOp":
        node.op = "Identity"
        node.input[0] = value_name
        del node.attr["dtype"]
        node.attr["T"].type = dtype
    elif node.op == "ResourceGather":
        if node.attr["batch_dims"].i != 0:
            raise GraphSurgeryError(f"ResourceGather {node.name} has batch_dims {node.attr['batch_dims'].i}")
        axis = _const_node(node.name + "/axis", np.array(0, dtype=np.int32))
        graph_def.node.append(axis)
        node.op = "GatherV2"
        node.input[:2] = [value_name, node.input[1]]
        node.input.insert(2, axis.name)
        for attr in ("dtype", "batch_dims", "validate_indices"):
            if attr in node.attr:
                del node.attr[attr]
        node.attr["Tparams"].type = dtype
        node.attr["Taxis"].type = tf.int32.as_datatype_enum
    elif node.op == "VariableShape":
        out_type = node.attr["out_type"].type
        node.op = "Shape"
        node.input[0] = value_name
        node.attr["T"].type = dtype
        node.attr["out_type"].type = out_type
    else:
        raise GraphSurgeryError(f"{node.op} {node.name} uses the variable {resource} directly")


# -- tf2onnx -------------------------------------------------------------------------------------------


@dataclass
class GraphToConvert:
    """A TensorFlow graph and what tf2onnx needs to know to convert it."""

    graph_def: graph_pb2.GraphDef
    input_names: list[str]  # tensor names, "x:0"
    output_names: list[str]
    name: str  # what it was converted from, for the ONNX graph's name
    renames: dict[str, str] = field(default_factory=dict)  # graph tensor names -> the ONNX file's names
    # Placeholder tensor name -> the variable or tensor holding its value (prepare_function's weights).
    weights: dict[str, Any] = field(default_factory=dict)
    tables: dict[Any, Any] | None = None  # initialized hash tables (tf2onnx's saved-model loader)
    continue_on_error: bool = False  # tf2onnx keeps an op it cannot convert (unsupported_ops reports it)


def convert_prepared(prepared: PreparedGraph, opset: int, name: str) -> LightModel:
    """tf2onnx on a prepared graph: grappler, then ``to_onnx`` with the held-out weights."""
    placeholders = list(prepared.weights)
    shapes = _unshape_placeholders(prepared.graph_def, placeholders)
    with tf.device("/cpu:0"), tf.Graph().as_default():  # grappler goes through a v1 meta graph: graph mode
        graph_def = tf_loader.tf_optimize(
            prepared.input_names + placeholders, prepared.output_names, prepared.graph_def
        )
    _reshape_placeholders(graph_def, shapes)
    graph = GraphToConvert(
        graph_def,
        prepared.input_names,
        prepared.output_names,
        name,
        renames=prepared.tensors_to_rename,
        weights=prepared.weights,
    )
    return to_onnx(graph, opset)


def _unshape_placeholders(graph_def: graph_pb2.GraphDef, placeholders: list[str]) -> dict[str, Any]:
    """Hide the weight placeholders' dimensions from grappler; return their shapes.

    Grappler allocates a zero-filled tensor for every placeholder whose shape it knows (a
    fake feed, ``grappler_item_builder.cc``): a transient copy of every weight (ConvNeXtXLarge:
    1.4 GB). With unknown dimensions it allocates nothing; it folds the same graph.
    """
    names = {_split(name)[0] for name in placeholders}
    shapes = {}
    for node in graph_def.node:
        if node.op == "Placeholder" and node.name in names:
            shape = node.attr["shape"].shape
            shapes[node.name] = type(shape)()
            shapes[node.name].CopyFrom(shape)
            for dim in shape.dim:
                dim.size = -1
    return shapes


def _reshape_placeholders(graph_def: graph_pb2.GraphDef, shapes: dict[str, Any]) -> None:
    """Give the placeholders (which grappler keeps: they are fed) their shapes back."""
    for node in graph_def.node:
        if node.name in shapes:
            node.attr["shape"].shape.CopyFrom(shapes[node.name])


def convert_frozen(graph: GraphToConvert, opset: int) -> LightModel:
    """tf2onnx on a graph frozen (and optimised by grappler) by tf2onnx's own loaders."""
    rewrite_erfc(graph.graph_def)
    graph.continue_on_error = True
    return to_onnx(graph, opset)


def to_onnx(graph: GraphToConvert, opset: int) -> LightModel:
    """What ``tf2onnx.convert._convert_common`` does, with the weights kept light.

    ``graph.weights`` (Placeholder tensor name -> variable or tensor) become Const nodes of
    tf2onnx's graph before its op handlers run (each is taken out of the dict as it does); large
    Consts are held out of it while its ONNX optimizers run, and the model keeps them apart until
    it is written.
    """
    weights = graph.weights
    placeholders = list(weights)
    with tf.device("/cpu:0"):
        with tf.Graph().as_default() as tf_graph:
            tf.import_graph_def(graph.graph_def, name="")
            main_g, subgraphs = tfonnx.graphs_from_tf(tf_graph, graph.input_names + placeholders, graph.output_names)
        del tf_graph
        for g in [main_g, *subgraphs]:
            g.set_config(None, opset, None)
        for placeholder in placeholders:
            # Taken out of ``weights``: a variable nothing else holds (the backend released
            # the model) is freed as soon as its value is in tf2onnx's graph.
            _placeholder_to_const(main_g, placeholder, np.asarray(weights.pop(placeholder).numpy()))
        held = _process_holding_out(main_g, subgraphs, graph)
        g = main_g
        del main_g, subgraphs
        _scalar_addends_as_vectors(g)
        held.update(_hold_out_large_consts(g))  # none left, unless tf2onnx stopped calling update_proto
        g = tf2onnx_optimizer.optimize_graph(g, catch_errors=True)
        model = g.make_model(f"converted from {graph.name}")
        del g
    return LightModel(model, held)


def _scalar_addends_as_vectors(g: Any) -> None:
    """Give a 0-d constant added to a tensor the shape [1] (the same broadcast).

    tf2onnx 1.17's transpose optimizer fails on Add(Conv without bias, 0-d constant)
    (``max(numpy_val.shape)`` of an empty shape in ``TransposeOptimizer._add_handler``),
    gives up on the whole graph and leaves every NHWC<->NCHW Transpose in: 106 in
    MobileNetV3Small, whose hard-sigmoid adds 3.0 right after such convolutions.
    """
    for node in list(g.get_nodes()):
        if node.type != "Add" or len(node.input) != 2:
            continue
        constant = node.inputs[1]
        shape = g.get_shape(node.input[0])
        if constant is None or not constant.is_const() or not shape:
            continue
        value = constant.get_tensor_value(as_list=False)
        if value.ndim == 0:
            vector = g.make_const(utils.make_name(constant.name), value.reshape(1))
            g.replace_input(node, node.input[1], vector.output[0], 1)


def _process_holding_out(main_g: Any, subgraphs: list[Any], graph: GraphToConvert) -> dict[str, onnx.TensorProto]:
    """``tfonnx.process_graphs`` (tf2onnx's op handlers), with the large constants held out
    just before its last step, ``update_proto``.

    ``update_proto`` copies every node's attributes into its NodeProto, so it would add a
    second copy of every weight, which the held-out tensor (a part of the node's protobuf
    arena) would keep alive (ConvNeXtLarge, 790 MB of weights: 1.55 GB held instead of 0.8).
    """
    held: dict[str, onnx.TensorProto] = {}
    update = main_g.update_proto

    def hold_out_then_update(*args: Any, **kwargs: Any) -> None:
        held.update(_hold_out_large_consts(main_g))
        update(*args, **kwargs)

    main_g.update_proto = hold_out_then_update
    try:
        g = tfonnx.process_graphs(
            main_g, subgraphs, None, [], [], graph.continue_on_error, None, graph.tables, graph.renames
        )
    finally:
        del main_g.update_proto
    if g is not main_g:
        raise GraphSurgeryError("tf2onnx returned a graph other than the one it was given")
    return held


def _hold_out_large_consts(g: Any) -> dict[str, onnx.TensorProto]:
    """Swap large Const nodes for graph inputs while tf2onnx's optimizers run.

    Every optimizer pass re-serialises each node's attributes into its NodeProto
    (``Node.update_proto``: clear, then extend); upb keeps the cleared copy in the
    message's arena until the message dies, so each of the ~50 passes leaves another copy
    of every weight behind (ConvNeXt-T, 108 MB of weights: 5.4 GB), and the deep copy
    before each pass copies them again. The op handlers have run by now (they transposed
    the convolution kernels they needed constant); the optimizers rewrite activations.
    Each tensor is copied out of its node (one at a time; the node and its arena are then
    freed) and named after the Const's output.
    """
    held: dict[str, onnx.TensorProto] = {}
    # By name, not a list of the nodes, which would keep every removed node alive to the end.
    for node_name in [n.name for n in g.get_nodes() if n.is_const()]:
        node = g.get_node_by_name(node_name)
        value = node.get_attr("value").t
        if value.ByteSize() <= FREEZE_LIMIT_BYTES or value.data_type == onnx.TensorProto.STRING:
            continue
        # A copy of its own: the attribute is part of the node's protobuf arena, which would
        # stay alive, with whatever else the arena holds, as long as the tensor does.
        tensor = onnx.TensorProto()
        tensor.CopyFrom(value)
        del value
        name = node.output[0]
        dtype, shape = g.get_dtype(name), g.get_shape(name)
        g.remove_node(node.name)
        g.add_graph_input(name, dtype, shape)
        tensor.name = name
        held[name] = tensor
    return held


def _placeholder_to_const(g: Any, output: str, value: np.ndarray) -> None:
    node = g.get_node_by_output(output)
    if node is None:
        return  # grappler pruned a weight nothing uses
    const = g.make_const(node.name + "/const", value)
    g.replace_all_inputs(output, const.output[0])
    g.remove_node(node.name)


def freeze_function(function: Any, name: str) -> GraphToConvert:
    """``tf2onnx.convert.from_function``'s freezing, without its conversion."""
    input_names = [t.name for t in function.inputs if t.dtype != tf.resource]
    capture_names = {internal.name for _, internal in function.graph.captures}
    real_inputs = [n for n in input_names if n not in capture_names]
    output_names = [t.name for t in function.outputs if t.dtype != tf.resource]
    renames = tensor_names_from_structed(function, real_inputs, output_names)
    with tf.device("/cpu:0"):
        frozen = tf_loader.from_function(function, input_names, output_names)
    return GraphToConvert(frozen, real_inputs, output_names, name, renames=renames)
