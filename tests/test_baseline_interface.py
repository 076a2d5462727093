"""The interface diff's rules (converter/baseline/interface.py, docs/release.md), case by case,
and the report's baseline and provenance sections through JSON and back."""

from __future__ import annotations

import pytest

from converter.baseline.interface import diff_interface
from converter.baseline.result import BaselineComparison, Drift, LatencyComparison, OutputDrift, SizeComparison
from converter.baseline.source import Interface, Tensor
from converter.provenance import collect_provenance
from converter.report import ModelInfo, Report

X = Tensor("x", ("batch", 4), "float32")
MASK = Tensor("mask", ("batch", 4), "bool")
LABEL = Tensor("label", ("batch",), "int64")
PROBS = Tensor("probabilities", ("batch", 3), "float32")
OPSETS = {"ai.onnx": 17, "ai.onnx.ml": 3}


def interface(inputs=(X,), outputs=(LABEL, PROBS), opsets=OPSETS, ir=8) -> Interface:
    return Interface(list(inputs), list(outputs), dict(opsets), ir)


def changes(new: Interface, old: Interface | None = None) -> list[tuple[str, str, str, str]]:
    return [(c.kind, c.name, c.change, c.severity) for c in diff_interface(old or interface(), new)]


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (interface(), []),
        (interface(inputs=[Tensor("features", ("batch", 4), "float32")]), [("input", "x", "renamed", "breaking")]),
        (interface(inputs=[X, MASK]), [("input", "mask", "added", "breaking")]),
        (interface(outputs=[LABEL]), [("output", "probabilities", "removed", "breaking")]),
        (
            interface(outputs=[LABEL, PROBS, Tensor("logits", ("batch", 3), "float32")]),
            [("output", "logits", "added", "compatible")],
        ),
        (
            interface(outputs=[Tensor("logits", ("batch", 3), "float32"), LABEL, PROBS]),
            [("output", "logits", "added", "breaking")],  # the others keep their order, not their positions
        ),
        (interface(outputs=[PROBS, LABEL]), [("output", "", "order", "breaking")]),
        (
            interface(outputs=[LABEL, Tensor("probabilities", ("batch", 3), "float64")]),
            [("output", "probabilities", "dtype", "breaking")],
        ),
        (interface(inputs=[Tensor("x", ("batch", 2, 2), "float32")]), [("input", "x", "rank", "breaking")]),
        (interface(inputs=[Tensor("x", (16, 4), "float32")]), [("input", "x", "axis", "breaking")]),
        (interface(inputs=[Tensor("x", ("batch", 5), "float32")]), [("input", "x", "axis", "breaking")]),
        (interface(inputs=[Tensor("x", ("batch", None), "float32")]), [("input", "x", "axis", "compatible")]),
        (interface(inputs=[Tensor("x", ("N", 4), "float32")]), []),  # a dynamic axis's name is not compared
        (interface(opsets={"ai.onnx": 18, "ai.onnx.ml": 3}), [("model", "opset ai.onnx", "opset", "breaking")]),
        (interface(opsets={"ai.onnx": 15, "ai.onnx.ml": 3}), [("model", "opset ai.onnx", "opset", "compatible")]),
        (interface(opsets={**OPSETS, "com.microsoft": 1}), [("model", "opset com.microsoft", "opset", "breaking")]),
        (interface(opsets={"ai.onnx": 17}), [("model", "opset ai.onnx.ml", "opset", "compatible")]),
        (interface(ir=9), [("model", "IR version", "ir_version", "breaking")]),
        (interface(ir=7), [("model", "IR version", "ir_version", "compatible")]),
    ],
)
def test_each_interface_change_is_classified(new: Interface, expected: list[tuple[str, str, str, str]]) -> None:
    assert changes(new) == expected


def test_inputs_reordered_are_compatible_since_they_are_fed_by_name() -> None:
    old = interface(inputs=[X, MASK])
    assert changes(interface(inputs=[MASK, X]), old) == [("input", "", "order", "compatible")]


def test_a_change_says_what_it_was_and_why() -> None:
    [change] = diff_interface(interface(), interface(inputs=[Tensor("x", (1, 4), "float32")]))
    assert (change.baseline, change.current, change.reason) == (
        "dynamic (batch)",
        "1",
        "axis 0: dynamic, now fixed at 1: clients that send another size fail",
    )


def test_the_baseline_and_provenance_sections_round_trip_through_json() -> None:
    comparison = BaselineComparison(
        source="previous/iris.report.json",
        compared=True,
        release="v1.2.0",
        onnx="previous/iris.onnx",
        interface=diff_interface(interface(), interface(inputs=[Tensor("features", ("batch", 4), "float32")])),
        drift=Drift(
            [16, 8],
            [OutputDrift("probabilities", 48, 0.2, 0.1, 3.0, 1.0), OutputDrift("label", 16, label_agreement=0.75)],
        ),
        size=SizeComparison(520, 1040),
        latency=LatencyComparison(16, 21, 0.05, 0.06, 1.2, 1.1, 1.3),
        limits={"max_drift": None},
        failures=["1 breaking interface change"],
    )
    report = Report(
        passed=False,
        status="rejected",
        model=ModelInfo("m.skops", "sklearn", "skops", "X", "0" * 64, 1),
        baseline=comparison,
        provenance=collect_provenance("0" * 64, "1" * 64, "onnx-convert --model-path m.skops", env={}),
    )
    data = report.to_dict()
    assert data["baseline"]["passed"] is False and data["baseline"]["size"]["increase_percent"] == 100.0
    again = Report.from_json(report.to_json())
    assert again == report
    assert again.to_json() == report.to_json()
