"""XGBoost: native models (.json, .ubj) per objective, and XGBClassifier/XGBRegressor in scikit-learn pipelines.

Native models are trained with xgboost.train (50 rounds, depth 4; the "large" one 300 rounds,
depth 6) on raw datasets; validation and re-check inputs are drawn from each dataset's own
distribution. Objectives the backend refuses are listed too, with the reason it gives.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from bench.coverage_families import Built, ModelCase
from bench.coverage_families._boosters import (
    dataset,
    inputs_like,
    pipeline_case,
    probabilities_reference,
    values_reference,
    with_samples,
)

NATIVE = (
    # (name, objective, task, format)
    ("binary:logistic", "binary:logistic", "binary", "json"),
    ("binary:logistic, NaN inputs", "binary:logistic", "missing-binary", "json"),
    ("binary:logistic, 300 rounds", "binary:logistic", "large-binary", "json"),
    ("multi:softprob", "multi:softprob", "multiclass", "json"),
    ("multi:softprob (.ubj)", "multi:softprob", "multiclass", "ubj"),
    ("multi:softmax", "multi:softmax", "multiclass", "json"),
    ("reg:squarederror", "reg:squarederror", "regression", "json"),
    ("reg:squarederror (.ubj)", "reg:squarederror", "regression", "ubj"),
    ("reg:absoluteerror", "reg:absoluteerror", "regression", "json"),
    ("reg:pseudohubererror", "reg:pseudohubererror", "regression", "json"),
    ("reg:squaredlogerror", "reg:squaredlogerror", "regression", "json"),
    ("count:poisson", "count:poisson", "regression", "json"),
    ("reg:gamma", "reg:gamma", "regression", "json"),
    ("reg:tweedie", "reg:tweedie", "regression", "json"),
    ("binary:logitraw", "binary:logitraw", "binary", "json"),
    ("binary:hinge", "binary:hinge", "binary", "json"),
    ("reg:logistic", "reg:logistic", "binary", "json"),
    ("rank:pairwise", "rank:pairwise", "regression", "json"),
)


def models() -> list[ModelCase]:
    cases = [
        ModelCase(name, partial(_native, objective, task, fmt), group="native") for name, objective, task, fmt in NATIVE
    ]
    cases += [
        ModelCase(
            "XGBClassifier pipeline", partial(_pipeline, "XGBClassifier", "multiclass"), group="scikit-learn pipeline"
        ),
        ModelCase(
            "XGBClassifier pipeline (binary)",
            partial(_pipeline, "XGBClassifier", "binary"),
            group="scikit-learn pipeline",
        ),
        ModelCase(
            "XGBRegressor pipeline", partial(_pipeline, "XGBRegressor", "regression"), group="scikit-learn pipeline"
        ),
    ]
    return cases


def _native(objective: str, task: str, fmt: str, directory: Path) -> Built:
    import xgboost

    X, y, note = dataset(task)
    params: dict[str, object] = {"objective": objective, "max_depth": 6 if task.startswith("large") else 4}
    if task == "multiclass":
        params["num_class"] = 3
    train = xgboost.DMatrix(X, label=y)
    if objective.startswith("rank:"):
        train.set_group([len(y)])
    booster = xgboost.train(params, train, num_boost_round=300 if task.startswith("large") else 50)
    path = directory / f"model.{fmt}"
    booster.save_model(path)
    inputs = inputs_like(X, missing=0.15 if task.startswith("missing") else 0.0)

    def predict(x: np.ndarray) -> np.ndarray:
        matrix = xgboost.DMatrix(x)
        if objective == "multi:softmax":  # predict() gives labels; the probabilities are the softmax of the margins
            margins = booster.predict(matrix, output_margin=True).astype(np.float64)
            e = np.exp(margins - margins.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return booster.predict(matrix)

    classifier = objective.startswith(("binary:", "multi:"))
    return Built(
        options=with_samples(directory, {"model-path": str(path)}, inputs),
        reference=probabilities_reference(predict) if classifier else values_reference(predict),
        inputs=inputs,
        recheck_batch=500,
        note=f"xgboost.train, {objective}; {note}",
    )


def _pipeline(estimator: str, task: str, directory: Path) -> Built:
    import xgboost

    return pipeline_case(getattr(xgboost, estimator)(n_estimators=50, max_depth=4), task, directory)
