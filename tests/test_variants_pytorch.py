"""Optimised variants of PyTorch models: a transformer, a vision CNN with int8-static, and float16 overflow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.pytorch import ModelFiles, model_class

pytestmark = pytest.mark.converts


def _results(result, stem: str) -> dict[str, dict]:
    return {v["name"]: v for v in result.report(stem)["variants"]["results"]}


def test_a_transformer_gets_optimized_fp16_and_int8_dynamic_variants(run_cli, model_files: ModelFiles) -> None:
    result = run_cli("--model-path", str(model_files["transformer.pt2"]), "--variants", "optimized,fp16,int8-dynamic")

    assert result.code == 0, result.stderr
    variants = _results(result, "transformer")
    assert {name: v["status"] for name, v in variants.items()} == {
        "optimized": "passed",
        "fp16": "passed",
        "int8-dynamic": "passed",
    }
    # opset 23's Attention stays as it is: quantize_dynamic would turn it into a QAttention onnxruntime refuses
    assert "Attention" in result.report("transformer")["onnx"]["operators"]
    assert "for 1 Gather, 3 Gemm, 6 MatMul" in variants["int8-dynamic"]["method"]
    assert variants["optimized"]["method"].endswith(
        "holds onnxruntime's CPU operators (4 com.microsoft.SkipLayerNormalization): serve it with onnxruntime on CPU"
    )
    # the exporter's stack traces are dropped: the variants are far smaller than the fp32 file
    assert variants["fp16"]["size_ratio"] < 0.5 and variants["int8-dynamic"]["size_ratio"] < 0.5
    for variant in variants.values():
        assert variant["label_agreement"] == 1.0  # output: 16 x 3 logits, judged by argmax and softmax
        assert {o["kind"] for o in variant["outputs"]} == {"classes"}


def test_a_vision_cnn_gets_fp16_and_an_int8_static_variant_calibrated_on_the_sample_data(
    run_cli, model_files: ModelFiles, tmp_path: Path
) -> None:
    images = tmp_path / "images.npy"
    np.save(images, np.random.default_rng(0).standard_normal((32, 3, 16, 16)).astype(np.float32))
    result = run_cli(
        "--model-path", str(model_files["cnn.safetensors"]), "--model-class", model_class("SmallCNN"),
        "--input-shapes", "batchx3x16x16", "--sample-data", str(images), "--variants", "fp16,int8-dynamic,int8-static",
    )  # fmt: skip

    assert result.code == 0, result.stderr
    variants = _results(result, "cnn")
    assert {name: v["status"] for name, v in variants.items()} == {
        "fp16": "passed",  # its input Cast feeds the first Conv: the graph is sorted again after the converter
        "int8-dynamic": "passed",
        "int8-static": "passed",
    }
    static = variants["int8-static"]
    assert static["status"] == "passed"
    assert static["method"].startswith("onnxruntime ")
    assert static["method"].endswith(
        "quantize_static, QDQ: int8 weights per channel for 2 Conv, 1 Gemm, uint8 activations with MinMax ranges "
        "from 32 rows of the sample data, node metadata dropped"
    )
    assert (result.output_dir / "cnn.int8-static.onnx").is_file()
    # int8-dynamic leaves Conv in float32 and says so
    assert variants["int8-dynamic"]["method"].endswith(
        "; 2 Conv stay float32 (onnxruntime has no fast ConvInteger kernel: use int8-static)"
    )


def test_nodes_with_values_beyond_float16_stay_float32_in_the_fp16_variant(
    run_cli, tmp_path: Path, torch, pytorch_models
) -> None:
    pm = pytorch_models
    model = tmp_path / "large_values.pt2"
    torch.manual_seed(0)
    program = torch.export.export(
        pm.LargeValues().eval(), (torch.randn(4, 4),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(program, model)
    result = run_cli("--model-path", str(model), "--variants", "fp16")

    assert result.code == 0, result.stderr
    fp16 = _results(result, "large_values")["fp16"]
    assert fp16["status"] == "passed", fp16["reason"]
    assert fp16["method"].endswith("; kept in float32: 2 Mul, 1 Relu with values beyond 10000 on the validation inputs")
    assert fp16["max_abs_diff"] < 1e-2
