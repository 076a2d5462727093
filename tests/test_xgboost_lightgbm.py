"""XGBoost and LightGBM: native model files, detection, refused objectives, and pipelines in .skops."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.fixtures.cli import sha256_of_two_runs
from tests.fixtures.sklearn import dataset, lazy

pytestmark = pytest.mark.converts
sklearn, sio, xgboost, lightgbm = lazy("sklearn"), lazy("skops.io"), lazy("xgboost"), lazy("lightgbm")
TASKS = {"binary": "breast_cancer", "multiclass": "iris", "regression": "diabetes"}


def data(task: str) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) of a task: breast cancer's first 8 features, iris, or diabetes."""
    x, y = dataset(TASKS[task])
    return (x[:, :8], y) if task == "binary" else (x, y)


def like(X: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Rows drawn from the data's own spread (the raw datasets are far from N(0, 1))."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(X.mean(0), X.std(0), (n, X.shape[1])), X.min(0), X.max(0)).astype(np.float32)


def samples(tmp_path: Path, X: np.ndarray) -> str:
    np.save(tmp_path / "samples.npy", like(X, 16, 0))
    return str(tmp_path / "samples.npy")


def xgb_file(tmp_path: Path, task: str, objective: str, suffix: str = "json") -> Path:
    X, y = data(task)
    params: dict[str, object] = {"objective": objective, "max_depth": 3}
    if task == "multiclass":
        params["num_class"] = 3
    booster = xgboost.train(params, xgboost.DMatrix(X, label=y), num_boost_round=15)
    path = tmp_path / f"xgb_{task}.{suffix}"
    booster.save_model(path)
    return path


def lgb_file(tmp_path: Path, task: str, objective: str) -> Path:
    X, y = data(task)
    params = {"objective": objective, "verbose": -1, "num_leaves": 7, "min_data_in_leaf": 5}
    if task == "multiclass":
        params["num_class"] = 3
    booster = lightgbm.train(params, lightgbm.Dataset(X, label=y), num_boost_round=15)
    path = tmp_path / f"lgb_{task}.txt"
    booster.save_model(path)
    return path


def onnx_outputs(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": x}), strict=True))


@pytest.mark.parametrize(
    "task,objective,suffix",
    [
        ("binary", "binary:logistic", "json"),
        ("multiclass", "multi:softprob", "ubj"),
        ("multiclass", "multi:softmax", "json"),
        ("regression", "reg:squarederror", "json"),
        ("regression", "count:poisson", "ubj"),
    ],
)
def test_xgboost_native_model_converts_and_reproduces(
    task: str, objective: str, suffix: str, tmp_path: Path, run_cli
) -> None:
    path = xgb_file(tmp_path, task, objective, suffix)
    X, _ = data(task)
    result = run_cli("--model-path", str(path), "--sample-data", samples(tmp_path, X))
    assert result.code == 0, result.stdout + result.errors
    assert result.stdout.startswith(f"PASS {path.name} (xgboost/xgboost-{suffix})")
    report = result.report(path.stem)
    assert report["model"]["description"].startswith(f"XGBoost Booster ({objective}, 15 rounds")
    assert report["onnx"]["exporter"].startswith("onnxmltools 1.16.0 (skl2onnx ")
    assert {"xgboost-cpu", "onnxmltools"} <= set(report["versions"])
    # the file, run here on new rows, against xgboost itself
    booster = xgboost.Booster(model_file=str(path))
    x = like(X, 40, 1)
    got = onnx_outputs(result.output_dir / f"{path.stem}.onnx", x)
    if task == "regression":
        assert set(got) == {"variable"}
        np.testing.assert_allclose(got["variable"].ravel(), booster.predict(xgboost.DMatrix(x)), rtol=1e-5, atol=1e-4)
        return
    assert set(got) == {"label", "probabilities"}
    if objective == "multi:softmax":  # xgboost predicts the label itself
        np.testing.assert_array_equal(got["label"], booster.predict(xgboost.DMatrix(x)).astype(np.int64))
    else:
        p = booster.predict(xgboost.DMatrix(x))
        expected = np.stack([1 - p, p], axis=1) if p.ndim == 1 else p
        np.testing.assert_allclose(got["probabilities"], expected, atol=1e-5)
        np.testing.assert_array_equal(got["label"], expected.argmax(axis=1))


@pytest.mark.parametrize(
    "task,objective", [("binary", "binary"), ("multiclass", "multiclass"), ("regression", "regression")]
)
def test_lightgbm_native_model_converts_and_reproduces(task: str, objective: str, tmp_path: Path, run_cli) -> None:
    path = lgb_file(tmp_path, task, objective)
    X, _ = data(task)
    result = run_cli("--model-path", str(path), "--sample-data", samples(tmp_path, X))
    assert result.code == 0, result.stdout + result.errors
    assert result.stdout.startswith(f"PASS {path.name} (lightgbm/lightgbm-text)")
    booster = lightgbm.Booster(model_file=str(path))
    x = like(X, 40, 1)
    got = onnx_outputs(result.output_dir / f"{path.stem}.onnx", x)
    expected = booster.predict(x.astype(np.float64))
    if task == "regression":
        np.testing.assert_allclose(got["variable"].ravel(), expected, rtol=1e-5, atol=1e-3)
    else:
        expected = np.stack([1 - expected, expected], axis=1) if expected.ndim == 1 else expected
        np.testing.assert_allclose(got["probabilities"], expected, atol=1e-5)


def test_xgboost_missing_values_follow_the_default_direction(tmp_path: Path, run_cli) -> None:
    x_cancer, y_cancer = data("binary")
    X = np.where(np.random.default_rng(0).random(x_cancer.shape) < 0.2, np.nan, x_cancer)
    booster = xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(X, label=y_cancer), num_boost_round=15)
    booster.save_model(tmp_path / "holes.json")
    rows = like(x_cancer, 16, 0)
    rows[np.random.default_rng(1).random(rows.shape) < 0.3] = np.nan
    np.save(tmp_path / "holes.npy", rows)
    result = run_cli("--model-path", str(tmp_path / "holes.json"), "--sample-data", str(tmp_path / "holes.npy"))
    assert result.code == 0, result.stdout
    assert result.report("holes")["validation"]["batches"][0]["outputs"][1]["max_abs_diff"] < 1e-6


@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda p: xgb_file(p, "binary", "binary:logitraw"),
            'error: xgb_binary.json: XGBoost objective "binary:logitraw" is not converted: onnxmltools writes a graph '
            "whose values differ from xgboost's for it; train with binary:logistic, multi:softprob, multi:softmax "
            "or a regression objective (reg:squarederror, ...)",
        ),
        (
            lambda p: lgb_file(p, "multiclass", "multiclassova"),
            'error: lgb_multiclass.txt: LightGBM objective "multiclassova" has no onnxmltools converter that '
            "reproduces it; train with binary, multiclass or a regression objective in gbdt mode",
        ),
    ],
)
def test_objectives_onnxmltools_gets_wrong_are_refused_with_the_reason(make, message: str, tmp_path: Path, run_cli):
    result = run_cli("--model-path", str(make(tmp_path)))
    assert result.code == 1
    assert result.errors.strip() == message


def test_detection_reads_the_file_head_without_importing_the_frameworks(tmp_path: Path) -> None:
    xgb_json = xgb_file(tmp_path, "binary", "binary:logistic")
    xgb_ubj = xgb_file(tmp_path, "multiclass", "multi:softprob", "ubj")
    lgb_txt = lgb_file(tmp_path, "regression", "regression")
    (tmp_path / "notes.txt").write_text("tree\nnot a model\n")
    (tmp_path / "data.json").write_text(json.dumps({"learners": 1}))
    code = (
        "import sys; from pathlib import Path; from converter.frameworks import resolve_backend\n"
        "for p in sys.argv[1:4]:\n"
        "    b, f = resolve_backend('auto', Path(p)); print(b.name, f)\n"
        "from converter.frameworks.boosters.xgboost import XGBoostBackend\n"
        "from converter.frameworks.boosters.lightgbm import LightGBMBackend\n"
        "print(XGBoostBackend.detect(Path(sys.argv[4])), LightGBMBackend.detect(Path(sys.argv[5])))\n"
        "print(sorted(m for m in ('xgboost', 'lightgbm', 'onnxmltools', 'torch') if m in sys.modules))\n"
    )
    paths = [xgb_json, xgb_ubj, lgb_txt, tmp_path / "data.json", tmp_path / "notes.txt"]
    done = subprocess.run([sys.executable, "-c", code, *map(str, paths)], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [
        "xgboost xgboost-json",
        "xgboost xgboost-ubj",
        "lightgbm lightgbm-text",
        "None None",
        "[]",
    ]


def test_an_xgboost_json_is_a_model_not_a_manifest(tmp_path: Path) -> None:
    from converter.manifest import is_batch

    (tmp_path / "onnx-models.json").write_text(json.dumps({"models": [{"model-path": "m.skops"}]}))
    assert is_batch(str(tmp_path / "onnx-models.json"))
    assert not is_batch(str(xgb_file(tmp_path, "binary", "binary:logistic")))


def test_framework_xgboost_on_another_file_is_refused(tmp_path: Path, run_cli) -> None:
    path = lgb_file(tmp_path, "binary", "binary")
    result = run_cli("--model-path", str(path), "--framework", "xgboost")
    assert result.code == 2
    assert result.errors.startswith(f"error: {path} is not a xgboost model this tool can read;")


@pytest.mark.parametrize(
    "estimator,task",
    [
        (lambda: xgboost.XGBClassifier(n_estimators=15, max_depth=3), "multiclass"),
        (lambda: xgboost.XGBRegressor(n_estimators=15, max_depth=3), "regression"),
        (lambda: xgboost.XGBRFClassifier(n_estimators=15, max_depth=3), "binary"),
        (lambda: lightgbm.LGBMClassifier(n_estimators=15, num_leaves=7, verbose=-1), "binary"),
        (lambda: lightgbm.LGBMRegressor(n_estimators=15, num_leaves=7, verbose=-1), "regression"),
    ],
)
def test_booster_inside_a_scikit_learn_pipeline_converts_from_skops(estimator, task: str, tmp_path: Path, run_cli):
    X, y = data(task)
    model = sklearn.pipeline.Pipeline([("scale", sklearn.preprocessing.StandardScaler()), ("model", estimator())]).fit(
        X, y
    )
    sio.dump(model, tmp_path / "pipe.skops")
    result = run_cli("--model-path", str(tmp_path / "pipe.skops"), "--sample-data", samples(tmp_path, X))
    assert result.code == 0, result.stdout + result.errors
    report = result.report("pipe")
    assert report["model"]["framework"] == "sklearn"
    assert "onnxmltools" in report["versions"]
    x = like(X, 40, 1)
    got = onnx_outputs(result.output_dir / "pipe.onnx", x)
    if task == "regression":
        np.testing.assert_allclose(got["variable"].ravel(), model.predict(x), rtol=1e-5, atol=1e-3)
    else:
        np.testing.assert_allclose(got["probabilities"], model.predict_proba(x), atol=1e-5)
        np.testing.assert_array_equal(got["label"], model.predict(x))


def squared_error(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return y_pred - y_true, np.ones_like(y_pred)


def test_a_custom_objective_function_in_a_skops_file_is_still_refused(tmp_path: Path, run_cli) -> None:
    model = sklearn.pipeline.Pipeline([("model", xgboost.XGBRegressor(n_estimators=5, objective=squared_error))]).fit(
        *data("regression")
    )
    sio.dump(model, tmp_path / "custom.skops")
    result = run_cli("--model-path", str(tmp_path / "custom.skops"))
    assert result.code == 2
    assert (
        "custom.skops holds what this tool does not load from a .skops file: tests.test_xgboost_lightgbm.squared_error;"
        in result.errors
    )


def test_the_same_booster_converts_to_the_same_bytes_in_another_process(tmp_path: Path) -> None:
    models = [
        (xgb_file(tmp_path, "multiclass", "multi:softprob"), data("multiclass")[0]),
        (xgb_file(tmp_path, "binary", "binary:logistic", suffix="ubj"), data("binary")[0]),
        (lgb_file(tmp_path, "multiclass", "multiclass"), data("multiclass")[0]),
        (lgb_file(tmp_path, "regression", "regression"), data("regression")[0]),
    ]
    for name, estimator in [
        ("xgb_pipeline", xgboost.XGBClassifier(n_estimators=5, max_depth=3)),
        ("lgb_pipeline", lightgbm.LGBMClassifier(n_estimators=5, num_leaves=7, verbose=-1)),
    ]:
        pipeline = sklearn.pipeline.Pipeline([("scale", sklearn.preprocessing.StandardScaler()), ("model", estimator)])
        sio.dump(pipeline.fit(*data("multiclass")), tmp_path / f"{name}.skops")
        models.append((tmp_path / f"{name}.skops", data("multiclass")[0]))
    entries = []
    for path, X in models:
        np.save(tmp_path / f"{path.stem}_rows.npy", like(X, 16, 0))
        entries.append({"model-path": str(path), "sample-data": str(tmp_path / f"{path.stem}_rows.npy")})
    manifest = tmp_path / "onnx-models.json"
    manifest.write_text(json.dumps({"models": entries}))
    digests = sha256_of_two_runs(manifest, tmp_path / "out")
    assert sorted(digests) == sorted(path.stem for path, _ in models)
    assert {name: len(set(runs)) for name, runs in digests.items()} == dict.fromkeys(digests, 1)
