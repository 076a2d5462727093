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
   and becomes U(0.5, 1.5); a zero is an offset (beta, biases) and becomes N(0, 0.2), except
   in VGG, which normalises nothing (its signal halves at each layer and offsets would swamp
   it); kernels keep Keras's own random initialisers;
2. every BatchNormalization gets the statistics of one batch of the inputs the CLI will feed
   (see below), as training would give it (momentum 0, dropout off, one forward pass); the
   batch has 16 images, more where a feature map is so small that a channel would see fewer
   than 64 values (64 images for InceptionV3 and InceptionResNetV2, which end at 1x1);
3. the classifier (the last Dense, or MobileNet's 1x1 convolution) is calibrated the same way:
   each logit centred on that batch and scaled to unit spread across it. Without this the
   input-dependent part of the logits is small beside constant offsets (6% for ConvNeXt-T, whose
   global pooling averages random pixels) or beside atol (VGG's logits are ~1e-2).

Before step 2, the BatchNormalization that ends each residual branch (of an ``Add`` whose other
input is the block's own input: ResNet, MobileNetV2/V3, NASNet, EfficientNet, EfficientNetV2, Xception)
has its random gamma and beta divided by the square root of the number of such branches, so that
all of them together add about as much variance as the shortcut carries (the same idea as the
zero-initialised last gamma of Goyal et al. 2017 and Fixup's depth scaling). With unit-scale
branches a deep residual network of normalised random layers is chaotic, and no float32 file can
reproduce it: in EfficientNetB3 (26 blocks) multiplying every weight by 1 +- 2**-24 (one float32
rounding) moved the float64 logits by 0.018, Keras's own float32 logits were 0.037 from its
float64 ones (68 of 16,000 over tolerance; batch 16 and the same rows one at a time differed by
0.017), every route's ONNX file was 0.033 off, layer by layer no further from float64 than Keras
float32 was, and in blocks 5 to 7 the activations on new images grew about 1.3x per block beyond
those on the calibration batch (logit spread 29 instead of 1). EfficientNetB2 to B4 failed
validation that way. With the branches scaled, Keras float32 is within 3.3e-05 of float64 on
EfficientNetB3 (6.3e-05 on EfficientNetB7) and the logit spread on new images is 1.9.

Models that rescale pixels themselves (a Rescaling or Normalization layer: EfficientNet,
EfficientNetV2, ConvNeXt, MobileNetV3) get images of uniform pixels in [0, 255], for calibration, as ``--sample-data``
(16 images) and in the re-check; N(0, 1) values would all become about the same colour after
``x / 255`` and ImageNet normalisation. The others get the CLI's generated N(0, 1) inputs.

Each model is built in a child process
(``python -m bench.coverage_families.keras_applications NAME DIR``), so the conversion starts from
the saved file, as a user's would, in a process that holds none of the build's memory (the row's
peak RSS is the largest of the build, the conversion and the re-check's reference run, each in its
own process). The note of each row gives the logit spread on a fresh batch (the standard deviation
of each logit across it, averaged: ~1, where 0 would mean outputs independent of the input) and the
input's share of the logits' variation before step 3.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.coverage_families import Built, Inputs, ModelCase

ROOT = Path(__file__).resolve().parents[2]
SEED = 0
CALIBRATION_BATCH = 16
VALUES_PER_CHANNEL = 64  # the fewest values a BatchNormalization's statistics are taken over
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
# The re-check runs onnxruntime on its own batch: 37 images of NASNetLarge at 331x331 took that
# session to 4.4 GB, above the converter's own peak (3.9 GB, at batch 16). 11 is still neither
# validation size.
RECHECK_ROWS = {331: 11}
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
    """Build in a child process: the conversion then starts from a file, as a user's would, in a
    process that holds none of the build's memory (Python keeps freed tensors' memory)."""
    _run_this_module([name, str(directory)], f"building {name} failed")
    facts = json.loads((directory / "facts.json").read_text())
    options = {"model-path": facts["path"]}
    inputs = None
    if facts["pixels"]:
        options["sample-data"] = facts["sample_data"]
        inputs = partial(_pixels, facts["input"], facts["size"])
    return Built(
        options=options,
        reference=partial(_reference, Path(facts["path"]), facts["output"]),
        inputs=inputs,
        labels=frozenset(),
        note=facts["note"],
        recheck_batch=RECHECK_ROWS.get(facts["size"], 37),
    )


def _run_this_module(arguments: list[str], failure: str) -> None:
    """Run this module's ``__main__`` in a child process; raise with its last line of stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.coverage_families.keras_applications", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{failure}: {done.stderr.strip().splitlines()[-1:]}")


def build_and_save(name: str, directory: Path) -> None:
    """Build, make informative and save one model; its facts go to ``facts.json``."""
    keras = _keras()
    keras.utils.set_random_seed(SEED)
    size = SIZES.get(name, 64)
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classifier_activation=None)
    # Models that rescale pixels themselves (EfficientNet, ConvNeXt, MobileNetV3) get pixels
    # in [0, 255]: N(0, 1) values would all map to about the same normalised colour.
    scalers = (keras.layers.Rescaling, keras.layers.Normalization)
    pixels = any(isinstance(layer, scalers) for layer in model._flatten_layers())
    rng = np.random.default_rng(SEED)
    count = calibration_batch(model, keras)
    batch = _pixels("", size, rng, count)[""] if pixels else rng.standard_normal((count, size, size, 3))
    share = make_informative(model, batch.astype(np.float32), keras)
    fresh = _pixels("", size, rng, len(batch))[""] if pixels else rng.standard_normal(batch.shape)
    spread = float(_infer(model, fresh.astype(np.float32)).std(axis=0).mean())
    path = directory / f"{name}.keras"
    model.save(path)
    facts = {
        "path": str(path),
        "size": size,
        "pixels": pixels,
        "input": model.inputs[0]._keras_history.operation.name,
        "output": model.outputs[0]._keras_history.operation.name,
        "note": f"{size}x{size}{', pixels 0-255' if pixels else ''}; logit spread {spread:.2f} on new inputs "
        f"(input share before head calibration {share:.0%})",
    }
    if pixels:
        samples = _pixels("", size, np.random.default_rng(SEED + 1), 16)[""]
        np.save(directory / "pixels.npy", samples)
        facts["sample_data"] = str(directory / "pixels.npy")
    (directory / "facts.json").write_text(json.dumps(facts))


def _pixels(name: str, size: int, rng: np.random.Generator, batch: int) -> Inputs:
    return {name: rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32)}


def calibration_batch(model: Any, keras: Any) -> int:
    """CALIBRATION_BATCH images, or more where a BatchNormalization sees a small feature map.

    InceptionV3 and InceptionResNetV2 at 75x75 end at 1x1: 16 images gave their last
    BatchNormalizations 16 values per channel, statistics that new inputs overshoot (logit spread
    2.2 instead of 1), and Keras float32 was 9.3e-04 from float64 (0.90 of the tolerance, one
    re-check element over it); at 64 images 4.9e-04 and spread 1.2.
    """
    cells = [
        int(np.prod(layer.output.shape[1:-1]))
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization) and len(layer.output.shape) == 4
    ]
    return max(CALIBRATION_BATCH, -(-VALUES_PER_CHANNEL // min(cells, default=VALUES_PER_CHANNEL)))


def make_informative(model: Any, batch: np.ndarray, keras: Any) -> float:
    """Randomise constant-initialised weights, calibrate BatchNorm, centre and scale the logits.

    Returns the input share: how much of the logits' variation (before the head is
    calibrated) comes from the input, the mean over logits of their standard deviation
    across the batch divided by their overall standard deviation.
    """
    rng = np.random.default_rng(SEED)
    layers = list(model._flatten_layers(include_self=False))
    normalisations = (keras.layers.BatchNormalization, keras.layers.LayerNormalization)
    normalised = any(isinstance(layer, normalisations) for layer in layers)
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
            elif normalised:  # an offset; VGG's would swamp a signal that halves at each layer
                weight.assign(rng.normal(0.0, 0.2, shape).astype(value.dtype))
    branches = residual_branch_norms(model, keras)
    for layer in branches:  # see the module's note: depth must not make the network chaotic
        layer.gamma.assign(np.asarray(layer.gamma) / np.sqrt(len(branches)))
        layer.beta.assign(np.asarray(layer.beta) / np.sqrt(len(branches)))
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    dropouts = [layer for layer in layers if isinstance(layer, keras.layers.Dropout)]
    saved = [(layer, layer.momentum) for layer in norms] + [(layer, layer.rate) for layer in dropouts]
    for layer in norms:
        layer.momentum = 0.0
    for layer in dropouts:
        layer.rate = 0.0
    _train_forward(model, batch)  # each BatchNormalization keeps this batch's statistics
    for layer, value in saved:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = value
        else:
            layer.rate = value
    logits = _infer(model, batch).astype(np.float64)
    spread = logits.std(axis=0).mean()  # how much the logits move with the input
    share = spread / max(float(logits.std()), 1e-30)
    # Calibrate the head as BatchNorm was: centre each logit on this batch, unit spread.
    # The classifier: a Dense layer, or a 1x1 Conv2D in MobileNet and MobileNetV3.
    head = next(layer for layer in reversed(layers) if getattr(layer, "bias", None) is not None)
    scale = 1.0 / max(float(spread), 1e-30)
    head.kernel.assign((np.asarray(head.kernel) * scale).astype(np.float32))
    head.bias.assign(((np.asarray(head.bias) - logits.mean(axis=0)) * scale).astype(np.float32))
    return float(share)


def _train_forward(model: Any, batch: np.ndarray) -> None:
    """One forward pass in training mode, as one graph: called eagerly, Keras keeps every
    intermediate output of the functional model until the call ends (NASNetLarge at 331x331,
    batch 16: past 19 GB; as a tf.function 2 GB)."""
    import tensorflow as tf

    tf.function(lambda x: model(x, training=True))(batch)


def _infer(model: Any, batch: np.ndarray) -> np.ndarray:
    """Inference as one graph (model.predict), for the memory reason of ``_train_forward``."""
    return np.asarray(model.predict(batch, batch_size=len(batch), verbose=0))


def _producers(layer: Any) -> list[Any]:
    """The layers whose outputs ``layer`` takes (its first call)."""
    nodes = getattr(layer, "_inbound_nodes", [])
    return [t._keras_history.operation for t in nodes[0].input_tensors] if nodes else []


def residual_branch_norms(model: Any, keras: Any) -> list[Any]:
    """The BatchNormalization that ends each residual branch: for every ``Add`` of two tensors
    one of which is an ancestor of the other (the block's input, an identity shortcut), the
    BatchNormalization reached from the other (through Dropout, EfficientNet's stochastic depth).
    A branch that ends in a convolution (ResNetV2) has none."""
    found = []
    for layer in model._flatten_layers(include_self=False):
        if not isinstance(layer, keras.layers.Add):
            continue
        inputs = _producers(layer)
        if len(inputs) != 2:
            continue
        for branch, shortcut in (inputs, inputs[::-1]):
            if not _is_ancestor(shortcut, branch):
                continue
            while isinstance(branch, keras.layers.Dropout):
                branch = _producers(branch)[0]
            if isinstance(branch, keras.layers.BatchNormalization):
                found.append(branch)
    return found


def _is_ancestor(candidate: Any, layer: Any) -> bool:
    seen, stack = set(), [layer]
    while stack:
        current = stack.pop()
        if current is candidate:
            return True
        if id(current) not in seen:
            seen.add(id(current))
            stack.extend(_producers(current))
    return False


def _reference(path: Path, output_name: str, inputs: Inputs, names: list[str]) -> Inputs:
    """The Keras model's own output, loaded from the file the CLI converted.

    In a child process, as the build is: loading a second copy of the model into the process
    that converted it would add the re-check's memory to the conversion's peak RSS
    (ConvNeXtXLarge: 5.6 GB, the conversion itself 3.6 GB).
    """
    (array,) = inputs.values()
    with tempfile.TemporaryDirectory(prefix="keras-reference-") as tmp:
        np.save(Path(tmp) / "inputs.npy", array)
        _run_this_module(["--reference", str(path), tmp], "the Keras reference run failed")
        output = np.load(Path(tmp) / "outputs.npy")
    return {names[0] if len(names) == 1 else output_name: output}


def run_reference(path: Path, directory: Path) -> None:
    keras = _keras()
    model = keras.saving.load_model(path, compile=False)
    array = np.load(directory / "inputs.npy")
    # predict runs the model as one tf.function: an eager call compiles each grouped convolution
    # anew (XLA), which left ConvNeXtXLarge at 4.1 GB here
    np.save(directory / "outputs.npy", model.predict(array, batch_size=len(array), verbose=0))


if __name__ == "__main__":
    if sys.argv[1] == "--reference":
        run_reference(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        build_and_save(sys.argv[1], Path(sys.argv[2]))
