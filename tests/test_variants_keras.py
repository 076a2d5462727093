"""Optimised variants of a Keras CNN: the three that need no data, and int8-static calibrated on real images."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.fixtures.tiers import model_fixture


@model_fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory, keras: ModuleType) -> tuple[Path, Path]:
    """A functional CNN with BatchNormalization that finds a bright square in the top or bottom
    half of a 16x16 image (trained: its decisions are real, not near-ties), and 32 real images."""
    directory = tmp_path_factory.mktemp("keras_cnn")
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    images = rng.uniform(0, 0.2, (256, 16, 16, 1)).astype("float32")
    bottom = rng.random(256) < 0.5
    for i, low in enumerate(bottom):
        row, col = int(rng.integers(8, 13) if low else rng.integers(0, 5)), int(rng.integers(0, 13))
        images[i, row : row + 3, col : col + 3, 0] = 1.0
    layers = keras.layers
    image = keras.Input((16, 16, 1), name="image")
    h = layers.MaxPooling2D()(layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same")(image))))
    h = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same")(h)))
    model = keras.Model(image, layers.Dense(2, activation="softmax", name="probs")(layers.GlobalAveragePooling2D()(h)))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images, bottom.astype("int32"), epochs=8, batch_size=32, verbose=0)
    model.save(directory / "square_cnn.keras")
    np.save(directory / "images.npy", images[:32])
    return directory / "square_cnn.keras", directory / "images.npy"


def _results(result) -> dict[str, dict]:
    return {v["name"]: v for v in result.report("square_cnn")["variants"]["results"]}


def test_a_keras_cnn_gets_three_validated_variants(run_cli, cnn) -> None:
    model, _ = cnn
    result = run_cli("--model-path", str(model), "--variants", "optimized,fp16,int8-dynamic")

    assert result.code == 0, result.stderr
    variants = _results(result)
    assert {name: v["status"] for name, v in variants.items()} == {
        "optimized": "passed",
        "fp16": "passed",
        "int8-dynamic": "passed",
    }
    assert {f"square_cnn.{name}.onnx" for name in variants} <= set(result.written())
    for variant in variants.values():  # softmax rows: compared as probabilities, argmax as labels
        assert {o["kind"] for o in variant["outputs"]} == {"classes"}
        assert {o["batch_size"] for o in variant["outputs"]} == {16, 8}
    assert variants["fp16"]["size_ratio"] < 1  # a tiny model: the graph itself is a good share of the file
    markdown = result.markdown("square_cnn")
    for name in variants:
        assert f"| {name} | `square_cnn.{name}.onnx` |" in markdown
    assert markdown.count("| ✅ passed |") == 3


def test_int8_static_of_a_keras_cnn_is_calibrated_on_the_sample_images(run_cli, cnn) -> None:
    model, images = cnn
    result = run_cli("--model-path", str(model), "--sample-data", str(images), "--variants", "int8-static")

    assert result.code == 0, result.stderr
    static = _results(result)["int8-static"]
    assert static["status"] == "passed", static["reason"]
    assert "int8 weights per channel for 2 Conv, 1 MatMul" in static["method"]
    assert "from 32 rows of the sample data" in static["method"]
    assert static["label_agreement"] == 1.0
