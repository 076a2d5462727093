"""scikit-learn: every estimator in ``sklearn.utils.all_estimators()``, plus two focused groups.

The sweep: each estimator with default parameters (``random_state=0`` where it has one), fitted
on a small dataset of the kind it takes (its input tags decide), saved as .skops (.joblib when
skops cannot hold it). Counted when it fits and has predict, predict_proba or transform; listed
as skipped otherwise.

- classifiers, clusterers, transformers, outlier detectors: iris, standardized (the CLI's
  generated N(0, 1) inputs are then in the training distribution);
- regressors: diabetes, standardized X (the target keeps its scale, 25 to 346);
- positive-only estimators (MultinomialNB, NMF, ...): raw iris, inputs drawn like it;
- categorical ones (OneHotEncoder, CategoricalNB, ...): four integer-coded categories per column;
- imputers: 10 % missing values, in the inputs too; radius neighbours: inputs near training rows;
- a regressor (or CCA-like model) that refuses a 1-D target: two targets; IsotonicRegression one feature;
- KernelCenterer: the rbf kernel matrix of the data.

"binary classification": classifiers whose binary case takes another code path (decision
scores, sigmoid), on breast-cancer, standardized. "badly scaled data": raw datasets whose
features span 1e-2 to 1e3, with inputs drawn from the data's own distribution.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.coverage_families import Built, Inputs, ModelCase, SkipCase, _Blocker, import_skops, save_sample

BINARY = (
    "LinearSVC",
    "SVC",
    "NuSVC",
    "Perceptron",
    "SGDClassifier",
    "PassiveAggressiveClassifier",
    "RidgeClassifier",
    "LogisticRegression",
    "LinearDiscriminantAnalysis",
    "NearestCentroid",
    "DummyClassifier",
    "GaussianProcessClassifier",
    "HistGradientBoostingClassifier",
    "TargetEncoder",
)
SCALED = (
    ("LinearDiscriminantAnalysis", "breast_cancer"),
    ("QuadraticDiscriminantAnalysis", "wine"),
    ("GaussianNB", "wine"),
    ("SVC", "wine"),
    ("KNeighborsClassifier", "wine"),
    ("KMeans", "wine"),
    ("GaussianMixture", "wine"),
    ("PCA", "breast_cancer"),
    ("StandardScaler", "breast_cancer"),
    ("PLSRegression", "diabetes"),
    ("KernelRidge", "diabetes"),
    ("LinearRegression", "diabetes"),
)


def models() -> list[ModelCase]:
    cases = [ModelCase(name, partial(_build_default, name)) for name in _all_estimators()]
    cases += [ModelCase(f"{n} (binary)", partial(_build_binary, n), group="binary classification") for n in BINARY]
    cases += [
        ModelCase(f"{n} ({data} raw)", partial(_build_scaled, n, data), group="badly scaled data") for n, data in SCALED
    ]
    return cases


@contextlib.contextmanager
def _no_torch() -> Iterator[None]:
    blocker = _Blocker(("torch", "tensorflow", "jax", "cupy"))
    sys.meta_path.insert(0, blocker)
    try:
        yield
    finally:
        sys.meta_path.remove(blocker)


@dataclass
class Data:
    X: np.ndarray
    y: np.ndarray
    note: str
    inputs: Callable[[np.random.Generator, int], Inputs] | None = None  # None: the CLI generates N(0, 1)


def _all_estimators() -> dict[str, type]:
    """all_estimators(), without importing torch (see import_skops: the same walk)."""
    import_skops()
    with _no_torch():
        from sklearn.utils import all_estimators

        return dict(all_estimators())


# -- builds -------------------------------------------------------------------------------------------


def _build_default(name: str, directory: Path) -> Built:
    estimator = _construct(_all_estimators()[name])
    data = _data_for(estimator)
    estimator, data = _fit(estimator, data)
    return _save(estimator, data, directory)


def _build_binary(name: str, directory: Path) -> Built:
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    data = Data(StandardScaler().fit_transform(X), y, "breast cancer, standardized, 2 classes")
    estimator, data = _fit(_construct(_all_estimators()[name]), data)
    return _save(estimator, data, directory)


def _build_scaled(name: str, dataset: str, directory: Path) -> Built:
    from sklearn import datasets

    X, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    spread = f"features {np.abs(X).max(axis=0).min():.2g} to {np.abs(X).max(axis=0).max():.2g}"
    estimator, data = _fit(_construct(_all_estimators()[name]), Data(X, y, f"{dataset}, raw ({spread})", _like(X)))
    return _save(estimator, data, directory)


def _construct(cls: type) -> Any:
    """Default parameters, but a fixed random_state: a rerun fits the same model, so its row compares."""
    try:
        estimator = cls()
    except TypeError as exc:
        raise SkipCase(f"needs constructor arguments ({exc})") from None
    if "random_state" in estimator.get_params(deep=False):
        estimator.set_params(random_state=0)
    return estimator


def _data_for(estimator: Any) -> Data:
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.metrics.pairwise import rbf_kernel
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils import get_tags

    try:
        tags = get_tags(estimator)
    except Exception as exc:  # a meta-estimator without its estimator
        raise SkipCase(f"needs constructor arguments ({type(exc).__name__})") from None
    if not tags.input_tags.two_d_array and not tags.input_tags.one_d_array:
        raise SkipCase("takes text, dicts, images or targets, not a numeric table")
    if tags.target_tags.two_d_labels or type(estimator).__name__ in ("LabelEncoder", "LabelBinarizer"):
        raise SkipCase("transforms targets (y), not features")
    if any(getattr(tags.input_tags, kind, False) for kind in ("string", "dict")) and not tags.input_tags.two_d_array:
        raise SkipCase("takes text or dicts, not a numeric table")
    X_iris, y_iris = load_iris(return_X_y=True)
    iris = StandardScaler().fit_transform(X_iris)
    name = type(estimator).__name__
    module = type(estimator).__module__
    if tags.input_tags.one_d_array and not tags.input_tags.two_d_array:
        X, y = load_diabetes(return_X_y=True)

        def one_column(rng: np.random.Generator, n: int) -> Inputs:
            return {"input": rng.standard_normal((n, 1)).astype(np.float32)}

        bmi = StandardScaler().fit_transform(X[:, 2:3])
        return Data(bmi, y, "diabetes bmi (one feature), standardized", one_column)
    if tags.input_tags.pairwise:

        def kernel_rows(rng: np.random.Generator, n: int) -> Inputs:
            return {"input": rbf_kernel(rng.standard_normal((n, 4)), iris).astype(np.float32)}

        return Data(rbf_kernel(iris, iris), y_iris, "rbf kernel matrix of standardized iris", kernel_rows)
    if tags.input_tags.categorical:
        rng = np.random.default_rng(0)
        categories = rng.integers(0, 4, size=(150, 4)).astype(np.float64)

        def codes(rng: np.random.Generator, n: int) -> Inputs:
            return {"input": rng.integers(0, 4, size=(n, 4)).astype(np.float32)}

        return Data(categories, y_iris, "4 integer-coded categories per column", codes)
    if tags.input_tags.positive_only or name == "SkewedChi2Sampler":  # the latter: X > -skewedness (1)
        return Data(X_iris, y_iris, "iris, raw (non-negative)", _like(X_iris))
    if tags.estimator_type == "regressor":
        X, y = load_diabetes(return_X_y=True)
        return Data(StandardScaler().fit_transform(X), y, "diabetes, standardized X")
    if module.startswith("sklearn.impute"):
        # One missing value in 30 % of the rows, of iris with N(0, 0.01) noise. Iris is measured
        # to 0.1 cm: when the row and two training rows miss values, the two often share the
        # compared coordinates (rows 58 and 64: sepal width 2.9, petal width 1.3) and tie exactly
        # at KNNImputer's 5th distance. Which one scikit-learn averages is numpy argpartition's
        # pick, set by float64 rounding and the CPU's SIMD, so no conversion can reproduce it
        # (docs/sklearn.md; 71 of 200,000 values on plain iris, all such ties). The noise leaves no ties.
        def holes(rng: np.random.Generator, n: int) -> np.ndarray:
            mask = np.zeros((n, 4), dtype=bool)
            rows = np.flatnonzero(rng.random(n) < 0.3)
            mask[rows, rng.integers(0, 4, rows.size)] = True
            return mask

        def with_holes(rng: np.random.Generator, n: int) -> Inputs:
            x = rng.standard_normal((n, 4)).astype(np.float32)
            return {"input": np.where(holes(rng, n), np.nan, x).astype(np.float32)}

        train = np.where(holes(np.random.default_rng(0), len(iris)), np.nan, _without_ties(iris))
        note = "iris, standardized, N(0, 0.01) noise (no exact distance ties), one value missing in 30 % of rows"
        return Data(train, y_iris, note, with_holes)
    if name.startswith("RadiusNeighbors"):
        jittered = _without_ties(iris)

        def near_rows(rng: np.random.Generator, n: int) -> Inputs:
            rows = jittered[rng.integers(0, len(jittered), n)] + rng.normal(0, 0.1, (n, 4))
            return {"input": rows.astype(np.float32)}

        note = "iris, standardized, N(0, 0.01) noise (no duplicate rows); inputs within the radius of training rows"
        return Data(jittered, y_iris, note, near_rows)
    if module.startswith("sklearn.neighbors"):
        return Data(_without_ties(iris), y_iris, "iris, standardized, N(0, 0.01) noise (no duplicate rows)")
    return Data(iris, y_iris, "iris, standardized")


def _without_ties(iris: np.ndarray) -> np.ndarray:
    """Iris with N(0, 0.01) noise. Iris is measured to 0.1 cm and has duplicate rows (e.g. 102 and
    143): equally near neighbours, between which scikit-learn's tree search and the ONNX file's
    TopK pick differently (KNeighborsTransformer: 110 of 50,000 re-check rows named the other
    twin). Which twin is picked is no property of the model, so the bench leaves no exact ties."""
    return iris + np.random.default_rng(1).normal(0, 0.01, iris.shape)


def _like(X: np.ndarray) -> Callable[[np.random.Generator, int], Inputs]:
    """Inputs drawn per feature from the data's mean and spread, clipped to its range."""
    mean, std, low, high = X.mean(axis=0), X.std(axis=0), X.min(axis=0), X.max(axis=0)

    def draw(rng: np.random.Generator, n: int) -> Inputs:
        return {"input": np.clip(rng.normal(mean, std, (n, X.shape[1])), low, high).astype(np.float32)}

    return draw


def _fit(estimator: Any, data: Data) -> tuple[Any, Data]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            estimator.fit(data.X, data.y)
        except Exception as first:
            # multi-task regressors and CCA-like models want a 2-D target
            second = data.X[:, 0] * 2.0 + np.random.default_rng(1).normal(0, 0.5, len(data.X))
            two = Data(data.X, np.c_[data.y.astype(np.float64), second], data.note + ", two targets", data.inputs)
            try:
                estimator.fit(two.X, two.y)
            except Exception:
                raise SkipCase(f"does not fit with default parameters: {_short(first)}") from None
            data = two
    if not any(hasattr(estimator, m) for m in ("predict", "predict_proba", "transform")):
        raise SkipCase("has no predict, predict_proba or transform (fit_predict or fit only)")
    return estimator, data


def _save(estimator: Any, data: Data, directory: Path) -> Built:
    import joblib

    sio = import_skops()

    options: dict[str, str] = {}
    path = directory / f"{type(estimator).__name__}.skops"
    try:
        sio.dump(estimator, path)
        fmt = ""
    except Exception as exc:  # e.g. Birch's CF tree: "Objects of type Birch are not supported yet"
        path = directory / f"{type(estimator).__name__}.joblib"
        joblib.dump(estimator, path)
        options["allow-unsafe-load"] = "true"
        fmt = f"; joblib, as skops cannot save it ({_short(exc, 60)})"
    options["model-path"] = str(path)
    if data.inputs is not None:
        samples = data.inputs(np.random.default_rng(0), 16)
        options["sample-data"] = str(save_sample(directory, "samples", samples))
    return Built(
        options=options,
        reference=partial(_reference, estimator),
        inputs=data.inputs,
        note=data.note + fmt,
        recheck_batch=500,  # cheap to run; rare float32 disagreements (near ties, cancellation) show up
    )


def _reference(estimator: Any, inputs: Inputs, names: list[str]) -> Inputs:
    """The estimator's own methods under the output names docs/sklearn.md documents."""
    x = inputs["input"].astype(np.float64)
    outputs: Inputs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            if name == "label":
                value = estimator.predict(x)
            elif name == "probabilities":
                value = estimator.predict_proba(x)
            elif name == "scores":
                method = "decision_function" if hasattr(estimator, "decision_function") else "transform"
                value = getattr(estimator, method)(x)
            elif name == "variable":
                value = estimator.predict(x) if hasattr(estimator, "predict") else estimator.transform(x)
            else:
                continue
            outputs[name] = np.asarray(value.toarray() if hasattr(value, "toarray") else value)
    return outputs


def _short(exc: BaseException, limit: int = 120) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
