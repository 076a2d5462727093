"""Real tabular models: pipelines fitted on DataFrames, each converted twice.

Titanic-like and census-like DataFrames are generated in code (nothing downloaded): int, float,
string, ``category`` and bool columns, missing values in numeric and string columns, a text
column. Held-out rows hold NaN, None and categories never seen in training. Each model is
converted from the model file alone ("file") and with the held-out rows written by
``df.to_csv(index=False)`` as ``--sample-data`` ("csv"). The re-check feeds the same raw rows to
onnxruntime as a serving client would (a missing string as the text "nan", docs/sklearn.md) and
compares with the model's own predictions on the DataFrame.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.coverage_families import Built, Inputs, ModelCase, import_skops

ROWS, HELD_OUT = 400, 60
TITANIC_NUMERIC, TITANIC_STRINGS = ["pclass", "age", "fare"], ["sex", "embarked"]
CENSUS_NUMERIC, CENSUS_STRINGS = ["age", "hours"], ["workclass", "education", "sex"]
WORDS = [
    "good",
    "bad",
    "great",
    "poor",
    "excellent",
    "awful",
    "fine",
    "terrible",
    "nice",
    "boring",
    "fun",
    "slow",
    "fast",
    "cheap",
]


def titanic(rows: int, seed: int) -> Any:
    """The tests' Titanic-like frame (tests/fixtures/tabular.py), its target as the survived column."""
    from tests.fixtures.tabular import titanic as titanic_frame

    frame, target = titanic_frame(rows, seed)
    frame["survived"] = target
    return frame


def census(rows: int, seed: int) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "workclass": rng.choice(["private", "state", "self"], rows).astype(object),
            "education": pd.Categorical(rng.choice(["hs", "college", "masters"], rows)),
            "hours": rng.normal(40, 8, rows),
            "sex": rng.choice(["m", "f"], rows),
            "married": rng.random(rows) < 0.5,
            "review": [" ".join(rng.choice(WORDS, int(rng.integers(3, 8)))) for _ in range(rows)],
        }
    )
    frame.loc[rng.random(rows) < 0.15, "hours"] = np.nan
    frame.loc[rng.random(rows) < 0.1, "workclass"] = np.nan
    frame["income"] = ((frame["education"] == "masters") | (frame["hours"].fillna(40) > 45)).astype(int)
    return frame


def held_out(kind: str) -> Any:
    """Rows never seen: NaN, None and an unseen category in the string columns."""
    frame = (titanic if kind == "titanic" else census)(HELD_OUT, seed=7)
    column = "embarked" if kind == "titanic" else "workclass"
    frame[column] = frame[column].astype(object)
    frame.loc[0, column] = None
    frame.loc[1, column] = "unseen"
    return frame.drop(columns=["survived" if kind == "titanic" else "income"])


# -- the models ---------------------------------------------------------------------------------------------


def _sk(path: str) -> Any:
    import importlib

    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(f"sklearn.{module}"), name)


def _columns(numeric: list[str], strings: list[str], strings_step: Any, numeric_step: Any = None) -> Any:
    numbers = numeric_step if numeric_step is not None else _sk("impute.SimpleImputer")()
    return _sk("compose.ColumnTransformer")([("num", numbers, numeric), ("cat", strings_step, strings)])


def _onehot(strategy: str | None = "most_frequent") -> Any:
    encoder = _sk("preprocessing.OneHotEncoder")(handle_unknown="ignore")
    if strategy is None:
        return encoder
    imputer = _sk("impute.SimpleImputer")(strategy=strategy, fill_value="missing")
    return _sk("pipeline.Pipeline")([("imputer", imputer), ("onehot", encoder)])


def _ordinal() -> Any:
    return _sk("preprocessing.OrdinalEncoder")(handle_unknown="use_encoded_value", unknown_value=-1)


def _pipe(columns: Any, model: Any) -> Any:
    return _sk("pipeline.Pipeline")([("columns", columns), ("model", model)])


def _titanic(model: Callable[[], Any], strings: Callable[[], Any] = _onehot) -> Callable[[], Any]:
    return lambda: _pipe(_columns(TITANIC_NUMERIC, TITANIC_STRINGS, strings()), model())


def _trees(name: str, **options: Any) -> Callable[[], Any]:
    return lambda: _sk(name)(random_state=0, **options)


def _search(kind: str) -> Any:
    model = _titanic(lambda: _sk("linear_model.LogisticRegression")(), lambda: _onehot(None))()
    grid = {"model__C": [0.1, 1.0]}
    if kind == "HalvingGridSearchCV":
        import sklearn.experimental.enable_halving_search_cv  # noqa: F401
    extra = {"n_iter": 2, "random_state": 0} if kind == "RandomizedSearchCV" else {}
    return _sk(f"model_selection.{kind}")(model, grid, cv=3, **extra)


def _booster(package: str, name: str) -> Callable[[], Any]:
    def make() -> Any:
        import importlib

        options = {"verbose": -1} if package == "lightgbm" else {}
        return getattr(importlib.import_module(package), name)(n_estimators=30, **options)

    return make


def _census_text() -> Any:
    columns = _sk("compose.ColumnTransformer")(
        [
            ("num", _sk("impute.SimpleImputer")(), CENSUS_NUMERIC),
            ("cat", _onehot(), CENSUS_STRINGS),
            ("text", _sk("feature_extraction.text.TfidfVectorizer")(), "review"),
        ]
    )
    return _pipe(columns, _sk("linear_model.LogisticRegression")(max_iter=500))


def _text(vectorizer: str, model: str, **options: Any) -> Callable[[], Any]:
    return lambda: _sk("pipeline.make_pipeline")(_sk(f"feature_extraction.text.{vectorizer}")(**options), _sk(model)())


LR = partial(lambda: _sk("linear_model.LogisticRegression")(max_iter=500))
# (name, data, target, build)
MODELS: list[tuple[str, str, str, Callable[[], Any]]] = [
    ("impute most_frequent + onehot + LogisticRegression", "titanic", "survived", _titanic(LR)),
    ("impute constant + onehot + LogisticRegression", "titanic", "survived", _titanic(LR, lambda: _onehot("constant"))),
    ("onehot with a NaN category + LogisticRegression", "titanic", "survived", _titanic(LR, lambda: _onehot(None))),
    (
        "KNNImputer + onehot + LogisticRegression",
        "titanic",
        "survived",
        lambda: _pipe(_columns(TITANIC_NUMERIC, TITANIC_STRINGS, _onehot(), _sk("impute.KNNImputer")()), LR()),
    ),
    (
        "ordinal + RandomForestClassifier",
        "titanic",
        "survived",
        _titanic(_trees("ensemble.RandomForestClassifier", n_estimators=20), _ordinal),
    ),
    (
        "ordinal + ExtraTreesClassifier",
        "titanic",
        "survived",
        _titanic(_trees("ensemble.ExtraTreesClassifier", n_estimators=20), _ordinal),
    ),
    (
        "ordinal + DecisionTreeClassifier",
        "titanic",
        "survived",
        _titanic(_trees("tree.DecisionTreeClassifier"), _ordinal),
    ),
    (
        "passthrough NaN + ordinal + RandomForestClassifier",
        "titanic",
        "survived",
        lambda: _pipe(
            _columns(TITANIC_NUMERIC, TITANIC_STRINGS, _ordinal(), "passthrough"),
            _sk("ensemble.RandomForestClassifier")(n_estimators=20, random_state=0),
        ),
    ),
    (
        "passthrough NaN + ordinal + HistGradientBoostingClassifier",
        "titanic",
        "survived",
        lambda: _pipe(
            _columns(TITANIC_NUMERIC, TITANIC_STRINGS, _ordinal(), "passthrough"),
            _sk("ensemble.HistGradientBoostingClassifier")(max_iter=30),
        ),
    ),
    (
        "impute + onehot + GradientBoostingClassifier",
        "titanic",
        "survived",
        _titanic(_trees("ensemble.GradientBoostingClassifier", n_estimators=30)),
    ),
    ("ordinal + LGBMClassifier", "titanic", "survived", _titanic(_booster("lightgbm", "LGBMClassifier"), _ordinal)),
    ("ordinal + XGBClassifier", "titanic", "survived", _titanic(_booster("xgboost", "XGBClassifier"), _ordinal)),
    ("GridSearchCV", "titanic", "survived", partial(_search, "GridSearchCV")),
    ("RandomizedSearchCV", "titanic", "survived", partial(_search, "RandomizedSearchCV")),
    ("HalvingGridSearchCV", "titanic", "survived", partial(_search, "HalvingGridSearchCV")),
    (
        "CalibratedClassifierCV",
        "titanic",
        "survived",
        _titanic(lambda: _sk("calibration.CalibratedClassifierCV")(LR(), cv=3)),
    ),
    (
        "StackingClassifier",
        "titanic",
        "survived",
        _titanic(
            lambda: _sk("ensemble.StackingClassifier")(
                [("lr", LR()), ("rf", _sk("ensemble.RandomForestClassifier")(n_estimators=10, random_state=0))]
            )
        ),
    ),
    (
        "VotingClassifier soft",
        "titanic",
        "survived",
        _titanic(
            lambda: _sk("ensemble.VotingClassifier")(
                [("lr", LR()), ("rf", _sk("ensemble.RandomForestClassifier")(n_estimators=10, random_state=0))],
                voting="soft",
                flatten_transform=False,
            )
        ),
    ),
    (
        "VotingClassifier soft, flatten_transform=True",
        "titanic",
        "survived",
        _titanic(
            lambda: _sk("ensemble.VotingClassifier")(
                [("lr", LR()), ("rf", _sk("ensemble.RandomForestClassifier")(n_estimators=10, random_state=0))],
                voting="soft",
                flatten_transform=True,
            )
        ),
    ),
    (
        "FunctionTransformer(np.log1p) on fare",
        "titanic",
        "survived",
        lambda: _pipe(
            _columns(["fare"], TITANIC_STRINGS, _onehot(), _sk("preprocessing.FunctionTransformer")(np.log1p)), LR()
        ),
    ),
    ("Ridge on fare", "titanic", "fare", _titanic(lambda: _sk("linear_model.Ridge")())),
    (
        "RandomForestRegressor on fare",
        "titanic",
        "fare",
        _titanic(_trees("ensemble.RandomForestRegressor", n_estimators=20), _ordinal),
    ),
    (
        "TransformedTargetRegressor(log1p) over a ColumnTransformer",
        "titanic",
        "fare",
        lambda: _sk("compose.TransformedTargetRegressor")(
            regressor=_titanic(lambda: _sk("linear_model.Ridge")())(), func=np.log1p, inverse_func=np.expm1
        ),
    ),
    (
        "MultiOutputRegressor(GradientBoostingRegressor)",
        "titanic",
        "fare+pclass",
        _titanic(
            lambda: _sk("multioutput.MultiOutputRegressor")(
                _sk("ensemble.GradientBoostingRegressor")(n_estimators=30, random_state=0)
            )
        ),
    ),
    (
        "census: onehot (category, bool) + LogisticRegression",
        "census",
        "income",
        lambda: _pipe(_columns(CENSUS_NUMERIC, CENSUS_STRINGS, _onehot()), LR()),
    ),
    (
        "census: ordinal + RandomForestClassifier",
        "census",
        "income",
        lambda: _pipe(
            _columns(CENSUS_NUMERIC, CENSUS_STRINGS, _ordinal(), "passthrough"),
            _sk("ensemble.RandomForestClassifier")(n_estimators=20, random_state=0),
        ),
    ),
    (
        "census: HistGradientBoosting categorical_features=from_dtype",
        "census",
        "income",
        lambda: _sk("ensemble.HistGradientBoostingClassifier")(categorical_features="from_dtype", max_iter=30),
    ),
    ("census: text column (TfidfVectorizer) + onehot + LogisticRegression", "census", "income", _census_text),
    (
        "text: TfidfVectorizer + LogisticRegression",
        "text",
        "income",
        _text("TfidfVectorizer", "linear_model.LogisticRegression"),
    ),
    ("text: CountVectorizer + MultinomialNB", "text", "income", _text("CountVectorizer", "naive_bayes.MultinomialNB")),
    (
        "text: TfidfVectorizer bigrams + LinearSVC",
        "text",
        "income",
        _text("TfidfVectorizer", "svm.LinearSVC", ngram_range=(1, 2)),
    ),
    (
        "text: TfidfVectorizer char_wb",
        "text",
        "income",
        _text("TfidfVectorizer", "linear_model.LogisticRegression", analyzer="char_wb", ngram_range=(2, 3)),
    ),
]
HGB_COLUMNS = ["age", "hours", "education", "married"]


def models() -> list[ModelCase]:
    cases = []
    for name, data, target, make in MODELS:
        for way in ("file", "csv"):
            cases.append(ModelCase(f"{name} ({way})", partial(_build, data, target, make, way), group=data))
    return cases


def _frames(data: str, target: str) -> tuple[Any, Any, Any]:
    """Training features, target and held-out rows, as the model takes them."""
    kind = "census" if data in ("census", "text") else "titanic"
    train = (titanic if kind == "titanic" else census)(ROWS, seed=0)
    rows = held_out(kind)
    y = train[target.split("+")].to_numpy() if "+" in target else train[target]
    features = train.drop(columns=["survived" if kind == "titanic" else "income"])
    if data == "text":
        return features["review"].tolist(), y, rows[["review"]]
    return features, y, rows


def _build(data: str, target: str, make: Callable[[], Any], way: str, directory: Path) -> Built:
    sio = import_skops()
    x, y, rows = _frames(data, target)
    model = make()
    if "categorical_features" in model.get_params():
        x, rows = x[HGB_COLUMNS], rows[HGB_COLUMNS]
    model.fit(x, y)
    path = directory / "model.skops"
    sio.dump(model, path)
    options = {"model-path": str(path)}
    if way == "csv":
        rows.to_csv(directory / "rows.csv", index=False)
        options["sample-data"] = str(directory / "rows.csv")
    return Built(
        options=options,
        reference=partial(_reference, model, data, rows),
        inputs=partial(_serving_rows, rows),
        recheck_batch=HELD_OUT,
        note=f"{data}-like DataFrame, {ROWS} rows; held-out rows with NaN, None and an unseen category",
    )


def _serving_rows(rows: Any, rng: np.random.Generator, batch: int) -> Inputs:
    """The held-out rows as a serving client feeds the file: one (n, 1) input per column (or one
    string input for a text model), a missing string as "nan", a missing number as NaN."""
    if list(rows.columns) == ["review"]:
        return {"input": rows["review"].to_numpy(dtype=object).reshape(-1, 1)}
    fed = {}
    for name in rows.columns:
        column = rows[name]
        if column.dtype.kind in "biuf":
            fed[name] = column.to_numpy().reshape(-1, 1)
        else:
            text = column.astype(object).where(column.notna(), "nan").astype(str)
            fed[name] = text.to_numpy(dtype=object).reshape(-1, 1)
    return fed


def _reference(model: Any, data: str, rows: Any, feed: Inputs, names: list[str]) -> Inputs:
    """The model's own predictions on the raw held-out rows (not on the feed), None read as NaN.

    scikit-learn itself treats None two ways (OneHotEncoder as a missing value, SimpleImputer with
    its default missing_values=np.nan as a value), so the convention (docs/sklearn.md) is NaN:
    what pd.read_csv makes of the cell, and what the client turns None into."""
    x = rows["review"].tolist() if data == "text" else rows.fillna(np.nan)
    methods = {
        "label": "predict",
        "probabilities": "predict_proba",
        "scores": "decision_function",
        "variable": "predict",
    }
    outputs = {}
    for name in names:
        value = np.asarray(getattr(model, methods[name])(x))
        outputs[name] = value.reshape(-1, 1) if name == "variable" and value.ndim == 1 else value
    return outputs
