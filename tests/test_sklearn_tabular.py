"""Models fitted on DataFrames end to end: missing values, string columns, searches, and sample
data written by ``df.to_csv(index=False)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.sklearn import lazy
from tests.fixtures.tabular import NUMERIC, STRINGS, held_out, titanic

pytestmark = pytest.mark.converts
sklearn, sio, pd = lazy("sklearn"), lazy("skops.io"), lazy("pandas")


def _columns(strings: object) -> object:
    impute_scale = sklearn.pipeline.Pipeline(
        [("imputer", sklearn.impute.SimpleImputer()), ("scale", sklearn.preprocessing.StandardScaler())]
    )
    return sklearn.compose.ColumnTransformer([("num", impute_scale, NUMERIC), ("cat", strings, STRINGS)])


def _titanic_recipe() -> object:
    """The textbook recipe: the most frequent string fills a missing one, then one-hot."""
    strings = sklearn.pipeline.Pipeline(
        [
            ("imputer", sklearn.impute.SimpleImputer(strategy="most_frequent")),
            ("onehot", sklearn.preprocessing.OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    model = sklearn.pipeline.Pipeline(
        [("columns", _columns(strings)), ("model", sklearn.linear_model.LogisticRegression())]
    )
    return model.fit(*titanic())


def _missing_category() -> object:
    """No imputer for strings: the encoder learns NaN as a category of its own."""
    encoder = sklearn.preprocessing.OneHotEncoder(handle_unknown="ignore")
    model = sklearn.pipeline.Pipeline(
        [("columns", _columns(encoder)), ("model", sklearn.linear_model.LogisticRegression())]
    )
    return model.fit(*titanic())


def _save(tmp_path: Path, name: str, model: object) -> Path:
    path = tmp_path / f"{name}.skops"
    sio.dump(model, path)
    return path


def _rows_csv(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    held_out().to_csv(path, index=False)
    return path


def test_csv_written_by_to_csv_with_missing_values_and_booleans_validates(tmp_path: Path, run_cli) -> None:
    model = _save(tmp_path, "titanic", _titanic_recipe())
    result = run_cli("--model-path", str(model), "--sample-data", str(_rows_csv(tmp_path)))
    assert result.code == 0, result.errors
    report = result.report("titanic")
    assert report["validation"]["batch_sizes"] == [20, 10]
    inputs = {i["name"]: i["dtype"] for i in report["onnx"]["inputs"]}
    assert inputs["embarked"] == "string"
    assert inputs["age"] == "float32"


def test_csv_is_read_at_float64_with_missing_cells_and_booleans(tmp_path: Path) -> None:
    from converter.frameworks.base import TensorSpec
    from converter.samples import check_samples_fit, load_sample_data

    specs = [
        TensorSpec(name=n, shape=(None, 1), dtype="string" if n in STRINGS else "float32")
        for n in [*NUMERIC, *STRINGS, "alone"]
    ]
    samples = load_sample_data(_rows_csv(tmp_path), specs)
    assert samples["age"].dtype == np.float64
    assert np.isnan(samples["age"][2, 0])
    assert samples["alone"].dtype == np.bool_
    assert samples["embarked"][0, 0] != samples["embarked"][0, 0]  # NaN, as pd.read_csv reads an empty cell
    fed = check_samples_fit(samples, specs)
    assert fed["embarked"][:2, 0].tolist() == ["nan", "X"]  # what the file gets: the missing-string convention
    assert fed["age"].dtype == np.float32


def test_csv_header_names_the_columns_of_a_one_input_model(tmp_path: Path, run_cli) -> None:
    from converter.samples import load_sample_data

    frame, target = titanic()
    numbers = frame[NUMERIC].fillna(0)
    model = sklearn.pipeline.Pipeline(
        [("scale", sklearn.preprocessing.StandardScaler()), ("model", sklearn.linear_model.LogisticRegression())]
    ).fit(numbers, target)
    path = _save(tmp_path, "numbers", model)
    rows = held_out()[["fare", "pclass", "age"]].fillna(1)  # another order: mapped by name
    rows.to_csv(tmp_path / "rows.csv", index=False)
    result = run_cli("--model-path", str(path), "--sample-data", str(tmp_path / "rows.csv"))
    assert result.code == 0, result.errors
    assert result.report("numbers")["validation"]["input_source"] == "rows.csv"
    from converter.frameworks.base import TensorSpec

    spec = TensorSpec(name="input", shape=(None, 3), dtype="float32", columns=tuple(NUMERIC))
    loaded = load_sample_data(tmp_path / "rows.csv", [spec])["input"]
    np.testing.assert_array_equal(loaded, rows[NUMERIC].to_numpy(dtype=np.float64))


def test_missing_strings_are_fed_as_nan_text_and_match_scikit_learn(tmp_path: Path, run_cli) -> None:
    model = _save(tmp_path, "nan_category", _missing_category())
    result = run_cli("--model-path", str(model))
    assert result.code == 0, result.errors


def test_generated_inputs_hold_missing_values_where_the_model_takes_them(tmp_path: Path) -> None:
    from converter.frameworks.sklearn.columns import column_specs
    from converter.inputs import generate_inputs

    model = _missing_category()
    specs = {s.name: s for s in column_specs(model, list(model.feature_names_in_))}
    assert specs["embarked"].missing and specs["age"].missing
    assert not specs["alone"].dtype_known  # dropped: the sample data says what it holds
    inputs = generate_inputs([s.__class__(**{**s.__dict__, "shape": ("batch", 1)}) for s in specs.values()], 40, 0)
    assert "nan" in inputs["embarked"][:, 0].tolist()
    assert np.isnan(inputs["age"]).any()


def test_string_imputer_most_frequent_converts(tmp_path: Path, run_cli) -> None:
    model = _save(tmp_path, "titanic", _titanic_recipe())
    result = run_cli("--model-path", str(model))
    assert result.code == 0, result.errors


@pytest.mark.parametrize("search", ["GridSearchCV", "RandomizedSearchCV"])
def test_a_fitted_search_converts_its_refitted_best_estimator(tmp_path: Path, run_cli, search: str) -> None:
    grid = {"model__C": [0.1, 1.0]}
    kind = getattr(sklearn.model_selection, search)
    options = {"n_iter": 2, "random_state": 0} if search == "RandomizedSearchCV" else {}
    found = kind(_missing_category(), grid, cv=2, **options).fit(*titanic())
    path = _save(tmp_path, "search", found)
    result = run_cli("--model-path", str(path), "--sample-data", str(_rows_csv(tmp_path)))
    assert result.code == 0, result.errors
    report = result.report("search")
    assert (
        report["model"]["description"] == f"{search}.best_estimator_: Pipeline(ColumnTransformer, LogisticRegression)"
    )
    best = found.best_params_["model__C"]
    assert (
        f"{search}: converted its refitted best_estimator_ (Pipeline(ColumnTransformer, LogisticRegression); "
        f"best parameters model__C={best!r})"
    ) in report["warnings"]


TEXTS = ["the cat sat on the mat", "dogs are great", "I love my cat", "the dog barks loud", "cats and dogs"] * 10
TEXT_LABELS = [0, 1, 0, 1, 1] * 10


def test_transformed_target_over_a_column_transformer_pipeline_converts(tmp_path: Path, run_cli) -> None:
    frame, _ = titanic()
    regressor = sklearn.pipeline.Pipeline(
        [
            ("columns", _columns(sklearn.preprocessing.OneHotEncoder(handle_unknown="ignore"))),
            ("ridge", sklearn.linear_model.Ridge()),
        ]
    )
    model = sklearn.compose.TransformedTargetRegressor(regressor=regressor, func=np.log1p, inverse_func=np.expm1)
    path = _save(tmp_path, "ttr", model.fit(frame, frame["fare"]))
    result = run_cli("--model-path", str(path), "--sample-data", str(_rows_csv(tmp_path)))
    assert result.code == 0, result.errors


@pytest.mark.parametrize("classifier", ["LogisticRegression", "LinearSVC"])
def test_a_text_pipeline_takes_strings_from_its_vocabulary(tmp_path: Path, run_cli, classifier: str) -> None:
    import onnx

    estimator = getattr(sklearn.svm if classifier == "LinearSVC" else sklearn.linear_model, classifier)()
    model = sklearn.pipeline.make_pipeline(sklearn.feature_extraction.text.TfidfVectorizer(), estimator)
    path = _save(tmp_path, "text", model.fit(TEXTS, TEXT_LABELS))
    result = run_cli("--model-path", str(path))
    assert result.code == 0, result.errors
    assert [(i["name"], i["dtype"]) for i in result.report("text")["onnx"]["inputs"]] == [("input", "string")]
    graph = onnx.load(result.output_dir / "text.onnx").graph
    locales = {a.s for n in graph.node if n.op_type == "StringNormalizer" for a in n.attribute if a.name == "locale"}
    assert locales == {b"C.UTF-8"}  # loads where en_US.UTF-8 is not installed (python:3.11-slim)


def test_a_step_that_cannot_be_converted_is_named_by_its_path(tmp_path: Path, run_cli) -> None:
    vectorizer = sklearn.feature_extraction.text.TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3))
    model = sklearn.pipeline.Pipeline([("words", vectorizer), ("model", sklearn.linear_model.LogisticRegression())])
    path = _save(tmp_path, "chars", model.fit(TEXTS, TEXT_LABELS))
    result = run_cli("--model-path", str(path))
    assert result.code == 1
    assert result.report("chars")["error"].startswith(
        "TfidfVectorizer at step words cannot be converted to ONNX: CountVectorizer cannot be converted, "
        "only tokenizer='word' is fully supported."
    )


def _ordinal_columns() -> object:
    encoder = sklearn.preprocessing.OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    return sklearn.compose.ColumnTransformer([("num", "passthrough", NUMERIC), ("cat", encoder, STRINGS)])


@pytest.mark.parametrize("trees", ["RandomForestClassifier", "LGBMClassifier"])
def test_an_ordinal_encoders_missing_code_stays_nan_before_trees(tmp_path: Path, run_cli, trees: str) -> None:
    if trees == "LGBMClassifier":
        estimator = pytest.importorskip("lightgbm").LGBMClassifier(n_estimators=20, verbose=-1)
    else:
        estimator = sklearn.ensemble.RandomForestClassifier(n_estimators=10, random_state=0)
    model = sklearn.pipeline.Pipeline([("columns", _ordinal_columns()), ("model", estimator)])
    path = _save(tmp_path, "ordinal", model.fit(*titanic()))
    result = run_cli("--model-path", str(path), "--sample-data", str(_rows_csv(tmp_path)))
    assert result.code == 0, result.errors


@pytest.mark.parametrize("trees", ["RandomForestRegressor", "ExtraTreesRegressor", "DecisionTreeRegressor"])
def test_trees_fitted_on_nan_route_it_as_scikit_learn_does(tmp_path: Path, run_cli, trees: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    x[rng.random(x.shape) < 0.2] = np.nan
    y = np.nan_to_num(x[:, 0], nan=3.0) + np.where(np.isnan(x[:, 1]), -2.0, x[:, 1])
    options = {} if trees == "DecisionTreeRegressor" else {"n_estimators": 10}
    kind = getattr(sklearn.tree if trees == "DecisionTreeRegressor" else sklearn.ensemble, trees)
    model = kind(random_state=0, **options).fit(x, y)
    path = _save(tmp_path, "trees", model)
    rows = rng.normal(size=(40, 4))
    rows[rng.random(rows.shape) < 0.3] = np.nan
    np.save(tmp_path / "rows.npy", rows)
    result = run_cli("--model-path", str(path), "--sample-data", str(tmp_path / "rows.npy"))
    assert result.code == 0, result.errors


def test_soft_voting_with_flatten_transform_converts(tmp_path: Path, run_cli) -> None:
    voting = sklearn.ensemble.VotingClassifier(
        [("lr", sklearn.linear_model.LogisticRegression()), ("nb", sklearn.naive_bayes.GaussianNB())],
        voting="soft",
        flatten_transform=True,
    )
    model = sklearn.pipeline.Pipeline([("columns", _columns(_onehot_ignore())), ("model", voting)])
    path = _save(tmp_path, "voting", model.fit(*titanic()))
    result = run_cli("--model-path", str(path), "--sample-data", str(_rows_csv(tmp_path)))
    assert result.code == 0, result.errors


def _onehot_ignore() -> object:
    return sklearn.preprocessing.OneHotEncoder(handle_unknown="ignore")


def _log_fare(function: object) -> object:
    columns = sklearn.compose.ColumnTransformer(
        [("fare", sklearn.preprocessing.FunctionTransformer(function), ["fare"]), ("cat", _onehot_ignore(), STRINGS)]
    )
    return sklearn.pipeline.Pipeline([("columns", columns), ("model", sklearn.linear_model.LogisticRegression())])


def test_a_ufunc_transformer_converts_with_inputs_in_its_domain(tmp_path: Path, run_cli) -> None:
    path = _save(tmp_path, "log1p", _log_fare(np.log1p).fit(*titanic()))
    result = run_cli("--model-path", str(path))  # generated fare >= 0: log1p is defined
    assert result.code == 0, result.errors
    result = run_cli("--model-path", str(path), "--sample-data", str(_rows_csv(tmp_path)))
    assert result.code == 0, result.errors


def test_a_lambda_transformer_is_refused_naming_the_step_and_the_lambda(tmp_path: Path, run_cli) -> None:
    cloudpickle = pytest.importorskip("cloudpickle")  # pickle cannot hold a lambda; cloudpickle can

    path = tmp_path / "lambda.pkl"
    path.write_bytes(cloudpickle.dumps(_log_fare(lambda x: x * 2).fit(*titanic())))
    result = run_cli("--model-path", str(path), "--allow-unsafe-load", "true")
    assert result.code == 1
    assert result.report("lambda")["error"] == (
        "FunctionTransformer at step columns/fare cannot be converted to ONNX: FunctionTransformer(func=a lambda) "
        "has no ONNX equivalent: this tool converts numpy ufuncs without kw_args (log1p, log, exp, expm1, sqrt, "
        "square, abs, sign, sin, cos, tan, tanh, arctan, floor, ceil, negative, reciprocal); use a setting of this "
        "step that converts, or keep it outside the exported model"
    )


def test_native_categorical_splits_are_refused_naming_the_step(tmp_path: Path, run_cli) -> None:
    frame, target = titanic()
    frame = frame[["pclass", "fare", "sex"]].astype({"sex": "category"})
    boosting = sklearn.ensemble.HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=10)
    model = sklearn.pipeline.Pipeline([("model", boosting)]).fit(frame, target)
    path = _save(tmp_path, "categories", model)
    result = run_cli("--model-path", str(path))
    assert result.code == 1
    assert result.errors == (
        "error: HistGradientBoostingClassifier at step model cannot be converted to ONNX: it splits 1 categorical "
        "feature(s) natively (categorical_features), which neither skl2onnx nor this tool converts yet; encode "
        "those columns with an OrdinalEncoder in the pipeline and fit without categorical_features\n"
    )


def test_columns_the_model_drops_are_not_inputs_of_the_file(tmp_path: Path, run_cli) -> None:
    model = _save(tmp_path, "titanic", _missing_category())
    result = run_cli("--model-path", str(model), "--sample-data", str(_rows_csv(tmp_path)))
    assert result.code == 0, result.errors
    names = [i["name"] for i in result.report("titanic")["onnx"]["inputs"]]
    assert names == ["pclass", "sex", "age", "fare", "embarked"]  # not "alone": the ColumnTransformer drops it
