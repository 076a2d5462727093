"""A Hugging Face folder loaded by transformers from its local files, and the inputs its task takes.

transformers is imported here only when such a folder is converted; the Hub is never asked
(HF_HUB_OFFLINE, local_files_only). Code from the folder runs only with --allow-unsafe-load
(hf_folder refused it before this module is reached); a ``pytorch_model.bin`` is read weights only.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from converter.archives import check_archive_bounds
from converter.errors import UserError, shorten
from converter.frameworks.base import TensorSpec
from converter.frameworks.pytorch import hf_folder, hf_tasks
from converter.frameworks.pytorch import load as torch_load

if TYPE_CHECKING:
    from converter.request import ConversionRequest

SEQUENCE = "sequence"  # the dynamic axis of token inputs, one torch.export.Dim shared by all of them
AUDIO_SAMPLES = 16_000  # one second of raw audio at the 16 kHz wav2vec2's feature extractors use
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model")
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class HfModel:
    """What loading the folder taught: its task, and what the generated inputs must respect."""

    task: str
    task_reason: str
    main_input: str
    vocab_size: int | None = None
    pad_token_id: int | None = None
    type_vocab_size: int | None = None
    tokenizer: str = ""  # the tokenizer class read from the folder's files, if any
    tokenizer_inputs: list[str] = field(default_factory=list)


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """The Hub out of reach for the load, whatever the environment says."""
    saved = {key: os.environ.get(key) for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update(dict.fromkeys(saved, "1"))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def check_folder(request: ConversionRequest) -> hf_folder.HfFolder:
    """The folder's files checked (exit 2 on the first problem), before torch or transformers reads one."""
    folder = hf_folder.read_folder(request.model_path, request.allow_unsafe_load)
    if folder.weights[0].suffix == ".bin":
        check_bin(folder.weights[0])
    return folder


def load(
    require: Callable[[str], Any], request: ConversionRequest, folder: hf_folder.HfFolder
) -> tuple[Any, HfModel, list[str]]:
    """The model with the head of its task, in eval mode; notes for the report."""
    with offline():
        transformers = require("transformers")
        config = _config(transformers, folder, request.allow_unsafe_load)
        task, reason = hf_tasks.choose_task(request.task, folder.architectures, bool(config.is_encoder_decoder))
        cls = _model_class(transformers, folder, task, reason, request.allow_unsafe_load)
        model, notes = _from_pretrained(cls, folder, config, request.allow_unsafe_load)
        info = HfModel(task, reason, getattr(model, "main_input_name", "input_ids"))
        info.task = hf_tasks.refine_for_audio(task, info.main_input)
        notes += _read_tokenizer(transformers, folder, info)
    if info.task == "encoder":
        model = model.get_encoder()
        info.main_input = getattr(model, "main_input_name", info.main_input)
    info.vocab_size = _smallest(info.vocab_size, _int(config, "vocab_size"))
    info.type_vocab_size = _int(config, "type_vocab_size")
    if info.pad_token_id is None:
        info.pad_token_id = _int(config, "pad_token_id")
    return model, info, notes


def check_bin(path: Path) -> None:
    """A ``pytorch_model.bin`` holds tensors only (read from its pickle's opcodes): a whole pickled
    module is refused before anything reads it. transformers loads it with weights_only=True,
    so --allow-unsafe-load does not change this (it allows only the folder's own code)."""
    where = f"{path.parent.name}/{path.name}"
    check_archive_bounds(path, where)
    fmt = torch_load.detect_format(path)
    if fmt is None:
        raise UserError(f"{where} is truncated or not a torch.save file", hf_folder.SAVE_AGAIN)
    if fmt == "pickled_module":
        what = torch_load.describe_pickled_class(path) or "object of more than tensors"
        raise UserError(
            f"{where} is a pickled {what}, not a state_dict; transformers reads a .bin weights only",
            "save the weights with model.save_pretrained(folder), which writes model.safetensors",
        )


def _config(transformers: Any, folder: hf_folder.HfFolder, allow_unsafe: bool) -> Any:
    try:
        return transformers.AutoConfig.from_pretrained(
            str(folder.path), local_files_only=True, trust_remote_code=allow_unsafe
        )
    except (ValueError, KeyError, OSError, TypeError) as exc:
        raise UserError(
            f"transformers {transformers.__version__} cannot read {folder.path.name}/config.json "
            f"(model_type {shorten(folder.model_type, 60)!r}): {shorten(exc, 200)}",
            "save the folder with a transformers version that knows the model type, or upgrade transformers",
        ) from None


def _model_class(transformers: Any, folder: hf_folder.HfFolder, task: str, reason: str, allow_unsafe: bool) -> Any:
    """The architecture's own class when the task is the config's; else the task's Auto class."""
    named = folder.architectures[0] if folder.architectures else ""
    own = getattr(transformers, named, None) if named.isidentifier() else None
    if reason.startswith("from config") and isinstance(own, type) and not (allow_unsafe and folder.remote_code):
        return own
    return getattr(transformers, hf_tasks.TASKS[task].auto_class)


def _from_pretrained(cls: Any, folder: hf_folder.HfFolder, config: Any, allow_unsafe: bool) -> tuple[Any, list[str]]:
    if hasattr(config, "use_cache"):
        config.use_cache = False  # no KV cache: one pass over the whole sequence
    options: dict[str, Any] = {
        "config": config,
        "local_files_only": True,
        "use_safetensors": folder.weights[0].suffix == ".safetensors",
        "output_loading_info": True,
        "attn_implementation": "eager",  # the plain matmul-softmax both exporters take
    }
    if allow_unsafe:
        options["trust_remote_code"] = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, info = cls.from_pretrained(str(folder.path), **options)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, EOFError) as exc:
        raise UserError(
            f"transformers could not load {folder.path.name} as {getattr(cls, '__name__', cls)}: {shorten(exc, 240)}",
            hf_folder.SAVE_AGAIN,
        ) from None
    model.eval()
    missing = list(info.get("missing_keys") or [])
    notes = []
    if missing:
        shown = ", ".join(sorted(missing)[:4])
        notes.append(
            f"{len(missing)} weights are not in the folder and were initialised at random ({shown}, ...): "
            "the head of this task was not trained"
        )
    return model, notes


def _read_tokenizer(transformers: Any, folder: hf_folder.HfFolder, info: HfModel) -> list[str]:
    if not any((folder.path / name).is_file() for name in TOKENIZER_FILES) or info.main_input != "input_ids":
        return []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(folder.path), local_files_only=True, trust_remote_code=False
            )
    except Exception as exc:  # a tokenizer is a hint for the inputs, not the model: convert without it
        return [f"the tokenizer files could not be read ({shorten(exc, 160)}); inputs follow the model alone"]
    info.tokenizer = type(tokenizer).__name__
    info.tokenizer_inputs = [str(n) for n in getattr(tokenizer, "model_input_names", [])]
    info.vocab_size = len(tokenizer)
    info.pad_token_id = tokenizer.pad_token_id if isinstance(tokenizer.pad_token_id, int) else None
    return [
        f"the folder's tokenizer ({info.tokenizer}, {info.vocab_size:,} tokens) decided the inputs "
        f"({', '.join(info.tokenizer_inputs)}) and the range of generated ids"
    ]


def input_specs(model: Any, config: Any, info: HfModel, float_dtype: str) -> list[TensorSpec]:
    """The inputs of the task, in forward's order: token inputs dynamic in batch and sequence,
    images and audio dynamic in batch only, at the sizes the config fixes."""
    parameters = list(inspect.signature(model.forward).parameters)
    if info.main_input == "input_ids":
        wanted = set(info.tokenizer_inputs or _default_text_inputs(parameters, info))
        wanted.add("input_ids")
        return [_text_spec(name, info) for name in parameters if name in wanted and name in TEXT_INPUTS]
    return [TensorSpec(info.main_input, _media_shape(info.main_input, config), float_dtype)]


def _default_text_inputs(parameters: list[str], info: HfModel) -> list[str]:
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in parameters and (info.type_vocab_size or 0) >= 2:
        names.append("token_type_ids")
    return names


def _text_spec(name: str, info: HfModel) -> TensorSpec:
    shape = (None, SEQUENCE)
    if name == "input_ids":
        return TensorSpec(name, shape, "int64", high=info.vocab_size, role="ids", pad=info.pad_token_id)
    if name == "token_type_ids":
        return TensorSpec(name, shape, "int64", high=info.type_vocab_size or 1, role="token_types")
    return TensorSpec(name, shape, "int64", high=2, role="mask")


def _media_shape(name: str, config: Any) -> tuple[int | None, ...]:
    if name == "pixel_values":
        size = getattr(config, "image_size", 224)
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        return (None, int(getattr(config, "num_channels", 3)), int(height), int(width))
    if name == "input_features":  # Whisper: mel bins x frames, the frames twice the encoder's positions
        return (None, int(config.num_mel_bins), 2 * int(config.max_source_positions))
    if name == "input_values":
        return (None, AUDIO_SAMPLES)
    raise UserError(
        f"the model's main input {shorten(name, 60)!r} is not one this tool generates",
        "give --sample-data with real inputs",
    )


def _int(config: Any, name: str) -> int | None:
    value = getattr(config, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _smallest(*values: int | None) -> int | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None
