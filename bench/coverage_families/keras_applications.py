"""keras.applications: all 40 architectures, weights=None, saved as .keras and converted by the CLI path.

Input sizes: 64x64 (75x75 for InceptionV3, InceptionResNetV2 and Xception, their minimum; the
native 224x224 and 331x331 for NASNetMobile and NASNetLarge, which only build at those sizes).

**Weights that make the comparison mean something.** A freshly built network is a poor witness:
with identity BatchNorm statistics activations shrink or explode layer after layer, the
softmax head then prints 1/1000 (or a one-hot) whatever the input, and ConvNeXt's layer scales
start at 1e-6, so its blocks contribute nothing. A conversion error would not show. So every
model is built with ``classifier_activation=None`` (the logits are compared, not probabilities
that squash differences below atol) and, with a fixed seed:

1. every 1-D trainable weight that Keras initialises to one constant is drawn at random: a
   nonzero constant is a scale (BatchNorm and LayerNorm gamma, ConvNeXt's layer scale of 1e-6)
   and becomes U(0.5, 1.5); a zero is an offset (beta, biases) and becomes N(0, 0.2); kernels
   keep Keras's own random initialisers;
2. every BatchNormalization gets the statistics of one batch of N(0, 1) images (the CLI's
   generated inputs), as training would give it (momentum 0, dropout off, one forward pass);
3. the last Dense layer is scaled so that the logits have unit standard deviation over that
   batch (else VGG's would be ~1e-2, under atol).

The note of each row gives the spread of its logits across inputs (std of each logit over
the batch, averaged), so a reader sees the outputs are not constant.
"""

from __future__ import annotations

import gc
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.coverage_families import Built, Inputs, ModelCase

SEED = 0
CALIBRATION_BATCH = 16
ARCHITECTURES = (
    "ConvNeXtBase",
    "ConvNeXtLarge",
    "ConvNeXtSmall",
    "ConvNeXtTiny",
    "ConvNeXtXLarge",
    "DenseNet121",
    "DenseNet169",
    "DenseNet201",
    "EfficientNetB0",
    "EfficientNetB1",
    "EfficientNetB2",
    "EfficientNetB3",
    "EfficientNetB4",
    "EfficientNetB5",
    "EfficientNetB6",
    "EfficientNetB7",
    "EfficientNetV2B0",
    "EfficientNetV2B1",
    "EfficientNetV2B2",
    "EfficientNetV2B3",
    "EfficientNetV2L",
    "EfficientNetV2M",
    "EfficientNetV2S",
    "InceptionResNetV2",
    "InceptionV3",
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3Large",
    "MobileNetV3Small",
    "NASNetLarge",
    "NASNetMobile",
    "ResNet101",
    "ResNet101V2",
    "ResNet152",
    "ResNet152V2",
    "ResNet50",
    "ResNet50V2",
    "VGG16",
    "VGG19",
    "Xception",
)
SIZES = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 75, "NASNetMobile": 224, "NASNetLarge": 331}


def models() -> list[ModelCase]:
    return [ModelCase(name, partial(_build, name), group=_group(name)) for name in ARCHITECTURES]


def _group(name: str) -> str:
    for prefix in ("ConvNeXt", "DenseNet", "EfficientNetV2", "EfficientNet", "MobileNet", "ResNet", "VGG", "NASNet"):
        if name.startswith(prefix):
            return prefix
    return "Inception and Xception"


def _keras() -> Any:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras

    return keras


def _build(name: str, directory: Path) -> Built:
    keras = _keras()
    keras.utils.set_random_seed(SEED)
    size = SIZES.get(name, 64)
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classifier_activation=None)
    batch = np.random.default_rng(SEED).standard_normal((CALIBRATION_BATCH, size, size, 3)).astype(np.float32)
    spread = make_informative(model, batch, keras)
    path = directory / f"{name}.keras"
    model.save(path)
    output_name = model.outputs[0]._keras_history.operation.name
    # The conversion loads the file itself: free this copy so it does not count twice in peak RSS.
    del model
    keras.backend.clear_session()
    gc.collect()
    return Built(
        options={"model-path": str(path)},
        reference=partial(_reference, path, output_name),
        labels=frozenset(),
        note=f"{size}x{size}, randomised + BN calibrated, logit std {spread:.2f}",
    )


def make_informative(model: Any, batch: np.ndarray, keras: Any) -> float:
    """Randomise constant-initialised weights, calibrate BatchNorm, scale the logits to unit std.

    Returns the mean over logits of their standard deviation across the batch (after scaling
    it is ~1 unless the logits do not depend on the input).
    """
    rng = np.random.default_rng(SEED)
    layers = list(model._flatten_layers(include_self=False))
    for layer in layers:
        for weight in layer.trainable_weights:
            if len(weight.shape) > 1:
                continue  # kernels: Keras's random initialisers
            value = np.asarray(weight)
            if value.size == 0 or not np.all(value == value.flat[0]):
                continue  # already random
            shape = value.shape
            if value.flat[0] != 0:  # a scale
                weight.assign(rng.uniform(0.5, 1.5, shape).astype(value.dtype))
            else:  # an offset
                weight.assign(rng.normal(0.0, 0.2, shape).astype(value.dtype))
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    dropouts = [layer for layer in layers if isinstance(layer, keras.layers.Dropout)]
    saved = [(layer, layer.momentum) for layer in norms] + [(layer, layer.rate) for layer in dropouts]
    for layer in norms:
        layer.momentum = 0.0
    for layer in dropouts:
        layer.rate = 0.0
    model(batch, training=True)  # each BatchNormalization keeps this batch's statistics
    for layer, value in saved:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = value
        else:
            layer.rate = value
    logits = np.asarray(model(batch, training=False))
    head = next(layer for layer in reversed(layers) if isinstance(layer, keras.layers.Dense))
    scale = 1.0 / max(float(logits.std()), 1e-12)
    head.kernel.assign(np.asarray(head.kernel) * scale)
    head.bias.assign(np.asarray(head.bias) * scale)
    logits = np.asarray(model(batch, training=False))
    return float(logits.std(axis=0).mean())


def _reference(path: Path, output_name: str, inputs: Inputs, names: list[str]) -> Inputs:
    """The Keras model's own output, loaded from the file the CLI converted."""
    keras = _keras()
    model = keras.saving.load_model(path, compile=False)
    (array,) = inputs.values()
    return {names[0] if len(names) == 1 else output_name: np.asarray(model(array, training=False))}
