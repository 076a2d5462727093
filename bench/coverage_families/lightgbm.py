"""LightGBM: native text models per objective, and LGBMClassifier/LGBMRegressor in scikit-learn pipelines.

Native models are trained with lightgbm.train (50 rounds, 15 leaves; the "large" one 300 rounds,
63 leaves) on raw datasets; validation and re-check inputs are drawn from each dataset's own
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
    # (name, parameters, task)
    ("binary", {"objective": "binary"}, "binary"),
    ("binary, NaN inputs", {"objective": "binary"}, "missing-binary"),
    ("binary, 300 rounds", {"objective": "binary", "num_leaves": 63}, "large-binary"),
    ("multiclass", {"objective": "multiclass", "num_class": 3}, "multiclass"),
    ("regression", {"objective": "regression"}, "regression"),
    ("regression_l1", {"objective": "regression_l1"}, "regression"),
    ("huber", {"objective": "huber"}, "regression"),
    ("poisson", {"objective": "poisson"}, "regression"),
    ("gamma", {"objective": "gamma"}, "regression"),
    ("tweedie", {"objective": "tweedie"}, "regression"),
    ("quantile", {"objective": "quantile"}, "regression"),
    ("lambdarank", {"objective": "lambdarank"}, "regression"),
    ("multiclassova", {"objective": "multiclassova", "num_class": 3}, "multiclass"),
    (
        "random forest (binary)",
        {"objective": "binary", "boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.7},
        "binary",
    ),
    ("cross_entropy", {"objective": "cross_entropy"}, "binary"),
)


def models() -> list[ModelCase]:
    cases = [ModelCase(name, partial(_native, params, task), group="native") for name, params, task in NATIVE]
    cases += [
        ModelCase(
            "LGBMClassifier pipeline", partial(_pipeline, "LGBMClassifier", "multiclass"), group="scikit-learn pipeline"
        ),
        ModelCase(
            "LGBMClassifier pipeline (binary)",
            partial(_pipeline, "LGBMClassifier", "binary"),
            group="scikit-learn pipeline",
        ),
        ModelCase(
            "LGBMRegressor pipeline", partial(_pipeline, "LGBMRegressor", "regression"), group="scikit-learn pipeline"
        ),
    ]
    return cases


def _native(params: dict[str, object], task: str, directory: Path) -> Built:
    import lightgbm

    X, y, note = dataset(task)
    large = task.startswith("large")
    train = lightgbm.Dataset(X, label=(y > 150).astype(int) if params["objective"] == "lambdarank" else y)
    if params["objective"] == "lambdarank":
        train.set_group([len(y)])
    settings = {"verbose": -1, "num_leaves": 15, "min_data_in_leaf": 5, **params}
    booster = lightgbm.train(settings, train, num_boost_round=300 if large else 50)
    path = directory / "model.txt"
    booster.save_model(path)
    inputs = inputs_like(X, missing=0.15 if task.startswith("missing") else 0.0)

    def predict(x: np.ndarray) -> np.ndarray:
        return booster.predict(x.astype(np.float64))

    classifier = params["objective"] in ("binary", "multiclass", "multiclassova", "cross_entropy")
    return Built(
        options=with_samples(directory, {"model-path": str(path)}, inputs),
        reference=probabilities_reference(predict) if classifier else values_reference(predict),
        inputs=inputs,
        recheck_batch=500,
        note=f"lightgbm.train, {params['objective']}; {note}",
    )


def _pipeline(estimator: str, task: str, directory: Path) -> Built:
    import lightgbm

    return pipeline_case(getattr(lightgbm, estimator)(n_estimators=50, num_leaves=15, verbose=-1), task, directory)
