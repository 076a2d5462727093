"""Bad input: exit 2 (1 for a model that loads but cannot be converted), one line, nothing written."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import LocallyLinearEmbedding

X, Y = load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("models")
    model = LogisticRegression(max_iter=1000).fit(X, Y)
    sio.dump(model, directory / "good.skops")
    joblib.dump(model, directory / "good.joblib")
    with (directory / "good.pkl").open("wb") as handle:
        pickle.dump(model, handle)
    (directory / "corrupt.skops").write_bytes(b"PK\x03\x04 this is not a skops archive")
    whole = (directory / "good.joblib").read_bytes()
    (directory / "corrupt.joblib").write_bytes(whole[: len(whole) // 2])  # a truncated download
    (directory / "notes.txt").write_text("not a model")
    (directory / "empty").mkdir()
    sio.dump(LocallyLinearEmbedding().fit(X), directory / "locally_linear.skops")  # no ONNX equivalent
    np.save(directory / "three_features.npy", X[:5, :3])
    np.save(directory / "strings.npy", np.array([["a"] * 4] * 5))
    (directory / "wrong_columns.csv").write_text("a,b\n1,2\n3,4\n")
    return directory


def assert_one_line_error(result, code: int, message: str) -> None:
    assert result.code == code
    assert result.stdout == ""
    lines = [line for line in result.errors.splitlines() if not line.startswith("onnx-convert: ")]
    assert lines == [message]
    assert "Traceback" not in result.errors
    assert result.written() == []


def test_missing_file(run_cli, tmp_path: Path) -> None:
    result = run_cli("--model-path", str(tmp_path / "missing.skops"))
    assert_one_line_error(
        result,
        2,
        f'error: --model-path "{tmp_path / "missing.skops"}": no such file or directory; '
        "check the path (it is relative to the working directory)",
    )


def test_directory_without_a_model(run_cli, model_dir: Path) -> None:
    result = run_cli("--model-path", str(model_dir / "empty"))
    assert result.code == 2
    assert result.errors.startswith(f"error: {model_dir / 'empty'}: the directory holds no model; give a .skops")
    assert result.written() == []


def test_file_of_unknown_type(run_cli, model_dir: Path) -> None:
    result = run_cli("--model-path", str(model_dir / "notes.txt"))
    assert result.code == 2
    assert "the file is not a model format this tool knows" in result.errors


def test_unknown_framework(run_cli, model_dir: Path) -> None:
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--framework", "caffe")
    assert_one_line_error(
        result,
        2,
        'error: --framework "caffe": unknown value; use one of auto, pytorch, tensorflow, sklearn, xgboost, lightgbm',
    )


@pytest.mark.parametrize(
    "opset,message",
    [
        ("0", 'error: --opset "0": opsets start at 1; use an opset number such as 17, or auto'),
        ("abc", 'error: --opset "abc": not an integer; use an opset number such as 17, or auto'),
    ],
)
def test_bad_opset_text(run_cli, model_dir: Path, opset: str, message: str) -> None:
    assert_one_line_error(run_cli("--model-path", str(model_dir / "good.skops"), "--opset", opset), 2, message)


def test_opset_beyond_what_exporter_and_runtime_support(run_cli, model_dir: Path) -> None:
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--opset", "99")
    assert result.code == 2
    assert result.errors.startswith('error: --opset "99": the sklearn exporter writes opsets 1 to 22 and onnxruntime ')
    assert result.errors.rstrip().endswith("; use an opset from 1 to 22, or auto")
    assert result.written() == []


@pytest.mark.parametrize("option,value", [("--rtol", "-0.1"), ("--atol", "lots"), ("--atol", "nan")])
def test_bad_tolerances(run_cli, model_dir: Path, option: str, value: str) -> None:
    result = run_cli("--model-path", str(model_dir / "good.skops"), option, value)
    assert result.code == 2
    assert result.errors.startswith(f'error: {option} "{value}": ')
    assert result.errors.rstrip().endswith("use a non-negative number such as 1e-3")
    assert result.written() == []


def test_malformed_input_shapes(run_cli, model_dir: Path) -> None:
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--input-shapes", "1x3xfoo!")
    assert_one_line_error(
        result, 2, 'error: --input-shapes "1x3xfoo!": "foo!" is not a dimension; use an integer or a name such as batch'
    )


def test_input_shapes_of_the_wrong_rank(run_cli, model_dir: Path) -> None:
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--input-shapes", "1x3x4")
    assert_one_line_error(
        result, 2, "error: --input-shapes: input input has 2 dimensions (?x4), not 3; give a shape like ?x4"
    )


def test_sample_data_with_the_wrong_number_of_features(run_cli, model_dir: Path) -> None:
    result = run_cli(
        "--model-path", str(model_dir / "good.skops"), "--sample-data", str(model_dir / "three_features.npy")
    )
    assert_one_line_error(
        result,
        2,
        "error: --sample-data: input input has shape 5x3 but the model expects batchx4; "
        "give arrays whose shape fits the model (the first axis is the batch)",
    )


def test_sample_data_with_strings_for_a_numeric_input(run_cli, model_dir: Path) -> None:
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--sample-data", str(model_dir / "strings.npy"))
    assert result.code == 2
    assert "input input holds strings but the model expects float32" in result.errors
    assert result.written() == []


def test_sample_data_csv_with_a_header_that_does_not_fit(run_cli, model_dir: Path) -> None:
    result = run_cli(
        "--model-path", str(model_dir / "good.skops"), "--sample-data", str(model_dir / "wrong_columns.csv")
    )
    assert result.code == 2
    assert "input input has shape 2x2 but the model expects batchx4" in result.errors
    assert result.written() == []


def test_corrupt_skops(run_cli, model_dir: Path) -> None:
    result = run_cli("--model-path", str(model_dir / "corrupt.skops"))
    assert result.code == 2
    assert result.errors.startswith("error: corrupt.skops is not a readable .skops file (")
    assert result.errors.rstrip().endswith("save it again with skops.io.dump")
    assert result.written() == []


def test_corrupt_joblib(run_cli, model_dir: Path) -> None:
    result = run_cli("--model-path", str(model_dir / "corrupt.joblib"), "--allow-unsafe-load", "true")
    assert result.code == 2
    assert result.errors.startswith("error: corrupt.joblib could not be unpickled (")
    assert result.errors.rstrip().endswith("; check that the file is a complete joblib or pickle file")
    assert result.written() == []


@pytest.mark.parametrize("name", ["good.pkl", "good.joblib"])
def test_pickle_without_allow_unsafe_load(run_cli, model_dir: Path, name: str) -> None:
    result = run_cli("--model-path", str(model_dir / name))
    assert_one_line_error(
        result,
        2,
        f"error: {name} is a pickle, and loading a pickle runs any code it contains; save the model with "
        "skops.io.dump (.skops), or pass --allow-unsafe-load true if you trust the file",
    )


def test_skops_file_with_types_outside_sklearn_is_refused(run_cli, tmp_path: Path) -> None:
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "custom.skops"
    sio.dump(FunctionTransformer(func=pickle.dumps), path)
    result = run_cli("--model-path", str(path))
    assert result.code == 2
    assert "custom.skops holds what this tool does not load from a .skops file: _pickle.dumps;" in result.errors
    assert result.written() == []


def test_estimator_without_a_converter_exits_1_naming_it(run_cli, model_dir: Path) -> None:
    result = run_cli("--model-path", str(model_dir / "locally_linear.skops"))
    assert result.code == 1
    assert result.stdout.startswith(
        "FAIL locally_linear.skops: LocallyLinearEmbedding cannot be converted to ONNX: its transform solves"
    )
    report = result.report("locally_linear")
    assert report["status"] == "error" and report["onnx"] is None
    assert "LocallyLinearEmbedding" in report["error"]
    # no .onnx was written, only the reports that explain the failure
    assert result.written() == ["locally_linear.report.json", "locally_linear.report.md"]


def test_no_output_dir_is_left_behind_on_bad_input(run_cli, model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fresh" / "out"
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--input-shapes", "1x3x4", "--output-dir", str(out))
    assert result.code == 2
    assert not out.exists()


def test_debug_keeps_the_traceback(model_dir: Path, tmp_path: Path) -> None:
    from converter.cli import main
    from converter.errors import UserError

    with pytest.raises(UserError):
        main(["--model-path", str(model_dir / "good.pkl"), "--output-dir", str(tmp_path / "o"), "--debug"])


def test_a_missing_framework_names_the_image_that_holds_it(run_cli, model_dir: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # as in the pytorch and tensorflow images
    result = run_cli("--model-path", str(model_dir / "good.skops"))
    assert_one_line_error(
        result,
        2,
        "error: the sklearn backend needs skl2onnx, which is not installed (skl2onnx); "
        "pip install 'onnx-convert-action[sklearn]', or use the sklearn image "
        "(docker build --target sklearn; released as onnx-convert-action:<version>-sklearn)",
    )
