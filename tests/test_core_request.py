"""Parsing of every option value: one clear error per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from converter.errors import EXIT_USAGE, UserError
from converter.github.inputs import read_inputs
from converter.request import (
    SINGLE_INPUT,
    ConversionRequest,
    parse_bool,
    parse_input_dtypes,
    parse_input_shapes,
    parse_opset,
    parse_tolerance,
)


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.skops"
    path.write_bytes(b"x")
    return path


def test_defaults_match_the_documented_table(model_file: Path) -> None:
    request = ConversionRequest.from_mapping({"model-path": str(model_file)})
    assert request.framework == "auto"
    assert request.output_dir == Path("onnx-models")
    assert request.opset is None
    assert request.dynamic_batch is True
    assert request.validation_samples is None  # auto: inputs.validation_rows
    assert request.seed == 0
    assert request.rtol == 1e-3 and request.atol == 1e-3
    assert request.fail_on_mismatch is True
    assert request.allow_unsafe_load is False


@pytest.mark.parametrize("text,expected", [("true", True), ("TRUE", True), ("False", False), (" false ", False)])
def test_booleans_accept_true_and_false_in_any_case(text: str, expected: bool) -> None:
    assert parse_bool("dynamic-batch", text) is expected


def test_a_bad_boolean_names_the_option_and_the_values() -> None:
    with pytest.raises(UserError) as err:
        parse_bool("dynamic-batch", "yes")
    assert err.value.one_line() == '--dynamic-batch "yes": not a boolean; use true or false'
    assert err.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    "text,message",
    [
        ("abc", '--opset "abc": not an integer; use an opset number such as 17, or auto'),
        ("0", '--opset "0": opsets start at 1; use an opset number such as 17, or auto'),
        ("-3", '--opset "-3": opsets start at 1; use an opset number such as 17, or auto'),
    ],
)
def test_bad_opsets_are_refused(text: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        parse_opset(text)
    assert err.value.one_line() == message


def test_opset_auto_and_numbers() -> None:
    assert parse_opset("auto") is None
    assert parse_opset("AUTO") is None
    assert parse_opset("17") == 17


@pytest.mark.parametrize("text", ["-1e-3", "abc", "nan", "inf", ""])
def test_bad_tolerances_are_refused(text: str) -> None:
    with pytest.raises(UserError, match=r'--rtol ".*": (not a number|must be a finite number >= 0)'):
        parse_tolerance("rtol", text)


def test_tolerances_parse_scientific_notation() -> None:
    assert parse_tolerance("atol", "1e-5") == 1e-5
    assert parse_tolerance("atol", "0") == 0.0
    assert parse_tolerance("atol", ".5") == 0.5


@pytest.mark.parametrize(
    "option,text,message",
    [
        # int() and float() read other scripts' digits ("\u0661\u0666" is 16) and underscores
        ("validation-samples", "\u0661\u0666", "not an integer; use a whole number of at least 1, in digits 0-9"),
        ("seed", "1_000", "not an integer; use a whole number of at least 0, in digits 0-9"),
        ("opset", "\u0661\u0667", "not an integer; use an opset number such as 17, or auto"),
        ("rtol", "\u0661", "not a number; use a non-negative number such as 1e-3"),
        ("atol", "1_0", "not a number; use a non-negative number such as 1e-3"),
        ("atol", "1e999", "must be a finite number >= 0; use a non-negative number such as 1e-3"),
        ("validation-samples", "9" * 101, "not an integer; use a whole number of at least 1, in digits 0-9"),
    ],
)
def test_numbers_are_ascii_digits_only(model_file: Path, option: str, text: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        ConversionRequest.from_mapping({"model-path": str(model_file), option: text})
    assert err.value.one_line() == f'--{option} "{text}": {message}'


def test_a_path_that_is_not_a_file_or_directory_is_refused(model_file: Path) -> None:
    # A FIFO would block the first read forever, a device such as /dev/zero never end.
    with pytest.raises(UserError) as err:
        ConversionRequest.from_mapping({"model-path": str(model_file), "sample-data": "/dev/zero"})
    assert (
        err.value.one_line()
        == '--sample-data "/dev/zero": is not a regular file or directory; give a file or directory'
    )


def test_input_shapes_single_and_named() -> None:
    assert parse_input_shapes("1x3x224x224") == {SINGLE_INPUT: (1, 3, 224, 224)}
    assert parse_input_shapes("input:batchx3x224x224;mask:1x128") == {
        "input": ("batch", 3, 224, 224),
        "mask": (1, 128),
    }
    # names that contain an x are written with commas
    assert parse_input_shapes("ids:batch,max_x") == {"ids": ("batch", "max_x")}


@pytest.mark.parametrize(
    "text,message",
    [
        ("1x3xfoo!", '--input-shapes "1x3xfoo!": "foo!" is not a dimension; use an integer or a name such as batch'),
        ("1x0x3", '--input-shapes "1x0x3": "0" is not a dimension; use an integer or a name such as batch'),
        ("1xx3", '--input-shapes "1xx3": "" is not a dimension; use an integer or a name such as batch'),
        (
            "a:1x2;1x3",
            '--input-shapes "a:1x2;1x3": several values but not all are named; write name:value pairs separated by ;',
        ),
        ("a:1x2;a:1x3", '--input-shapes "a:1x2;a:1x3": input a is given twice; give each input once'),
        ("a:", '--input-shapes "a:": input a has no shape; write a shape such as 1x3x224x224'),
        # str.isdigit() takes superscripts and other scripts' digits; int() then fails or reads them
        ("2x\u00b2", '--input-shapes "2x\u00b2": "\u00b2" is not a dimension; use an integer or a name such as batch'),
        ("\u0661x4", '--input-shapes "\u0661x4": "\u0661" is not a dimension; use an integer or a name such as batch'),
        ("+2x4", '--input-shapes "+2x4": "+2" is not a dimension; use an integer or a name such as batch'),
    ],
)
def test_malformed_input_shapes_are_refused(text: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        parse_input_shapes(text)
    assert err.value.one_line() == message


def test_input_dtypes() -> None:
    assert parse_input_dtypes("input:float32;ids:INT64") == {"input": "float32", "ids": "int64"}
    assert parse_input_dtypes("float16") == {SINGLE_INPUT: "float16"}
    with pytest.raises(UserError, match='"float99" is not a dtype'):
        parse_input_dtypes("x:float99")


def test_unknown_framework_is_refused(model_file: Path) -> None:
    with pytest.raises(UserError) as err:
        ConversionRequest.from_mapping({"model-path": str(model_file), "framework": "jax"})
    assert (
        err.value.one_line()
        == '--framework "jax": unknown value; use one of auto, pytorch, tensorflow, sklearn, xgboost, lightgbm'
    )


def test_unknown_keys_are_refused(model_file: Path) -> None:
    with pytest.raises(UserError, match="unknown option model_path"):
        ConversionRequest.from_mapping({"model-path": str(model_file), "model_path": "x"})


def test_missing_model_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        ConversionRequest.from_mapping({"model-path": str(tmp_path / "nope.skops")})
    assert "nope.skops" in err.value.one_line()
    assert "no such file or directory" in err.value.one_line()


def test_action_inputs_keep_hyphens_and_use_the_same_parser(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"INPUT_MODEL-PATH": model_file.name, "INPUT_RTOL": "1e-4", "INPUT_DYNAMIC-BATCH": "False", "INPUT_OPSET": ""}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    request, _ = read_inputs(tmp_path)  # the action's own reading of its inputs
    assert request.model_path == model_file.resolve()
    assert request.rtol == 1e-4
    assert request.dynamic_batch is False
    assert request.opset is None  # empty input -> default


def test_paths_that_escape_the_workspace_are_refused(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with pytest.raises(UserError, match="is outside the workspace"):
        ConversionRequest.from_mapping({"model-path": "../../etc/passwd"}, base_dir=workspace)
    with pytest.raises(UserError, match="is outside the workspace"):
        ConversionRequest.from_mapping({"model-path": "/etc/passwd"}, base_dir=workspace)


def test_command_line_reproduces_the_given_options(model_file: Path) -> None:
    request = ConversionRequest.from_mapping(
        {"model-path": str(model_file), "input-shapes": "a:1x2;b:3", "rtol": "1e-2"}
    )
    assert request.command_line() == f"onnx-convert --model-path {model_file} --input-shapes 'a:1x2;b:3' --rtol 1e-2"


def test_model_class_file_is_confined_to_the_workspace(tmp_path: Path, model_file: Path) -> None:
    workspace = model_file.parent
    request = ConversionRequest.from_mapping(
        {"model-path": model_file.name, "model-class": "nets/net.py:Net"}, base_dir=workspace
    )
    assert request.model_code.text == f"{workspace.resolve() / 'nets' / 'net.py'}:Net"
    with pytest.raises(UserError, match=r'--model-class "\.\./evil\.py": is outside the workspace'):
        ConversionRequest.from_mapping(
            {"model-path": model_file.name, "model-class": "../evil.py:Net"}, base_dir=workspace
        )
