"""imbalanced-learn pipelines (issue 16 item 9): samplers act in fit only, so the pipeline is
converted without them and the report says so; a .skops file of one loads without --allow-unsafe-load."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.sklearn import lazy
from tests.fixtures.tabular import NUMERIC, STRINGS, titanic

pytestmark = pytest.mark.converts
sklearn, sio, joblib, ort = lazy("sklearn"), lazy("skops.io"), lazy("joblib"), lazy("onnxruntime")
imblearn = lazy("imblearn")

NOTE = (
    "imblearn Pipeline: converted without its sampler step(s) 'smote' (SMOTE): samplers resample the "
    "training rows in fit and pass rows through untouched at predict (Pipeline(ColumnTransformer, LogisticRegression))"
)


def _smote_on_titanic() -> object:
    """Columns encoded, the minority class oversampled with SMOTE, then a classifier."""
    numbers = sklearn.pipeline.Pipeline(
        [("imputer", sklearn.impute.SimpleImputer()), ("scale", sklearn.preprocessing.StandardScaler())]
    )
    strings = sklearn.preprocessing.OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    columns = sklearn.compose.ColumnTransformer([("num", numbers, NUMERIC), ("cat", strings, STRINGS)])
    steps = [
        ("columns", columns),
        ("smote", imblearn.over_sampling.SMOTE(random_state=0)),
        ("model", sklearn.linear_model.LogisticRegression()),
    ]
    return imblearn.pipeline.Pipeline(steps).fit(*titanic())


def _probabilities_in_onnxruntime(onnx_path: Path, frame: object) -> np.ndarray:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {}
    for spec in session.get_inputs():
        column = frame[spec.name]
        if spec.type == "tensor(string)":
            feeds[spec.name] = column.fillna("nan").astype(str).to_numpy().reshape(-1, 1)
        else:
            feeds[spec.name] = column.to_numpy(dtype=np.float32).reshape(-1, 1)
    return session.run(["probabilities"], feeds)[0]


def test_a_skops_imblearn_pipeline_converts_without_its_sampler(tmp_path: Path, run_cli) -> None:
    model = _smote_on_titanic()
    path = tmp_path / "smote.skops"
    sio.dump(model, path)
    result = run_cli("--model-path", str(path))  # no --allow-unsafe-load: imblearn's types are trusted
    assert result.code == 0, result.errors
    report = result.report("smote")
    assert report["model"]["description"] == (
        "Pipeline(ColumnTransformer, SMOTE, LogisticRegression) without its sampler(s) SMOTE"
    )
    assert NOTE in report["warnings"]
    assert NOTE in result.markdown("smote")
    # the file agrees with the imblearn pipeline itself (not only with the rebuilt one the tool ran)
    rows, _ = titanic(40, seed=3)
    expected = model.predict_proba(rows)
    np.testing.assert_allclose(
        _probabilities_in_onnxruntime(result.output_dir / "smote.onnx", rows), expected, atol=1e-5
    )


def test_a_pickled_imblearn_pipeline_converts_with_allow_unsafe_load(tmp_path: Path, run_cli) -> None:
    rng = np.random.default_rng(0)
    features, target = rng.normal(size=(80, 4)), (np.arange(80) < 15).astype(int)
    steps = [
        ("scale", sklearn.preprocessing.StandardScaler()),
        ("under", imblearn.under_sampling.RandomUnderSampler(random_state=0)),
        ("model", sklearn.linear_model.LogisticRegression()),
    ]
    path = tmp_path / "under.joblib"
    joblib.dump(imblearn.pipeline.Pipeline(steps).fit(features, target), path)
    result = run_cli("--model-path", str(path), "--allow-unsafe-load", "true")
    assert result.code == 0, result.errors
    report = result.report("under")
    assert report["model"]["description"] == (
        "Pipeline(StandardScaler, RandomUnderSampler, LogisticRegression) without its sampler(s) RandomUnderSampler"
    )
    assert (
        "imblearn Pipeline: converted without its sampler step(s) 'under' (RandomUnderSampler): samplers resample "
        "the training rows in fit and pass rows through untouched at predict (Pipeline(StandardScaler, LogisticRegression))"
    ) in report["warnings"]


def test_a_skops_imblearn_pipeline_without_imblearn_installed_is_one_line(tmp_path: Path, run_cli, monkeypatch) -> None:
    path = tmp_path / "smote.skops"
    sio.dump(_smote_on_titanic(), path)
    monkeypatch.setitem(sys.modules, "imblearn", None)  # as where imbalanced-learn is not installed
    result = run_cli("--model-path", str(path))
    assert_one_line_error(
        result,
        2,
        "error: smote.skops holds an imbalanced-learn pipeline or sampler (imblearn) and imblearn is not "
        "installed; pip install 'onnx-convert-action[sklearn]', or use the sklearn image "
        "(docker build --target sklearn; released as onnx-convert-action:<version>-sklearn)",
    )


def test_a_function_sampler_is_not_trusted(tmp_path: Path, run_cli) -> None:
    """FunctionSampler holds a function of the user's: not in the allow-list."""
    steps = [
        ("sample", imblearn.FunctionSampler(func=None)),
        ("model", sklearn.linear_model.LogisticRegression()),
    ]
    rng = np.random.default_rng(0)
    path = tmp_path / "function.skops"
    sio.dump(imblearn.pipeline.Pipeline(steps).fit(rng.normal(size=(30, 2)), np.arange(30) % 2), path)
    result = run_cli("--model-path", str(path))
    assert_one_line_error(
        result,
        2,
        "error: function.skops holds what this tool does not load from a .skops file: "
        "imblearn.base.FunctionSampler; a .skops file may hold scikit-learn estimators, the numpy and scipy "
        "types they keep and the functions listed in docs/sklearn.md; save the model without the others, "
        "or pass --allow-unsafe-load true if you trust the file",
    )


def test_a_search_over_an_imblearn_pipeline_converts_its_best_estimator_without_the_sampler(
    tmp_path: Path, run_cli
) -> None:
    rng = np.random.default_rng(0)
    features, target = rng.normal(size=(80, 3)), (np.arange(80) < 20).astype(int)
    steps = [
        ("scale", sklearn.preprocessing.StandardScaler()),
        ("smote", imblearn.over_sampling.SMOTE(random_state=0)),
        ("model", sklearn.linear_model.LogisticRegression()),
    ]
    search = sklearn.model_selection.GridSearchCV(imblearn.pipeline.Pipeline(steps), {"model__C": [0.1, 1.0]}, cv=2)
    path = tmp_path / "search.skops"
    sio.dump(search.fit(features, target), path)
    result = run_cli("--model-path", str(path))
    assert result.code == 0, result.errors
    report = result.report("search")
    assert report["model"]["description"] == (
        "GridSearchCV.best_estimator_: Pipeline(StandardScaler, SMOTE, LogisticRegression) without its sampler(s) SMOTE"
    )
    notes = report["warnings"]
    assert any(note.startswith("GridSearchCV: converted its refitted best_estimator_") for note in notes), notes
    assert (
        "imblearn Pipeline: converted without its sampler step(s) 'smote' (SMOTE): samplers resample the "
        "training rows in fit and pass rows through untouched at predict (Pipeline(StandardScaler, LogisticRegression))"
    ) in notes
