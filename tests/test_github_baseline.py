"""The action with a baseline: the rejection's exit code and annotation, and the two outputs."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def workspace(tmp_path: Path, iris_skops: Path) -> Path:
    ws = tmp_path / "workspace"
    (ws / "models").mkdir(parents=True)
    (ws / "models" / "iris.skops").write_bytes(iris_skops.read_bytes())
    return ws


def test_a_breaking_change_fails_the_step_even_with_fail_on_mismatch_false(action) -> None:
    first = action(model_path="models/iris.skops", output_dir="release", upload_artifact="false")
    assert first.code == 0, first.stdout
    assert (first.outputs["interface-changed"], first.outputs["breaking-changes"]) == ("", "")

    rejected = action(
        output_dir="out",
        baseline="release/iris.report.json",
        dynamic_batch="false",
        fail_on_mismatch="false",  # forgives a validation failure, not a rejection
    )
    assert rejected.code == 1
    assert rejected.outputs["passed"] == "false"
    assert (rejected.outputs["interface-changed"], rejected.outputs["breaking-changes"]) == ("true", "3")
    [error] = rejected.commands("error")
    assert error.startswith("::error title=ONNX file rejected by the comparison with the baseline::FAIL iris.skops")
    assert "rejected by the baseline: 3 breaking interface changes from the baseline: input input: axis 0" in error
    # what rejected it comes right after the headline, then the section that shows each change
    assert rejected.summary.startswith(
        "## ❌ iris.skops → iris.onnx: validated, but rejected by the comparison with the baseline\n\n"
        "❌ **Rejected by the comparison with the baseline:** 3 breaking interface changes from the baseline: "
    )
    assert "\n### Compared with `" in rejected.summary

    allowed = action(allow_interface_change="true")
    assert allowed.code == 0
    assert (allowed.outputs["interface-changed"], allowed.outputs["breaking-changes"]) == ("true", "3")
    assert any("allowed by --allow-interface-change" in w for w in allowed.commands("warning"))
