"""Decide from a TorchScript archive's own code, before torch.jit.load runs any of it, that it only computes on tensors.

What ``torch.jit.load`` reads and runs (torch 2.13: torch/csrc/jit/serialization/import.cpp,
import_source.cpp, unpickler.cpp, python_print.cpp; frontend/ir_emitter.cpp):

- a file whose bytes 4-8 are ``PTMF`` is a flatbuffer (mobile) module, read by another loader
  whatever else the file holds; an archive holding ``model.json`` is the format of PyTorch 1.0-1.2;
- ``constants.pkl`` and ``data.pkl`` go through TorchScript's own unpickler (``.debug_pkl`` source
  ranges too): tensors, containers, and objects of the classes they name, whose ``__setstate__``
  it runs, TorchScript for the archive's own ``__torch__`` classes, C++ for ``torch.classes``
  (custom classes). It rebuilds sparse tensors with ``_sparse_coo_tensor_unsafe``: indices unchecked;
- ``code/**.py`` is Python syntax, compiled by the TorchScript compiler. Everything it can do is a
  call: ``torch.<op>`` is ``aten::<op>``, ``ops.<namespace>.<op>`` an operator of any namespace, a
  method of a tensor an aten operator, a builtin (``print`` writes to stdout), or the archive's
  own ``__torch__`` classes and functions. Loading runs ``__setstate__``; the conversion runs ``forward``;
- extra files (``extra/``) are read only when asked for by name, which this tool never does.

The archive is read with torch's own reader (the one torch.jit.load uses: both see the same
bytes for a name) and refused (exit 2) unless every code member is the printable ASCII Python
that torch.jit.save writes (no comments: TorchScript reads ``# type:`` ones), made of the
statements it writes, and every name, call and attribute in it is one of: the aten operators
(less those of ``DENIED_ATEN``, shared with the .pt2 check), ``prim`` (less stdout, Python and RPC),
``quantized`` (torch's quantized kernels), the builtins and types TorchScript prints, the
function's own variables, and the archive's own ``__torch__`` classes and functions; and every
class a pickle names is a tensor rebuilder, a container, or one of the archive's classes.
"""

from __future__ import annotations

import ast
import bisect
import pickletools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from converter.errors import UserError, shorten
from converter.frameworks.pytorch.pt2_code import DENIED_ATEN, DENIED_ATEN_PATTERN

HINT = (
    "save the model without it, as a torch.export program (.pt2) or a state_dict (.pt or .safetensors) with "
    "--model-code, or pass --allow-unsafe-load true if you trust the file"
)
DAMAGED_HINT = "save it again with torch.jit.save, or pass --allow-unsafe-load true if you trust the file"


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# What a bare name resolves to besides the function's own variables: the builtins of ir_emitter.cpp
# (print aside), the names import_source.cpp adds, and the types python_print.cpp writes.
GLOBALS = _names(
    "tuple float complex int bool str getattr hasattr isinstance _to_tensor len hex oct round hash id min max abs "
    "all any divmod sum list dict ord chr bin pow range zip enumerate rangelist sorted "
    "torch ops CONSTANTS fork awaitable annotate unchecked_cast uninitialized inf nan infj nanj __torch__ "
    "Tensor number None NoneType Any Device Stream Capsule Storage Generator ScalarType Layout MemoryFormat QScheme "
    "List Tuple Dict Optional Union Future Await Final "
    "LongTensor DoubleTensor FloatTensor IntTensor ShortTensor HalfTensor CharTensor ByteTensor BoolTensor"
)
DENIED_NAMES = _names("print")  # prim::Print writes to stdout: the runner's log, where it can be a workflow command
# Names of namespaces, judged by what follows them (torch.<op>): never a value of their own, which
# TorchScript would let the code bind (m = ops; m.<any namespace>.<op>) or pass to getattr().
NAMESPACE_NAMES = _names("torch ops __torch__ CONSTANTS")
# Calls whose argument at this position is a type (ir_emitter.cpp emitApplySpecialForm).
TYPE_ARGUMENTS = {"annotate": 0, "unchecked_cast": 0, "uninitialized": 0, "isinstance": 1}
CLASS_BASES = _names("Module Interface ModuleInterface NamedTuple Enum")  # import_source.cpp importNamedType
# aten.warn reaches Python's warnings, which this tool ignores or captures wherever TorchScript runs
# (test_torchscript_warning_text_stays_out_of_the_log); torch's own nn.functional calls it (softmax).
DENIED_ATEN_HERE = DENIED_ATEN - {"warn"}
DENIED_PRIM = _names("Print PythonOp IgnoredPythonOp rpc_async rpc_sync rpc_remote")  # stdout, Python, the network
NAMESPACES = _names("aten prim quantized")  # quantized: torch.ao.nn.quantized modules call it
# The packed weights of torch's quantized modules, the only custom C++ classes (torch.classes) let through.
CUSTOM_CLASS_PREFIX = "__torch__.torch.classes."
CUSTOM_CLASSES = frozenset(
    f"__torch__.torch.classes.quantized.{kind}PackedParamsBase" for kind in ("Linear", "Conv2d", "Conv3d", "Embedding")
)
# The syntax python_print.cpp writes: anything else (lambda, import, global, try, a comprehension...) is refused.
NODES = frozenset(
    getattr(ast, name)
    for name in _names(
        "Module ClassDef FunctionDef arguments arg Return Assign AnnAssign For While If With withitem Expr Pass "
        "Attribute Call Constant Dict List Tuple Name Subscript Slice UnaryOp USub keyword Load Store"
    )
)
# The globals TorchScript's unpickler rebuilds (unpickler.cpp readGlobal), less _rebuild_sparse_tensor and rpc.rref.
PICKLE_GLOBALS = _names(
    "torch._utils._rebuild_tensor_v2 torch._utils._rebuild_qtensor torch._tensor._rebuild_from_type_v2 torch.Tensor "
    "torch.jit._pickle.build_tensor_from_id torch.jit._pickle.restore_type_tag torch.jit._pickle.build_intlist "
    "torch.jit._pickle.build_tensorlist torch.jit._pickle.build_doublelist torch.jit._pickle.build_boollist "
    "builtins.complex collections.OrderedDict torch.device __main__.TensorID __main__.IntList"
)
PICKLE_ENUMS = re.compile(r"torch\.(\w+Storage|per_(tensor|channel)_\w+)")  # dtypes and quantization schemes
PICKLE_REASONS = {
    "torch._utils._rebuild_sparse_tensor": "a sparse tensor, which TorchScript's unpickler builds without checking "
    "its indices (out-of-bounds memory writes)",
    "torch.distributed.rpc.rref": "a remote reference, which connects to other processes",
}
PRINTABLE = re.compile(r"[\x20-\x7e\n]*")
CONSTANT = re.compile(r"c\d+")
# The largest code member of a scripted or traced vision model is 30 kB, all of it 130 kB (bench/torchscript_trust.py);
# Python's syntax tree of printed TorchScript takes ~55x the text in memory and ~1 s a MB to walk.
MAX_MEMBER_BYTES = 4 * 1024**2
MAX_CODE_BYTES = 16 * 1024**2
TOP_LEVEL = re.compile(r"^(?:class|def)[ \t]+([A-Za-z_]\w*)", re.MULTILINE)
FLATBUFFER_MAGIC = b"PTMF"  # torch/csrc/jit/mobile/file_format.h: bytes 4-8 of a flatbuffer module


class Refused(Exception):
    """A construct torch would run that this tool does not; the message names it and where it is."""

    def __init__(self, message: str, hint: str = HINT) -> None:
        super().__init__(message)
        self.hint = hint


def check_archive(torch: Any, path: Path) -> None:
    """Refuse (exit 2) a TorchScript archive whose loading or running could do more than compute on tensors."""
    try:
        _check(torch, path)
    except Refused as exc:
        raise UserError(f"{path.name}: {exc}", exc.hint) from None


def _check(torch: Any, path: Path) -> None:
    with path.open("rb") as handle:
        if handle.read(8)[4:] == FLATBUFFER_MAGIC:
            raise Refused("the file is a TorchScript flatbuffer (mobile) module, whose code this tool does not read")
    reader = torch._C.PyTorchFileReader(str(path))
    names = list(reader.get_all_records())
    _refuse_ambiguous_names(names)
    # torch's reader (miniz) finds a member whatever the case of its name: so does this selection.
    if "model.json" in (name.lower() for name in names):
        raise Refused("the archive holds model.json: the TorchScript format of PyTorch 1.0 to 1.2, not checked here")
    sources = [name for name in names if name.lower().endswith(".py")]
    _refuse_oversized_code(reader, sources)
    # The names each member defines, read from its lines, so that one syntax tree at a time is in memory.
    tops = {name: frozenset(TOP_LEVEL.findall(reader.get_record(name).decode("latin-1"))) for name in sources}
    defined = _defined(tops)
    for name in sources:
        tree = parse(name, reader.get_record(name))
        if {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)} != tops[name]:
            raise Refused(f"{_show(name)} has a line that starts like a class or def but is none", DAMAGED_HINT)
        CodeCheck(name, defined).module(tree)
    for name in names:
        if name.lower().endswith((".pkl", ".debug_pkl")):
            check_pickle(name, reader.get_record(name), defined)


def _refuse_oversized_code(reader: Any, sources: list[str]) -> None:
    """Python's syntax tree takes ~55 times the text in memory: bound the text before parsing it."""
    for name in sources:
        if reader.get_record_size(name) > MAX_MEMBER_BYTES:
            raise Refused(f"{_show(name)} holds more than {MAX_MEMBER_BYTES // 1024**2} MiB of code")
    if sum(reader.get_record_size(name) for name in sources) > MAX_CODE_BYTES:
        raise Refused(f"the archive holds more than {MAX_CODE_BYTES // 1024**2} MiB of code")


def _refuse_ambiguous_names(names: list[str]) -> None:
    """Two members whose names differ only in case: torch's reader (miniz) finds one of them by either name."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.lower(), name)
        if other is not name:
            raise Refused(f"the archive holds two members named {_show(name)} (ignoring case), and torch reads one")


def _show(text: str) -> str:
    return text if re.fullmatch(r"[\w./-]{1,120}", text) else shorten(repr(text), 80)


# -- code ---------------------------------------------------------------------------------------


def parse(member: str, data: bytes) -> ast.Module:
    """A code member as Python syntax, when it is the printable ASCII without comments that torch writes."""
    text = data.decode("latin-1")
    if not PRINTABLE.fullmatch(text):
        bad = re.search(r"[^\x20-\x7e\n]", text)
        assert bad is not None
        line = text.count("\n", 0, bad.start()) + 1
        raise Refused(f"{_show(member)}:{line} holds the character {bad.group()!r}, which torch.jit.save never writes")
    try:
        tree = ast.parse(text, filename=member)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        where = getattr(exc, "lineno", None) or "?"
        raise Refused(f"{_show(member)}:{where} is not the Python syntax torch.jit.save writes", DAMAGED_HINT) from None
    if "#" in text:
        _refuse_comments(member, text, tree)
    return tree


def _refuse_comments(member: str, text: str, tree: ast.Module) -> None:
    """A ``#`` outside a string starts a comment, which Python skips and TorchScript reads (``# type:``)."""
    starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column

    spans = sorted(
        (offset(n.lineno, n.col_offset), offset(n.end_lineno or n.lineno, n.end_col_offset or 0))
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    )
    begins = [begin for begin, _ in spans]
    for hash_sign in re.finditer("#", text):
        index = bisect.bisect_right(begins, hash_sign.start()) - 1
        if index < 0 or spans[index][1] <= hash_sign.start():
            line = text.count("\n", 0, hash_sign.start()) + 1
            raise Refused(f"{_show(member)}:{line} holds a comment, which torch.jit.save never writes")


def _defined(tops: dict[str, frozenset[str]]) -> frozenset[str]:
    """The qualified names of the archive's own classes and functions: ``code/a/b.py`` defines ``a.b.<name>``.

    Not under ``__torch__.torch.classes``: torch looks a name up among the C++ classes first, and
    skips a class of the archive that claims one (import_source.cpp findNamedType, importClass).
    """
    names: set[str] = set()
    for member, defined in tops.items():
        qualifier = member.removeprefix("code/")[: -len(".py")].replace("/", ".")
        if member.startswith("code/") and not f"{qualifier}.".startswith(CUSTOM_CLASS_PREFIX):
            names.update(f"{qualifier}.{name}" for name in defined)
    return frozenset(names)


class CodeCheck:
    """Judge one code member: its statements, and every name, call and attribute chain in them."""

    def __init__(self, member: str, defined: frozenset[str]) -> None:
        self.member = member
        self.defined = defined
        self.called: set[int] = set()  # the nodes called, among those expressions() judges

    def where(self, node: ast.AST) -> str:
        return f"{_show(self.member)}:{getattr(node, 'lineno', '?')}"

    def module(self, tree: ast.Module) -> None:
        for statement in tree.body:
            if isinstance(statement, ast.ClassDef):
                self.class_body(statement)
            elif isinstance(statement, ast.FunctionDef):
                self.function(statement)
            else:
                self.syntax(statement)
                raise Refused(f"{self.where(statement)} holds a top-level statement other than class or def")

    def syntax(self, node: ast.AST) -> None:
        if type(node) not in NODES or getattr(node, "decorator_list", None):
            raise Refused(f"{self.where(node)} holds Python syntax torch.jit.save never writes ({_syntax(node)})")

    def class_body(self, node: ast.ClassDef) -> None:
        self.syntax(node)
        bases = [b.id if isinstance(b, ast.Name) else "" for b in node.bases]
        if node.keywords or len(bases) > 1 or (bases and bases[0] not in CLASS_BASES):
            raise Refused(f"{self.where(node)}: class {node.name} derives from what TorchScript classes cannot")
        for statement in node.body:
            if isinstance(statement, ast.FunctionDef):
                self.function(statement)
            else:  # attributes, their types, constants, __parameters__ = ["weight", ...]
                self.expressions(list(ast.walk(statement)), frozenset({"__annotations__"}))

    def function(self, node: ast.FunctionDef) -> None:
        nodes = list(ast.walk(node))
        local = {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        local |= {n.arg for n in nodes if isinstance(n, ast.arg)}
        local |= {n.name for n in nodes if isinstance(n, ast.FunctionDef)}  # fork(__forked_function)
        self.expressions(nodes, frozenset(local))

    def expressions(self, nodes: list[ast.AST], local: frozenset[str]) -> None:
        """Every node once: its kind, and each name, outermost attribute chain, getattr() and literal."""
        inner = {id(n.value) for n in nodes if isinstance(n, ast.Attribute)}
        self.called = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
        for root in _type_roots(nodes):
            for node in ast.walk(root):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    raise Refused(
                        f"{self.where(node)} writes the type {shorten(repr(node.value), 60)} as a string, which "
                        "TorchScript looks up by name (C++ classes too)"
                    )
        for node in nodes:
            self.syntax(node)
            if isinstance(node, ast.Name):
                self.name(node, local)
                if node.id in NAMESPACE_NAMES and id(node) not in inner:
                    raise Refused(f"{self.where(node)} uses {node.id!r} as a value, not to name an operator or class")
            elif isinstance(node, ast.Attribute) and id(node) not in inner:
                self.chain(node)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
            ):
                self.getattr_call(node, node.func.id)
            elif isinstance(node, ast.Constant) and not _literal(node.value):
                raise Refused(
                    f"{self.where(node)} holds a {type(node.value).__name__} literal, not one TorchScript has"
                )

    def name(self, node: ast.Name, local: frozenset[str]) -> None:
        if node.id in DENIED_NAMES:
            raise Refused(f"{self.where(node)} names {node.id!r}, which writes to the log")
        if isinstance(node.ctx, ast.Load) and node.id not in local and node.id not in GLOBALS:
            raise Refused(f"{self.where(node)} uses the name {node.id!r}, which is not one TorchScript code uses")

    def chain(self, node: ast.Attribute) -> None:
        """``torch.<op>``, ``ops.<ns>.<op>``, ``__torch__.<own>``, ``CONSTANTS.c<n>``, or attributes of a value."""
        parts: list[str] = []
        root: ast.AST = node
        while isinstance(root, ast.Attribute):
            parts.insert(0, root.attr)
            root = root.value
        base = root.id if isinstance(root, ast.Name) else ""
        text = ".".join([base or "(...)", *parts])
        if base == "torch":
            op = parts[1] if len(parts) == 2 and parts[0] == "autograd" else parts[0] if len(parts) == 1 else ""
            self.operator(node, text, "aten", op)
        elif base == "ops":
            if len(parts) != 2:
                raise Refused(f"{self.where(node)} uses {text!r}, not an operator")
            self.operator(node, text, *parts)
        elif base == "CONSTANTS":
            if len(parts) != 1 or not CONSTANT.fullmatch(parts[0]):
                raise Refused(f"{self.where(node)} uses {text!r}, not an entry of the constants table")
        elif base == "__torch__":
            self.attributes(node, self.own(node, parts))
        else:
            self.attributes(node, parts)

    def operator(self, node: ast.AST, text: str, namespace: str, op: str) -> None:
        if namespace not in NAMESPACES or not op:
            raise Refused(
                f"{self.where(node)} calls {text!r}, an operator outside aten, prim and quantized (a custom op "
                "library this tool does not run)"
            )
        if _denied(namespace, op):
            raise Refused(f"{self.where(node)} calls {text!r}, an operator that reaches files, the log or Python")

    def own(self, node: ast.AST, parts: list[str]) -> list[str]:
        """The attributes after the archive's own class or function that ``__torch__.<parts>`` names."""
        for end in range(len(parts), 0, -1):
            name = ".".join(["__torch__", *parts[:end]])
            if name in self.defined:
                return parts[end:]
            if name in CUSTOM_CLASSES and end == len(parts) and id(node) not in self.called:
                return []  # as a type: its objects come from the pickles, through its __setstate__
        if parts[:2] == ["torch", "classes"]:
            text = ".".join(["__torch__", *parts[:4]])
            if text in CUSTOM_CLASSES:
                raise Refused(f"{self.where(node)} uses {text!r} other than as a type (its objects come from pickles)")
            raise Refused(f"{self.where(node)} uses {text!r}, a custom C++ class (torch.classes) not in the file")
        text = ".".join(["__torch__", *parts])
        raise Refused(f"{self.where(node)} uses {text!r}, which the archive does not define")

    def attributes(self, node: ast.AST, parts: Iterable[str]) -> None:
        """Fields and methods of a value: a method of a tensor is the aten operator of that name."""
        for part in parts:
            if _denied("aten", part) or part in DENIED_PRIM:
                raise Refused(
                    f"{self.where(node)} calls the method {part!r}, an operator that reaches files, the log or Python"
                )

    def getattr_call(self, node: ast.Call, function: str) -> None:
        """``getattr(x, "name")`` is ``x.name``: the name must be a literal, judged as an attribute."""
        name = node.args[1] if len(node.args) == 2 and not node.keywords else None
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            raise Refused(f"{self.where(node)} calls {function}() without a literal attribute name")
        self.attributes(node, [name.value])


def _type_roots(nodes: list[ast.AST]) -> Iterator[ast.AST]:
    """The type expressions among ``nodes``: annotations, and the type argument of annotate() and the like."""
    for node in nodes:
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            yield node.annotation
        elif isinstance(node, ast.FunctionDef) and node.returns is not None:
            yield node.returns
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in TYPE_ARGUMENTS:
            yield from node.args[TYPE_ARGUMENTS[node.func.id] :][:1]
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
            yield node.value  # __annotations__["0"] = <type>, in a class body


def _denied(namespace: str, op: str) -> bool:
    if namespace == "aten":
        return op in DENIED_ATEN_HERE or DENIED_ATEN_PATTERN.fullmatch(op) is not None
    return namespace == "prim" and op in DENIED_PRIM


def _literal(value: Any) -> bool:
    return value is None or isinstance(value, str | bool | int | float | complex)


def _syntax(node: ast.AST) -> str:
    return "a decorator" if getattr(node, "decorator_list", None) else type(node).__name__


# -- pickles --------------------------------------------------------------------------------------


def check_pickle(member: str, data: bytes, defined: frozenset[str]) -> None:
    """Every class a pickle names is one TorchScript's unpickler rebuilds safely, or the archive's own."""
    for name in _globals(member, data):
        if name in PICKLE_GLOBALS or PICKLE_ENUMS.fullmatch(name) or name in defined or name in CUSTOM_CLASSES:
            continue
        if name in PICKLE_REASONS:
            raise Refused(f"{_show(member)} holds {PICKLE_REASONS[name]} ({name})")
        if name.startswith(CUSTOM_CLASS_PREFIX):
            raise Refused(
                f"{_show(member)} holds a {shorten(name, 80)!r}, a custom C++ class (torch.classes) whose "
                "__setstate__ torch.jit.load runs"
            )
        raise Refused(f"{_show(member)} names {shorten(name, 80)!r}, not a class TorchScript's unpickler rebuilds here")


def _globals(member: str, data: bytes) -> Iterator[str]:
    """The ``module.name`` of every GLOBAL, the only opcode naming code that TorchScript's unpickler reads."""
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name == "GLOBAL":
                module, _, name = str(arg).partition(" ")
                yield f"{module}.{name}"
            elif opcode.name in ("STACK_GLOBAL", "INST", "OBJ", "EXT1", "EXT2", "EXT4"):
                raise Refused(
                    f"{_show(member)} uses the pickle opcode {opcode.name}, which torch.jit.save never writes"
                )
    except Refused:
        raise
    except Exception:  # where pickletools stops, torch's unpickler may read on (it checks less, e.g. UTF-8)
        raise Refused(f"{_show(member)} is not a pickle this tool can read through", DAMAGED_HINT) from None
