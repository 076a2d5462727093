"""Hugging Face folders (issue 21): what save_pretrained() writes converts with no option but --model-path.

Each folder is built here from a small config (tests/fixtures/hf_folders.py); nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.frameworks.pytorch.backend import PytorchBackend
from converter.request import ConversionRequest
from tests.fixtures.cli import error_lines
from tests.fixtures.hf_folders import RECIPES, TOKENIZER_WORDS, add_auto_map, save_folder, truncate

TEXT_AXES = ["batch", "sequence"]


def converted(result, stem: str) -> dict:
    """Exit 0, passed at batch 16 then 8 (and sequence 32 then 40), one file."""
    assert result.code == 0, result.stdout + result.stderr
    assert error_lines(result.stderr) == []
    report = result.report(stem)
    assert report["status"] == "passed"
    assert (report["model"]["framework"], report["model"]["format"]) == ("pytorch", "transformers")
    assert report["validation"]["batch_sizes"] == [16, 8]
    assert result.written() == [f"{stem}.onnx", f"{stem}.report.json", f"{stem}.report.md"]
    return report


def names(report: dict, side: str) -> list[str]:
    return [tensor["name"] for tensor in report["onnx"][side]]


@pytest.mark.converts
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_architecture_converts_from_its_folder_alone(name: str, tmp_path: Path, run_cli) -> None:
    recipe = RECIPES[name]
    folder = tmp_path / name
    save_folder(recipe, folder)

    report = converted(run_cli("--model-path", str(folder)), name)

    assert names(report, "inputs") == list(recipe.inputs)
    assert names(report, "outputs") == list(recipe.outputs)
    shapes = [tensor["shape"] for tensor in report["onnx"]["inputs"]]
    if recipe.inputs[0] == "input_ids":  # text: batch and sequence dynamic
        assert shapes == [TEXT_AXES] * len(recipe.inputs)
    else:  # images and audio: batch dynamic, the rest as the config fixes it
        assert shapes[0][0] == "batch" and all(isinstance(d, int) for d in shapes[0][1:])
    expected_task = {"whisper": "encoder", "llama": "text-generation"}.get(name, recipe.optimum_task)
    assert f"task {expected_task} " in report["model"]["description"]


@pytest.mark.converts
def test_a_tokenizer_beside_the_model_decides_the_inputs_and_the_id_range(tmp_path: Path, run_cli) -> None:
    folder = tmp_path / "bert-tok"
    save_folder(RECIPES["bert"], folder, tokenizer=True)  # the tokenizer takes no token_type_ids
    request = ConversionRequest.from_mapping({"model-path": str(folder)})
    backend = PytorchBackend()
    loaded = backend.load(request, "transformers")
    specs = {spec.name: spec for spec in backend.input_specs(loaded, request)}

    assert list(specs) == ["input_ids", "attention_mask"]
    assert specs["input_ids"].high == TOKENIZER_WORDS  # below the tokenizer's 60 words, not the model's 99
    report = converted(run_cli("--model-path", str(folder)), "bert-tok")
    assert names(report, "inputs") == ["input_ids", "attention_mask"]
    assert (
        "the folder's tokenizer (TokenizersBackend, 60 tokens) decided the inputs (input_ids, attention_mask) "
        "and the range of generated ids" in report["warnings"]
    )


@pytest.mark.converts
def test_task_overrides_the_head_named_in_the_config(tmp_path: Path, run_cli) -> None:
    folder = tmp_path / "bert"
    save_folder(RECIPES["bert"], folder)

    report = converted(run_cli("--model-path", str(folder), "--task", "feature-extraction"), "bert")

    assert names(report, "outputs") == ["last_hidden_state", "pooler_output"]
    assert "task feature-extraction (from --task)" in report["model"]["description"]


@pytest.mark.converts
def test_a_sharded_checkpoint_converts(tmp_path: Path, run_cli) -> None:
    folder = tmp_path / "sharded"
    save_folder(RECIPES["distilbert"], folder, max_shard_size="40KB")
    assert (folder / "model.safetensors.index.json").is_file() and not (folder / "model.safetensors").exists()
    assert len(list(folder.glob("model-*.safetensors"))) > 1

    converted(run_cli("--model-path", str(folder)), "sharded")


@pytest.mark.converts
def test_a_weights_only_pytorch_model_bin_converts(tmp_path: Path, run_cli) -> None:
    import torch

    folder = tmp_path / "bin"
    model = save_folder(RECIPES["roberta"], folder)
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")

    converted(run_cli("--model-path", str(folder)), "bin")


@pytest.mark.converts
def test_a_pytorch_model_bin_that_pickles_more_than_tensors_is_refused(tmp_path: Path, run_cli) -> None:
    import torch

    folder = tmp_path / "pickled"
    model = save_folder(RECIPES["roberta"], folder)
    (folder / "model.safetensors").unlink()
    torch.save(model, folder / "pytorch_model.bin")  # the whole module: unpickling it runs code

    result = run_cli("--model-path", str(folder))

    assert result.code == 2
    assert error_lines(result.stderr) == [
        "error: pickled/pytorch_model.bin is a pickled transformers.models.roberta.modeling_roberta."
        "RobertaForTokenClassification, not a state_dict; transformers reads a .bin weights only; "
        "save the weights with model.save_pretrained(folder), which writes model.safetensors"
    ]
    assert result.written() == []


@pytest.mark.converts
def test_a_folder_that_names_its_own_code_is_refused_without_the_flag(tmp_path: Path, run_cli) -> None:
    folder = tmp_path / "remote"
    save_folder(RECIPES["bert"], folder)
    add_auto_map(folder)

    result = run_cli("--model-path", str(folder))

    assert result.code == 2
    assert error_lines(result.stderr) == [
        "error: remote asks to run its own Python code (auto_map in config.json), which loading it would execute "
        "(trust_remote_code); use a model class that transformers ships, or pass --allow-unsafe-load true "
        "if you trust the folder's code"
    ]
    assert result.written() == []


@pytest.mark.parametrize("kept", [0.5, 0.0001])
def test_a_truncated_weights_file_is_one_line_and_exit_2(kept: float, tmp_path: Path, run_cli) -> None:
    folder = tmp_path / "cut"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert", "architectures": ["BertModel"]}')
    header = b'{"w":{"dtype":"F32","shape":[64,64],"data_offsets":[0,16384]}}'
    (folder / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(16384))
    truncate(folder / "model.safetensors", kept)

    result = run_cli("--model-path", str(folder))

    assert result.code == 2
    size = (folder / "model.safetensors").stat().st_size
    expected = {
        0.5: f"error: cut/model.safetensors is truncated: its header places tensors up to byte 16,384 of the data, "
        f"which holds {size - 8 - len(header):,} bytes; ",
        0.0001: f"error: cut/model.safetensors is truncated or not a safetensors file ({size:,} bytes); ",
    }[kept]
    assert error_lines(result.stderr) == [
        expected + "save it again with model.save_pretrained(folder) and commit every file it writes"
    ]
    assert result.written() == []


def test_a_folder_is_detected_from_its_files_without_importing_torch(tmp_path: Path) -> None:
    from converter.frameworks import detect

    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    assert detect(tmp_path) is None  # no weights: not a model folder
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert detect(tmp_path) == ("pytorch", "transformers")
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    assert detect(tmp_path) is None  # a config.json of something else


def test_an_unknown_task_is_refused_with_the_choices(tmp_path: Path, run_cli) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "model.safetensors").write_bytes(b"")

    result = run_cli("--model-path", str(tmp_path), "--task", "summarization")

    assert result.code == 2
    assert error_lines(result.stderr) == [
        'error: --task "summarization": unknown value; use one of auto, feature-extraction, text-classification, '
        "token-classification, fill-mask, text-generation, question-answering, image-classification, "
        "audio-classification, automatic-speech-recognition, encoder"
    ]


def test_generated_masks_are_right_padded_and_ids_padded_to_match() -> None:
    from converter.frameworks.base import TensorSpec
    from converter.inputs import generate_inputs

    specs = [
        TensorSpec("input_ids", ("batch", "sequence"), "int64", low=5, high=60, role="ids", pad=0),
        TensorSpec("attention_mask", ("batch", "sequence"), "int64", high=2, role="mask"),
        TensorSpec("token_type_ids", ("batch", "sequence"), "int64", low=1, high=2, role="token_types"),
    ]
    inputs = generate_inputs(specs, batch=16, seed=0, other_size=32)
    mask, ids, types = inputs["attention_mask"], inputs["input_ids"], inputs["token_type_ids"]

    lengths = mask.sum(axis=1)
    assert (lengths == 32).sum() >= 1 and lengths.min() >= 1 and (lengths < 32).sum() >= 8
    assert np.array_equal(mask, (np.arange(32)[None, :] < lengths[:, None]).astype(np.int64))  # ones, then zeros
    assert np.all(ids[mask == 1] >= 5) and np.all(ids[mask == 1] < 60) and np.all(ids[mask == 0] == 0)
    assert np.all(types[mask == 1] == 1) and np.all(types[mask == 0] == 0)


def test_a_shard_index_that_names_a_file_outside_the_folder_is_refused(tmp_path: Path, run_cli) -> None:
    folder = tmp_path / "sharded"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "outside.safetensors").write_bytes(b"")
    (folder / "model.safetensors.index.json").write_text('{"weight_map": {"w": "../outside.safetensors"}}')

    result = run_cli("--model-path", str(folder))

    assert result.code == 2
    assert error_lines(result.stderr) == [
        "error: sharded/model.safetensors.index.json names the shard '../outside.safetensors', which is not a "
        ".safetensors file in the folder; save it again with model.save_pretrained(folder) and commit every file it writes"
    ]
