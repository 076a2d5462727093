"""Generated inputs for Keras and SavedModel text models (issue 15, item 3): ids below the
Embedding each input feeds, segment ids within their 2-row table, and padded 0/1 masks.

The SavedModel is built as a KerasHub BERT backbone exports (inputs ``token_ids``, ``segment_ids``,
``padding_mask``), with plain Keras layers: keras-hub does not install beside our pins (it pulls the
full ``tensorflow`` wheel beside ``tensorflow-cpu``).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from converter.input_roles import PADDING
from tests.fixtures.cli import assert_passed

pytestmark = pytest.mark.converts
VOCAB = 50  # below the 100 an input with no table was drawn from


def _backbone(keras: ModuleType) -> Any:
    """token_ids -> a 50-row Embedding and a mask of its own; segment_ids -> a 2-row one; a mean over padding_mask."""
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    segments = keras.Input((None,), dtype="int32", name="segment_ids")
    mask = keras.Input((None,), dtype="int32", name="padding_mask")
    hidden = keras.layers.Add()([keras.layers.Embedding(VOCAB, 8)(ids), keras.layers.Embedding(2, 8)(segments)])
    weights = keras.ops.expand_dims(keras.ops.cast(mask, "float32") * keras.ops.cast(ids > 0, "float32"), -1)
    pooled = keras.ops.sum(hidden * weights, axis=1) / (keras.ops.sum(weights, axis=1) + 1.0)
    return keras.Model([ids, segments, mask], keras.layers.Dense(3, name="score")(pooled), name="backbone")


@pytest.fixture(scope="module")
def backbone(keras: ModuleType) -> Any:
    keras.utils.set_random_seed(0)
    return _backbone(keras)


def _passed(result: Any, stem: str) -> dict:
    return assert_passed(result, stem, batch_sizes=None)


EXPECTED = [
    {
        "name": "token_ids",
        "dtype": "int32",
        "role": "ids",
        "range": [0, VOCAB],
        "bound": f"the {VOCAB}-row Embedding it feeds (graph)",
    },
    {
        "name": "segment_ids",
        "dtype": "int32",
        "role": "token_types",
        "range": [0, 2],
        "bound": "the 2-row Embedding it feeds (graph)",
    },
    {"name": "padding_mask", "dtype": "int32", "role": "mask", "padding": PADDING},
]


def test_keras_ids_stay_below_the_embedding_each_feeds_and_the_mask_is_padded(
    run_cli, backbone: Any, tmp_path: Path
) -> None:
    # token_ids also feeds a comparison: it had no bound (0..99 against a 50-row table) before.
    backbone.save(tmp_path / "backbone.keras")
    report = _passed(run_cli("--model-path", str(tmp_path / "backbone.keras")), "backbone")
    assert report["inputs"] == EXPECTED


def test_saved_model_segment_ids_stay_in_their_two_row_table(run_cli, backbone: Any, tmp_path: Path) -> None:
    # KerasHub BERT's export failed with "GatherV2 indices out of range": segment_ids drawn from 0..99.
    backbone.export(str(tmp_path / "backbone_saved"), verbose=False)
    report = _passed(run_cli("--model-path", str(tmp_path / "backbone_saved")), "backbone_saved")
    by_name = {i["name"]: i for i in report["inputs"]}
    assert by_name["segment_ids"] == {
        "name": "segment_ids",
        "dtype": "int32",
        "role": "token_types",
        "range": [0, 2],
        "bound": "the 2-row table it indexes (graph)",
    }
    assert by_name["token_ids"]["range"] == [0, VOCAB]
    assert by_name["padding_mask"]["role"] == "mask"
