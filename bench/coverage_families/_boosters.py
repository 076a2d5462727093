"""Shared by the xgboost and lightgbm families: datasets, inputs, and the scikit-learn pipeline cases."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.coverage_families import Built, Inputs, import_skops, save_sample

TASKS = ("binary", "multiclass", "regression", "large-binary", "missing-binary")


def dataset(task: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Small real datasets (raw scale); "large" is a 2000 x 20 synthetic one, "missing" has 15 % NaN."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, make_classification

    if task == "multiclass":
        X, y = load_iris(return_X_y=True)
        return X, y, "iris, 3 classes"
    if task == "regression":
        X, y = load_diabetes(return_X_y=True)
        return X, y, "diabetes"
    if task == "large-binary":
        X, y = make_classification(2000, 20, n_informative=12, random_state=0)
        return X, y, "2000 x 20 synthetic"
    X, y = load_breast_cancer(return_X_y=True)
    if task == "missing-binary":
        X = np.where(np.random.default_rng(0).random(X.shape) < 0.15, np.nan, X)
        return X, y, "breast cancer, 15 % missing (NaN) in fit and inputs"
    return X, y, "breast cancer, 2 classes"


def inputs_like(X: np.ndarray, missing: float = 0.0) -> Callable[[np.random.Generator, int], Inputs]:
    """Inputs drawn per feature from the data's mean and spread, clipped to its range."""
    mean, std = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
    low, high = np.nanmin(X, axis=0), np.nanmax(X, axis=0)

    def draw(rng: np.random.Generator, n: int) -> Inputs:
        x = np.clip(rng.normal(mean, std, (n, X.shape[1])), low, high).astype(np.float32)
        if missing:
            x[rng.random(x.shape) < missing] = np.nan
        return {"input": x}

    return draw


def with_samples(
    directory: Path, options: dict[str, str], inputs: Callable[[np.random.Generator, int], Inputs]
) -> dict[str, str]:
    """The options plus --sample-data drawn from ``inputs`` (16 rows)."""
    path = save_sample(directory, "samples", inputs(np.random.default_rng(0), 16))
    return {**options, "sample-data": str(path)}


def pipeline_case(estimator: Any, task: str, directory: Path) -> Built:
    """StandardScaler + ``estimator`` fitted on ``task``, saved as .skops."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, note = dataset(task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Pipeline([("scale", StandardScaler()), ("model", estimator)]).fit(X, y)
    path = directory / "pipeline.skops"
    import_skops().dump(model, path)
    inputs = inputs_like(X)

    def reference(feed: Inputs, names: list[str]) -> Inputs:
        x = feed["input"].astype(np.float64)
        out: Inputs = {}
        for name in names:
            if name == "label":
                out[name] = model.predict(x)
            elif name == "probabilities":
                out[name] = model.predict_proba(x)
            elif name == "variable":
                out[name] = model.predict(x)
        return out

    return Built(
        options=with_samples(directory, {"model-path": str(path)}, inputs),
        reference=reference,
        inputs=inputs,
        note=f"StandardScaler + {type(estimator).__name__} in a Pipeline (.skops); {note}",
        recheck_batch=500,
    )


def probabilities_reference(predict: Callable[[np.ndarray], np.ndarray]) -> Callable[[Inputs, list[str]], Inputs]:
    """label/probabilities from a booster's class probabilities (P(class 1) for binary)."""

    def reference(feed: Inputs, names: list[str]) -> Inputs:
        p = np.asarray(predict(feed["input"]), dtype=np.float64)
        probabilities = np.stack([1 - p, p], axis=1) if p.ndim == 1 else p
        return {"label": probabilities.argmax(axis=1), "probabilities": probabilities}

    return reference


def values_reference(predict: Callable[[np.ndarray], np.ndarray]) -> Callable[[Inputs, list[str]], Inputs]:
    def reference(feed: Inputs, names: list[str]) -> Inputs:
        return {"variable": np.asarray(predict(feed["input"]))}

    return reference
