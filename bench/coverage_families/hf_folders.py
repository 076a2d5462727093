"""Hugging Face folders: what ``save_pretrained()`` writes, converted with ``--model-path`` alone (issue 21).

The folders are tests/fixtures/hf_folders.py's recipes (BERT, RoBERTa, DistilBERT, a Llama-style
decoder, ViT, Whisper and wav2vec2, hidden size 32, 2 layers, random weights; nothing downloaded),
each saved without tokenizer files, BERT once more with a tokenizer and DistilBERT as a sharded
checkpoint. The converter picks the task, the inputs and their sizes; the re-check feeds the
original model, as saved and loaded again by transformers here, new inputs at batch 37 and, for
text, sequence 24 (the pipeline validates 32 and 40), right-padded as a tokenizer pads.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.coverage_families import Built, Inputs, ModelCase
from tests.fixtures.hf_folders import RECIPES, Recipe, save_folder

RECHECK_SEQ = 24
AUDIO_SAMPLES = 16_000


def models() -> list[ModelCase]:
    cases = [ModelCase(name, partial(_build, name, {}), group="one folder per architecture") for name in RECIPES]
    cases.append(ModelCase("bert (tokenizer files)", partial(_build, "bert", {"tokenizer": True}), group="variants"))
    cases.append(
        ModelCase("distilbert (sharded)", partial(_build, "distilbert", {"max_shard_size": "40KB"}), group="variants")
    )
    return cases


def _build(name: str, save: dict[str, Any], directory: Path) -> Built:
    recipe = RECIPES[name]
    folder = directory / name
    save_folder(recipe, folder, **save)
    inputs = ("input_ids", "attention_mask") if save.get("tokenizer") else recipe.inputs
    return Built(
        options={"model-path": str(folder)},
        reference=partial(_reference, folder, recipe),
        inputs=partial(_inputs, recipe, inputs),
        labels=frozenset(),
        note=f"{', '.join(inputs)} -> {', '.join(recipe.outputs)}",
    )


def _inputs(recipe: Recipe, names: tuple[str, ...], rng: np.random.Generator, batch: int) -> Inputs:
    made: Inputs = {}
    lengths = rng.integers(1, RECHECK_SEQ + 1, batch)
    lengths[0] = RECHECK_SEQ
    mask = (np.arange(RECHECK_SEQ)[None, :] < lengths[:, None]).astype(np.int64)
    config = recipe.config
    for name in names:
        if name == "input_ids":
            made[name] = np.where(mask == 1, rng.integers(0, 60, (batch, RECHECK_SEQ)), 0).astype(np.int64)
        elif name == "attention_mask":
            made[name] = mask
        elif name == "token_type_ids":
            made[name] = (rng.integers(0, 2, (batch, RECHECK_SEQ)) * mask).astype(np.int64)
        elif name == "pixel_values":
            size = config["image_size"]
            made[name] = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
        elif name == "input_features":
            shape = (batch, config["num_mel_bins"], 2 * config["max_source_positions"])
            made[name] = rng.standard_normal(shape).astype(np.float32)
        else:
            made[name] = rng.standard_normal((batch, AUDIO_SAMPLES)).astype(np.float32)
    return made


def _reference(folder: Path, recipe: Recipe, inputs: Inputs, names: list[str]) -> Inputs:
    """The model loaded again from the folder by transformers (eager attention, no cache), by keyword."""
    import torch
    import transformers

    cls = getattr(transformers, recipe.model_class)
    model = cls.from_pretrained(str(folder), local_files_only=True, attn_implementation="eager").eval()
    if recipe.name == "whisper":
        model = model.get_encoder()
    with torch.no_grad():
        kwargs = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()}
        if recipe.name == "llama":
            kwargs["use_cache"] = False
        result = model(**kwargs)
    return {k: v.numpy() for k, v in result.items() if isinstance(v, torch.Tensor)}
