"""Hostile PyTorch files for the trust tests: real archives, each with one payload in one place.

Every payload, if anything ran it, would create a marker file; the tests assert it does not exist.
The archives are rewritten member by member with zipfile, as an attacker would, from files that
torch itself saved.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


class Payload:
    """Unpickling this runs ``os.system("touch <marker>")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


class ExecPayload(Payload):
    """The same through ``builtins.exec``: a global that a scan of module names alone would let through."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def payload(marker: Path) -> bytes:
    return pickle.dumps(Payload(marker), protocol=2)


class Program(nn.Module):
    """A parameter, a buffer and a tensor constant: one member of each kind in the .pt2."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.register_buffer("scale", torch.ones(3))
        self.offset = torch.tensor([2.0, 3.0, 4.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * self.scale + self.offset


def save_program(path: Path) -> Path:
    torch.manual_seed(0)
    program = torch.export.export(
        Program().eval(), (torch.randn(4, 4),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(program, str(path))
    return path


Change = Callable[[str, bytes], "dict[str, bytes]"]


def rewrite(source: Path, target: Path, change: Change) -> Path:
    """Copy the archive; ``change(name, data)`` returns the members to write in place of one (names under the root)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as new:
        for info in old.infolist():
            root, _, name = info.filename.partition("/")
            for new_name, data in change(name, old.read(info.filename)).items():
                new.writestr(f"{root}/{new_name}", data)
    return target


def edit_json(data: bytes, edit: Callable[[dict], None]) -> bytes:
    document = json.loads(data)
    edit(document)
    return json.dumps(document).encode()


def pickled_payload(config: str, member: str, fqn: str, marker: Path, new_member: str = "") -> Change:
    """A payload in place of one weight or constant, its config saying use_pickle (as torch writes subclasses)."""

    def change(name: str, data: bytes) -> dict[str, bytes]:
        if name == config:

            def edit(document: dict) -> None:
                document["config"][fqn]["use_pickle"] = True
                document["config"][fqn]["path_name"] = (new_member or member).rsplit("/", 1)[-1]

            return {name: edit_json(data, edit)}
        if name == member:
            return {new_member or member: payload(marker)}
        return {name: data}

    return change


def program_json(edit: Callable[[dict], None]) -> Change:
    """An edit of models/model.json, the program torch deserializes."""

    def change(name: str, data: bytes) -> dict[str, bytes]:
        return {name: edit_json(data, edit) if name == "models/model.json" else data}

    return change


def replace_node(document: dict, target: str, node: dict) -> None:
    """Put ``node`` (target and inputs) in place of the first node calling ``target``, keeping its output."""
    for existing in document["graph_module"]["graph"]["nodes"]:
        if existing["target"] == target:
            existing.update(node)
            return
    raise AssertionError(f"no node calls {target}")


def rename(value: object, old: str, new: str) -> object:
    """``value`` with every string and key equal to ``old`` replaced by ``new`` (a name, everywhere it is used)."""
    if isinstance(value, dict):
        return {(new if k == old else k): rename(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [rename(v, old, new) for v in value]
    return new if value == old else value


def rename_spec_key(spec: str, old: str, new: str) -> str:
    """A pytree spec (JSON, each node's context JSON again) with the dict key ``old`` renamed."""
    document = json.loads(spec)
    stack: list = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("context"), str):
                node["context"] = json.dumps(rename(json.loads(node["context"]), old, new))
            stack.extend(node.get("children_spec", []))
        elif isinstance(node, list):
            stack.extend(node)
    return json.dumps(document)


def add_member(name: str, data: bytes) -> Change:
    def change(existing: str, old: bytes) -> dict[str, bytes]:
        return {existing: old, name: data} if existing == "archive_format" else {existing: old}

    return change


def zip_bomb(source: Path, target: Path, inflated: int = 128 * 1024**2) -> Path:
    """``source`` plus one member of ``inflated`` zero bytes, deflated to about a thousandth of that."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        root = old.namelist()[0].split("/", 1)[0]
        for name in old.namelist():
            new.writestr(name, old.read(name))
        padding = zipfile.ZipInfo(f"{root}/padding")
        padding.compress_type = zipfile.ZIP_DEFLATED
        with new.open(padding, "w", force_zip64=True) as member:
            block = bytes(1024**2)
            for _ in range(inflated // len(block)):
                member.write(block)
    return target


class FileWriter(nn.Module):
    """TorchScript that adds 1 to the first three floats of a file: torch.from_file maps it shared."""

    def __init__(self, victim: Path) -> None:
        super().__init__()
        self.victim = str(victim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mapped = torch.from_file(self.victim, True, 3, dtype=torch.float32)
        mapped.add_(1.0)
        return x + mapped


class SetstateWriter(nn.Module):
    """The same from __setstate__, which torch.jit.load runs while it loads the archive."""

    def __init__(self, victim: Path) -> None:
        super().__init__()
        self.victim = str(victim)
        self.mapped = torch.zeros(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mapped

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.victim, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.mapped = torch.from_file(state[0], True, 3, dtype=torch.float32)
        self.mapped.add_(1.0)
        self.victim = state[0]
        self.training = state[1]


_TOUCH_OP: list[object] = []


def register_touch_op() -> None:
    """``torch.ops.onnx_convert_test.touch(x, path)``: a custom operator (as an op library registers one) that creates a file."""
    if _TOUCH_OP:
        return

    @torch.library.custom_op("onnx_convert_test::touch", mutates_args=())
    def touch(x: torch.Tensor, path: str) -> torch.Tensor:
        Path(path).touch()
        return x.clone()

    _TOUCH_OP.append(touch)


class CustomOpUser(nn.Module):
    """TorchScript calling the custom operator above: ``ops.onnx_convert_test.touch`` in its code."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.marker = str(marker)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.onnx_convert_test.touch(x, self.marker)


class CustomClassUser(nn.Module):
    """TorchScript building a torch.classes object: _ScriptProfile, a C++ class stock torch registers."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        profile = torch.classes.profiling._ScriptProfile()
        profile.enable()
        profile.disable()
        return x + 1.0


class Warner(nn.Module):
    """TorchScript that warns with the given text (torch.warn, as torch's own F.softmax does)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        warnings.warn(self.text, stacklevel=2)
        return x + 1.0


class SparseBuffer(nn.Module):
    """A sparse tensor attribute: torch.jit.load rebuilds it with _sparse_coo_tensor_unsafe."""

    def __init__(self) -> None:
        super().__init__()
        self.sparse = torch.sparse_coo_tensor(torch.tensor([[0, 1]]), torch.tensor([1.0, 2.0]), (4,))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sparse.to_dense()


def sparse_index(index: int) -> Change:
    """SparseBuffer's archive with its second index set to ``index`` (its indices are the int64 member [0, 1])."""

    def change(name: str, data: bytes) -> dict[str, bytes]:
        return {name: struct.pack("<2q", 0, index) if data == struct.pack("<2q", 0, 1) else data}

    return change


def edit_code(old: str, new: str) -> Change:
    """The archive with ``old`` replaced by ``new`` in the code members that hold it.

    TorchScript names a class after its module path, mangled when the process scripted another
    class of that name before (``linear/___torch_mangle_3.py``): members are found by content.
    """

    def change(name: str, data: bytes) -> dict[str, bytes]:
        text = data.decode("latin-1")
        return {name: text.replace(old, new).encode("latin-1") if name.endswith(".py") and old in text else data}

    return change


def rename_members(old: str, new: str) -> Change:
    """The archive with ``old`` replaced by ``new`` in every member's name."""

    def change(name: str, data: bytes) -> dict[str, bytes]:
        return {name.replace(old, new): data}

    return change


def replace_member(member: str, data: bytes) -> Change:
    def change(name: str, old: bytes) -> dict[str, bytes]:
        return {name: data if name == member else old}

    return change


def flatbuffer_polyglot(program: nn.Module, decoy: Path, target: Path) -> Path:
    """A flatbuffer (mobile) module with the TorchScript zip ``decoy`` appended: a zip reader sees the
    decoy, while torch.jit.load, seeing ``PTMF`` at byte 4, loads the flatbuffer's program."""
    from torch.jit._serialization import save_jit_module_to_flatbuffer

    save_jit_module_to_flatbuffer(torch.jit.script(program), str(target))
    target.write_bytes(target.read_bytes() + decoy.read_bytes())
    return target
