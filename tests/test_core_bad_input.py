"""Bad input: exit 2 (1 for a model that loads but cannot be converted), one line, nothing written."""

from __future__ import annotations

import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.sklearn import dataset
from tests.fixtures.tiers import model_fixture


@model_fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, iris_skops: Path) -> Path:
    import joblib
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.manifold import LocallyLinearEmbedding

    directory = tmp_path_factory.mktemp("models")
    x, y = dataset("iris")
    (directory / "good.skops").write_bytes(iris_skops.read_bytes())
    model = LogisticRegression(max_iter=1000).fit(x, y)  # the model of iris.skops
    joblib.dump(model, directory / "good.joblib")
    with (directory / "good.pkl").open("wb") as handle:
        pickle.dump(model, handle)
    (directory / "corrupt.skops").write_bytes(b"PK\x03\x04 this is not a skops archive")
    whole = (directory / "good.joblib").read_bytes()
    (directory / "corrupt.joblib").write_bytes(whole[: len(whole) // 2])  # a truncated download
    sio.dump(LocallyLinearEmbedding().fit(x), directory / "locally_linear.skops")  # no ONNX equivalent
    np.save(directory / "three_features.npy", x[:5, :3])
    np.save(directory / "strings.npy", np.array([["a"] * 4] * 5))
    (directory / "wrong_columns.csv").write_text("a,b\n1,2\n3,4\n")
    return directory


def test_missing_file(run_cli, tmp_path: Path) -> None:
    result = run_cli("--model-path", str(tmp_path / "missing.skops"))
    assert_one_line_error(
        result,
        2,
        f'error: --model-path "{tmp_path / "missing.skops"}": no such file or directory; '
        "check the path (it is relative to the working directory)",
    )


def test_directory_without_a_model(run_cli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("--model-path", str(tmp_path / "empty"))
    assert result.code == 2
    assert result.errors.startswith(f"error: {tmp_path / 'empty'}: the directory holds no model; give a .skops")
    assert result.written() == []


def test_file_of_unknown_type(run_cli, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    result = run_cli("--model-path", str(tmp_path / "notes.txt"))
    assert result.code == 2
    assert "the file is not a model format this tool knows" in result.errors


def test_unknown_framework(run_cli, unread_model: Path) -> None:
    result = run_cli("--model-path", str(unread_model), "--framework", "caffe")
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
def test_bad_opset_text(run_cli, unread_model: Path, opset: str, message: str) -> None:
    assert_one_line_error(run_cli("--model-path", str(unread_model), "--opset", opset), 2, message)


def test_opset_beyond_what_exporter_and_runtime_support(run_cli, model_dir: Path) -> None:
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--opset", "99")
    assert result.code == 2
    assert result.errors.startswith('error: --opset "99": the sklearn exporter writes opsets 1 to 22 and onnxruntime ')
    assert result.errors.rstrip().endswith("; use an opset from 1 to 22, or auto")
    assert result.written() == []


@pytest.mark.parametrize("option,value", [("--rtol", "-0.1"), ("--atol", "lots"), ("--atol", "nan")])
def test_bad_tolerances(run_cli, unread_model: Path, option: str, value: str) -> None:
    result = run_cli("--model-path", str(unread_model), option, value)
    assert result.code == 2
    assert result.errors.startswith(f'error: {option} "{value}": ')
    assert result.errors.rstrip().endswith("use a non-negative number such as 1e-3")
    assert result.written() == []


def test_malformed_input_shapes(run_cli, unread_model: Path) -> None:
    result = run_cli("--model-path", str(unread_model), "--input-shapes", "1x3xfoo!")
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


@pytest.mark.converts
def test_skops_file_with_types_outside_sklearn_is_refused(run_cli, tmp_path: Path) -> None:
    import skops.io as sio
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


# -- numbers, sizes and files that used to end in a traceback (issue 14, item 6) ----------------------


def test_a_superscript_dimension_is_one_line(run_cli, unread_model: Path) -> None:
    result = run_cli("--model-path", str(unread_model), "--input-shapes", "2x\u00b2")
    assert_one_line_error(
        result,
        2,
        'error: --input-shapes "2x\u00b2": "\u00b2" is not a dimension; use an integer or a name such as batch',
    )


@pytest.mark.parametrize(
    "option,value,message",
    [
        (
            "--input-shapes",
            "1x100000000000",
            # auto rows: 2 for rows this large (never fewer), then 3
            "error: the generated validation inputs would take 1,863 GiB (input input alone is 3x100000000000 "
            "float32 at batch 3); validation inputs may take at most 256 MiB; "
            "lower --validation-samples or the sizes in --input-shapes",
        ),
        (  # this one ran to 7.2 GB and then blamed the model
            "--validation-samples",
            "100000000",
            "error: the generated validation inputs would take 2.24 GiB (input input alone is 100000000x4 "
            "float32 at batch 100000000); validation inputs may take at most 256 MiB; "
            "lower --validation-samples or the sizes in --input-shapes",
        ),
    ],
)
def test_inputs_too_large_to_generate_are_refused_before_allocation(
    run_cli, model_dir: Path, option: str, value: str, message: str
) -> None:
    assert_one_line_error(run_cli("--model-path", str(model_dir / "good.skops"), option, value), 2, message)


def test_the_input_budget_is_the_cap_or_a_sixteenth_of_available_memory() -> None:
    from converter.memory import MAX_INPUT_BYTES, input_budget

    assert input_budget(64 * 1024**3).limit == MAX_INPUT_BYTES == 256 * 1024**2
    small = input_budget(2 * 1024**3)
    assert (small.limit, small.reason) == (128 * 1024**2, "at most a sixteenth of the 2 GiB of memory available")


@pytest.mark.parametrize(
    "array,message",
    [
        (
            np.zeros((0, 4), np.float32),
            "error: --sample-data x.npy: array input has shape 0x4, no rows to validate with; "
            "give at least one row (the first axis is the batch)",
        ),
        (
            np.float32(1.0),
            "error: --sample-data x.npy: array input has shape scalar, no rows to validate with; "
            "give at least one row (the first axis is the batch)",
        ),
        (
            np.ones((5, 4), np.complex64),
            "error: --sample-data: input input holds complex64 values but the model expects float32; "
            "give real numbers (int, float or bool) for this input",
        ),
    ],
)
def test_sample_arrays_without_rows_or_real_numbers(run_cli, tmp_path: Path, model_dir: Path, array, message) -> None:
    np.save(tmp_path / "x.npy", array)
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--sample-data", str(tmp_path / "x.npy"))
    assert_one_line_error(result, 2, message)


def test_a_huge_npy_is_refused_from_its_header(run_cli, tmp_path: Path, model_dir: Path) -> None:
    # A sparse file: 1.1 GB long, nothing written; reading it would allocate all of it.
    mapped = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(70_000_000, 4))
    del mapped
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--sample-data", str(tmp_path / "x.npy"))
    assert_one_line_error(
        result,
        2,
        "error: --sample-data x.npy: its arrays (input 70000000x4 float32) would take 1.04 GiB; "
        "validation inputs may take at most 256 MiB; give fewer rows: a few hundred validate a model as well as millions",
    )


def test_an_npy_shorter_than_its_header_says(run_cli, tmp_path: Path, model_dir: Path) -> None:
    with (tmp_path / "x.npy").open("wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": (10**8, 4)})
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--sample-data", str(tmp_path / "x.npy"))
    assert_one_line_error(
        result,
        2,
        "error: --sample-data x.npy could not be read (mmap length is greater than file size); "
        "write it again with numpy.save or numpy.savez, or as a UTF-8 .csv",
    )


def test_an_npz_zip_bomb_is_refused_before_numpy_reads_it(run_cli, tmp_path: Path, model_dir: Path) -> None:
    path = tmp_path / "bomb.npz"
    rows = 20_000_000  # 320 MB of zeros in a 0.3 MB member
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("input.npy", "w") as member,
    ):
        np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False, "shape": (rows, 4)})
        for _ in range(20):
            member.write(bytes(16_000_000))
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--sample-data", str(path))
    assert result.code == 2
    assert result.errors.startswith(
        f"error: --sample-data: bomb.npz would inflate from {path.stat().st_size:,} to {rows * 16 + 128:,} bytes"
    )
    assert result.errors.endswith("so it looks like a zip bomb; give fewer rows, saved with numpy.savez\n")
    assert result.written() == []


@pytest.mark.converts
def test_npz_arrays_with_different_row_counts(run_cli, tmp_path: Path) -> None:
    import pandas as pd
    import skops.io as sio
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, Y = dataset("iris")
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1]})
    model = make_pipeline(make_column_transformer((StandardScaler(), ["a", "b"])), LogisticRegression()).fit(frame, Y)
    sio.dump(model, tmp_path / "columns.skops")
    np.savez(tmp_path / "x.npz", a=X[:5, :1], b=X[:3, 1:2])
    result = run_cli("--model-path", str(tmp_path / "columns.skops"), "--sample-data", str(tmp_path / "x.npz"))
    assert_one_line_error(
        result,
        2,
        "error: --sample-data x.npz: the arrays have different numbers of rows (a 5, b 3); "
        "give every input the same rows (the first axis is the batch)",
    )


def test_a_csv_field_too_long_for_a_number_is_text(run_cli, tmp_path: Path, model_dir: Path) -> None:
    # pandas reads 140,000 digits as text (the file's size bounded what it could read)
    (tmp_path / "x.csv").write_text("a,b,c,d\n" + "1" * 140_000 + ",2,3,4\n")
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--sample-data", str(tmp_path / "x.csv"))
    assert_one_line_error(
        result,
        2,
        "error: --sample-data x.csv: non-numeric values for the single numeric input input; "
        "give numbers only, or a header that names the model's input columns",
    )


def test_a_csv_too_large_to_read_is_refused_by_its_size(run_cli, tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "x.csv").write_text("1,2,3,4\n" * 700_000)  # 5.6 MB: up to 280 MB as Python strings
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--sample-data", str(tmp_path / "x.csv"))
    assert_one_line_error(
        result,
        2,
        "error: --sample-data x.csv is 5.34 MiB, and a CSV is read as Python strings of up to 50x its size; "
        "validation inputs may take at most 256 MiB; give fewer rows, or the same data as a .npy or .npz",
    )


def test_csv_numbers_are_ascii(run_cli, tmp_path: Path, model_dir: Path) -> None:
    # float() reads "\u0667" as 7: such a cell is text, and a numeric input refuses it.
    (tmp_path / "x.csv").write_text("1,2,3,4\n5,6,7,\u0667\n")
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--sample-data", str(tmp_path / "x.csv"))
    assert_one_line_error(
        result,
        2,
        "error: --sample-data x.csv: non-numeric values for the single numeric input input; "
        "give numbers only, or a header that names the model's input columns",
    )


@pytest.mark.skipif(
    not Path("/sys/kernel").is_dir(), reason="needs sysfs, where nobody (root included) may create files"
)
def test_an_output_dir_that_exists_but_is_not_writable(run_cli, model_dir: Path) -> None:
    result = run_cli("--model-path", str(model_dir / "good.skops"), "--output-dir", "/sys/kernel")
    assert result.code == 2
    assert result.errors == (
        'error: --output-dir "/sys/kernel": cannot write in it (Operation not permitted); give a writable directory\n'
    )
    assert "Traceback" not in result.stderr
