"""What a torch.export program (.pt2) makes torch run, checked in its JSON before torch reads it.

Besides pickles (pt2.py keeps those out), torch 2.13 runs four things a .pt2 names:
- shape expressions (``expr_str``): ``torch._export.serde.serialize`` parses them with
  ``sympy.sympify``, which is ``eval``: ``__import__('os').system(...)`` runs while the file loads;
- guards (``guards_code``): ``torch.export._unlift`` pastes them into Python source and ``exec``s
  it when ``program.module()`` is built, so they run in the reference run;
- operators (``target``, ``as_operator``): any registered op passes torch's verifier, and some
  reach outside the tensor world: ``aten.from_file(name, shared=True)`` reads and overwrites any
  file the process can write, ``aten.save`` writes one, ``aten._print`` writes to the log;
- names: ``torch.export._unlift`` copies the graph and FX writes Python source from it, with a
  placeholder's name, ``forward_arg_names`` or the keyword names of ``in_spec`` as parameters
  (``x=__import__('os').system(...)`` becomes a default value that runs) and a parameter's module
  path inside ``getattr(self, "...")``.

Each is parsed here with ``ast`` (never evaluated) against the small grammar torch writes, names must
be identifiers, and anything else is refused. Only files from outside torch.export.save differ.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

from converter.errors import UserError, shorten


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# sympy.srepr of a shape expression: Add(Mul(Integer(2), Symbol('s0', positive=True, integer=True)), ...).
# torch's own functions (torch.utils._sympy.functions) plus the sympy classes srepr writes for them.
SYMPY_CALLABLES = _names(
    "Symbol Integer Rational Float Add Mul Pow Mod Max Min Abs floor ceiling sign "
    "Equality Unequality StrictLessThan LessThan StrictGreaterThan GreaterThan Eq Ne Lt Le Gt Ge "
    "And Or Not Xor ITE Piecewise ExprCondPair BooleanTrue BooleanFalse "
    "Infinity NegativeInfinity NaN Zero One NegativeOne Half IntInfinity NegativeIntInfinity "
    "FloorDiv ModularIndexing Where PythonMod CleanDiv CeilToInt FloorToInt CeilDiv LShift RShift "
    "PowByNatural FloatPow FloatTrueDiv IntTrueDiv IsNonOverlappingAndDenseIndicator TruncToFloat "
    "TruncToInt RoundToInt RoundDecimal ToFloat Identity BitwiseFn_bitwise_and BitwiseFn_bitwise_or"
)
SYMPY_NAMES = frozenset({"oo", "zoo", "nan", "true", "false"})
# Constructors that take a string: a name, or a number's digits. Any other sympy class would
# sympify a string argument (eval again).
STRING_TAKERS = {"Symbol": re.compile(r"[A-Za-z_][A-Za-z0-9_]*"), "Float": re.compile(r"[-+0-9.eE]+|[-+]?(inf|nan)")}
POWERS = frozenset({"Pow", "PowByNatural", "FloatPow"})
MAX_EXPONENT = 64  # 2**(2**62) would hang the load; shapes never need more
MAX_INT = 2**64
MAX_TEXT = 20_000

# Guards: "L['x'].size()[0] == L['y'].size()[0]", "2 <= L['x'].size()[0]", math.floor(...), max(...).
GUARD_METHODS = frozenset({"size", "stride", "storage_offset", "dim", "numel"})
GUARD_FUNCTIONS = _names(
    "abs max min round int float IsNonOverlappingAndDenseIndicator cast_symbool_to_symint_guardless"
)
GUARD_KEY = re.compile(r"[A-Za-z0-9_.]*")  # the key is also pasted into a "..." message: no quotes

# Operators: aten (less those that reach files or the log) and torch's control-flow operators.
# The one list of denied aten operators: the TorchScript check (torchscript_code) uses it too.
DENIED_ATEN = frozenset({"from_file", "save", "_print", "warn"})
DENIED_ATEN_PATTERN = re.compile(r"_sparse_\w*_unsafe")  # no index check: writes out of bounds
HIGHER_ORDER = _names(
    "cond while_loop while_loop_stack_output map_impl scan associative_scan invoke_subgraph "
    "wrap_with_set_grad_enabled wrap_with_autocast flex_attention out_dtype auto_functionalized "
    "auto_functionalized_v2 with_effects"
)
# Plain Python callables torch's verifier accepts (torch.export writes them for symbolic shapes).
TORCH_FUNCTIONS = re.compile(
    r"torch\.(_?sym_\w+|_C\._set_grad_enabled|autograd\.grad_mode\.set_grad_enabled"
    r"|amp\.autocast_mode\._(enter|exit)_autocast|fx\.experimental\.symbolic_shapes\.cast_symbool_to_symint_guardless)"
)
# Where the schema (torch/_export/serde/schema.py) holds a name that FX may write into Python source.
NAME_KEYS = frozenset({"name", "as_name", "user_input_name"})
DOTTED_NAME_KEYS = frozenset(
    {"parameter_name", "buffer_name", "tensor_constant_name", "custom_obj_name", "fqn", "class_fqn"}
)
NAMED_VALUES = frozenset(
    {"tensor_values", "sym_int_values", "sym_bool_values", "sym_float_values", "custom_obj_values"}
)
DOTTED_NAME = re.compile(r"(\w+(\.\w+)*)?")  # "", "linear", "layers.0.weight"
SPEC_KEY = re.compile(r"[\w. -]*")  # dict keys and type names of a pytree spec: nothing that forms code
OPERATOR = re.compile(r"torch\.ops\.(\w+)\.(?!__)(\w+)(\.(?!__)\w+)?")  # no dunders: they lead out of torch.ops
# aten's bitwise operators are named as dunders: ``attention_mask & causal`` (OPT, Llama masks) is
# ``torch.ops.aten.__and__.Tensor``. These, by name and with their tensor overloads, are aten ops.
ATEN_BITWISE = re.compile(r"torch\.ops\.aten\.__i?(and|or|xor|lshift|rshift)__\.(Tensor|Scalar)")


class Refused(Exception):
    """A string of the program outside what torch.export writes; the message says which and why it matters."""

    @classmethod
    def code(cls, what: str, text: str, why: str = "") -> Refused:
        return cls(f"the {what} {text[:80]!r}{why} is not one torch.export writes, and torch runs it as Python")


def check_program(document: Any, file_name: str) -> None:
    """Refuse (exit 2) a program whose JSON makes torch run anything but tensor operators."""
    try:
        for mapping in _mappings(document):
            if "target" in mapping and "inputs" in mapping:  # a graph node
                check_operator(mapping["target"])
            if "as_operator" in mapping:  # an operator passed to another (with_effects, auto_functionalized)
                check_operator(mapping["as_operator"])
            if "expr_str" in mapping:
                check_expression(mapping["expr_str"])
            for spec in ("in_spec", "out_spec"):
                if mapping.get(spec) is not None:
                    check_spec(mapping[spec])
            check_names(mapping)
        guards = document.get("guards_code", []) if isinstance(document, dict) else []
        for guard in guards if isinstance(guards, list) else [guards]:
            check_guard(guard)
    except Refused as exc:
        raise UserError(
            f"{file_name}: {exc}",
            "export and save the model again with torch.export, without it, or pass --allow-unsafe-load true if you "
            "trust the file",
        ) from None


def _mappings(document: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in the document, depth first; a loop, not recursion (JSON can nest deep)."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_names(mapping: dict[str, Any]) -> None:
    """The names of one JSON object: identifiers, or dotted ones where the schema holds a module path."""
    names = [mapping[key] for key in NAME_KEYS & mapping.keys() if mapping[key] is not None]
    arg_names = mapping.get("forward_arg_names") or []
    names += arg_names if isinstance(arg_names, list) else [arg_names]
    for key in NAMED_VALUES & mapping.keys():
        names += list(mapping[key]) if isinstance(mapping[key], dict) else [mapping[key]]
    for name in names:
        if not (isinstance(name, str) and (name.isidentifier() or name == "")):  # "": a positional argument
            raise Refused(
                f"the name {shorten(repr(name), 80)} is not an identifier, and FX writes it into Python source"
            )
    for key in DOTTED_NAME_KEYS & mapping.keys():
        name = mapping[key]
        if not (isinstance(name, str) and DOTTED_NAME.fullmatch(name)):
            raise Refused(
                f"the module path {shorten(repr(name), 80)} is not dotted identifiers, and FX writes it into Python source"
            )


def check_spec(text: Any) -> None:
    """A pytree spec (JSON in a string): its keys name the keyword inputs, which FX writes into ``def forward``."""
    try:
        document = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise Refused(f"the input or output spec {shorten(repr(text), 80)} is not JSON") from None
    for mapping in _mappings(document):
        context = mapping.get("context")
        try:
            keys = json.loads(context) if isinstance(context, str) else context
        except (ValueError, RecursionError):
            raise Refused(f"the spec context {shorten(repr(context), 80)} is not JSON") from None
        for key in _leaves(keys):
            if isinstance(key, str) and not SPEC_KEY.fullmatch(key):
                raise Refused(f"the input or output key {shorten(repr(key), 80)} could be written into Python source")


def _leaves(value: Any) -> Iterator[Any]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list | dict):
            stack.extend(item.values() if isinstance(item, dict) else item)
        else:
            yield item


def check_operator(target: Any) -> None:
    if not isinstance(target, str):
        raise Refused(f"the operator {shorten(repr(target), 80)} is not an operator name")
    if not target.startswith(("torch", "#")):
        return  # _operator.* and math.* resolve to builtins torch's verifier lists; other text stays text
    if not _allowed_operator(target):
        raise Refused(
            f"the operator {target[:80]!r} is not one this tool runs: it is not a tensor operation of aten, or it "
            "reaches files, the log or Python"
        )


def _allowed_operator(target: str) -> bool:
    if ATEN_BITWISE.fullmatch(target):
        return True
    match = OPERATOR.fullmatch(target)
    if match is None:
        return TORCH_FUNCTIONS.fullmatch(target) is not None
    namespace, name, overload = match.groups()
    if namespace == "aten":
        return name not in DENIED_ATEN and not DENIED_ATEN_PATTERN.fullmatch(name)
    return namespace == "higher_order" and name in HIGHER_ORDER and overload is None


def check_expression(text: Any) -> None:
    """A shape expression: nested calls of SYMPY_CALLABLES on numbers, strings only where they are names."""
    tree = _parse(text, "shape expression")
    _check_sympy_node(tree.body, text)


def _check_sympy_node(node: ast.AST, text: str) -> None:
    if isinstance(node, ast.Name) and node.id in SYMPY_NAMES:
        return
    if _is_number(node):
        return
    if isinstance(node, ast.Tuple):
        for element in node.elts:
            _check_sympy_node(element, text)
        return
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SYMPY_CALLABLES:
        name = node.func.id
        for position, argument in enumerate(node.args):
            pattern = STRING_TAKERS.get(name) if position == 0 else None
            if pattern and isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                if not pattern.fullmatch(argument.value):
                    raise Refused.code("shape expression", text)
            else:
                _check_sympy_node(argument, text)
        for keyword in node.keywords:
            if keyword.arg is None or not (isinstance(keyword.value, ast.Constant) and _plain(keyword.value.value)):
                raise Refused.code("shape expression", text)
        if name in POWERS and not _bounded_power(node):
            raise Refused.code("shape expression", text, f" (an exponent above {MAX_EXPONENT})")
        return
    raise Refused.code("shape expression", text)


def _bounded_power(call: ast.Call) -> bool:
    """A power sympy will not expand into a huge number: symbolic, or with a small literal exponent."""
    if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "Symbol" for n in ast.walk(call)):
        return True
    if len(call.args) != 2:
        return False
    exponent = call.args[1]
    literal = exponent.args[0] if isinstance(exponent, ast.Call) and exponent.args else exponent  # Integer(3)
    value = _number(literal)
    return value is not None and abs(value) <= MAX_EXPONENT


def check_guard(text: Any) -> None:
    """A guard: comparisons and arithmetic of input sizes (``L['x'].size()[0]``), numbers and math functions."""
    tree = _parse(text, "guard")
    for node in ast.walk(tree):
        if not _guard_node_ok(node):
            raise Refused.code("guard", text)


def _guard_node_ok(node: ast.AST) -> bool:
    if isinstance(node, ast.Expression | ast.Compare | ast.BoolOp | ast.UnaryOp | ast.Load | ast.cmpop):
        return True
    if isinstance(node, ast.boolop | ast.unaryop | ast.operator):
        return True
    if isinstance(node, ast.BinOp):
        exponent = _number(node.right) if isinstance(node.op, ast.Pow) else 0
        return exponent is not None and abs(exponent) <= MAX_EXPONENT
    if isinstance(node, ast.Constant):
        return _plain(node.value) or (isinstance(node.value, str) and GUARD_KEY.fullmatch(node.value) is not None)
    if isinstance(node, ast.Name):
        return node.id in ("L", "math", "torch") or node.id in GUARD_FUNCTIONS
    if isinstance(node, ast.Attribute):
        base = node.value.id if isinstance(node.value, ast.Name) else None
        if base == "math":
            return not node.attr.startswith("_")
        if base == "torch":
            return re.fullmatch(r"_?sym_\w+", node.attr) is not None
        return node.attr in GUARD_METHODS and isinstance(node.value, ast.Subscript | ast.Name)
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant)
    if isinstance(node, ast.Call):
        return not node.keywords and isinstance(node.func, ast.Name | ast.Attribute)
    return False


def _parse(text: Any, what: str) -> ast.Expression:
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        size = f"{len(text):,} characters" if isinstance(text, str) else type(text).__name__
        raise Refused(f"a {what} of {size} is not one torch.export writes")
    try:
        return ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise Refused.code(what, text) from None


def _is_number(node: ast.AST) -> bool:
    return _number(node) is not None


def _number(node: ast.AST) -> int | float | None:
    """The value of a literal number (``3``, ``-3``, ``1.5``), within MAX_INT; None otherwise."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        node = node.operand
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and _plain(value):
        return sign * value
    return None


def _plain(value: Any) -> bool:
    """A literal that sympy and Python take as it is: bool, None, or a number within MAX_INT."""
    if isinstance(value, bool) or value is None:
        return True
    return isinstance(value, int | float) and abs(value) <= MAX_INT
