"""Optimised variants end to end on scikit-learn models, and the comparison rules on tiny real graphs.

Every variant is validated against the original model's outputs; the ones that pass are kept
next to the fp32 file, the others are reported (and deleted); only a required one fails the run.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from converter.markdown.numbers import size
from converter.report import Report
from converter.validate import OnnxRunner
from converter.variants.compare import check_variant
from converter.variants.options import Tolerance
from tests.fixtures.sklearn import dataset, save_digits_mlp
from tests.fixtures.tiers import model_fixture

ALL = "optimized,fp16,int8-dynamic,int8-static"


@model_fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return save_digits_mlp(tmp_path_factory.mktemp("mlp"))


@model_fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier

    path = tmp_path_factory.mktemp("forest") / "forest.skops"
    sio.dump(RandomForestClassifier(n_estimators=10, random_state=0).fit(*dataset("digits")), path)
    return path


def _variants(result) -> dict[str, dict]:
    return {v["name"]: v for v in result.report("digits_mlp")["variants"]["results"]}


def test_every_variant_of_an_mlp_classifier_is_made_validated_against_the_original_and_kept(run_cli, mlp) -> None:
    model, samples = mlp
    result = run_cli("--model-path", str(model), "--sample-data", str(samples), "--variants", ALL)

    assert result.code == 0, result.stderr
    assert result.stdout.splitlines()[0].endswith(
        "; variants: optimized passed, fp16 passed, int8-dynamic passed, int8-static passed"
    )
    stem = "digits_mlp"
    assert result.written() == [
        f"{stem}.fp16.onnx",
        f"{stem}.int8-dynamic.onnx",
        f"{stem}.int8-static.onnx",
        f"{stem}.onnx",
        f"{stem}.optimized.onnx",
        f"{stem}.report.json",
        f"{stem}.report.md",
    ]
    report = result.report(stem)
    variants = _variants(result)
    fp32_bytes = report["onnx"]["bytes"]
    for name, variant in variants.items():
        path = result.output_dir / f"{stem}.{name}.onnx"
        assert variant["path"] == str(path)
        assert variant["bytes"] == path.stat().st_size
        assert variant["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert variant["size_ratio"] == round(variant["bytes"] / fp32_bytes, 4)
        assert variant["latency_ratio"] > 0 and variant["latency_runs"] >= 4
        # judged against the original model at both batch sizes, labels and class scores apart
        assert {(o["name"], o["kind"], o["batch_size"]) for o in variant["outputs"]} == {
            (output, kind, batch)
            for output, kind in (("label", "labels"), ("probabilities", "classes"))
            for batch in (64, 32)
        }
        assert variant["label_agreement"] == 1.0
    assert variants["fp16"]["size_ratio"] < 0.75
    assert variants["int8-dynamic"]["size_ratio"] < 0.5
    assert variants["int8-static"]["size_ratio"] < 0.6
    assert variants["fp16"]["probability_error"] < 1e-3 < variants["int8-dynamic"]["probability_error"] < 5e-2
    assert variants["int8-static"]["method"].startswith("onnxruntime ")
    assert "from 64 rows of the sample data" in variants["int8-static"]["method"]
    assert report["variants"]["best"] == "int8-dynamic"  # --pick smallest, the default
    assert report["variants"]["best_path"] == variants["int8-dynamic"]["path"]
    assert "variants" in report["timings"]


def test_the_variants_table_is_in_the_markdown_report(run_cli, mlp) -> None:
    model, samples = mlp
    result = run_cli("--model-path", str(model), "--sample-data", str(samples), "--variants", "fp16,int8-dynamic")

    markdown = result.markdown("digits_mlp")
    section = markdown[markdown.index("### Variants") : markdown.index("<details>")]
    lines = section.splitlines()
    assert lines[2] == (
        "Each variant is validated against the original model (batch 64 and 32), not against the fp32 file, and "
        "kept only when it passes. Latency: onnxruntime CPU, batch 64, median of runs alternating with the fp32 "
        "file in this process. Best (smallest): `digits_mlp.int8-dynamic.onnx`."
    )
    assert lines[4] == (
        "| Variant | File | Size | Size vs fp32 | Latency vs fp32 | Max abs diff | Label agreement | Result |"
    )
    fp32_bytes = result.report("digits_mlp")["onnx"]["bytes"]
    assert lines[6] == f"| fp32 | `digits_mlp.onnx` | {size(fp32_bytes)} | 1.00× | 1.00× | — | — | ✅ validated above |"
    assert re.fullmatch(
        r"\| fp16 \| `digits_mlp\.fp16\.onnx` \| [\d.]+ KB \| 0\.\d\d× \| \d+\.\d\d× \| [\d.e‑]+ \| 100\.00% \| ✅ passed \|",
        lines[7],
    )
    assert lines[10].startswith("- `fp16`: onnxruntime ")
    assert lines[10].endswith("Tolerance: rtol 0.01, atol 0.01, label agreement ≥ 99%.")
    assert lines[11].endswith("Tolerance: rtol 0.05, atol 0.1, label agreement ≥ 99%.")


def test_the_same_model_gives_byte_identical_variants(run_cli, mlp, tmp_path: Path) -> None:
    model, samples = mlp
    digests = []
    for run in ("a", "b"):
        result = run_cli(
            "--model-path",
            str(model),
            "--sample-data",
            str(samples),
            "--variants",
            ALL,
            "--output-dir",
            str(tmp_path / run),
        )
        digests.append({v["name"]: v["sha256"] for v in _variants(result).values()})
    assert digests[0] == digests[1]
    assert len(digests[0]) == 4


def test_a_variant_outside_its_tolerance_is_reported_and_deleted_and_the_run_still_passes(run_cli, mlp) -> None:
    model, samples = mlp
    result = run_cli(
        "--model-path", str(model), "--sample-data", str(samples),
        "--variants", "fp16,int8-dynamic", "--variant-tolerance", "int8-dynamic:rtol=0,atol=1e-6",
    )  # fmt: skip

    assert result.code == 0
    assert result.stdout.splitlines()[0].startswith("PASS digits_mlp.skops")
    assert result.stdout.splitlines()[0].endswith("; variants: fp16 passed, int8-dynamic failed")
    assert "digits_mlp.int8-dynamic.onnx" not in result.written()
    assert "digits_mlp.fp16.onnx" in result.written()
    failed = _variants(result)["int8-dynamic"]
    assert failed["status"] == "failed"
    assert failed["path"] == ""
    assert failed["tolerance"] == {"rtol": 0.0, "atol": 1e-6, "label_agreement": 0.99}
    assert re.match(
        r"output probabilities at batch 64: [\d,]+ of 640 probabilities differ by more than atol 1e-06 \+ rtol 0·p "
        r"\(max [\d.e-]+\)",
        failed["reason"],
    )
    assert failed["bytes"] > 0 and failed["max_abs_diff"] > 1e-6  # measured before it was deleted
    report = result.report("digits_mlp")
    assert report["passed"] is True and report["status"] == "passed"
    assert report["variants"]["best"] == "fp16"
    markdown = result.markdown("digits_mlp")
    assert "| int8-dynamic | — (deleted) |" in markdown
    assert "❌ failed: output probabilities at batch 64: " in markdown


def test_a_required_variant_that_fails_fails_the_run_with_exit_1(run_cli, mlp) -> None:
    model, samples = mlp
    result = run_cli(
        "--model-path", str(model), "--sample-data", str(samples), "--variants", "fp16,int8-dynamic",
        "--variant-tolerance", "int8-dynamic:rtol=0,atol=1e-6", "--require-variants", "int8-dynamic",
    )  # fmt: skip

    assert result.code == 1
    headline = result.stdout.splitlines()[0]
    assert headline.startswith("FAIL digits_mlp.skops (sklearn/skops) -> ")
    assert headline.endswith("; failing: required variant int8-dynamic; variants: fp16 passed, int8-dynamic failed")
    report = result.report("digits_mlp")
    assert report["passed"] is False and report["status"] == "failed"
    assert report["validation"]["passed"] is True  # the fp32 file itself reproduces the model
    assert result.markdown("digits_mlp").startswith(
        "## ❌ digits\\_mlp.skops → digits\\_mlp.onnx: a required variant did not pass\n"
    )
    assert "digits_mlp.int8-dynamic.onnx" not in result.written()


def test_a_required_variant_that_passes_keeps_the_run_passing(run_cli, mlp) -> None:
    model, _ = mlp
    result = run_cli("--model-path", str(model), "--variants", "fp16", "--require-variants", "fp16")
    assert result.code == 0
    assert result.report("digits_mlp")["variants"]["required"] == ["fp16"]


def test_pick_fastest_names_a_variant_only_when_it_is_clearly_faster_than_the_fp32_file(run_cli, mlp) -> None:
    model, samples = mlp
    result = run_cli(
        "--model-path", str(model), "--sample-data", str(samples), "--variants", "fp16,int8-dynamic", "--pick", "fastest"
    )  # fmt: skip

    variants = result.report("digits_mlp")["variants"]
    assert variants["pick"] == "fastest"
    faster = [v for v in variants["results"] if v["status"] == "passed" and v["latency_ratio"] < 0.85]
    if faster:
        fastest = min(faster, key=lambda v: v["latency_ratio"])
        assert (variants["best"], variants["best_path"]) == (fastest["name"], fastest["path"])
    else:  # nothing beat the fp32 file by more than the timing noise: it stays the best
        assert (variants["best"], variants["best_path"]) == ("fp32", str(result.output_dir / "digits_mlp.onnx"))


def test_a_tree_ensemble_skips_the_variants_it_has_no_weights_for(run_cli, forest) -> None:
    result = run_cli("--model-path", str(forest), "--variants", "optimized,fp16,int8-dynamic")

    assert result.code == 0
    assert result.written() == ["forest.onnx", "forest.optimized.onnx", "forest.report.json", "forest.report.md"]
    variants = {v["name"]: v for v in result.report("forest")["variants"]["results"]}
    assert variants["optimized"]["status"] == "passed"
    assert variants["fp16"]["status"] == "skipped"
    assert variants["fp16"]["reason"] == (
        "no float32 weight to convert: the model's weights are held by ops that stay float32 (1 TreeEnsembleClassifier)"
    )
    assert variants["int8-dynamic"]["status"] == "skipped"
    assert variants["int8-dynamic"]["reason"] == (
        "no float32 weight to quantise: no Gather, Gemm, LSTM, MatMul node reads one (a tree ensemble or a "
        "linear model keeps its numbers in node attributes)"
    )
    # a skipped row says why and nothing else
    assert (
        "| fp16 | — | — | — | — | — | — | ⏭️ skipped: no float32 weight to convert: the model's weights are held by "
        "ops that stay float32 (1 TreeEnsembleClassifier) |" in result.markdown("forest")
    )


def test_no_variant_is_made_from_an_fp32_file_that_does_not_reproduce_the_model(run_cli, mlp) -> None:
    model, _ = mlp
    result = run_cli("--model-path", str(model), "--variants", "fp16", "--rtol", "0", "--atol", "0")

    assert result.code == 1
    variant = _variants(result)["fp16"]
    assert variant["status"] == "skipped"
    assert variant["reason"] == "the fp32 file does not reproduce the original model, so no variant is made from it"
    assert result.report("digits_mlp")["variants"]["best"] == ""


def test_the_report_with_variants_round_trips_through_json(run_cli, mlp) -> None:
    model, samples = mlp
    result = run_cli("--model-path", str(model), "--sample-data", str(samples), "--variants", "fp16,int8-static")
    data = result.report("digits_mlp")
    assert Report.from_json(json.dumps(data)).to_dict() == data


# -- the comparison rules, on tiny real ONNX graphs ----------------------------------------------


def _scaled_graph(path: Path, scale: list[float], dtype: int = TensorProto.FLOAT) -> OnnxRunner:
    """y = x * scale (per column), or y = x for integer inputs: a 'variant' whose error we choose."""
    x = helper.make_tensor_value_info("x", dtype, ["batch", len(scale)])
    y = helper.make_tensor_value_info("y", dtype, ["batch", len(scale)])
    if dtype == TensorProto.FLOAT:
        nodes = [helper.make_node("Mul", ["x", "scale"], ["y"])]
        initializers = [helper.make_tensor("scale", TensorProto.FLOAT, [len(scale)], scale)]
    else:
        nodes, initializers = [helper.make_node("Identity", ["x"], ["y"])], []
    graph = helper.make_graph(nodes, "variant", [x], [y], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), path)
    return OnnxRunner(path)


LOGITS = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 1.2], [1.0, 0.0, 0.9]], dtype=np.float32)


def test_logits_are_judged_by_their_argmax_and_their_softmax_probabilities(tmp_path: Path) -> None:
    runner = _scaled_graph(tmp_path / "v.onnx", [1.0, 1.0, 1.2])  # row 3: 0.9 * 1.2 > 1, its argmax flips
    check = check_variant(runner, [({"x": LOGITS}, {"y": LOGITS})], Tolerance(1e-2, 1e-2, 0.99), frozenset())

    [output] = check.outputs
    assert output.kind == "classes"
    assert output.label_agreement == pytest.approx(2 / 3)
    assert not check.passed
    # rows 2 and 3 changed: all six of their probabilities moved
    assert output.problem == (
        "66.7% of argmax labels agree, below 99%; 6 of 9 softmax probabilities (of logits) differ by more than "
        "atol 0.01 + rtol 0.01·p (max 0.0599)"
    )
    assert check.failures()[0].startswith("output y at batch 3: 66.7% of argmax labels agree")


def test_probabilities_are_compared_as_they_are(tmp_path: Path) -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype=np.float32)
    runner = _scaled_graph(tmp_path / "v.onnx", [1.01, 1.0, 1.0])
    check = check_variant(runner, [({"x": probabilities}, {"y": probabilities})], Tolerance(0, 1e-2, 1), frozenset())

    [output] = check.outputs
    assert (output.kind, output.passed, output.label_agreement) == ("classes", True, 1.0)
    assert output.probability_error == pytest.approx(0.007, abs=1e-6)  # 0.7 * 0.01, no softmax applied


def test_label_agreement_0_judges_a_batch_by_n_output_as_values(tmp_path: Path) -> None:
    runner = _scaled_graph(tmp_path / "v.onnx", [1.0, 1.0, 1.2])
    check = check_variant(runner, [({"x": LOGITS}, {"y": LOGITS})], Tolerance(1e-2, 1e-2, 0), frozenset())

    [output] = check.outputs
    assert (output.kind, output.label_agreement) == ("values", None)
    assert output.problem == (
        "2 of 9 elements differ by more than atol 0.01 + rtol 0.01·|original| (max abs diff 0.24, max rel diff 0.2)"
    )


@pytest.mark.parametrize(("threshold", "passed"), [(0.99, True), (1.0, False)])
def test_label_outputs_need_the_share_of_equal_labels(tmp_path: Path, threshold: float, passed: bool) -> None:
    labels = np.arange(100, dtype=np.int64).reshape(100, 1) % 7
    reference = labels.copy()
    reference[5] = 6 if labels[5] != 6 else 0  # one label of 100 differs
    runner = _scaled_graph(tmp_path / "v.onnx", [0.0], TensorProto.INT64)
    check = check_variant(runner, [({"x": labels}, {"y": reference})], Tolerance(0, 0, threshold), frozenset({"y"}))

    [output] = check.outputs
    assert (output.kind, output.label_agreement, output.passed) == ("labels", 0.99, passed)
    assert output.problem == ("" if passed else "99.0% of labels agree, below 100%")
