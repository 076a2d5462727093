"""PyTorch bad input: exit 2, one line `error: <problem>; <fix>`, no traceback, nothing written."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.pytorch import TRUSTED, ModelFiles, model_class

pytestmark = pytest.mark.converts
SAFE_FORMATS = (
    "save it as TorchScript (torch.jit.save), as a torch.export program (.pt2), "
    "or as a state_dict (.pt or .safetensors) with --model-code"
)


def test_torchscript_archive_with_model_class(run_cli, model_files: ModelFiles) -> None:
    result = run_cli("--model-path", str(model_files["lstm_scripted.pt"]), "--model-class", model_class("LSTMTagger"))
    assert_one_line_error(
        result,
        2,
        "error: lstm_scripted.pt is a TorchScript archive, which carries its own code; "
        "--model-class is only for state_dict files; remove --model-class",
    )


def test_exported_program_with_model_class(run_cli, model_files: ModelFiles) -> None:
    result = run_cli("--model-path", str(model_files["transformer.pt2"]), "--model-class", model_class("MLP"))
    assert_one_line_error(
        result,
        2,
        "error: transformer.pt2 is a torch.export program, which carries its own code; "
        "--model-class is only for state_dict files; remove --model-class",
    )


def test_state_dict_without_model_class(run_cli, model_files: ModelFiles) -> None:
    result = run_cli("--model-path", str(model_files["mlp.pt"]), "--input-shapes", "batchx4")
    assert_one_line_error(
        result,
        2,
        "error: mlp.pt is a state_dict (4 tensors: net.0.weight, net.0.bias, net.2.weight, ...), which holds weights "
        "but not the model's code; pass --model-code path/to/model.py:ClassName naming the nn.Module class "
        "(or a zero-argument factory)",
    )


def test_safetensors_without_model_class(run_cli, model_files: ModelFiles) -> None:
    result = run_cli("--model-path", str(model_files["cnn.safetensors"]))
    assert result.code == 2
    assert result.stderr.splitlines()[-1].startswith("error: cnn.safetensors is a state_dict (")


def test_whole_pickled_module_needs_allow_unsafe_load(run_cli, model_files: ModelFiles) -> None:
    result = run_cli("--model-path", str(model_files["two_in_two_out.pt"]))
    assert_one_line_error(
        result,
        2,
        "error: two_in_two_out.pt is a pickled tests.fixtures.pytorch_models.TwoInTwoOut, and unpickling it runs any "
        f"code it contains; {SAFE_FORMATS}; or pass --allow-unsafe-load true if you trust the file",
    )


def test_pickled_module_whose_class_cannot_be_imported(run_cli, tmp_path: Path) -> None:
    # Saved from a script: the pickle names __main__.Scratch, which does not exist here.
    source = tmp_path / "scratch.py"
    source.write_text(
        "import torch\n"
        "class Scratch(torch.nn.Linear):\n"
        "    pass\n"
        f"torch.save(Scratch(2, 2), {str(tmp_path / 'scratch.pt')!r})\n"
    )
    import runpy

    runpy.run_path(str(source), run_name="__main__")
    result = run_cli("--model-path", str(tmp_path / "scratch.pt"), "--allow-unsafe-load", "true")
    assert_one_line_error(
        result,
        2,
        "error: scratch.pt is a pickled __main__.Scratch, a class that cannot be imported here; make the module that "
        f"defines it importable (PYTHONPATH), or {SAFE_FORMATS}",
    )


@pytest.mark.parametrize(
    ("value", "problem", "fix"),
    [
        ("MLP", "not in the form path/to/file.py:Name", "give the file and the class, e.g. models/net.py:Net"),
        (
            "missing/model.py:MLP",
            "no such file missing/model.py",
            "give the .py file that defines the model (relative to the working directory)",
        ),
        (
            "README.md:MLP",
            "not in the form path/to/file.py:Name",
            "give the file and the class, e.g. models/net.py:Net",
        ),
    ],
)
def test_model_class_value_that_names_no_python_file(
    run_cli, model_files: ModelFiles, value: str, problem: str, fix: str
) -> None:
    result = run_cli("--model-path", str(model_files["mlp.pt"]), "--model-class", value)
    assert_one_line_error(result, 2, f'error: --model-class "{value}": {problem}; {fix}')


def test_model_class_file_that_fails_to_import_shows_its_exception(
    run_cli, model_files: ModelFiles, tmp_path: Path
) -> None:
    broken = tmp_path / "broken_model.py"
    broken.write_text("import torch\nimport not_installed_package_xyz\n\nclass Net(torch.nn.Module):\n    pass\n")
    result = run_cli("--model-path", str(model_files["mlp.pt"]), "--model-class", f"{broken}:Net")
    assert_one_line_error(
        result,
        2,
        f'error: --model-class "{broken}:Net": importing broken_model.py failed: ModuleNotFoundError: '
        "No module named 'not_installed_package_xyz'; fix the error in that file, or install what it imports (--requirements)",
    )


def test_model_class_file_with_a_long_error_is_shortened(run_cli, model_files: ModelFiles, tmp_path: Path) -> None:
    broken = tmp_path / "loud_model.py"
    broken.write_text(f"raise RuntimeError('weights not found: ' + {'x' * 500!r})\n")
    result = run_cli("--model-path", str(model_files["mlp.pt"]), "--model-class", f"{broken}:Net")
    line = result.stderr.splitlines()[-1]
    assert result.code == 2
    assert line.startswith(f'error: --model-class "{broken}:Net": importing loud_model.py failed: RuntimeError: ')
    # Cut to 200 characters (the trailing "..." is dropped with the sentence's final dots).
    assert line.endswith("x; fix the error in that file, or install what it imports (--requirements)")
    assert 150 < line.count("x") < 200
    assert result.written() == []


def test_model_class_name_missing_from_the_file(run_cli, model_files: ModelFiles) -> None:
    result = run_cli("--model-path", str(model_files["mlp.pt"]), "--model-class", model_class("Missing"))
    assert result.code == 2
    line = result.stderr.splitlines()[-1]
    assert line.startswith(
        f'error: --model-class "{model_class("Missing")}": pytorch_models.py has no Missing (it defines MLP, SmallCNN, '
    )
    assert line.endswith("; name the nn.Module class or a zero-argument factory function in that file")
    assert result.written() == []


def test_model_class_that_needs_arguments(run_cli, model_files: ModelFiles) -> None:
    result = run_cli("--model-path", str(model_files["mlp.pt"]), "--model-class", model_class("NeedsArguments"))
    assert_one_line_error(
        result,
        2,
        f'error: --model-class "{model_class("NeedsArguments")}": calling NeedsArguments() failed: TypeError: '
        "NeedsArguments.__init__() missing 1 required positional argument: 'width'; give a class whose constructor "
        "needs no arguments, or a zero-argument factory function that builds the model",
    )


def test_weights_for_another_class_list_the_keys(run_cli, model_files: ModelFiles) -> None:
    result = run_cli("--model-path", str(model_files["mlp.pt"]), "--model-class", model_class("LSTMTagger"))
    assert_one_line_error(
        result,
        2,
        "error: the weights in mlp.pt do not fit pytorch_models.py:LSTMTagger: missing keys lstm.weight_ih_l0, "
        "lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0, out.weight, out.bias; unexpected keys net.0.weight, "
        "net.0.bias, net.2.weight, net.2.bias; check that --model-class is the class the weights were saved from",
    )


def test_weights_of_the_wrong_size(run_cli, tmp_path: Path, torch) -> None:
    wide = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    torch.save({f"net.{k}": v for k, v in wide.state_dict().items()}, tmp_path / "wide.pt")
    result = run_cli("--model-path", str(tmp_path / "wide.pt"), "--model-class", model_class("MLP"))
    assert_one_line_error(
        result,
        2,
        "error: the weights in wide.pt do not fit pytorch_models.py:MLP: size mismatch for net.0.weight: copying a "
        "param with shape torch.Size([16, 5]) from checkpoint, the shape in current model is torch.Size([16, 4]); "
        "check that --model-class is the class the weights were saved from",
    )


def test_shapes_that_do_not_fit_the_model_show_the_forward_error(run_cli, model_files: ModelFiles) -> None:
    result = run_cli(*_mlp(model_files), "--input-shapes", "batchx5")
    assert_one_line_error(
        result,
        2,
        "error: the original model failed on inputs x 16x5 float32: RuntimeError: mat1 and mat2 shapes cannot be "
        "multiplied (16x5 and 4x16); check --input-shapes and --input-dtypes, or give --sample-data",
    )


def test_shapes_that_do_not_fit_a_torchscript_model_show_its_error_not_its_traceback(
    run_cli, model_files: ModelFiles
) -> None:
    result = run_cli("--model-path", str(model_files["lstm_scripted.pt"]), "--input-shapes", "batchx7x5")
    assert_one_line_error(
        result,
        2,
        "error: the original model failed on inputs sequence 16x7x5 float32: RuntimeError: "
        "input.size(-1) must be equal to input_size. Expected 6, got 5; check --input-shapes and --input-dtypes, "
        "or give --sample-data",
    )


def test_missing_input_shapes(run_cli, model_files: ModelFiles) -> None:
    result = run_cli(*_mlp(model_files))
    assert_one_line_error(
        result,
        2,
        "error: the shape of input x is unknown; give --input-shapes, e.g. x:1x3x224x224 "
        "(a name such as batch makes a dimension dynamic), or --sample-data",
    )


def test_input_shapes_naming_inputs_the_model_lacks(run_cli, model_files: ModelFiles) -> None:
    result = run_cli(
        "--model-path",
        str(model_files["two_in_two_out.pt"]),
        "--allow-unsafe-load",
        "true",
        "--input-shapes",
        "tokens:batchx6;features:batchx3",
    )
    assert_one_line_error(
        result, 2, "error: --input-shapes: the model has no input tokens; its inputs are ids, features"
    )


def test_program_with_a_fixed_batch_and_dynamic_batch(run_cli, model_files: ModelFiles) -> None:
    result = run_cli("--model-path", str(model_files["mlp_fixed_batch.pt2"]))
    assert_one_line_error(
        result,
        2,
        "error: mlp_fixed_batch.pt2 was exported with a fixed batch of 16 (input x 16x4), so it cannot take "
        "--dynamic-batch true; export it with dynamic_shapes (torch.export.Dim) on axis 0, or pass --dynamic-batch false",
    )


def test_damaged_files(run_cli, model_files: ModelFiles, tmp_path: Path) -> None:
    (tmp_path / "cut.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    result = run_cli("--model-path", str(tmp_path / "cut.safetensors"), "--model-class", model_class("MLP"))
    assert_one_line_error(
        result,
        2,
        "error: cut.safetensors is not a safetensors file (bad header); save it with safetensors.torch.save_file",
    )
    # The layout of a TorchScript archive with garbage inside: detected, then refused by torch.jit.load.
    damaged = tmp_path / "damaged.pt"
    with zipfile.ZipFile(damaged, "w") as archive:
        members = [
            ("code/__torch__.py", "def forward(self"),
            ("constants.pkl", "junk"),
            ("data.pkl", "junk"),
            ("version", "3"),
        ]
        for name, data in members:
            archive.writestr(f"damaged/{name}", data)
    result = run_cli("--model-path", str(damaged), "--input-shapes", "batchx7x6")
    assert_one_line_error(
        result,
        2,
        "error: damaged.pt: code/__torch__.py:1 is not the Python syntax torch.jit.save writes; save it again with "
        "torch.jit.save, or pass --allow-unsafe-load true if you trust the file",
    )
    result = run_cli("--model-path", str(damaged), *TRUSTED, "--input-shapes", "batchx7x6")
    assert result.code == 2
    assert result.stderr.splitlines()[-1].startswith("error: damaged.pt could not be loaded by torch.jit.load (")
    assert result.stderr.splitlines()[-1].endswith("; save it again with torch.jit.save")
    assert result.written() == []


def _mlp(model_files: ModelFiles) -> list[str]:
    return ["--model-path", str(model_files["mlp.pt"]), "--model-class", model_class("MLP")]
