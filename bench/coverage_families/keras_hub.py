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

from bench.coverage_families import Built, ModelCase, import_beside
from bench.coverage_families.keras_text import keras_on_tensorflow, reference, text_inputs

KERAS_HUB_DIR = Path(__file__).resolve().parent.parent / ".keras_hub"
VOCAB, MAX_LENGTH = 100, 64
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
    keras_on_tensorflow()
    return import_beside(KERAS_HUB_DIR, "keras_hub")


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
        reference=partial(reference, model),
        inputs=lambda rng, batch: text_inputs(names, rng, batch, VOCAB),
        labels=frozenset(),
        note=f"{', '.join(names)}; " + ("model.save()" if fmt == "keras" else "model.export()"),
    )
