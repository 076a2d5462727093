"""PyTorch: Hugging Face transformers architectures and classic vision models.

- transformers (a benchmark dependency only, requirements/bench.txt): BERT, DistilBERT, GPT-2,
  RoBERTa, ViT, T5 encoder, Whisper encoder and CLIP vision, each from a small config (hidden
  size 32, 2 layers, random weights; nothing is downloaded).
- classic vision, written in plain torch in ``_pytorch_vision.py`` (torchvision does not import
  beside this torch): ResNet-50, MobileNetV3-Large, ConvNeXt-T and a small ViT at 224x224, with
  BatchNorm statistics taken from random batches so activations keep a realistic scale.

Each model is saved two ways, the two a user has: a torch.export program (``.pt2``, exported
with a dynamic batch and, for text, a dynamic sequence length), and a state_dict (``.pt``) with
a small --model-class file whose zero-argument factory builds the model from its config. Text
models take ``input_ids`` and a padding ``attention_mask`` (BERT also ``token_type_ids``).
The re-check feeds the original eager model (not the .pt2) new inputs at batch 37 and, for text,
sequence length 24: a third size of every dynamic axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.coverage_families import Built, Inputs, ModelCase

VOCAB = 1000
MAX_POSITIONS = 128
RECHECK_SEQ = 24  # the pipeline validates 32 and 40 (converter.inputs.OTHER_DYNAMIC_SIZES)
EXPORT_SEQ = 16  # the example a user's torch.export call sees
IMAGE = 32  # transformers vision models: 32x32 images, 4x4 patches
MEL_BINS, AUDIO_POSITIONS = 16, 32  # Whisper: the encoder takes exactly 2 * max_source_positions frames
VISION_SIZE = 224
VISION_FILE = Path(__file__).with_name("_pytorch_vision.py")

TEXT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


@dataclass(frozen=True)
class Arch:
    """A transformers architecture: classes, a small config, and the inputs it takes."""

    name: str
    model_class: str  # importable from ``transformers`` unless dotted
    config_class: str
    config: dict[str, Any]
    inputs: tuple[str, ...]  # input names, in forward's order
    kinds: dict[str, str] = field(default_factory=dict)  # input -> ids | mask | type_ids | pixels | features
    dynamic_seq: bool = True


def _text(name: str, model: str, config: str, extra: dict[str, Any], inputs: tuple[str, ...]) -> Arch:
    kinds = {"input_ids": "ids", "attention_mask": "mask", "token_type_ids": "type_ids"}
    return Arch(name, model, config, extra, inputs, {n: kinds[n] for n in inputs})


ARCHS = (
    _text(
        "BERT",
        "BertModel",
        "BertConfig",
        {**TEXT, "vocab_size": VOCAB, "max_position_embeddings": MAX_POSITIONS},
        ("input_ids", "attention_mask", "token_type_ids"),
    ),
    _text(
        "DistilBERT",
        "DistilBertModel",
        "DistilBertConfig",
        {"vocab_size": VOCAB, "dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64, "max_position_embeddings": 128},
        ("input_ids", "attention_mask"),
    ),
    _text(
        "GPT-2",
        "GPT2Model",
        "GPT2Config",
        {
            "vocab_size": VOCAB,
            "n_embd": 32,
            "n_layer": 2,
            "n_head": 2,
            "n_positions": MAX_POSITIONS,
            "use_cache": False,
            "bos_token_id": 0,  # the default 50256 is outside the small vocabulary
            "eos_token_id": 0,
        },
        ("input_ids", "attention_mask"),
    ),
    _text(
        "RoBERTa",
        "RobertaModel",
        "RobertaConfig",
        # Positions start after the padding index (2): 2 more than the longest sequence.
        {**TEXT, "vocab_size": VOCAB, "max_position_embeddings": MAX_POSITIONS + 2},
        ("input_ids", "attention_mask"),
    ),
    Arch(
        "ViT",
        "ViTModel",
        "ViTConfig",
        {**TEXT, "image_size": IMAGE, "patch_size": 4},
        ("pixel_values",),
        {"pixel_values": "pixels"},
        dynamic_seq=False,
    ),
    _text(
        "T5 encoder",
        "T5EncoderModel",
        "T5Config",
        {
            "vocab_size": VOCAB,
            "d_model": 32,
            "d_kv": 16,
            "d_ff": 64,
            "num_layers": 2,
            "num_heads": 2,
            "relative_attention_num_buckets": 8,
            "relative_attention_max_distance": 20,
        },
        ("input_ids", "attention_mask"),
    ),
    Arch(
        "Whisper encoder",
        "models.whisper.modeling_whisper.WhisperEncoder",
        "WhisperConfig",
        {
            "num_mel_bins": MEL_BINS,
            "d_model": 32,
            "encoder_layers": 2,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "max_source_positions": AUDIO_POSITIONS,
        },
        ("input_features",),
        {"input_features": "features"},
        # WhisperEncoder.forward raises unless the frames are exactly 2 * max_source_positions.
        dynamic_seq=False,
    ),
    Arch(
        "CLIP vision",
        "CLIPVisionModel",
        "CLIPVisionConfig",
        {**TEXT, "image_size": IMAGE, "patch_size": 4},
        ("pixel_values",),
        {"pixel_values": "pixels"},
        dynamic_seq=False,
    ),
)

VISION = (
    ("ResNet-50", "resnet50"),
    ("MobileNetV3-Large", "mobilenet_v3_large"),
    ("ConvNeXt-T", "convnext_tiny"),
    ("ViT-Ti/16 (6 blocks)", "small_vit"),
)
FORMATS = ("pt2", "state_dict")


def models() -> list[ModelCase]:
    cases = [
        ModelCase(f"{arch.name} ({fmt})", partial(build_transformers, arch, fmt), group="transformers")
        for arch in ARCHS
        for fmt in FORMATS
    ]
    cases += [
        ModelCase(f"{name} ({fmt})", partial(_build_vision, factory, fmt), group="classic vision (plain torch)")
        for name, factory in VISION
        for fmt in FORMATS
    ]
    return cases


# -- transformers ---------------------------------------------------------------------------------------


def _transformers_model(arch: Arch) -> Any:
    import torch
    import transformers

    torch.manual_seed(0)
    config = getattr(transformers, arch.config_class)(**arch.config)
    return _resolve(transformers, arch.model_class)(config).eval()


def _resolve(module: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def _arch_inputs(arch: Arch, rng: np.random.Generator, batch: int, seq: int) -> Inputs:
    """Inputs as a tokenizer or feature extractor would give them: right-padded, at least one real token."""
    made: Inputs = {}
    for name in arch.inputs:
        kind = arch.kinds[name]
        if kind == "ids":
            made[name] = rng.integers(0, VOCAB, (batch, seq), dtype=np.int64)
        elif kind == "type_ids":
            made[name] = rng.integers(0, 2, (batch, seq), dtype=np.int64)
        elif kind == "mask":
            lengths = rng.integers(1, seq + 1, batch)
            lengths[0] = seq
            made[name] = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
        elif kind == "pixels":
            made[name] = rng.standard_normal((batch, 3, IMAGE, IMAGE)).astype(np.float32)
        else:  # log-mel features
            made[name] = rng.standard_normal((batch, MEL_BINS, 2 * AUDIO_POSITIONS)).astype(np.float32)
    return made


def build_transformers(arch: Arch, fmt: str, directory: Path) -> Built:
    import torch

    model = _transformers_model(arch)
    example = {k: torch.from_numpy(v) for k, v in _arch_inputs(arch, np.random.default_rng(0), 4, EXPORT_SEQ).items()}
    if fmt == "pt2":
        batch = torch.export.Dim("batch")
        seq = torch.export.Dim("seq", max=MAX_POSITIONS)
        shapes = {n: ({0: batch, 1: seq} if arch.dynamic_seq else {0: batch}) for n in arch.inputs}
        path = directory / "model.pt2"
        with torch.no_grad():
            program = torch.export.export(model, (), kwargs=example, dynamic_shapes=shapes)
        torch.export.save(program, str(path))
        options = {"model-path": str(path)}
    else:
        path = directory / "model.pt"
        torch.save(model.state_dict(), path)
        class_file = directory / "model_class.py"
        class_file.write_text(_class_file(arch), encoding="utf-8")
        shapes_text, dtypes_text = [], []
        for name, value in example.items():
            dims = ["batch", *(("seq" if arch.dynamic_seq else str(d)) for d in value.shape[1:2])]
            dims += [str(d) for d in value.shape[2:]]
            shapes_text.append(f"{name}:{'x'.join(dims)}")
            if value.dtype == torch.int64:
                dtypes_text.append(f"{name}:int64")
        options = {
            "model-path": str(path),
            "model-class": f"{class_file}:build",
            "input-shapes": ";".join(shapes_text),
        }
        if dtypes_text:
            options["input-dtypes"] = ";".join(dtypes_text)
    seq = RECHECK_SEQ if arch.dynamic_seq else EXPORT_SEQ
    return Built(
        options=options,
        reference=partial(_reference, model),
        inputs=lambda rng, batch: _arch_inputs(arch, rng, batch, seq),
        labels=frozenset(),
        note=_note(arch, fmt),
        padding_mask="attention_mask" if "attention_mask" in arch.inputs else None,
    )


def _class_file(arch: Arch) -> str:
    module, _, name = f"transformers.{arch.model_class}".rpartition(".")
    return (
        '"""The --model-class file for model.pt (written by bench/coverage_families/pytorch.py)."""\n\n'
        f"import transformers\nfrom {module} import {name}\n\n\n"
        "def build():\n"
        f"    config = transformers.{arch.config_class}(**{arch.config!r})\n"
        f"    return {name}(config)\n"
    )


def _note(arch: Arch, fmt: str) -> str:
    axes = "batch and sequence dynamic" if arch.dynamic_seq else "batch dynamic"
    if arch.name == "Whisper encoder":
        axes += f" (the encoder requires {2 * AUDIO_POSITIONS} frames)"
    return f"{', '.join(arch.inputs)}; {axes}" + ("; --model-class factory" if fmt == "state_dict" else "")


# -- classic vision -------------------------------------------------------------------------------------


def _vision_model(factory: str) -> Any:
    import torch

    from bench.coverage_families import _pytorch_vision as pytorch_vision

    torch.manual_seed(0)
    model = getattr(pytorch_vision, factory)()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if norms:
        # Random weights with the initial statistics (mean 0, var 1) blow activations up block by
        # block; statistics from two random batches keep them at the scale of a trained model.
        for norm in norms:
            norm.momentum = None  # a cumulative average
        model.train()
        with torch.no_grad():
            for _ in range(2):
                model(torch.randn(8, 3, VISION_SIZE, VISION_SIZE))
    return model.eval()


def _build_vision(factory: str, fmt: str, directory: Path) -> Built:
    import torch

    model = _vision_model(factory)
    if fmt == "pt2":
        path = directory / "model.pt2"
        example = (torch.randn(2, 3, VISION_SIZE, VISION_SIZE),)
        with torch.no_grad():
            program = torch.export.export(model, example, dynamic_shapes=({0: torch.export.Dim("batch")},))
        torch.export.save(program, str(path))
        options = {"model-path": str(path)}
    else:
        path = directory / "model.pt"
        torch.save(model.state_dict(), path)
        options = {
            "model-path": str(path),
            "model-class": f"{VISION_FILE}:{factory}",
            "input-shapes": f"batchx3x{VISION_SIZE}x{VISION_SIZE}",
        }
    return Built(
        options=options,
        reference=partial(_reference, model),
        inputs=_vision_inputs,
        labels=frozenset(),
        note=f"{VISION_SIZE}x{VISION_SIZE}; batch dynamic",
    )


def _vision_inputs(rng: np.random.Generator, batch: int) -> Inputs:
    return {"image": rng.standard_normal((batch, 3, VISION_SIZE, VISION_SIZE)).astype(np.float32)}


# -- the independent side ----------------------------------------------------------------------------


def _reference(model: Any, inputs: Inputs, names: list[str]) -> Inputs:
    """The eager model on ``inputs`` (by keyword), outputs under their keys (``output`` for one tensor)."""
    import torch

    with torch.no_grad():
        result = model(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()})
    if isinstance(result, torch.Tensor):
        return {"output": result.numpy()}
    return {k: v.numpy() for k, v in result.items() if isinstance(v, torch.Tensor)}
