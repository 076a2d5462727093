"""A Hugging Face ``save_pretrained()`` folder: recognised and checked without importing torch or transformers.

Such a folder holds ``config.json`` (with ``model_type``) and its weights: ``model.safetensors``,
shards named by ``model.safetensors.index.json``, or a ``pytorch_model.bin`` (read weights only).
Everything in it comes from a pull request, so before transformers reads a byte: the files are
counted and sized, the JSON files are bounded, every safetensors header is parsed and each tensor's
bytes checked to lie inside its file (a truncated file is one line, not transformers' traceback),
and code the folder would run (``auto_map``) is refused without --allow-unsafe-load.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converter.errors import UserError, shorten

CONFIG = "config.json"
SAFETENSORS = "model.safetensors"
SHARD_INDEX = "model.safetensors.index.json"
PYTORCH_BIN = "pytorch_model.bin"
TOKENIZER_CONFIG = "tokenizer_config.json"
MAX_FILES = 1_000  # a model folder holds tens of files; a checkout of a dataset is not one
MAX_JSON_BYTES = 64 * 1024**2  # tokenizer.json of a 250k vocabulary is ~20 MB
MAX_HEADER_BYTES = 100 * 1024**2  # the safetensors library's own limit on its JSON header
MAX_SHARDS = 500
# Bytes per element of the dtypes safetensors writes.
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
SAVE_AGAIN = "save it again with model.save_pretrained(folder) and commit every file it writes"


@dataclass
class HfFolder:
    """What the folder's files say, read as data."""

    path: Path
    config: dict[str, Any]
    weights: list[Path]  # the safetensors files (shards in order) or the one pytorch_model.bin
    remote_code: list[str] = field(default_factory=list)  # where the folder asks to run its own code

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    @property
    def architectures(self) -> list[str]:
        found = self.config.get("architectures") or []
        return [str(a) for a in found] if isinstance(found, list) else []


def detect(path: Path) -> bool:
    """A folder with a config.json naming a model_type and weights transformers writes."""
    if not path.is_dir() or not (path / CONFIG).is_file():
        return False
    if not any((path / name).is_file() for name in (SAFETENSORS, SHARD_INDEX, PYTORCH_BIN)):
        return False
    try:
        if (path / CONFIG).stat().st_size > MAX_JSON_BYTES:
            return True  # it claims to be one: read_folder says what is wrong
        config = json.loads((path / CONFIG).read_bytes())
    except (OSError, ValueError):
        return True
    return isinstance(config, dict) and "model_type" in config


def read_folder(path: Path, allow_unsafe: bool) -> HfFolder:
    """The folder checked file by file (exit 2 on the first problem), its config read."""
    files = [p for p in path.iterdir() if p.is_file()]
    if len(files) > MAX_FILES:
        raise UserError(
            f"{path.name} holds {len(files):,} files, more than the {MAX_FILES:,} a model folder may hold here",
            "give the folder save_pretrained() wrote, without other files",
        )
    config = read_json(path / CONFIG)
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise UserError(f"{path.name}/{CONFIG} has no model_type", SAVE_AGAIN)
    folder = HfFolder(path, config, _weight_files(path))
    folder.remote_code = _remote_code(path, config)
    if folder.remote_code and not allow_unsafe:
        raise UserError(
            f"{path.name} asks to run its own Python code ({', '.join(folder.remote_code)}), "
            "which loading it would execute (trust_remote_code)",
            "use a model class that transformers ships, or pass --allow-unsafe-load true if you trust the folder's code",
        )
    if folder.weights[0].suffix == ".safetensors":
        for weights in folder.weights:
            check_safetensors(weights)
    return folder


def read_json(path: Path) -> Any:
    """A bounded JSON file of the folder; a broken one is an exit-2 line."""
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise UserError(
            f"{path.parent.name}/{path.name} is {size:,} bytes, more than the {MAX_JSON_BYTES:,} this tool reads",
            SAVE_AGAIN,
        )
    try:
        return json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{path.parent.name}/{path.name} is not valid JSON ({shorten(exc, 120)})", SAVE_AGAIN) from None


def _weight_files(path: Path) -> list[Path]:
    if (path / SAFETENSORS).is_file():
        return [path / SAFETENSORS]
    if (path / SHARD_INDEX).is_file():
        return _shards(path)
    return [path / PYTORCH_BIN]


def _shards(path: Path) -> list[Path]:
    index = read_json(path / SHARD_INDEX)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise UserError(f"{path.name}/{SHARD_INDEX} has no weight_map", SAVE_AGAIN)
    names = sorted({str(name) for name in weight_map.values()})
    if len(names) > MAX_SHARDS:
        raise UserError(f"{path.name}/{SHARD_INDEX} names {len(names):,} shards, more than {MAX_SHARDS}", SAVE_AGAIN)
    shards = []
    for name in names:
        # A shard is named as a file of the folder itself: no path into another folder.
        shard = path / name
        if Path(name).name != name or not name.endswith(".safetensors") or not shard.is_file():
            raise UserError(
                f"{path.name}/{SHARD_INDEX} names the shard {name!r}, which is not a .safetensors file in the folder",
                SAVE_AGAIN,
            )
        shards.append(shard)
    return shards


def _remote_code(path: Path, config: dict[str, Any]) -> list[str]:
    """Where the folder names code of its own: ``auto_map`` in its config or tokenizer config."""
    found = [f"auto_map in {CONFIG}"] if config.get("auto_map") else []
    tokenizer_config = path / TOKENIZER_CONFIG
    if tokenizer_config.is_file():
        settings = read_json(tokenizer_config)
        if isinstance(settings, dict) and settings.get("auto_map"):
            found.append(f"auto_map in {TOKENIZER_CONFIG}")
    return found


def check_safetensors(path: Path) -> None:
    """The header parsed (bounded) and every tensor's bytes inside the file, before anything maps it."""
    size = path.stat().st_size
    where = f"{path.parent.name}/{path.name}"
    with path.open("rb") as handle:
        head = handle.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if length < 2 or length > MAX_HEADER_BYTES or 8 + length > size:
            raise UserError(f"{where} is truncated or not a safetensors file ({size:,} bytes)", SAVE_AGAIN)
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            raise UserError(f"{where} has a damaged safetensors header", SAVE_AGAIN) from None
    if not isinstance(header, dict):
        raise UserError(f"{where} has a damaged safetensors header", SAVE_AGAIN)
    data_bytes = size - 8 - length
    end = max((_tensor_end(where, name, entry) for name, entry in header.items() if name != "__metadata__"), default=0)
    if end > data_bytes:
        raise UserError(
            f"{where} is truncated: its header places tensors up to byte {end:,} of the data, "
            f"which holds {data_bytes:,} bytes",
            SAVE_AGAIN,
        )


def _tensor_end(where: str, name: str, entry: Any) -> int:
    """Where the tensor's bytes end; its offsets must agree with its dtype and shape."""
    try:
        start, end = (int(v) for v in entry["data_offsets"])
        count = 1
        for dim in entry["shape"]:
            count *= int(dim)
        expected = count * DTYPE_BYTES.get(str(entry["dtype"]), 0)
    except (KeyError, TypeError, ValueError):
        raise UserError(
            f"{where} has a damaged safetensors header (tensor {shorten(name, 80)!r})", SAVE_AGAIN
        ) from None
    if start < 0 or (end - start != expected and str(entry["dtype"]) in DTYPE_BYTES):
        raise UserError(
            f"{where}: tensor {shorten(name, 80)!r} declares {end - start:,} bytes for {count:,} {entry['dtype']} values",
            SAVE_AGAIN,
        )
    return end
