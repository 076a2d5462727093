"""KerasHub backbones: encoders and decoders built from constructor arguments (random weights).

Each backbone (``keras_hub.models.<Name>Backbone``, small sizes, nothing downloaded) is saved the two
ways a KerasHub user has: a ``.keras`` file, which Keras loads by importing the KerasHub module
each layer names (so keras-hub must be importable where it converts: ``--requirements`` in the
action), and a ``model.export()`` SavedModel, which carries its own graph.

keras-hub's dependencies would put the full ``tensorflow`` and ``tensorflow-text`` beside this
project's ``tensorflow-cpu``; the backbones need neither (only KerasHub's tokenizers do), so ``make
coverage`` installs keras-hub alone into bench/.keras_hub, which ``import_keras_hub`` puts on
sys.path in the model's child process only.

KerasHub initialises norms to 1 and 0 and biases to 0; every weight whose elements are all equal
gets noise, so that no branch is an identity the check cannot see through. The converter generates
the inputs (ids below each embedding, segment ids in their table, a right-padded ``padding_mask``);
the re-check feeds new right-padded inputs at batch 37 and length 24.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.coverage_families import Built, Inputs, ModelCase, SkipCase

KERAS_HUB_DIR = Path(__file__).resolve().parent.parent / ".keras_hub"
VOCAB, MAX_LENGTH, RECHECK_LENGTH = 100, 64, 24
NOISE = 0.1  # relative size of the noise given to constant-initialised weights
_ENCODER = {"vocabulary_size": VOCAB, "num_layers": 2, "num_heads": 2, "hidden_dim": 32, "intermediate_dim": 64}
_GROUPED = {"vocabulary_size": VOCAB, "num_layers": 2, "num_query_heads": 4, "num_key_value_heads": 2}
_GROUPED |= {"hidden_dim": 32, "intermediate_dim": 64}
# backbone class -> (group, constructor arguments)
BACKBONES: dict[str, tuple[str, dict[str, Any]]] = {
    "BertBackbone": ("encoders", {**_ENCODER, "max_sequence_length": MAX_LENGTH}),
    "RobertaBackbone": ("encoders", {**_ENCODER, "max_sequence_length": MAX_LENGTH}),
    "DistilBertBackbone": ("encoders", {**_ENCODER, "max_sequence_length": MAX_LENGTH}),
    "AlbertBackbone": ("encoders", {**_ENCODER, "embedding_dim": 16, "max_sequence_length": MAX_LENGTH}),
    "DebertaV3Backbone": ("encoders", {**_ENCODER, "max_sequence_length": MAX_LENGTH, "bucket_size": 16}),
    "FNetBackbone": ("encoders", {"vocabulary_size": VOCAB, "num_layers": 2, "hidden_dim": 32, "intermediate_dim": 64}),
    "GPT2Backbone": ("decoders", {**_ENCODER, "max_sequence_length": MAX_LENGTH}),
    "OPTBackbone": ("decoders", {**_ENCODER, "max_sequence_length": MAX_LENGTH}),
    "GPTNeoXBackbone": ("decoders", {**_ENCODER, "max_sequence_length": MAX_LENGTH}),
    "LlamaBackbone": ("decoders", dict(_GROUPED)),
    "MistralBackbone": ("decoders", {**_GROUPED, "sliding_window": 16}),
    "GemmaBackbone": ("decoders", {**_GROUPED, "head_dim": 8}),
    "QwenBackbone": ("decoders", dict(_GROUPED)),
    "Phi3Backbone": ("decoders", dict(_GROUPED)),
}
FORMATS = ("keras", "saved_model")


def models() -> list[ModelCase]:
    return [
        ModelCase(f"{name.removesuffix('Backbone')} ({fmt})", partial(_build, name, fmt), group=group)
        for name, (group, _) in BACKBONES.items()
        for fmt in FORMATS
    ]


def import_keras_hub() -> Any:
    """keras_hub from bench/.keras_hub, on the TensorFlow backend."""
    import os
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    if KERAS_HUB_DIR.is_dir() and str(KERAS_HUB_DIR) not in sys.path:
        sys.path.append(str(KERAS_HUB_DIR))
    try:
        import keras_hub
    except ImportError as exc:
        raise SkipCase(f"keras_hub does not import ({exc}); make coverage installs it") from None
    return keras_hub


def build_backbone(name: str) -> Any:
    """The backbone with random weights and no constant weight left."""
    keras_hub = import_keras_hub()
    import keras

    keras.utils.set_random_seed(0)
    model = getattr(keras_hub.models, name)(**BACKBONES[name][1])
    rng = np.random.default_rng(1)
    for weight in model.weights:
        value = np.asarray(weight.numpy())
        if value.size > 1 and np.issubdtype(value.dtype, np.floating) and (value == value.flat[0]).all():
            scale = NOISE * max(abs(float(value.flat[0])), 1.0)
            weight.assign(value + scale * rng.standard_normal(value.shape).astype(value.dtype))
    return model


def _build(name: str, fmt: str, directory: Path) -> Built:
    model = build_backbone(name)
    if fmt == "keras":
        path = directory / "backbone.keras"
        model.save(path)
    else:
        path = directory / "backbone_saved"
        model.export(str(path), verbose=False)
    names = sorted(t.name for t in model.inputs)
    return Built(
        options={"model-path": str(path)},
        reference=partial(_reference, model),
        inputs=lambda rng, batch: _inputs(names, rng, batch),
        labels=frozenset(),
        note=f"{', '.join(names)}; " + ("model.save()" if fmt == "keras" else "model.export()"),
    )


def _inputs(names: list[str], rng: np.random.Generator, batch: int) -> Inputs:
    """As a KerasHub preprocessor gives them: right-padded, the first row full length."""
    lengths = rng.integers(1, RECHECK_LENGTH + 1, batch)
    lengths[0] = RECHECK_LENGTH
    made: Inputs = {"token_ids": rng.integers(0, VOCAB, (batch, RECHECK_LENGTH)).astype(np.int32)}
    if "padding_mask" in names:
        made["padding_mask"] = (np.arange(RECHECK_LENGTH)[None, :] < lengths[:, None]).astype(np.int32)
    if "segment_ids" in names:
        splits = rng.integers(1, RECHECK_LENGTH, batch)
        made["segment_ids"] = (np.arange(RECHECK_LENGTH)[None, :] >= splits[:, None]).astype(np.int32)
    return made


def _reference(model: Any, inputs: Inputs, names: list[str]) -> Inputs:
    outputs = model(dict(inputs), training=False)
    if not isinstance(outputs, dict):
        (only,) = names
        return {only: np.asarray(outputs)}
    return {name: np.asarray(outputs[name]) for name in names}
