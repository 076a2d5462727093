"""PyTorch model files: what a file is (without importing torch) and how to load it safely.

Formats:
- ``torchscript``: a ``torch.jit.save`` zip (``code/`` and ``constants.pkl``), loaded by ``torch.jit.load``
  once torchscript_code has found that its code only computes on tensors (or with --allow-unsafe-load).
- ``exported_program``: a ``torch.export.save`` zip (``archive_format``), loaded by pt2.
- ``state_dict``: a ``torch.save`` file whose pickle holds only tensors and containers.
- ``safetensors``: a safetensors file (always weights only).
- ``pickled_module``: a ``torch.save`` file whose pickle names other classes (a whole nn.Module):
  unpickling runs code, so it needs --allow-unsafe-load.
- ``transformers``: a Hugging Face ``save_pretrained()`` folder (hf_folder, hf_load).
"""

from __future__ import annotations

import io
import pickletools
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from converter.archives import check_archive_bounds
from converter.errors import UserError, shorten
from converter.frameworks.pytorch import hf_folder
from converter.model_code import ModelCode, defined_here, import_file

# The formats that run nothing from the file beyond tensor operations (TorchScript: once its code is checked).
SAFE_FORMATS = (
    "save it as TorchScript (torch.jit.save), as a torch.export program (.pt2), "
    "or as a state_dict (.pt or .safetensors) with --model-code"
)
# Files torch.save writes under these suffixes when they are not zip archives (the pre-1.6 format).
LEGACY_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt"}
# Globals a weights-only pickle may name: containers, tensor rebuilders, storages, dtypes.
WEIGHTS_ONLY_MODULES = {"collections", "torch._utils", "torch", "builtins", "__builtin__", "_codecs", "torch._tensor"}
# Keys under which training scripts commonly nest the state_dict in a checkpoint dict.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "module")
MAX_KEYS_SHOWN = 8


def detect_format(path: Path) -> str | None:
    """The PyTorch format of ``path``, read from its structure; torch is not imported."""
    if path.is_dir():
        return "transformers" if hf_folder.detect(path) else None
    if not path.is_file():
        return None
    if path.suffix.lower() == ".safetensors":
        return "safetensors"
    if zipfile.is_zipfile(path):
        check_archive_bounds(path, "--model-path")  # detection reads data.pkl: not from a zip bomb
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                # Every entry sits under one top-level folder named after the saved file.
                inner = {name.split("/", 1)[1] for name in names if "/" in name}
                if "archive_format" in inner:
                    return "exported_program"
                if "constants.pkl" in inner and any(n.startswith("code/") for n in inner):
                    return "torchscript"
                pickles = [n for n in names if n.endswith("/data.pkl")]
                if not pickles:
                    return None
                data = archive.read(pickles[0])
        except (zipfile.BadZipFile, OSError):
            return None
        return "pickled_module" if foreign_globals([data]) else "state_dict"
    if path.suffix.lower() in LEGACY_SUFFIXES and _looks_like_pickle(path):
        return "pickled_module" if foreign_globals(_legacy_pickles(path)) else "state_dict"
    return None


def _looks_like_pickle(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _legacy_pickles(path: Path) -> list[bytes]:
    """The pickles at the head of a legacy torch.save file (magic, protocol, sys info, object)."""
    data = path.read_bytes()
    stream = io.BytesIO(data)
    found = []
    for _ in range(4):
        start = stream.tell()
        try:
            for _op in pickletools.genops(stream):
                pass
        except Exception:  # the raw storage bytes follow the pickles
            break
        found.append(data[start : stream.tell()])
    return found


def foreign_globals(pickles: list[bytes]) -> list[str]:
    """Classes and functions a pickle names beyond what a weights-only file needs.

    Read from the opcodes, never by unpickling; torch.load(weights_only=True) stays the real gate.
    """
    found: list[str] = []
    for data in pickles:
        strings: list[str] = []
        memo: dict[int, str] = {}
        try:
            for opcode, arg, _pos in pickletools.genops(data):
                name = opcode.name
                if name == "GLOBAL":
                    module, _, attr = str(arg).partition(" ")
                    _add_global(found, module, attr)
                elif name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                    strings.append(str(arg))
                elif name == "MEMOIZE" and strings:
                    memo[len(memo)] = strings[-1]
                elif name in ("BINPUT", "LONG_BINPUT", "PUT") and strings:
                    memo[int(str(arg))] = strings[-1]
                elif name in ("BINGET", "LONG_BINGET", "GET") and int(str(arg)) in memo:
                    strings.append(memo[int(str(arg))])
                elif name == "STACK_GLOBAL" and len(strings) >= 2:
                    _add_global(found, strings[-2], strings[-1])
        except Exception:  # a damaged pickle: torch.load will say so
            continue
    return found


def _add_global(found: list[str], module: str, attr: str) -> None:
    if module in WEIGHTS_ONLY_MODULES:
        return
    qualified = f"{module}.{attr}"
    if qualified not in found:
        found.append(qualified)


def describe_pickled_class(path: Path) -> str:
    """The class a pickled module names first (the user's, not torch.nn's), for error messages."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                pickles = [archive.read(n) for n in archive.namelist() if n.endswith("/data.pkl")][:1]
        else:
            pickles = _legacy_pickles(path)
    except (OSError, zipfile.BadZipFile):
        return ""
    names = foreign_globals(pickles)
    own = [n for n in names if not n.startswith("torch.")]
    return (own or names or [""])[0]


# -- loading --------------------------------------------------------------------------------


def check_before_loading(path: Path, fmt: str, code: ModelCode) -> None:
    """Refuse (exit 2) what must not reach torch: a zip bomb, a needless --model-code."""
    if fmt in ("torchscript", "exported_program") and code.given:
        kind = "TorchScript archive" if fmt == "torchscript" else "torch.export program"
        raise UserError(
            f"{path.name} is a {kind}, which carries its own code; --{code.option} is only for state_dict files",
            f"remove --{code.option}",
        )
    check_archive_bounds(path, "--model-path")  # torch's zip readers inflate what the members declare


def load_checkpoint(torch: Any, path: Path, fmt: str, allow_unsafe: bool) -> Any:
    """The object in a torch.save file: weights only unless the user allowed unpickling."""
    if allow_unsafe and fmt == "pickled_module":
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except (ModuleNotFoundError, AttributeError) as exc:
            cls = describe_pickled_class(path)
            # Unpickling imports the class by module path; a class from a script's __main__ is gone.
            what = f"{cls}, a class that cannot be imported here" if cls else f"a class that cannot be imported ({exc})"
            raise UserError(
                f"{path.name} is a pickled {what}",
                "make the module that defines it importable (PYTHONPATH), or " + SAFE_FORMATS,
            ) from None
        except Exception as exc:  # a damaged pickle raises nearly anything
            raise UserError(
                f"{path.name} could not be loaded by torch.load ({shorten(exc, 160)})",
                "check that the file is complete",
            ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if "weights_only" not in str(exc) and "Weights only" not in str(exc):
            raise UserError(
                f"{path.name} could not be loaded by torch.load ({shorten(exc, 160)})",
                "check that the file is complete",
            ) from None
    cls = describe_pickled_class(path)
    what = f"a pickled {cls}" if cls else "a pickle of more than tensors"
    raise UserError(
        f"{path.name} is {what}, and unpickling it runs any code it contains",
        SAFE_FORMATS + "; or pass --allow-unsafe-load true if you trust the file",
    )


def load_safetensors(require: Callable[[str], Any], path: Path) -> dict[str, Any]:
    safetensors_torch = require("safetensors.torch")
    try:
        return dict(safetensors_torch.load_file(str(path), device="cpu"))
    except Exception as exc:
        raise UserError(
            f"{path.name} is not a readable safetensors file ({shorten(exc, 160)})",
            "save it again with safetensors.torch.save_file",
        ) from None


def extract_state_dict(torch: Any, obj: Any, path: Path) -> tuple[dict[str, Any], list[str]]:
    """The tensors of a state_dict, unwrapped from a training checkpoint dict if need be."""
    notes: list[str] = []
    if not isinstance(obj, Mapping):
        raise UserError(
            f"{path.name} holds a {type(obj).__name__}, not a state_dict or an nn.Module",
            "save model.state_dict() or the model itself",
        )
    if not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in CHECKPOINT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
                notes.append(f"{path.name} is a checkpoint dict; its state_dict was read from key {key!r}")
                obj = inner
                break
        else:
            keys = ", ".join(map(str, list(obj)[:MAX_KEYS_SHOWN])) or "(none)"
            raise UserError(
                f"{path.name} holds a dict without tensors (keys: {keys})",
                "save model.state_dict() itself",
            )
    return {str(k): v for k, v in obj.items()}, notes


def import_model_class(code: ModelCode) -> tuple[Callable[[], Any], str]:
    """The class or factory named by ``--model-code path/to/file.py:Name``, imported by path."""
    file_part, name = code.split()
    if not file_part or not name or not name.isidentifier() or not file_part.endswith(".py"):
        raise code.bad("not in the form path/to/file.py:Name", "give the file and the class, e.g. models/net.py:Net")
    module = import_file(code, file_part)
    factory = getattr(module, name, None)
    if factory is None or not callable(factory):
        classes = [n for n, v in defined_here(module).items() if isinstance(v, type)]
        defined = f"it defines {', '.join(classes)}" if classes else "it defines no classes"
        raise UserError(
            f'--{code.option} "{code.text}": {Path(file_part).name} has no '
            f"{'callable ' if factory is not None else ''}{name} ({defined})",
            "name the nn.Module class or a zero-argument factory function in that file",
        )
    return factory, f"{Path(file_part).name}:{name}"


@contextmanager
def importable(folder: Path) -> Iterator[None]:
    """``folder`` first on sys.path for the duration: the class file's own folder, and the repository root
    (``from mypackage.models import Net`` in a class file under models/)."""
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        if entry in sys.path:
            sys.path.remove(entry)


def build_module(torch: Any, factory: Callable[[], Any], code: ModelCode) -> Any:
    called = getattr(factory, "__name__", code.text)
    try:
        model = factory()
    except Exception as exc:
        raise UserError(
            f'--{code.option} "{code.text}": calling {called}() failed: {type(exc).__name__}: {shorten(exc, 200)}',
            "give a class whose constructor needs no arguments, or a zero-argument factory function that builds the model",
        ) from None
    if not isinstance(model, torch.nn.Module):
        raise UserError(
            f'--{code.option} "{code.text}": {called}() returned a {type(model).__name__}, not an nn.Module',
            "name the nn.Module class or a factory that returns one",
        )
    return model


def apply_state_dict(model: Any, state: dict[str, Any], path: Path, code: ModelCode, class_label: str) -> list[str]:
    """Load the weights strictly; a key that does not match is an error that lists the keys."""
    notes = []
    expected = set(model.state_dict())
    prefix = "module."  # nn.DataParallel / DistributedDataParallel wrap every key
    if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in expected):
        state = {k[len(prefix) :]: v for k, v in state.items()}
        notes.append(f"the keys in {path.name} had a 'module.' prefix (DataParallel); it was removed")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        detail = str(exc).split("\n\t", 1)[-1]  # the lines after "Error(s) in loading state_dict for X:"
        raise UserError(
            f"the weights in {path.name} do not fit {class_label}: {shorten(detail, 240)}",
            f"check that --{code.option} is the class the weights were saved from",
        ) from None
    problems = []
    if result.missing_keys:
        problems.append(f"missing keys {_key_list(result.missing_keys)}")
    if result.unexpected_keys:
        problems.append(f"unexpected keys {_key_list(result.unexpected_keys)}")
    if problems:
        raise UserError(
            f"the weights in {path.name} do not fit {class_label}: {'; '.join(problems)}",
            f"check that --{code.option} is the class the weights were saved from",
        )
    return notes


def _key_list(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_KEYS_SHOWN])
    return shown + (f" and {len(keys) - MAX_KEYS_SHOWN} more" if len(keys) > MAX_KEYS_SHOWN else "")


def safetensors_header_ok(path: Path) -> bool:
    """A safetensors file starts with the length of its JSON header, then the header."""
    with path.open("rb") as handle:
        head = handle.read(9)
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 8 + length <= path.stat().st_size


# A pytree node type in the program's JSON: ``\"type\": \"transformers.modeling_outputs.X\"``.
_PYTREE_TYPE = re.compile(r'type\\*"\s*:\s*\\*"([A-Za-z_][\w.]*)')


def register_missing_pytree_types(torch: Any, path: Path) -> list[str]:
    """Stand-ins for the container types a torch.export program names but this process lacks.

    A program keeps its input and output structure as pytree specs naming their types (a
    transformers model returns a ``ModelOutput`` such as ``BaseModelOutputWithPooling``);
    torch.export.load cannot rebuild them unless the defining package registered them, and the
    converter's image has no transformers. Such a type is a dict of named tensors (transformers
    flattens it to its values, with the keys as context), so it is read as a dict subclass of
    that name, and its outputs are named by their keys as a dict's are. Returns the names.
    """
    pytree = torch.utils._pytree
    try:
        with zipfile.ZipFile(path) as archive:
            text = "".join(
                archive.read(name).decode("utf-8", "replace")
                for name in archive.namelist()
                if "/models/" in f"/{name}" and name.endswith(".json")
            )
    except (zipfile.BadZipFile, OSError, zlib.error):
        return []  # a damaged archive: torch.export.load says what is wrong
    missing = sorted(
        {t for t in _PYTREE_TYPE.findall(text) if "." in t and t not in pytree.SERIALIZED_TYPE_TO_PYTHON_TYPE}
        - {"builtins.dict", "builtins.tuple", "builtins.list"}
    )
    for name in missing:
        module, _, class_name = name.rpartition(".")
        stand_in = type(class_name, (dict,), {"__module__": module, "__doc__": f"Stand-in for {name}."})
        pytree.register_pytree_node(
            stand_in,
            lambda value: (list(value.values()), list(value.keys())),
            lambda values, keys, cls=stand_in: cls(zip(keys, values, strict=True)),
            serialized_type_name=name,
            flatten_with_keys_fn=lambda value: (
                [(pytree.MappingKey(k), v) for k, v in value.items()],
                list(value.keys()),
            ),
        )
    return missing
