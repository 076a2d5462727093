"""PyTorch: each saved format converts and validates within the default tolerances, batch axis dynamic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from converter.frameworks.pytorch.backend import PytorchBackend
from converter.request import ConversionRequest
from tests.fixtures.cli import assert_passed, error_lines
from tests.fixtures.pytorch import ModelFiles, model_class

pytestmark = pytest.mark.converts
DEFAULT_TOLERANCE = 1e-3


def assert_converted(result, stem: str, fmt: str, export_path: str) -> dict:
    """Exit 0, every output within tolerance at batch 16 and again at batch 8, one self-contained file."""
    assert result.code == 0, result.stdout + result.stderr
    assert error_lines(result.stderr) == []  # torch's warnings and graph dumps do not reach the user
    report = result.report(stem)
    assert report["status"] == "passed"
    assert report["model"]["framework"] == "pytorch"
    assert report["model"]["format"] == fmt
    assert report["onnx"]["export_path"] == export_path
    assert report["validation"]["batch_sizes"] == [16, 8]
    assert report["validation"]["problems"] == []
    for batch in report["validation"]["batches"]:
        for output in batch["outputs"]:
            assert output["passed"] and output["max_abs_diff"] < DEFAULT_TOLERANCE, output
    assert all(i["shape"][0] == "batch" or isinstance(i["shape"][0], str) for i in report["onnx"]["inputs"])
    assert all(isinstance(o["shape"][0], str) for o in report["onnx"]["outputs"])
    # torch 2.9+ would write the weights to a separate .onnx.data; under 2 GB we keep one file.
    assert result.written() == [f"{stem}.onnx", f"{stem}.report.json", f"{stem}.report.md"]
    assert report["onnx"]["files"] == [str(result.output_dir / f"{stem}.onnx")]
    return report


def test_mlp_state_dict_with_model_class(run_cli, model_files: ModelFiles) -> None:
    result = run_cli(
        "--model-path", str(model_files["mlp.pt"]), "--model-class", model_class("MLP"), "--input-shapes", "batchx4"
    )
    report = assert_converted(result, "mlp", "state_dict", "torch.onnx.export(dynamo=True)")
    assert report["onnx"]["inputs"] == [{"name": "x", "shape": ["batch", 4], "dtype": "float32"}]
    assert report["onnx"]["outputs"] == [{"name": "output", "shape": ["batch", 3], "dtype": "float32"}]
    assert report["model"]["description"] == "MLP (131 parameters)"
    assert report["onnx"]["fallback_reason"] == ""
    assert report["versions"]["torch"].startswith("2.13.0")
    assert result.stdout.startswith("PASS mlp.pt (pytorch/state_dict) -> ")


def test_cnn_with_batchnorm_from_safetensors_and_a_factory(run_cli, model_files: ModelFiles) -> None:
    result = run_cli(
        "--model-path",
        str(model_files["cnn.safetensors"]),
        "--model-class",
        model_class("make_cnn"),
        "--input-shapes",
        "batchx3x16x16",
    )
    report = assert_converted(result, "cnn", "safetensors", "torch.onnx.export(dynamo=True)")
    assert {"Conv", "MaxPool", "Relu"} <= set(report["onnx"]["operators"])
    assert report["onnx"]["inputs"][0]["name"] == "image"


@pytest.mark.parametrize(("extra", "batches"), [((), [5, 2]), (("--validation-samples", "16"), [16, 8])])
def test_large_image_rows_are_validated_at_fewer_rows_unless_asked(
    run_cli, model_files: ModelFiles, extra: tuple[str, ...], batches: list[int]
) -> None:
    """A 3x256x256 row holds 196,608 elements: auto validates 5 rows (at most 2^20 elements), then 2."""
    cnn = ["--model-path", str(model_files["cnn.safetensors"]), "--model-class", model_class("make_cnn")]
    result = run_cli(*cnn, "--input-shapes", "batchx3x256x256", *extra)
    assert_passed(result, "cnn", tuple(batches))
    assert f"batch {batches[0]} and {batches[1]}" in result.stdout


def test_lstm_torchscript_archive_uses_the_torchscript_exporter(run_cli, model_files: ModelFiles) -> None:
    result = run_cli("--model-path", str(model_files["lstm_scripted.pt"]), "--input-shapes", "batchx7x6")
    report = assert_converted(result, "lstm_scripted", "torchscript", "torch.onnx.export(dynamo=False)")
    assert (
        report["onnx"]["fallback_reason"] == "the model is a TorchScript ScriptModule, which torch.export cannot trace"
    )
    assert "LSTM" in report["onnx"]["operators"]
    # opset auto: the TorchScript exporter's highest, not the dynamo exporter's.
    assert report["onnx"]["opset"] == 20
    assert report["model"]["description"] == "LSTMTagger (764 parameters)"


def test_transformer_program_generates_token_ids_below_the_vocabulary(
    run_cli, model_files: ModelFiles, pytorch_models
) -> None:
    # No --input-shapes or --input-dtypes: the ExportedProgram brings its own (int64 ids, dynamic batch).
    path = model_files["transformer.pt2"]
    result = run_cli("--model-path", str(path))
    report = assert_converted(result, "transformer", "exported_program", "torch.onnx.export(dynamo=True)")
    assert report["onnx"]["inputs"][0]["name"] == "tokens"
    assert report["onnx"]["inputs"][0]["dtype"] == "int64"
    assert report["onnx"]["inputs"][0]["shape"] == ["batch", pytorch_models.SEQ]  # not torch.export's own symbol (s77)
    assert [o["shape"][0] for o in report["onnx"]["outputs"]] == ["batch"] * len(report["onnx"]["outputs"])

    backend = PytorchBackend()
    request = ConversionRequest.from_mapping({"model-path": str(path)})
    loaded = backend.load(request, "exported_program")
    assert [(s.name, s.dtype, s.high) for s in backend.input_specs(loaded, request)] == [
        ("tokens", "int64", pytorch_models.VOCAB)
    ]


def test_two_inputs_two_outputs_named_after_forward_and_dict_keys(run_cli, model_files: ModelFiles) -> None:
    # A whole pickled module (unsafe, allowed); ids feed an embedding of 20 rows.
    result = run_cli(
        "--model-path",
        str(model_files["two_in_two_out.pt"]),
        "--allow-unsafe-load",
        "true",
        "--input-shapes",
        "ids:batchx6;features:batchx3",
        "--input-dtypes",
        "ids:int64",
    )
    report = assert_converted(result, "two_in_two_out", "pickled_module", "torch.onnx.export(dynamo=True)")
    assert [(i["name"], i["dtype"]) for i in report["onnx"]["inputs"]] == [("ids", "int64"), ("features", "float32")]
    assert [(o["name"], o["shape"]) for o in report["onnx"]["outputs"]] == [
        ("score", ["batch", 1]),
        ("embedding", ["batch", 16]),
    ]
    compared = [o["name"] for o in report["validation"]["batches"][0]["outputs"]]
    assert compared == ["score", "embedding"]


def test_inputs_renamed_by_input_shapes(run_cli, model_files: ModelFiles, tmp_path: Path) -> None:
    result = run_cli("--model-path", str(model_files["mlp_traced.pt"]), "--input-shapes", "features:batchx4")
    report = assert_converted(result, "mlp_traced", "torchscript", "torch.onnx.export(dynamo=False)")
    assert report["onnx"]["inputs"][0]["name"] == "features"
    assert "inputs named from --input-shapes: features (forward's x)" in report["warnings"]
    model = onnx.load(str(result.output_dir / "mlp_traced.onnx"))
    assert [i.name for i in model.graph.input] == ["features"]


@pytest.mark.parametrize(
    "name", ["mlp.pt", "cnn.safetensors", "lstm_scripted.pt", "transformer.pt2", "two_in_two_out.pt"]
)
def test_detection_reads_the_format_from_the_file(model_files: ModelFiles, name: str) -> None:
    expected = {
        "mlp.pt": "state_dict",
        "cnn.safetensors": "safetensors",
        "lstm_scripted.pt": "torchscript",
        "transformer.pt2": "exported_program",
        "two_in_two_out.pt": "pickled_module",
    }
    assert PytorchBackend.detect(model_files[name]) == expected[name]


def test_sample_data_gives_shapes_dtypes_and_rows(run_cli, model_files: ModelFiles, tmp_path: Path) -> None:
    # No --input-shapes or --input-dtypes: the .npz arrays, named after forward's parameters, say it all.
    rng = np.random.default_rng(3)
    samples = tmp_path / "rows.npz"
    np.savez(samples, ids=rng.integers(0, 20, (10, 6)), features=rng.standard_normal((10, 3)).astype(np.float32))
    result = run_cli(
        "--model-path",
        str(model_files["two_in_two_out.pt"]),
        "--allow-unsafe-load",
        "true",
        "--sample-data",
        str(samples),
    )
    assert result.code == 0, result.stdout
    report = result.report("two_in_two_out")
    assert [(i["name"], i["shape"], i["dtype"]) for i in report["onnx"]["inputs"]] == [
        ("ids", ["batch", 6], "int64"),
        ("features", ["batch", 3], "float32"),
    ]
    assert report["validation"]["input_source"] == "rows.npz"
    assert report["validation"]["batch_sizes"] == [10, 5]
    assert report["passed"] is True
