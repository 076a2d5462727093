"""The summary answers "did it pass, and if not, by how much" first: the verdict's data (validate.py)
and its layout as GitHub renders it (GFM; headless Chromium at 1280x800 where Chromium is installed)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from converter.batch import BatchIndex, IndexRow
from converter.markdown.numbers import NBSP, ceil_sig, decade_bars, percent, sig, size, unbroken
from converter.report import Report
from converter.validate import BatchCheck, Validation, compare, decade_histogram
from tests.fixtures.sklearn import dataset, lazy
from tests.fixtures.tiers import model_fixture
from tools import github_render

sklearn, sio = lazy("sklearn"), lazy("skops.io")


# -- the verdict is data ---------------------------------------------------------------------------


def test_the_worst_element_is_the_one_furthest_over_its_own_allowed_value() -> None:
    ref = np.array([1.0, 100.0, 0.0])
    # allowed: 0.01 + 0.001·|ref| -> 0.011, 0.11, 0.01; |diff| 0.0105, 0.2, 0
    [result] = compare({"y": ref}, {"y": np.array([1.0105, 100.2, 0.0])}, rtol=1e-3, atol=1e-2)
    assert result.worst_index == [1]
    assert result.worst_diff == pytest.approx(0.2)
    assert result.worst_allowed == pytest.approx(0.11)
    assert result.max_ratio == pytest.approx(0.2 / 0.11)
    # atol at rtol 1e-3: max(|diff| - 1e-3·|ref|) = 0.2 - 0.1; rtol at atol 1e-2: (0.2 - 0.01) / 100
    assert result.min_atol == pytest.approx(0.1)
    assert result.min_rtol == pytest.approx(0.0019)


@pytest.mark.parametrize("seed", range(5))
def test_the_passing_tolerance_shown_passes_and_anything_smaller_fails(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal((16, 10)).astype(np.float64)
    out = (ref + rng.standard_normal(ref.shape) * 1e-4).astype(np.float32)
    rtol, atol = 1e-5, 1e-6
    [result] = compare({"y": ref}, {"y": out}, rtol=rtol, atol=atol)
    assert not result.passed and result.min_atol is not None and result.min_rtol is not None

    shown_atol, shown_rtol = float(ceil_sig(result.min_atol)), float(ceil_sig(result.min_rtol))
    assert compare({"y": ref}, {"y": out}, rtol=rtol, atol=shown_atol)[0].passed
    assert compare({"y": ref}, {"y": out}, rtol=shown_rtol, atol=atol)[0].passed
    assert not compare({"y": ref}, {"y": out}, rtol=rtol, atol=result.min_atol * 0.999)[0].passed
    assert not compare({"y": ref}, {"y": out}, rtol=result.min_rtol * 0.999, atol=atol)[0].passed


def test_no_tolerance_passes_a_nan_on_one_side_and_no_rtol_a_difference_at_zero() -> None:
    [nan] = compare({"y": np.array([1.0, np.nan])}, {"y": np.array([1.0, 2.0])}, 1e-3, 1e-3)
    assert (nan.min_atol, nan.min_rtol, nan.max_ratio) == (None, None, None)
    [zero] = compare({"y": np.array([0.0, 1.0])}, {"y": np.array([0.5, 1.0])}, 1e-3, 1e-3)
    assert zero.min_atol == pytest.approx(0.5) and zero.min_rtol is None


def test_the_difference_is_counted_per_decade() -> None:
    diff = np.array([0.0, 0.0, 2e-9, 3e-7, 5e-7, 0.9e-6, np.inf])
    assert decade_histogram(diff) == {"0": 2, "1e-09": 1, "1e-08": 0, "1e-07": 3, "inf": 1}
    # no-break spaces and hyphens: the chart stays on one line in its table cell
    assert decade_bars(decade_histogram(diff)) == "1e-09 ▃·█ 1e-07, 2 equal, 1 unbounded".replace(" ", NBSP)
    many = decade_histogram(np.array([10.0**-e for e in range(1, 13)]))
    assert decade_bars(many) == "≤1e-08 █▂▂▂▂▂▂▂ 1e-01".replace(" ", NBSP)  # 12 decades: the lowest 5 in one


def test_an_output_that_ignores_its_inputs_is_a_weak_check() -> None:
    rows = np.linspace(0, 1, 16)[:, None] * np.ones((16, 3))
    constant = np.full((16, 3), 0.25) + rows * 1e-6  # varies by 1e-6, under atol 1e-3
    labels = np.zeros(16, dtype=np.int64)
    outputs = compare(
        {"varies": rows, "constant": constant, "label": labels},
        {"varies": rows, "constant": constant, "label": labels},
        1e-3,
        1e-3,
        frozenset({"label"}),
    )
    weak = {o.name: (o.insensitive, o.spread) for o in outputs}
    assert weak["varies"] == (False, pytest.approx(1.0))
    assert weak["constant"] == (True, pytest.approx(1e-6))
    assert weak["label"] == (True, None)


def _validation(rtol: float = 1e-5, atol: float = 1e-6) -> Validation:
    rng = np.random.default_rng(0)
    ref = {"logits": rng.standard_normal((16, 4)), "label": np.arange(16) % 3}
    out = {"logits": ref["logits"] + 3e-5, "label": ref["label"]}
    half = {k: v[:8] for k, v in ref.items()}
    half_out = {k: v[:8] for k, v in out.items()}
    batches = [
        BatchCheck(16, False, compare(ref, out, rtol, atol, frozenset({"label"}))),
        BatchCheck(8, False, compare(half, half_out, rtol, atol, frozenset({"label"}))),
    ]
    return Validation(rtol, atol, 16, "generated (seed 0)", False, batches)


def test_the_verdict_merges_batches_and_survives_the_json_round_trip() -> None:
    validation = _validation()
    [logits, label] = validation.verdicts()
    assert (logits.name, logits.passed, logits.failing, logits.elements) == ("logits", False, 96, 96)
    assert logits.diff_decades == {"1e-05": 96}
    assert label.passed and label.label_agreement == 1.0 and not label.tolerance_applies
    assert validation.worst_verdict() == logits
    atol, rtol = validation.passing_tolerance()
    assert atol is not None and rtol is not None and 2.9e-5 < atol <= 3.0001e-5  # |diff| 3e-5 less rtol·|ref|

    data = json.loads(json.dumps(validation.to_dict()))
    assert data["passing_atol"] == atol and data["passing_rtol"] == rtol
    assert [o["name"] for o in data["outputs"]] == ["logits", "label"]
    assert data["outputs"][0]["max_ratio"] == logits.max_ratio
    again = Validation.from_dict(data)
    assert again == validation and again.verdicts() == validation.verdicts()


def test_labels_that_disagree_have_no_passing_tolerance() -> None:
    outputs = compare({"label": np.array([0, 1, 2])}, {"label": np.array([0, 1, 1])}, 1e-3, 1e-3, frozenset({"label"}))
    validation = Validation(1e-3, 1e-3, 3, "x", False, [BatchCheck(3, False, outputs)])
    assert validation.passing_tolerance() == (None, None)


# -- numbers as a person reads them ----------------------------------------------------------------


def test_numbers_have_three_significant_digits_and_sizes_a_unit() -> None:
    assert [sig(v) for v in (1.6e-5, 1e-6, 100.0, 0.0124, 16.0, 0.5, None, 0.0, 0.000124)] == [
        "1.60e-05",
        "1.00e-06",
        "100",
        "0.0124",
        "16.0",
        "0.500",
        "—",
        "0",
        "1.24e-04",
    ]
    assert [ceil_sig(v) for v in (1.6012e-5, 1e-6, 3.98e-7, 0.0124)] == ["1.7e-05", "1.0e-06", "4.0e-07", "0.013"]
    assert [size(n) for n in (520, 11_264, 3 * 1024**2 + 1)] == ["520 B", "11.0 KB", "3.00 MB"]
    assert [percent(*p) for p in ((22, 24), (1, 100_000), (99_999, 100_000), (0, 5))] == [
        "91.7%",
        "0.1%",
        "99.9%",
        "0%",
    ]


# -- real reports, rendered as GitHub renders them --------------------------------------------------


@model_fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A passing, a mismatching and a failed conversion, and the index of the three (CLI, in-process)."""
    from converter.cli import main

    root = tmp_path_factory.mktemp("reports")
    (root / "models").mkdir()
    iris, diabetes = dataset("iris"), dataset("diabetes")
    sio.dump(sklearn.linear_model.LogisticRegression(max_iter=1000).fit(*iris), root / "models" / "iris.skops")
    regressor = sklearn.ensemble.GradientBoostingRegressor(random_state=0).fit(*diabetes)
    sio.dump(regressor, root / "models" / "diabetes.skops")
    embedding = sklearn.manifold.LocallyLinearEmbedding().fit(iris[0])  # no ONNX equivalent
    sio.dump(embedding, root / "models" / "embedding.skops")
    out = root / "out"
    assert main(["--model-path", str(root / "models" / "iris.skops"), "--output-dir", str(out), "--quiet"]) == 0
    tight = ["--atol", "1e-7", "--rtol", "0"]
    assert main(["--model-path", str(root / "models" / "diabetes.skops"), "--output-dir", str(out), *tight]) == 1
    assert main(["--model-path", str(root / "models" / "embedding.skops"), "--output-dir", str(out), "--quiet"]) == 1
    index = BatchIndex(
        [
            IndexRow.from_report(p.stem.split(".")[0], Report.from_json(p.read_text()))
            for p in sorted(out.glob("*.report.json"))
        ]
    )
    (out / "index.md").write_text(index.to_markdown())
    return {
        "pass": out / "iris.report.md",
        "mismatch": out / "diabetes.report.md",
        "error": out / "embedding.report.md",
        "index": out / "index.md",
    }


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


def _before_first_table(markdown: str) -> str:
    html = github_render.to_html(markdown)
    return _text(html.split("<table>")[0]) if "<table>" in html else _text(html)


def test_a_mismatch_shows_verdict_worst_diff_allowed_and_a_passing_tolerance_before_any_table(reports) -> None:
    markdown = reports["mismatch"].read_text()
    report = Report.from_json(reports["mismatch"].with_suffix("").with_suffix(".report.json").read_text())
    worst = report.validation.worst_verdict()
    atol, _ = report.validation.passing_tolerance()
    first = _before_first_table(markdown)
    assert first.startswith("❌ diabetes.skops → diabetes.onnx: variable differs from the original, up to ")
    assert (
        f"Worst output variable (batch {worst.batch_size}): |diff| {sig(worst.worst_diff)} where {sig(worst.worst_allowed)} was allowed (atol {unbroken('1e-07')} + rtol 0·|original|): over by {sig(worst.max_ratio)}×"
        in first
    )
    assert f"It would pass with atol {ceil_sig(atol)} (at rtol 0)" in first


def test_a_pass_shows_verdict_and_the_closest_output_before_any_table(reports) -> None:
    first = _before_first_table(reports["pass"].read_text())
    assert first.startswith("✅ iris.skops → iris.onnx: every output within tolerance at batch 16 and 8 ")
    assert re.search(r"Closest to its tolerance probabilities \(batch \d+\): \|diff\| \S+ where \S+ was allowed", first)


def test_an_error_shows_the_verdict_and_the_error_before_any_table(reports) -> None:
    first = _before_first_table(reports["error"].read_text())
    assert first.startswith("❌ embedding.skops: conversion failed Error: LocallyLinearEmbedding cannot be converted")


def test_the_index_lists_failures_first_with_tolerance_and_over_by(reports) -> None:
    markdown = reports["index"].read_text()
    first = _before_first_table(markdown)
    assert first.startswith("❌ 2 of 3 models failed ❌ diabetes: worst output variable: |diff| ")
    assert " was allowed (atol 1e-07, rtol 0): over by " in first and "; it would pass with atol " in first
    names = [line.split("`")[1] for line in markdown.splitlines() if line.startswith("| `")]
    assert names == ["diabetes", "embedding", "iris"]
    assert "| `diabetes` (sklearn) | ❌ failed: variable | " in markdown
    assert f"| {unbroken('atol 1e-07,')} {unbroken('rtol')}{NBSP}0 | ".replace("atol ", f"atol{NBSP}") in markdown
    assert "<details><summary>❌ diabetes: failed</summary>" in markdown
    assert "<details><summary>❌ embedding: error</summary>" in markdown


def test_the_report_file_is_not_cut_but_the_job_summary_is(reports) -> None:
    report = Report.from_json(reports["pass"].with_suffix("").with_suffix(".report.json").read_text())
    assert report.to_markdown() == reports["pass"].read_text()
    assert len(report.to_markdown(limit=2000).encode()) <= 2000


# -- the first screen, in Chromium -----------------------------------------------------------------


def _chromium_or_skip() -> None:
    if github_render.chromium() is None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail("CI needs Chromium for the summary's layout check: make chromium", pytrace=False)
        pytest.skip("no Chromium (make chromium installs it)")


def test_the_first_800_px_of_a_mismatch_hold_every_number_that_explains_it(reports) -> None:
    _chromium_or_skip()
    markdown = reports["mismatch"].read_text()
    report = Report.from_json(reports["mismatch"].with_suffix("").with_suffix(".report.json").read_text())
    worst = report.validation.worst_verdict()
    atol, _ = report.validation.passing_tolerance()

    boxes = github_render.positions(markdown)

    wanted = {
        "verdict": "from the original, up to",
        "worst output": "Worst output",
        "max |diff|": sig(worst.worst_diff),
        "allowed": sig(worst.worst_allowed),
        "over by": f"over by {sig(worst.max_ratio)}×",
        "passing tolerance": f"atol {ceil_sig(atol)}",
    }
    for what, text in wanted.items():
        found = [b for b in boxes if text in b["text"] and b["tag"] in ("h2", "strong", "p")]
        assert found, f"{what} ({text}) is not on the page"
        assert min(b["bottom"] for b in found) <= github_render.HEIGHT, f"{what} is below the first screen: {found}"
