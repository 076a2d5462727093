"""scikit-learn models end to end: train, save, convert, validate in onnxruntime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.cli import sha256_of_two_runs
from tests.fixtures.sklearn import dataset, lazy

pytestmark = pytest.mark.converts
sklearn, sio, joblib, pd = lazy("sklearn"), lazy("skops.io"), lazy("joblib"), lazy("pandas")


def _frame(rows: int = 120) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"city": rng.choice(["oslo", "rome", "lima"], rows), "size": rng.normal(50, 10, rows)})
    target = ((frame["city"] == "rome") ^ (frame["size"] > 50)).astype(int).to_numpy()
    return frame, target


def _column_transformer() -> sklearn.pipeline.Pipeline:
    frame, target = _frame()
    columns = sklearn.compose.ColumnTransformer(
        [
            ("city", sklearn.preprocessing.OneHotEncoder(), ["city"]),
            ("size", sklearn.preprocessing.StandardScaler(), ["size"]),
        ]
    )
    return sklearn.pipeline.Pipeline([("columns", columns), ("model", sklearn.linear_model.LogisticRegression())]).fit(
        frame, target
    )


MODELS = {
    "logistic_regression": lambda: sklearn.linear_model.LogisticRegression(max_iter=1000).fit(*dataset("iris")),
    "random_forest": lambda: sklearn.ensemble.RandomForestClassifier(n_estimators=30, random_state=0).fit(
        *dataset("iris")
    ),
    "gradient_boosting_regressor": lambda: sklearn.ensemble.GradientBoostingRegressor(random_state=0).fit(
        *dataset("diabetes")
    ),
    "scaler_svc_pipeline": lambda: sklearn.pipeline.Pipeline(
        [("scale", sklearn.preprocessing.StandardScaler()), ("svc", sklearn.svm.SVC(probability=True, random_state=0))]
    ).fit(*dataset("iris")),
    "column_transformer": _column_transformer,
    "kmeans": lambda: sklearn.cluster.KMeans(n_clusters=3, n_init=3, random_state=0).fit(dataset("iris")[0]),
}
EXPECTED_OUTPUTS = {
    "logistic_regression": {"label", "probabilities"},
    "random_forest": {"label", "probabilities"},
    "gradient_boosting_regressor": {"variable"},
    "scaler_svc_pipeline": {"label", "probabilities"},
    "column_transformer": {"label", "probabilities"},
    "kmeans": {"label", "scores"},
}


def save_skops(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.skops"
    sio.dump(MODELS[name](), path)
    return path


@pytest.mark.parametrize("name", sorted(MODELS))
def test_estimator_converts_and_validates_within_default_tolerances(name: str, tmp_path: Path, run_cli) -> None:
    model = save_skops(tmp_path, name)
    result = run_cli("--model-path", str(model))
    assert result.code == 0, result.stderr
    assert result.stdout.startswith(f"PASS {name}.skops (sklearn/skops)")
    assert result.written() == [f"{name}.onnx", f"{name}.report.json", f"{name}.report.md"]
    report = result.report(name)
    assert report["passed"] is True
    validation = report["validation"]
    assert validation["batch_sizes"] == [16, 8]
    outputs = {o["name"]: o for o in validation["batches"][0]["outputs"]}
    assert set(outputs) == EXPECTED_OUTPUTS[name]
    for out in outputs.values():
        assert out["failing"] == 0
        assert out["max_abs_diff"] < 1e-3
    if "label" in outputs:
        assert outputs["label"]["label_agreement"] == 1.0
    # the dynamic batch axis is declared in the file
    assert all(i["shape"][0] is None or isinstance(i["shape"][0], str) for i in report["onnx"]["inputs"])


def test_classifier_probabilities_are_a_plain_tensor_not_a_zipmap(tmp_path: Path, run_cli) -> None:
    result = run_cli("--model-path", str(save_skops(tmp_path, "random_forest")))
    outputs = {o["name"]: o for o in result.report("random_forest")["onnx"]["outputs"]}
    assert outputs["probabilities"]["dtype"] == "float32"
    assert outputs["probabilities"]["shape"][1] == 3
    assert "ZipMap" not in result.report("random_forest")["onnx"]["operators"]


def test_report_records_the_facts(tmp_path: Path, run_cli) -> None:
    model = save_skops(tmp_path, "logistic_regression")
    result = run_cli("--model-path", str(model), "--opset", "17")
    report = result.report("logistic_regression")
    assert report["model"]["framework"] == "sklearn"
    assert report["model"]["format"] == "skops"
    assert report["model"]["description"] == "LogisticRegression"
    assert report["model"]["bytes"] == model.stat().st_size
    assert len(report["model"]["sha256"]) == 64
    onnx_info = report["onnx"]
    assert onnx_info["opset"] == 17
    assert onnx_info["ir_version"] >= 8
    # skl2onnx leaves the batch axis unnamed: it is named batch, as every framework's is
    assert onnx_info["inputs"] == [{"name": "input", "shape": ["batch", 4], "dtype": "float32"}]
    assert onnx_info["exporter"].startswith("skl2onnx ")
    assert onnx_info["bytes"] == (result.output_dir / "logistic_regression.onnx").stat().st_size
    assert set(report["timings"]) == {"load", "reference_run", "export", "check", "validate", "total"}
    assert report["latency"]["runs"] >= 3 and report["latency"]["onnxruntime_ms"] > 0
    assert {"python", "numpy", "onnx", "onnxruntime", "scikit-learn", "skl2onnx"} <= set(report["versions"])
    assert report["command"] == f"onnx-convert --model-path {model} --output-dir {result.output_dir} --opset 17"


def test_markdown_report_shows_headline_tables_versions_and_command(tmp_path: Path, run_cli) -> None:
    result = run_cli("--model-path", str(save_skops(tmp_path, "kmeans")))
    markdown = result.markdown("kmeans")
    assert markdown.startswith("## ✅ kmeans.skops → kmeans.onnx: every output within tolerance at batch 16 and 8\n")
    assert "| Format | sklearn / skops | opset 22, IR 10 |" in markdown
    assert "| 16 | `label` | ✅ | 100.00% labels agree |" in markdown
    assert "\nVersions: python " in markdown and "skl2onnx 1.20.0" in markdown
    assert "```sh\nonnx-convert \\\n  --model-path " in markdown


def test_a_real_mismatch_exits_1_and_names_the_failing_output(tmp_path: Path, run_cli) -> None:
    # float32 trees differ from float64 sklearn by ~1e-4 on this regressor: a tolerance of 1e-7 is below that.
    model = save_skops(tmp_path, "gradient_boosting_regressor")
    result = run_cli("--model-path", str(model), "--atol", "1e-7", "--rtol", "0")
    assert result.code == 1
    assert result.stdout.startswith("FAIL gradient_boosting_regressor.skops")
    assert "failing: variable; would pass with atol " in result.stdout
    report = result.report("gradient_boosting_regressor")
    assert report["passed"] is False and report["status"] == "failed"
    variable = report["validation"]["batches"][0]["outputs"][0]
    assert variable["name"] == "variable" and variable["failing"] > 0 and variable["max_abs_diff"] > 1e-7
    assert "\n❌ **Worst output** `variable` (batch " in result.markdown("gradient_boosting_regressor")
    # the .onnx is kept for inspection; the report says it failed
    assert "gradient_boosting_regressor.onnx" in result.written()


def test_fail_on_mismatch_false_reports_the_failure_but_exits_0(tmp_path: Path, run_cli) -> None:
    model = save_skops(tmp_path, "gradient_boosting_regressor")
    result = run_cli("--model-path", str(model), "--atol", "0", "--rtol", "0", "--fail-on-mismatch", "false")
    assert result.code == 0
    assert result.stdout.startswith("FAIL ")
    assert result.report("gradient_boosting_regressor")["passed"] is False


def test_joblib_with_allow_unsafe_load(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(MODELS["logistic_regression"](), path)
    result = run_cli("--model-path", str(path), "--allow-unsafe-load", "TRUE")
    assert result.code == 0, result.stderr
    assert result.report("model")["model"]["format"] == "joblib"


def test_sample_data_csv_with_a_string_column(tmp_path: Path, run_cli) -> None:
    model = save_skops(tmp_path, "column_transformer")
    frame, _ = _frame(10)
    csv_path = tmp_path / "rows.csv"
    frame.to_csv(csv_path, index=False)
    result = run_cli("--model-path", str(model), "--sample-data", str(csv_path))
    assert result.code == 0, result.stderr
    report = result.report("column_transformer")
    assert report["validation"]["input_source"] == "rows.csv"
    assert report["validation"]["batch_sizes"] == [10, 5]
    inputs = {i["name"]: i["dtype"] for i in report["onnx"]["inputs"]}
    assert inputs == {"city": "string", "size": "float32"}


def test_sample_data_npy(tmp_path: Path, run_cli) -> None:
    model = save_skops(tmp_path, "random_forest")
    np.save(tmp_path / "x.npy", dataset("iris")[0][:7])
    result = run_cli("--model-path", str(model), "--sample-data", str(tmp_path / "x.npy"))
    assert result.code == 0, result.stderr
    assert result.report("random_forest")["validation"]["batch_sizes"] == [7, 3]


def test_dynamic_batch_false_fixes_the_batch_axis(tmp_path: Path, run_cli) -> None:
    model = save_skops(tmp_path, "logistic_regression")
    result = run_cli("--model-path", str(model), "--dynamic-batch", "false", "--validation-samples", "5")
    assert result.code == 0, result.stderr
    report = result.report("logistic_regression")
    assert report["onnx"]["inputs"][0]["shape"] == [5, 4]
    assert report["validation"]["batch_sizes"] == [5]


def test_sklearn_conversion_never_imports_torch_or_tensorflow(tmp_path: Path) -> None:
    model = save_skops(tmp_path, "logistic_regression")
    code = (
        "import sys; from converter.cli import main; "
        f"rc = main(['--model-path', {str(model)!r}, '--output-dir', {str(tmp_path / 'out')!r}, '--quiet']); "
        "heavy = sorted(m for m in ('torch', 'tensorflow', 'keras', 'tf2onnx') if m in sys.modules); "
        "print(heavy); sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_python_dash_m_converter_is_the_same_command(tmp_path: Path) -> None:
    model = save_skops(tmp_path, "kmeans")
    done = subprocess.run(
        [sys.executable, "-m", "converter", "--model-path", str(model), "--output-dir", str(tmp_path / "o"), "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "o" / "kmeans.report.json").read_text())["passed"] is True


def test_the_same_model_converts_to_the_same_bytes_in_another_process(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for name in ("logistic_regression", "random_forest", "column_transformer", "scaler_svc_pipeline"):
        sio.dump(MODELS[name](), models / f"{name}.skops")
    hist_gradient_boosting = sklearn.ensemble.HistGradientBoostingClassifier(max_iter=10).fit(*dataset("iris"))
    sio.dump(hist_gradient_boosting, models / "hist_gradient_boosting.skops")
    # skl2onnx names the nodes of manhattan and minkowski distances after memory addresses
    sio.dump(
        sklearn.neighbors.KNeighborsClassifier(metric="manhattan").fit(*dataset("iris")), models / "knn_manhattan.skops"
    )
    sio.dump(sklearn.neighbors.KNeighborsRegressor(p=3).fit(*dataset("diabetes")), models / "knn_minkowski.skops")
    joblib.dump(MODELS["logistic_regression"](), models / "pickled.joblib")
    entries = [{"model-path": str(path)} for path in sorted(models.glob("*.skops"))]
    entries.append({"model-path": str(models / "pickled.joblib"), "allow-unsafe-load": "true"})
    manifest = tmp_path / "onnx-models.json"
    manifest.write_text(json.dumps({"models": entries}))
    digests = sha256_of_two_runs(manifest, tmp_path / "out")
    assert sorted(digests) == [
        "column_transformer",
        "hist_gradient_boosting",
        "knn_manhattan",
        "knn_minkowski",
        "logistic_regression",
        "pickled",
        "random_forest",
        "scaler_svc_pipeline",
    ]
    assert {name: len(set(runs)) for name, runs in digests.items()} == dict.fromkeys(digests, 1)
