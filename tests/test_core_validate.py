"""The comparison rule, pairing by name, and a fixed batch axis caught at the second batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from converter.frameworks.base import TensorSpec
from converter.onnx_file import check_and_describe
from converter.report import ModelInfo, OnnxInfo, Report
from converter.validate import (
    BatchCheck,
    Criteria,
    OnnxRunner,
    OnnxRuntimeFailure,
    Validation,
    compare,
    fixed_axis_problems,
    validate,
)


def test_element_fails_when_diff_exceeds_atol_plus_rtol_times_reference() -> None:
    ref = np.array([1.0, 100.0, 0.0], dtype=np.float32)
    # allowed: 0.01 + 0.001*|ref| -> 0.011, 0.11, 0.01
    out = np.array([1.0105, 100.2, 0.0], dtype=np.float32)
    [result] = compare({"y": ref}, {"y": out}, rtol=1e-3, atol=1e-2)
    assert result.failing == 1
    assert not result.passed
    assert np.isclose(result.max_abs_diff, 0.2, atol=1e-4)
    assert np.isclose(result.max_rel_diff, 0.0105, atol=1e-5)  # 0.0105 / 1.0, the first element


def test_statistics_per_output() -> None:
    ref = np.zeros(100)
    ref[:] = 2.0
    out = ref.copy()
    out[0] += 0.5
    [result] = compare({"y": ref}, {"y": out}, rtol=0.0, atol=1.0)
    assert result.passed and result.failing == 0 and result.elements == 100
    assert result.max_abs_diff == 0.5
    assert np.isclose(result.mean_abs_diff, 0.005)
    assert result.max_rel_diff == 0.25


def test_nan_on_one_side_fails_nan_on_both_passes() -> None:
    ref = np.array([np.nan, 1.0])
    [same] = compare({"y": ref}, {"y": np.array([np.nan, 1.0])}, 1e-3, 1e-3)
    [differs] = compare({"y": ref}, {"y": np.array([0.0, 1.0])}, 1e-3, 1e-3)
    assert same.passed
    assert not differs.passed and differs.failing == 1


def test_the_same_infinity_in_the_same_place_is_equal() -> None:
    # |inf - inf| is NaN, which was counted as an infinite difference: a log(0) failed.
    ref = np.array([np.inf, -np.inf, 2.0], dtype=np.float32)
    [result] = compare({"y": ref}, {"y": ref.copy()}, 1e-3, 1e-3)
    assert result.passed and result.failing == 0
    assert (result.max_abs_diff, result.max_rel_diff, result.p99_rel_diff) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "onnx_values",
    [[-np.inf, -np.inf, 2.0], [3.0, -np.inf, 2.0], [np.inf, -np.inf, np.inf], [np.nan, -np.inf, 2.0]],
    ids=["opposite sign", "finite for inf", "inf for finite", "nan for inf"],
)
def test_an_infinity_on_one_side_or_of_the_other_sign_fails(onnx_values: list[float]) -> None:
    ref = np.array([np.inf, -np.inf, 2.0])
    [result] = compare({"y": ref}, {"y": np.array(onnx_values)}, 1e-3, 1e-3)
    assert not result.passed and result.failing == 1
    assert result.max_abs_diff == result.max_rel_diff == np.finfo(np.float64).max  # JSON has no inf


def test_non_finite_elements_are_counted_per_side() -> None:
    ref = np.array([[np.nan, np.inf, -np.inf, 1.0], [np.nan, 0.0, -np.inf, 1.0]])
    [result] = compare({"y": ref}, {"y": ref.copy()}, 1e-3, 1e-3)
    assert result.passed
    assert result.non_finite == {"original": {"nan": 2, "+inf": 1, "-inf": 2}, "onnx": {"nan": 2, "+inf": 1, "-inf": 2}}
    assert result.non_finite_text() == "original 2 NaN, 1 +Inf, 2 -Inf; ONNX 2 NaN, 1 +Inf, 2 -Inf"
    [finite] = compare({"y": np.ones(3)}, {"y": np.ones(3)}, 1e-3, 1e-3)
    assert finite.non_finite == {"original": {"nan": 0, "+inf": 0, "-inf": 0}, "onnx": {"nan": 0, "+inf": 0, "-inf": 0}}
    assert finite.non_finite_text() == ""


def test_nan_that_passes_is_named_in_the_headline_and_the_comparison() -> None:
    outputs = compare(
        {"log": np.array([np.nan, -np.inf, 0.5]), "p": np.ones(3)},
        {"log": np.array([np.nan, -np.inf, 0.5]), "p": np.ones(3)},
        1e-3,
        1e-3,
    )
    validation = Validation(1e-3, 1e-3, 3, "x.npy", True, [BatchCheck(3, True, outputs)])
    report = Report(
        passed=True,
        status="passed",
        model=ModelInfo(path="m.keras", framework="tensorflow", format="keras", description="", sha256="0", bytes=1),
        onnx=OnnxInfo("m.onnx", "0", 1, 18, {"": 18}, 8, [], [], {}, "tf2onnx", "route"),
        validation=validation,
    )
    assert report.headline() == (
        "PASS m.keras (tensorflow/keras) -> m.onnx: opset 18, max abs diff 0, batch 3; "
        "NaN or Inf in outputs log (see the report)"
    )
    assert (
        "**Non-finite values** (NaN on both sides, or the same infinity, count as equal): "
        "`log` at batch 3: original 1 NaN, 1 -Inf; ONNX 1 NaN, 1 -Inf.\n" in report.to_markdown()
    )
    again = Report.from_json(report.to_json())
    assert again.validation is not None and again.validation.batches[0].outputs[0].non_finite == outputs[0].non_finite


def test_outputs_are_paired_by_name_not_position() -> None:
    ref = {"a": np.ones(3), "b": np.zeros(3)}
    onnx_out = {"b": np.zeros(3), "a": np.ones(3)}
    assert all(r.passed for r in compare(ref, onnx_out, 0, 0))
    renamed = compare(ref, {"a": np.ones(3), "c": np.zeros(3)}, 0, 0)
    problems = {r.name: r.problem for r in renamed if not r.passed}
    assert problems == {
        "b": "the ONNX file has no output b (it has a, c)",
        "c": "the original model has no output c to compare with",
    }


def test_labels_must_agree_exactly() -> None:
    [result] = compare(
        {"label": np.array([0, 1, 2, 1])}, {"label": np.array([0, 1, 1, 1])}, 1.0, 1.0, frozenset({"label"})
    )
    assert not result.passed
    assert result.label_agreement == 0.75
    assert result.failing == 1


def test_string_labels() -> None:
    ref = np.array(["cat", "dog"], dtype=object)
    [result] = compare({"label": ref}, {"label": np.array(["cat", "dog"])}, 0, 0, frozenset({"label"}))
    assert result.passed and result.label_agreement == 1.0


def test_shape_mismatch_is_named() -> None:
    [result] = compare({"y": np.zeros((4, 3))}, {"y": np.zeros((4, 2))}, 0, 0)
    assert result.problem == "shape 4x2 in ONNX, 4x3 in the original"


def _fixed_batch_model(path: Path) -> Path:
    """y = x * 2 with the batch axis fixed at 16, as a careless exporter writes it."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [16, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [16, 4])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["y"])], "fixed", [x], [y], [two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_failures_name_every_problem_in_one_line_each() -> None:
    ref = {"probabilities": np.linspace(0, 1, 2000), "label": np.arange(10)}
    out = {"probabilities": ref["probabilities"] + np.where(np.arange(2000) < 3, 0.5, 0.0), "label": np.zeros(10)}
    outputs = compare(ref, out, rtol=0.0, atol=1e-3, label_outputs=frozenset({"label"}))
    validation = Validation(
        rtol=0.0,
        atol=1e-3,
        batch_size=16,
        input_source="generated (seed 0)",
        passed=False,
        batches=[
            BatchCheck(batch_size=16, passed=False, outputs=outputs),
            BatchCheck(batch_size=8, passed=False, problem="onnxruntime refused batch 8"),
        ],
        problems=["the file fixes the batch axis to 16"],
    )
    assert validation.failures() == [
        "the file fixes the batch axis to 16",
        "output probabilities at batch 16: 3 of 2,000 elements over tolerance, max abs diff 0.5",
        "output label at batch 16: 10.0% of labels agree",
        "batch 8: onnxruntime refused batch 8",
    ]
    outputs = compare(ref, ref, rtol=0.0, atol=1e-3, label_outputs=frozenset({"label"}))
    assert Validation(0.0, 1e-3, 16, "x", True, [BatchCheck(16, True, outputs)]).failures() == []


def test_fixed_batch_axis_is_reported_as_failure(tmp_path: Path) -> None:
    path = _fixed_batch_model(tmp_path / "fixed.onnx")
    facts = check_and_describe(path)
    specs = [TensorSpec("x", ("batch", 4), "float32")]
    problems = fixed_axis_problems(facts, specs, dynamic_batch=True)
    assert problems == [
        "input x: the batch axis is fixed at 16 in the ONNX file (shape 16x4); --dynamic-batch true expects it dynamic",
        "output y: the batch axis is fixed at 16 in the ONNX file (shape 16x4); --dynamic-batch true expects it dynamic",
    ]
    runner = OnnxRunner(path)
    rng = np.random.default_rng(0)
    first = {"x": rng.standard_normal((16, 4)).astype(np.float32)}
    second = {"x": first["x"][:8]}
    validation = validate(
        runner,
        [(first, {"y": first["x"] * 2}), (second, {"y": second["x"] * 2})],
        Criteria(1e-3, 1e-3),
        problems,
        "generated",
    )
    assert not validation.passed
    assert validation.batches[0].passed
    failed = validation.batches[1]
    assert not failed.passed and failed.batch_size == 8
    assert failed.problem.startswith("onnxruntime failed on inputs x 8x4 (the file declares x 16x4): ")


def _reshape_to_sixteen_rows(path: Path) -> Path:
    """A file that declares any batch but reshapes to 16 rows: valid ONNX that onnxruntime cannot run at 8."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2, 2])
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], [16, 2, 2])
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="to_sixteen")
    model = helper.make_model(
        helper.make_graph([node], "g", [x], [y], [shape]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_a_file_onnxruntime_cannot_run_on_inputs_it_declares_is_a_runtime_failure(tmp_path: Path) -> None:
    runner = OnnxRunner(_reshape_to_sixteen_rows(tmp_path / "m.onnx"))
    x16 = np.ones((16, 4), dtype=np.float32)
    x8 = x16[:8]
    references = [({"x": x16}, {"y": x16.reshape(16, 2, 2)}), ({"x": x8}, {"y": x8.reshape(8, 2, 2)})]
    with pytest.raises(OnnxRuntimeFailure) as failure:
        validate(runner, references, Criteria(1e-3, 1e-3), [], "generated")
    assert failure.value.one_line() == (
        "onnxruntime failed running the Reshape node to_sixteen on inputs x 8x4: input_shape_size == "
        "requested_shape_size was false. The input tensor cannot be reshaped to the requested shape. "
        "Input shape:{8,4}, requested shape:{16,2,2}"
    )


def test_report_round_trips_through_json(tmp_path: Path) -> None:
    path = _fixed_batch_model(tmp_path / "m.onnx")
    runner = OnnxRunner(path)
    x = np.ones((16, 4), dtype=np.float32)
    validation = validate(runner, [({"x": x}, {"y": x * 2})], Criteria(1e-3, 1e-3), [], "generated (seed 0)")
    report = Report(
        passed=True,
        status="passed",
        model=ModelInfo(
            path="m.pt", framework="pytorch", format="torchscript", description="Net", sha256="0" * 64, bytes=3
        ),
        validation=validation,
        timings={"load": 0.1},
        versions={"onnx": onnx.__version__},
    )
    again = Report.from_json(report.to_json())
    assert again == report
    assert again.validation is not None and again.validation.batch_sizes == [16]


def test_markdown_stays_under_the_job_summary_limit(tmp_path: Path) -> None:
    many = {f"output_{i}": np.zeros(3) for i in range(3000)}
    outputs = compare(many, many, 0, 0)
    from converter.validate import BatchCheck, Validation

    validation = Validation(1e-3, 1e-3, 3, "generated", True, [BatchCheck(3, True, outputs)])
    report = Report(
        passed=True,
        status="passed",
        model=ModelInfo(path="m", framework="sklearn", format="skops", description="X", sha256="0", bytes=1),
        validation=validation,
    )
    markdown = report.to_markdown(limit=64 * 1024)
    assert len(markdown.encode()) <= 64 * 1024
    assert "more rows not shown; see the JSON report." in markdown


def test_only_the_job_summary_is_cut_to_github_s_limit() -> None:
    """The .report.md a CLI user gets keeps every row shown; the job summary is cut to fit GitHub's 1 MiB."""
    from converter.github.outputs import JOB_SUMMARY_LIMIT

    names = {f"output_{i}_" + "x" * 6000: np.zeros(3) for i in range(190)}
    validation = Validation(1e-3, 1e-3, 3, "generated", True, [BatchCheck(3, True, compare(names, names, 0, 0))])
    report = Report(
        passed=True,
        status="passed",
        model=ModelInfo(path="m", framework="sklearn", format="skops", description="X", sha256="0", bytes=1),
        validation=validation,
    )
    whole = report.to_markdown()
    assert len(whole.encode()) > JOB_SUMMARY_LIMIT
    assert all(name in whole for name in names)
    summary = report.to_markdown(limit=JOB_SUMMARY_LIMIT)
    assert len(summary.encode()) <= JOB_SUMMARY_LIMIT
    assert "more rows not shown; see the JSON report." in summary
