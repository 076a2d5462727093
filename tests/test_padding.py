"""Padded positions (converter/padding.py): what a model computes where attention_mask is 0 is not compared.

A real ONNX file (y = 2x per token) run in onnxruntime against references that differ at chosen
places, and a ModernBERT whose exported file differs from PyTorch only at padded positions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from converter.validate import Criteria, OnnxRunner, Validation, validate

CRITERIA = Criteria(rtol=1e-3, atol=1e-4)


def doubling(folder: Path, mask_name: str) -> OnnxRunner:
    """hidden = 2 * embeddings; the mask is an input the graph takes and ignores."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["embeddings", "two"], ["hidden"])],
        "doubling",
        [
            helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", "seq", 4]),
            helper.make_tensor_value_info(mask_name, TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "seq", 4])],
        [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])],
    )
    path = folder / f"{mask_name}.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)]), path)
    return OnnxRunner(path)


def run(folder: Path, mask_name: str, mask: np.ndarray, at: tuple[int, int]) -> Validation:
    """Validate with the reference off by 0.5 at position ``at`` (row, token)."""
    embeddings = np.random.default_rng(0).standard_normal((*mask.shape, 4)).astype(np.float32)
    reference = 2 * embeddings
    reference[at] += 0.5
    inputs = {"embeddings": embeddings, mask_name: mask}
    return validate(doubling(folder, mask_name), [(inputs, {"hidden": reference})], CRITERIA, [], "generated")


PADDED = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])


def test_a_difference_where_attention_mask_pads_is_left_out_counted_and_reported(tmp_path: Path) -> None:
    result = run(tmp_path, "attention_mask", PADDED, (1, 3))
    output = result.batches[0].outputs[0]
    assert result.passed
    assert output.padded == 5 * 4  # five padded tokens of 4 values
    assert output.padded_max_diff == pytest.approx(0.5)
    assert output.max_abs_diff < 1e-6


def test_a_difference_at_a_real_token_still_fails(tmp_path: Path) -> None:
    result = run(tmp_path, "attention_mask", PADDED, (1, 1))
    assert not result.passed
    assert result.batches[0].outputs[0].max_abs_diff == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["key_padding_mask", "padding_mask", "mask"])
def test_other_masks_are_not_read_as_padding(tmp_path: Path, name: str) -> None:
    # PyTorch's key_padding_mask means the opposite (True = padding): only attention_mask is read.
    result = run(tmp_path, name, PADDED, (1, 3))
    assert not result.passed and result.batches[0].outputs[0].padded == 0


def test_a_mask_that_is_not_zero_one_is_not_read_as_padding(tmp_path: Path) -> None:
    result = run(tmp_path, "attention_mask", PADDED * 3, (1, 3))
    assert not result.passed and result.batches[0].outputs[0].padded == 0


MODERNBERT = """
import torch
import transformers


def build():
    config = transformers.ModernBertConfig(
        vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=128, pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1,
        sep_token_id=2, local_attention=16,
    )
    torch.manual_seed(0)
    return transformers.ModernBertModel(config).eval()
"""


@pytest.mark.converts
def test_modernbert_differs_only_where_the_mask_pads_and_passes(tmp_path: Path, run_cli) -> None:
    import torch

    (tmp_path / "modernbert.py").write_text(MODERNBERT)
    namespace: dict = {}
    exec(compile(MODERNBERT, "modernbert.py", "exec"), namespace)  # the test's own code, to save its weights
    torch.save(namespace["build"]().state_dict(), tmp_path / "modernbert.pt")

    result = run_cli(
        "--model-path", str(tmp_path / "modernbert.pt"),
        "--model-code", f"{tmp_path / 'modernbert.py'}:build",
        "--input-shapes", "input_ids:batchxseq;attention_mask:batchxseq",
        "--input-dtypes", "input_ids:int64;attention_mask:int64",
    )  # fmt: skip

    assert result.code == 0, result.stdout + result.stderr
    outputs = [o for b in result.report("modernbert")["validation"]["batches"] for o in b["outputs"]]
    assert all(o["padded"] > 0 and o["max_abs_diff"] < 1e-5 for o in outputs)
    assert max(o["padded_max_diff"] for o in outputs) > 1e-3  # over the default atol: it would have failed
    assert "**Padded positions** (`attention_mask` 0) are not compared" in result.markdown("modernbert")


def test_a_mask_with_a_row_of_only_padding_is_not_read_as_padding(tmp_path: Path) -> None:
    # no real token in a row: not what a tokenizer writes, so nothing is left out on its word
    mask = PADDED.copy()
    mask[2] = 0
    result = run(tmp_path, "attention_mask", mask, (1, 3))
    assert not result.passed and result.batches[0].outputs[0].padded == 0
