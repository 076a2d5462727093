"""Small TensorFlow / Keras example models, one or more per format: .keras, .h5, SavedModel, .tflite."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def build(out_dir: Path) -> list[tuple[Path, list[str]]]:
    """Train the examples; return (model path, extra CLI arguments) for each."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: no C++ start-up notices
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    import tensorflow as tf

    logging.getLogger("absl").setLevel(logging.ERROR)  # "HDF5 is a legacy format" when saving the .h5
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    layers = keras.layers

    # Two moons, a Sequential MLP saved in the Keras 3 format (.keras).
    angle = rng.uniform(0, np.pi, 512)
    upper = rng.random(512) < 0.5
    points = np.stack([np.cos(angle) + (~upper), np.sin(angle) * np.where(upper, 1, -1) + (~upper) * 0.5], 1)
    points = (points + rng.normal(0, 0.1, points.shape)).astype("float32")
    moons = keras.Sequential(
        [
            keras.Input((2,), name="point"),
            layers.Dense(32, activation="relu"),
            layers.Dense(32, activation="relu"),
            layers.Dense(2, activation="softmax", name="class_probs"),
        ]
    )
    _fit(moons, points, (~upper).astype("int32"), "sparse_categorical_crossentropy", epochs=30)
    moons.save(out_dir / "tf_moons_mlp.keras")

    # A bright square in the top or bottom half: a functional CNN with BatchNormalization, legacy .h5.
    images = rng.uniform(0, 0.2, (512, 16, 16, 1)).astype("float32")
    bottom = rng.random(512) < 0.5
    for i in range(len(images)):
        row = int(rng.integers(8, 13)) if bottom[i] else int(rng.integers(0, 5))
        col = int(rng.integers(0, 13))
        images[i, row : row + 3, col : col + 3, 0] = 1.0
    image = keras.Input((16, 16, 1), name="image")
    h = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same")(image)))
    h = layers.MaxPooling2D()(h)
    h = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same")(h)))
    finder = keras.Model(image, layers.Dense(2, name="logits")(layers.GlobalAveragePooling2D()(h)))
    _fit(finder, images, bottom.astype("int32"), keras.losses.SparseCategoricalCrossentropy(from_logits=True), epochs=8)
    finder.save(out_dir / "tf_square_cnn.h5")

    # The next value of a noisy sine: an LSTM, written as a SavedModel by model.export().
    phase = rng.uniform(0, 2 * np.pi, (512, 1))
    steps = np.arange(21)[None, :] * 0.3
    waves = (np.sin(phase + steps) + rng.normal(0, 0.05, (512, 21))).astype("float32")
    forecaster = keras.Sequential(
        [keras.Input((20, 1), name="history"), layers.LSTM(16), layers.Dense(1, name="next_value")]
    )
    _fit(forecaster, waves[:, :20, None], waves[:, 20:], "mse", epochs=10)
    forecaster.export(str(out_dir / "tf_sine_lstm_savedmodel"), verbose=False)

    # Two inputs and two outputs (a score and class probabilities), as .keras and as a SavedModel
    # with a second signature that --signature selects.
    heads = _two_heads(keras)
    a = rng.normal(size=(512, 4)).astype("float32")
    b = rng.normal(size=(512, 3)).astype("float32")
    heads.compile("adam", {"score": "mse", "probs": "sparse_categorical_crossentropy"})
    heads.fit(
        [a, b],
        {"score": a[:, :2] - b[:, :2], "probs": (b.sum(1) > 0).astype("int32") + (a[:, 0] > 1)},
        epochs=5,
        verbose=0,
    )
    heads.save(out_dir / "tf_two_heads.keras")
    archive = keras.export.ExportArchive()
    archive.track(heads)
    signature = [tf.TensorSpec((None, 4), tf.float32, name="a"), tf.TensorSpec((None, 3), tf.float32, name="b")]
    archive.add_endpoint("serving_default", lambda x, y: heads([x, y]), signature)
    archive.add_endpoint("probs_only", lambda x, y: {"probs": heads([x, y])["probs"]}, signature)
    archive.write_out(str(out_dir / "tf_two_heads_savedmodel"), verbose=False)

    # MobileNetV2 (untrained, alpha 0.35, 32x32) as a .tflite flatbuffer; the BatchNormalization
    # statistics are set from a batch so the outputs are not all 0.1.
    mobilenet = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=10)
    calibrate_batch_norm(keras, mobilenet, rng.normal(size=(32, 32, 32, 3)).astype("float32"))
    with tempfile.TemporaryDirectory() as exported:
        mobilenet.export(exported, verbose=False)  # from_keras_model would print every captured variable
        (out_dir / "tf_mobilenet_v2.tflite").write_bytes(tf.lite.TFLiteConverter.from_saved_model(exported).convert())

    return [
        (out_dir / "tf_moons_mlp.keras", []),
        (out_dir / "tf_square_cnn.h5", []),
        (out_dir / "tf_sine_lstm_savedmodel", []),
        (out_dir / "tf_two_heads.keras", []),
        (out_dir / "tf_two_heads_savedmodel", ["--signature", "probs_only"]),
        (out_dir / "tf_mobilenet_v2.tflite", []),
    ]


def _fit(model: Any, x: Any, y: Any, loss: Any, epochs: int) -> None:
    model.compile("adam", loss)
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)


def _two_heads(keras: Any) -> Any:
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Concatenate()([a, b]))
    score = keras.layers.Dense(2, name="score")(hidden)
    probs = keras.layers.Dense(3, activation="softmax", name="probs")(hidden)
    return keras.Model([a, b], {"score": score, "probs": probs})


def calibrate_batch_norm(keras: Any, model: Any, batch: np.ndarray) -> None:
    """Set every BatchNormalization's moving statistics to those of ``batch`` (one pass, momentum 0)."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(batch, training=True)
    for layer, momentum in zip(norms, momenta, strict=True):
        layer.momentum = momentum
