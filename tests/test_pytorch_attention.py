"""PyTorch models built the way Hugging Face transformers are: keyword inputs, optional parameters
between the inputs a user gives, attention with a learned position bias (issue 9, part 4).

Each test is the tiny form of a failure bench/coverage_families/pytorch.py found on a real
architecture: T5 encoder (.pt2), GPT-2 (state_dict) and every .pt2 exported with kwargs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from converter.escape import markdown_text
from tests.fixtures.pytorch import ATTENTION_MODELS_FILE as MODELS_FILE

pytestmark = pytest.mark.converts
DYNAMO = "torch.onnx.export(dynamo=True)"
IDS_AND_MASK = ("input_ids:batchxseq;attention_mask:batchxseq", "input_ids:int64;attention_mask:int64")


def _dims(torch: ModuleType) -> tuple[Any, Any]:
    return torch.export.Dim("batch"), torch.export.Dim("seq", max=64)


@pytest.fixture
def pam(attention_models: ModuleType) -> ModuleType:
    """tests/fixtures/pytorch_attention_models.py, under the short name the tests use."""
    return attention_models


@pytest.fixture(scope="module")
def padded_encoder(attention_models: ModuleType, torch: ModuleType) -> Any:
    torch.manual_seed(0)
    return attention_models.PaddedEncoder().eval()


@pytest.fixture(scope="module")
def keyword_program(
    tmp_path_factory: pytest.TempPathFactory, padded_encoder: Any, attention_models: ModuleType, torch: ModuleType
) -> Path:
    """PaddedEncoder exported the way a transformers model is: inputs as kwargs, batch and seq dynamic."""
    batch, seq = _dims(torch)
    vocabulary = attention_models.VOCAB
    kwargs = {"input_ids": torch.randint(0, vocabulary, (4, 8)), "attention_mask": torch.ones(4, 8, dtype=torch.int64)}
    program = torch.export.export(
        padded_encoder, (), kwargs=kwargs, dynamic_shapes={name: {0: batch, 1: seq} for name in kwargs}
    )
    path = tmp_path_factory.mktemp("attention") / "keyword_program.pt2"
    torch.export.save(program, str(path))
    return path


def _assert_seq_validated_at_two_sizes(report: dict, output: str, width: int) -> None:
    first, second = report["validation"]["batches"]
    shapes = {b["batch_size"]: next(o["shape"] for o in b["outputs"] if o["name"] == output) for b in (first, second)}
    assert shapes == {16: [16, 32, width], 8: [8, 40, width]}


def test_program_exported_with_keyword_inputs_is_called_by_keyword(run_cli, keyword_program: Path, pam) -> None:
    # Called by position, the program refuses: "Ran into a kwarg keyword mismatch".
    result = run_cli("--model-path", str(keyword_program))
    assert result.code == 0, result.stdout + result.stderr
    report = result.report("keyword_program")
    assert report["onnx"]["export_path"] == DYNAMO
    assert [i["name"] for i in report["onnx"]["inputs"]] == ["input_ids", "attention_mask"]
    assert [o["name"] for o in report["onnx"]["outputs"]] == ["last_hidden_state", "pooler_output"]
    _assert_seq_validated_at_two_sizes(report, "last_hidden_state", pam.WIDTH)
    assert report["validation"]["passed"] is True


def test_inputs_that_skip_an_optional_parameter_are_passed_by_keyword(
    run_cli, padded_encoder: Any, tmp_path: Path, pam, torch
) -> None:
    # forward(input_ids, past_key_values=None, attention_mask=None): past_key_values was taken as
    # an input too ("the shape of input past_key_values is unknown").
    weights = tmp_path / "encoder.pt"
    torch.save(padded_encoder.state_dict(), weights)
    shapes, dtypes = IDS_AND_MASK
    result = run_cli(
        "--model-path",
        str(weights),
        "--model-class",
        f"{MODELS_FILE}:PaddedEncoder",
        "--input-shapes",
        shapes,
        "--input-dtypes",
        dtypes,
    )
    assert result.code == 0, result.stdout + result.stderr
    report = result.report("encoder")
    assert report["onnx"]["export_path"] == DYNAMO
    assert report["onnx"]["inputs"] == [
        {"name": "input_ids", "shape": ["batch", "seq"], "dtype": "int64"},
        {"name": "attention_mask", "shape": ["batch", "seq"], "dtype": "int64"},
    ]
    _assert_seq_validated_at_two_sizes(report, "last_hidden_state", pam.WIDTH)
    # The mask reached the model by keyword: padding changes the pooled output in ONNX as in torch.
    session = ort.InferenceSession(str(result.output_dir / "encoder.onnx"), providers=["CPUExecutionProvider"])
    ids = np.random.default_rng(3).integers(0, pam.VOCAB, (2, 6))
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]])
    onnx_pooled = session.run(["pooler_output"], {"input_ids": ids, "attention_mask": mask})[0]
    with torch.no_grad():
        expected = padded_encoder(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))["pooler_output"]
        unmasked = padded_encoder(torch.from_numpy(ids))["pooler_output"]
    np.testing.assert_allclose(onnx_pooled, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(onnx_pooled[1] - unmasked[1].numpy()).max() > 1e-3


@pytest.mark.parametrize("no_grad", [False, True], ids=["exported-with-grad", "exported-under-no_grad"])
def test_program_with_a_learned_position_bias_exports(run_cli, tmp_path: Path, no_grad: bool, pam, torch) -> None:
    # The bias makes scaled_dot_product_attention's output strides in the recorded trace differ
    # from the exporter's re-trace: a contiguous() copy (with grad) or the reshape's own copy
    # (under no_grad, where the trace saw a contiguous tensor) was dropped there and the export
    # failed: "Cannot view a tensor with shape ... as a tensor with shape ...".
    torch.manual_seed(0)
    model = pam.BiasedSelfAttention().eval()
    batch, seq = _dims(torch)
    with torch.no_grad() if no_grad else torch.enable_grad():
        program = torch.export.export(
            model, (torch.randint(0, pam.VOCAB, (4, 8)),), dynamic_shapes=({0: batch, 1: seq},)
        )
    path = tmp_path / "biased_attention.pt2"
    torch.export.save(program, str(path))
    result = run_cli("--model-path", str(path))
    assert result.code == 0, result.stdout + result.stderr
    report = result.report("biased_attention")
    assert report["onnx"]["export_path"] == DYNAMO
    assert report["onnx"]["inputs"][0]["dtype"] == "int64"
    assert "Identity" not in report["onnx"]["operators"]  # the copies cost nothing in the file
    _assert_seq_validated_at_two_sizes(report, "output", pam.WIDTH)
    assert report["validation"]["passed"] is True
    # A third sequence length, against the eager model: the copies changed no value.
    session = ort.InferenceSession(str(result.output_dir / "biased_attention.onnx"), providers=["CPUExecutionProvider"])
    ids = np.random.default_rng(4).integers(0, pam.VOCAB, (3, 11))
    with torch.no_grad():
        expected = model(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(session.run(None, {"input_ids": ids})[0], expected, rtol=1e-4, atol=1e-5)


# Saved by a process that registered its own output type, as transformers registers ModelOutput.
_SAVE_PROGRAM_WITH_OWN_OUTPUT_TYPE = """
import sys
import torch
import torch.utils._pytree as pytree


class Scores(dict):
    pass


pytree.register_pytree_node(
    Scores,
    lambda d: (list(d.values()), list(d.keys())),
    lambda values, keys: Scores(zip(keys, values)),
    serialized_type_name="somepackage.outputs.Scores",
    flatten_with_keys_fn=lambda d: ([(pytree.MappingKey(k), v) for k, v in d.items()], list(d.keys())),
)


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        logits = self.fc(x)
        return Scores(logits=logits, probabilities=logits.softmax(-1))


torch.manual_seed(0)
program = torch.export.export(Model().eval(), (torch.randn(4, 4),), dynamic_shapes=({0: torch.export.Dim("batch")},))
torch.export.save(program, sys.argv[1])
"""


def test_program_whose_output_type_is_not_importable_is_read_as_a_dict(run_cli, tmp_path: Path) -> None:
    # A transformers .pt2 names transformers.modeling_outputs.* in its output spec; without
    # transformers (the image has none) torch.export.load failed: "... in pytree is not registered".
    path = tmp_path / "scores.pt2"
    subprocess.run([sys.executable, "-c", _SAVE_PROGRAM_WITH_OWN_OUTPUT_TYPE, str(path)], check=True)
    result = run_cli("--model-path", str(path))
    assert result.code == 0, result.stdout + result.stderr
    report = result.report("scores")
    assert [o["name"] for o in report["onnx"]["outputs"]] == ["logits", "probabilities"]
    assert report["warnings"] == [
        "the program returns or takes somepackage.outputs.Scores, which is not importable here: read as a dict of its keys"
    ]
    first, second = report["validation"]["batches"]
    assert [o["shape"] for o in first["outputs"]] == [[16, 3], [16, 3]]
    assert [o["shape"] for o in second["outputs"]] == [[8, 3], [8, 3]]
    assert report["passed"] is True


# -- rotary position embeddings: the highest opset that reproduces (issue 15) -------------------------


def rotary_at_23(node: str) -> str:
    """What onnxruntime 1.32 says of the RotaryEmbedding node the dynamo exporter writes at opset 23."""
    return (
        f"onnxruntime failed running the RotaryEmbedding node {node} on inputs input_ids 4x12, "
        "attention_mask 4x12: Inputs 'cos_cache' and 'sin_cache' are expected to have the same shape as input 'x', "
        "got 1 and 12"
    )


@pytest.fixture(scope="module")
def rotary(
    tmp_path_factory: pytest.TempPathFactory, attention_models: ModuleType, torch: ModuleType
) -> dict[str, Path]:
    """RotaryDecoder as a .pt2 (dynamic batch and sequence), as a state_dict, and real 0/1 masks
    with right padding on two of the four rows."""
    directory = tmp_path_factory.mktemp("rotary")
    model = attention_models.rotary_decoder()
    torch.save(model.state_dict(), directory / "rotary.pt")
    batch, seq = _dims(torch)
    example = (torch.randint(0, attention_models.VOCAB, (2, 8)), torch.ones(2, 8, dtype=torch.int64))
    program = torch.export.export(model, example, dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}))
    torch.export.save(program, str(directory / "rotary.pt2"))
    rng = np.random.default_rng(0)
    mask = np.ones((4, 12), np.int64)
    mask[1, 9:] = 0
    mask[3, 5:] = 0
    ids = rng.integers(0, attention_models.VOCAB, (4, 12)).astype(np.int64)
    np.savez(directory / "sample.npz", input_ids=ids, attention_mask=mask)
    return {"pt2": directory / "rotary.pt2", "state_dict": directory / "rotary.pt", "sample": directory / "sample.npz"}


@pytest.mark.parametrize(
    ("kind", "node"), [("pt2", "node_RotaryEmbedding_143"), ("state_dict", "node_RotaryEmbedding_173")]
)
def test_rotary_embedding_onnxruntime_refuses_at_opset_23_converts_at_22(
    run_cli, rotary: dict[str, Path], kind: str, node: str
) -> None:
    # A state_dict needs the shapes named: the sequence axis is dynamic, as in the .pt2.
    names = ["--input-shapes", IDS_AND_MASK[0], "--model-class", f"{MODELS_FILE}:rotary_decoder"]
    extra = names if kind == "state_dict" else []
    result = run_cli("--model-path", str(rotary[kind]), *extra, "--sample-data", str(rotary["sample"]))
    assert result.code == 0, result.stdout + result.stderr
    report = result.report("rotary")
    assert [(a["route"], a["opset"], a["outcome"], a["reason"]) for a in report["export_attempts"]] == [
        (DYNAMO, 23, "error", rotary_at_23(node)),
        (DYNAMO, 22, "passed", ""),
    ]
    assert (report["onnx"]["opset"], report["onnx"]["export_path"]) == (22, DYNAMO)
    assert "RotaryEmbedding" not in report["onnx"]["operators"]
    assert report["validation"]["batch_sizes"] == [4, 2]
    assert report["validation"]["passed"] is True
    assert report["validation"]["batches"][0]["outputs"][0]["max_abs_diff"] < 1e-5
    fallback = f"{DYNAMO}: {rotary_at_23(node)}"
    assert report["onnx"]["fallback_reason"] == fallback
    assert report["warnings"] == [f"exported with {DYNAMO} after the preferred path failed: {fallback}"]
    markdown = result.markdown("rotary")
    assert "<details><summary>Export routes tried (" in markdown  # folded, with every attempt
    assert f"| `{DYNAMO}` | error | 23 | onnxruntime failed running the RotaryEmbedding node" in markdown


def test_an_opset_onnxruntime_cannot_run_is_an_error_with_reports_not_a_traceback(
    run_cli, rotary: dict[str, Path]
) -> None:
    # --opset 23 is exact: the dynamo exporter's file fails in onnxruntime, the program has no other route.
    result = run_cli("--model-path", str(rotary["pt2"]), "--sample-data", str(rotary["sample"]), "--opset", "23")
    assert result.code == 1
    assert "Traceback" not in result.stderr
    error = rotary_at_23("node_RotaryEmbedding_143")
    assert result.stdout.splitlines()[0] == f"FAIL rotary.pt2: {error}"
    report = result.report("rotary")
    assert (report["status"], report["error"], report["onnx"], report["latency"]) == ("error", error, None, {})
    assert [(a["opset"], a["outcome"]) for a in report["export_attempts"]] == [(23, "error")]
    assert result.written() == ["rotary.report.json", "rotary.report.md"]
    assert f"**Error:** {markdown_text(error)}" in result.markdown("rotary")
