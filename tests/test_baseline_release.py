"""The comparison with the last release, through the CLI, on real pairs of models.

Each test converts a "release" (the baseline), then a second model against its report and .onnx:
the same model again, a retrained one, a renamed input, a batch axis fixed by mistake, an output
whose dtype changed, a larger model. What a user sees is asserted: the exit code, the headline,
the report's baseline section and the summary's "Compared with" table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converter.github.outputs import baseline_outputs
from converter.report import Report
from tests.fixtures.sklearn import dataset, lazy

pytestmark = pytest.mark.converts
sklearn, sio = lazy("sklearn"), lazy("skops.io")


def skops_model(path: Path, model: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(model.fit(*dataset("iris")), path)  # type: ignore[attr-defined]
    return path


def torch_model(path: Path, kind: str) -> Path:
    """A torch.export program (nothing unpickled): "x" (input x), "features" (the same weights,
    its input named features), or "float64" (input x, the output cast to float64)."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x).double() if kind == "float64" else self.fc(x)

    class Features(Net):
        def forward(self, features: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return self.fc(features)

    model = (Features() if kind == "features" else Net()).eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (torch.randn(8, 4),), dynamic_shapes=({0: batch},))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(path))
    return path


@pytest.fixture
def release(run_cli, tmp_path: Path):
    """Convert ``model`` into tmp_path/<folder>; the CLI result."""

    def convert(model: Path, folder: str, *options: str):
        return run_cli("--model-path", str(model), "--output-dir", str(tmp_path / folder), *options)

    return convert


def iris(tmp_path: Path, name: str = "iris", c: float = 1.0) -> Path:
    return skops_model(
        tmp_path / "models" / name / "iris.skops", sklearn.linear_model.LogisticRegression(max_iter=1000, C=c)
    )


# -- the pairs ------------------------------------------------------------------------------------


def test_the_same_model_exported_again_has_the_same_interface_and_no_drift(release, tmp_path: Path) -> None:
    model = iris(tmp_path)
    assert release(model, "v1").code == 0
    result = release(model, "v2", "--baseline", str(tmp_path / "v1" / "iris.report.json"))
    assert result.code == 0, result.stderr
    report = result.report("iris")
    baseline = report["baseline"]
    assert baseline["compared"] and baseline["passed"] and baseline["failures"] == []
    assert baseline["interface"] == []
    assert baseline["onnx"] == str(tmp_path / "v1" / "iris.onnx")
    assert baseline["size"]["ratio"] == 1.0
    assert [o["max_abs_diff"] for o in baseline["drift"]["outputs"]] == [0.0, 0.0]
    assert baseline["drift"]["batch_sizes"] == [16, 8]
    assert baseline["latency"]["runs"] >= 15
    assert baseline_outputs(Report.from_dict(report)) == {"interface-changed": "false", "breaking-changes": "0"}
    markdown = result.markdown("iris")
    section = markdown[markdown.index("### Compared with") : markdown.index("<details>")]  # before the folded details
    assert section.startswith(
        f"### Compared with `{tmp_path}/v1/iris.report.json`\n\n"
        f"Baseline: `{tmp_path}/v1/iris.report.json` and `{tmp_path}/v1/iris.onnx`. ✅ passes.\n\n"
        "Interface unchanged; size ×1.00, latency ×"
    )
    assert "outputs identical to the baseline file's at batch 16 and 8.\n" in section
    assert "|---|" not in section  # nothing changed: no table


def test_a_retrained_model_reports_drift_and_passes_unless_max_drift_is_given(release, tmp_path: Path) -> None:
    assert release(iris(tmp_path), "v1").code == 0
    retrained = iris(tmp_path, "retrained", c=0.1)
    baseline = str(tmp_path / "v1")  # the folder: the report is found by the model's name
    result = release(retrained, "v2", "--baseline", baseline)
    assert result.code == 0, result.stderr
    drift = {o["name"]: o for o in result.report("iris")["baseline"]["drift"]["outputs"]}
    assert drift["probabilities"]["max_abs_diff"] > 0.05
    assert "| Drift of `probabilities` from the baseline file | - | max abs diff " in result.markdown("iris")
    assert "| reported (no --max-drift) |" in result.markdown("iris")

    gated = release(retrained, "v3", "--baseline", baseline, "--max-drift", "1e-3")
    assert gated.code == 1
    report = gated.report("iris")
    assert report["status"] == "rejected" and report["passed"] is False
    over = next(o for o in report["baseline"]["drift"]["outputs"] if o["name"] == "probabilities")["over_limit"]
    assert gated.stdout.splitlines()[0].endswith(
        f"; rejected by the baseline: output probabilities drifts from the baseline's: {over} elements beyond "
        f"--max-drift 0.001 (max abs diff {drift['probabilities']['max_abs_diff']:.3g})"
    )
    assert gated.markdown("iris").startswith(
        "## ❌ iris.skops → iris.onnx: validated, but rejected by the comparison with the baseline\n\n"
        "❌ **Rejected by the comparison with the baseline:** output probabilities drifts from the baseline's: "
    )


def test_a_renamed_input_is_a_breaking_change_that_fails_the_run(release, tmp_path: Path) -> None:
    assert release(torch_model(tmp_path / "a" / "net.pt2", "x"), "v1").code == 0
    renamed = torch_model(tmp_path / "b" / "net.pt2", "features")
    result = release(renamed, "v2", "--baseline", str(tmp_path / "v1" / "net.report.json"))
    assert result.code == 1
    report = result.report("net")
    assert report["status"] == "rejected"
    [change] = report["baseline"]["interface"]
    assert change["kind"] == "input" and change["name"] == "x" and change["change"] == "renamed"
    assert change["severity"] == "breaking"
    assert change["current"].startswith("features float32 [")
    assert result.stdout.splitlines()[0].endswith(
        "; rejected by the baseline: 1 breaking interface change from the baseline: input x: renamed to features: "
        "clients feed inputs and read outputs by name (--allow-interface-change true accepts them)"
    )
    # the same weights: fed by position, both files give the same outputs
    assert report["baseline"]["drift"]["outputs"][0]["max_abs_diff"] == 0.0
    assert baseline_outputs(Report.from_dict(report)) == {"interface-changed": "true", "breaking-changes": "1"}
    row = next(line for line in result.markdown("net").splitlines() if line.startswith("| input `x` renamed |"))
    assert "| ❌ breaking: renamed to features: clients feed inputs and read outputs by name |" in row

    allowed = release(
        renamed, "v3", "--baseline", str(tmp_path / "v1" / "net.report.json"), "--allow-interface-change", "true"
    )
    assert allowed.code == 0
    assert allowed.report("net")["warnings"][-1] == (
        "breaking interface change from the baseline, allowed by --allow-interface-change: input x: renamed to "
        "features: clients feed inputs and read outputs by name"
    )
    assert "| ⚠️ breaking, allowed: renamed to features" in allowed.markdown("net")


def test_a_batch_axis_fixed_by_mistake_is_breaking(release, tmp_path: Path) -> None:
    model = iris(tmp_path)
    assert release(model, "v1").code == 0
    result = release(model, "v2", "--baseline", str(tmp_path / "v1"), "--dynamic-batch", "false")
    assert result.code == 1
    changes = [
        (c["kind"], c["name"], c["change"], c["baseline"], c["current"], c["severity"])
        for c in result.report("iris")["baseline"]["interface"]
    ]
    assert changes == [
        # the batch axis is named batch in every framework's file (onnx_file.name_batch_axes)
        ("input", "input", "axis", "dynamic (batch)", "16", "breaking"),
        ("output", "label", "axis", "dynamic (batch)", "16", "breaking"),
        ("output", "probabilities", "axis", "dynamic (batch)", "16", "breaking"),
    ]
    assert "axis 0: dynamic, now fixed at 16: clients that send another size fail" in result.stdout


def test_an_output_whose_dtype_changed_is_breaking(release, tmp_path: Path) -> None:
    assert release(torch_model(tmp_path / "a" / "net.pt2", "x"), "v1").code == 0
    result = release(torch_model(tmp_path / "c" / "net.pt2", "float64"), "v2", "--baseline", str(tmp_path / "v1"))
    assert result.code == 1
    baseline = result.report("net")["baseline"]
    assert [(c["kind"], c["name"], c["change"], c["baseline"], c["current"]) for c in baseline["interface"]] == [
        ("output", "output", "dtype", "float32", "float64")
    ]
    assert (
        baseline["interface"][0]["reason"]
        == "dtype changed: clients get another dtype (a typed buffer or a cast breaks)"
    )
    assert baseline["drift"]["outputs"][0]["max_abs_diff"] < 1e-6  # the same numbers, in another dtype


def test_a_larger_model_fails_the_size_and_latency_gates(release, tmp_path: Path) -> None:
    forest = sklearn.ensemble.RandomForestClassifier
    small = skops_model(tmp_path / "small" / "forest.skops", forest(n_estimators=10, random_state=0))
    large = skops_model(tmp_path / "large" / "forest.skops", forest(n_estimators=80, random_state=0))
    assert release(small, "v1").code == 0
    baseline = str(tmp_path / "v1" / "forest.report.json")
    reported = release(large, "v2", "--baseline", baseline)
    assert reported.code == 0
    comparison = reported.report("forest")["baseline"]
    assert comparison["size"]["ratio"] > 4
    assert "| ONNX size | " in reported.markdown("forest") and "| reported |" in reported.markdown("forest")
    gated = release(large, "v3", "--baseline", baseline, "--max-size-increase", "50", "--max-latency-increase", "10")
    assert gated.code == 1
    size = gated.report("forest")["baseline"]["size"]
    failures = gated.report("forest")["baseline"]["failures"]
    assert failures[0] == (
        f"the ONNX file is {size['increase_percent']:.1f}% larger than the baseline's ({size['bytes']:,} vs "
        f"{size['baseline_bytes']:,} bytes); --max-size-increase allows 50%"
    )
    latency = gated.report("forest")["baseline"]["latency"]
    assert latency["ratio"] > 1.1, latency  # 8 times the trees
    assert failures[1].startswith(
        f"the ONNX file is {(latency['ratio'] - 1) * 100:.1f}% slower than the baseline's (median of "
    )


# -- no baseline, and bad ones ----------------------------------------------------------------------


def test_the_first_release_has_no_baseline_and_says_so_with_baseline_optional(release, tmp_path: Path) -> None:
    model = iris(tmp_path)
    missing = tmp_path / "previous" / "iris.report.json"
    refused = release(model, "v1", "--baseline", str(missing))
    assert refused.code == 2
    assert refused.errors == (
        f'error: --baseline "{missing}": no such file or directory; give the last release\'s .report.json, '
        "or set --baseline-optional true for the first release\n"
    )
    assert refused.written() == []
    first = release(model, "v1", "--baseline", str(missing), "--baseline-optional", "true")
    assert first.code == 0
    assert first.report("iris")["baseline"]["compared"] is False
    assert (
        f"### Compared with nothing\n\nNo baseline at `{missing}`, and --baseline-optional true: nothing compared "
        "(a first release, or a model new in this one).\n"
    ) in first.markdown("iris")
    assert baseline_outputs(Report.from_dict(first.report("iris"))) == {"interface-changed": "", "breaking-changes": ""}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "is not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
        (
            b'{"model": {}, "schema_version": 1, "status": "error", "onnx": null}',
            "it records no ONNX file (the conversion failed)",
        ),
        (b"[1, 2]", "is not a report of onnx-convert"),
        (
            b'{"model": {}, "schema_version": 1, "onnx": {"inputs": [{"name": 3}]}}',
            "onnx.inputs holds an entry that is not a name, shape and dtype",
        ),
    ],
)
def test_an_unreadable_baseline_is_one_error_line(release, tmp_path: Path, content: bytes, problem: str) -> None:
    bad = tmp_path / "bad.report.json"
    bad.write_bytes(content)
    result = release(iris(tmp_path), "v1", "--baseline", str(bad))
    assert result.code == 2
    assert result.errors == (
        f'error: --baseline "{bad}": {problem}; give the .report.json that onnx-convert wrote for the last release\n'
    )
    assert result.written() == []


def test_a_baseline_onnx_that_is_not_the_reported_one_is_refused(release, tmp_path: Path) -> None:
    model = iris(tmp_path)
    assert release(model, "v1").code == 0
    report = json.loads((tmp_path / "v1" / "iris.report.json").read_text())
    (tmp_path / "v1" / "iris.onnx").write_bytes(b"not the released file")
    result = release(model, "v2", "--baseline", str(tmp_path / "v1" / "iris.report.json"))
    assert result.code == 2
    assert result.errors.startswith(
        f'error: --baseline "{tmp_path}/v1/iris.report.json": iris.onnx beside it has sha256 '
    )
    assert result.errors.endswith(
        f"and the report records {report['onnx']['sha256']}; download the .onnx and the report of the same release\n"
    )


def test_gates_that_run_the_baseline_onnx_need_it_beside_the_report(release, tmp_path: Path) -> None:
    model = iris(tmp_path)
    assert release(model, "v1").code == 0
    (tmp_path / "v1" / "iris.onnx").unlink()
    report = str(tmp_path / "v1" / "iris.report.json")
    result = release(model, "v2", "--baseline", report, "--max-latency-increase", "20")
    assert result.code == 2
    assert result.errors == (
        f'error: --max-latency-increase run the baseline .onnx, and there is none beside --baseline "{report}"; '
        "download the last release's .onnx next to its report\n"
    )
    without = release(model, "v3", "--baseline", report, "--max-size-increase", "0")
    assert without.code == 0
    comparison = without.report("iris")["baseline"]
    assert comparison["drift"] is None and comparison["latency"] is None and comparison["size"]["ratio"] == 1.0
    assert comparison["notes"] == ["no .onnx beside iris.report.json: drift and latency not measured"]


def test_a_gate_without_a_baseline_is_refused(run_cli, tmp_path: Path) -> None:
    result = run_cli("--model-path", str(iris(tmp_path)), "--max-drift", "0.01")
    assert result.code == 2
    assert result.errors == (
        'error: --max-drift "0.01": compares with a baseline, and --baseline is empty; '
        "give the last release's report with --baseline\n"
    )


# -- many models ------------------------------------------------------------------------------------


def test_a_manifest_matches_each_model_to_its_report_in_the_baseline_folder(run_cli, tmp_path: Path) -> None:
    iris(tmp_path, "one")
    iris(tmp_path, "two", c=0.1)
    manifest = tmp_path / "models" / "onnx-models.yml"
    manifest.write_text(
        "models:\n  - name: one\n    model-path: one/iris.skops\n  - name: two\n    model-path: two/iris.skops\n"
    )
    first = run_cli("--model-path", str(manifest), "--output-dir", str(tmp_path / "v1"))
    assert first.code == 0, first.stderr
    again = run_cli(
        "--model-path", str(manifest), "--output-dir", str(tmp_path / "v2"), "--baseline", str(tmp_path / "v1")
    )
    assert again.code == 0, again.stderr
    for name in ("one", "two"):
        report = json.loads((tmp_path / "v2" / name / "iris.report.json").read_text())
        assert report["baseline"]["source"] == str(tmp_path / "v1" / name / "iris.report.json")
        assert report["baseline"]["drift"]["outputs"][0]["max_abs_diff"] == 0.0

    (tmp_path / "v1" / "two" / "iris.report.json").unlink()
    missing = run_cli(
        "--model-path", str(manifest), "--output-dir", str(tmp_path / "v3"), "--baseline", str(tmp_path / "v1")
    )
    assert missing.code == 2
    assert missing.errors == (
        f'error: --baseline "{tmp_path}/v1": no report for model two in the folder (looked for two/*.report.json, '
        "two.report.json, iris/*.report.json, iris.report.json); put the last release's report there, or set "
        "--baseline-optional true when the model is new\n"
    )


def test_names_from_a_hostile_baseline_are_text_in_the_summary_and_one_line_in_the_log(release, tmp_path: Path) -> None:
    from tests.fixtures.runner import markdown_html, read_as_runner

    model = iris(tmp_path)
    assert release(model, "v1").code == 0
    path = tmp_path / "v1" / "iris.report.json"
    report = json.loads(path.read_text())
    hostile = "p\n::error::pwned <script>alert(1)</script> | `x`"
    report["onnx"]["outputs"][1]["name"] = hostile
    path.write_text(json.dumps(report))
    (tmp_path / "v1" / "iris.onnx").unlink()  # its sha256 would no longer matter: the report alone
    result = release(model, "v2", "--baseline", str(path))
    assert result.code == 1  # the output was "renamed": breaking
    assert read_as_runner(result.stdout + result.stderr).commands == []
    html, raw = markdown_html(result.markdown("iris"))
    assert raw == [] and "<script" not in html
