"""Keras text backbones whose layers are the user's own: ``--model-code`` for Keras (issue 15, item 6).

Built from constructor arguments with plain Keras layers and KerasHub's inputs: BERT-like and
RoBERTa-like encoders (``token_ids``, ``segment_ids`` where the model has them, ``padding_mask``)
and a GPT-2-like causal decoder (``token_ids``, ``padding_mask``). Their transformer block and
position embedding are custom layers registered with ``keras.saving.register_keras_serializable``
in the user's code, as transformer blocks usually are, in ``_keras_text_layers.py``. (KerasHub's
own backbones are the keras_hub family.)

Each is saved two ways: a ``.keras`` converted with ``--model-code _keras_text_layers.py`` (the
layers' code), and a ``model.export()`` SavedModel (which carries its own graph). The converter
generates the inputs (ids below each Embedding, segment ids in their 2-row table, a right-padded
mask); the re-check feeds new right-padded inputs at batch 37 and length 24.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.coverage_families import Built, Inputs, ModelCase

LAYERS_FILE = Path(__file__).with_name("_keras_text_layers.py")
VOCAB, MAX_LENGTH, RECHECK_LENGTH = 500, 64, 24
# name -> (hidden, heads, layers, causal, has segment ids)
BACKBONES = {
    "BERT-like encoder": (32, 2, 2, False, True),
    "RoBERTa-like encoder": (48, 4, 2, False, False),
    "GPT-2-like decoder": (32, 2, 2, True, False),
}
FORMATS = ("keras", "saved_model")


def models() -> list[ModelCase]:
    return [ModelCase(f"{name} ({fmt})", partial(_build, name, fmt)) for name in BACKBONES for fmt in FORMATS]


def keras_on_tensorflow() -> Any:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras

    return keras


def _backbone(name: str) -> Any:
    keras = keras_on_tensorflow()
    import importlib.util

    spec = importlib.util.spec_from_file_location("_keras_text_layers", LAYERS_FILE)
    assert spec is not None and spec.loader is not None
    layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layers)
    hidden, heads, depth, causal, segments = BACKBONES[name]
    keras.utils.set_random_seed(0)
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    mask = keras.Input((None,), dtype="int32", name="padding_mask")
    inputs = [ids, mask]
    x = keras.layers.Embedding(VOCAB, hidden)(ids)
    if segments:
        segment_ids = keras.Input((None,), dtype="int32", name="segment_ids")
        inputs.append(segment_ids)
        x = keras.layers.Add()([x, keras.layers.Embedding(2, hidden)(segment_ids)])
    x = layers.PositionEmbedding(MAX_LENGTH)(x)
    for _ in range(depth):
        x = layers.TransformerBlock(heads, hidden, causal)(x, mask)
    return keras.Model(inputs, {"sequence_output": x}, name=name.split("-")[0].lower())


def _build(name: str, fmt: str, directory: Path) -> Built:
    model = _backbone(name)
    if fmt == "keras":
        path = directory / "backbone.keras"
        model.save(path)
        options = {"model-path": str(path), "model-code": str(LAYERS_FILE)}
    else:
        path = directory / "backbone_saved"
        model.export(str(path), verbose=False)
        options = {"model-path": str(path)}
    names = [t.name for t in model.inputs]
    note = f"{', '.join(names)}; " + ("--model-code file of its layers" if fmt == "keras" else "model.export()")
    return Built(
        options=options,
        reference=partial(reference, model),
        inputs=lambda rng, batch: text_inputs(names, rng, batch, VOCAB),
        labels=frozenset(),
        note=note,
    )


def text_inputs(names: list[str], rng: np.random.Generator, batch: int, vocab: int) -> Inputs:
    """As a KerasHub preprocessor gives them: right-padded, the first row full length."""
    lengths = rng.integers(1, RECHECK_LENGTH + 1, batch)
    lengths[0] = RECHECK_LENGTH
    made: Inputs = {"token_ids": rng.integers(0, vocab, (batch, RECHECK_LENGTH)).astype(np.int32)}
    if "padding_mask" in names:
        made["padding_mask"] = (np.arange(RECHECK_LENGTH)[None, :] < lengths[:, None]).astype(np.int32)
    if "segment_ids" in names:
        splits = rng.integers(1, RECHECK_LENGTH, batch)
        made["segment_ids"] = (np.arange(RECHECK_LENGTH)[None, :] >= splits[:, None]).astype(np.int32)
    return made


def reference(model: Any, inputs: Inputs, names: list[str]) -> Inputs:
    """The Keras model's outputs by name (a model with one unnamed output gives the one name asked)."""
    outputs = model(dict(inputs), training=False)
    if not isinstance(outputs, dict):
        (only,) = names
        return {only: np.asarray(outputs)}
    return {name: np.asarray(outputs[name]) for name in names}
