""".skops files: what is loaded, what is refused before anything runs, and archive bounds."""

from __future__ import annotations

import functools
import importlib
import io
import json
import operator
import os
import pickle
import subprocess
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.sklearn import dataset, lazy

pytestmark = pytest.mark.converts
sklearn, sio, pd = lazy("sklearn"), lazy("skops.io"), lazy("pandas")
xgboost, lightgbm = lazy("xgboost"), lazy("lightgbm")
REFUSED = "holds what this tool does not load from a .skops file: "
HINT = (
    "; a .skops file may hold scikit-learn estimators, the numpy and scipy types they keep and the functions "
    "listed in docs/sklearn.md; save the model without the others, or pass --allow-unsafe-load true if you "
    "trust the file\n"
)


def _dump(model: object, path: Path) -> Path:
    sio.dump(model, path)
    return path


def _eval_column_transformer(marker: Path) -> sklearn.pipeline.Pipeline:
    """A ColumnTransformer that feeds a string column both to a OneHotEncoder and to
    FunctionTransformer(numpy.vectorize(builtins.eval)): the encoder's categories make the
    generated inputs carry the payload, which the reference run then evaluates."""
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('pwned')"
    frame = pd.DataFrame({"cmd": [payload, "1"] * 10, "size": np.arange(20.0)})
    columns = sklearn.compose.ColumnTransformer(
        [
            ("enc", sklearn.preprocessing.OneHotEncoder(), ["cmd"]),
            ("len", sklearn.preprocessing.FunctionTransformer(np.vectorize(len)), ["cmd"]),
        ]
    )
    model = sklearn.pipeline.Pipeline([("columns", columns), ("model", sklearn.linear_model.LogisticRegression())]).fit(
        frame, np.arange(20) % 2
    )
    for _, transformer, _ in [columns.transformers[1], model.named_steps["columns"].transformers_[1]]:
        transformer.func = np.vectorize(eval)  # swapped in after fitting
    return model


def test_a_column_transformer_that_evaluates_its_categories_is_refused_before_anything_runs(
    tmp_path: Path, run_cli
) -> None:
    marker = tmp_path / "marker"
    path = _dump(_eval_column_transformer(marker), tmp_path / "hostile.skops")
    result = run_cli("--model-path", str(path))
    assert result.code == 2
    assert result.errors == f"error: hostile.skops {REFUSED}builtins.eval, numpy.vectorize{HINT}"
    assert not marker.exists()
    assert result.written() == []


def _method() -> object:
    return sklearn.preprocessing.StandardScaler().fit(dataset("iris")[0]).transform


@pytest.mark.parametrize(
    "make,refused",
    [
        (lambda: exec, "builtins.exec"),
        (lambda: os.system, "posix.system"),
        (lambda: np.vectorize(np.log1p), "numpy.vectorize"),
        (lambda: np.frompyfunc(len, 1, 1), "__main__.len (vectorized)"),
        (lambda: subprocess.check_output, "subprocess.check_output"),
        (lambda: getattr, "builtins.getattr"),
        (lambda: __import__, "builtins.__import__"),
        (lambda: compile, "builtins.compile"),
        (lambda: importlib.import_module, "importlib.import_module"),
        (lambda: pickle.loads, "_pickle.loads"),
        (lambda: operator.methodcaller("system", "true"), "operator.methodcaller (stored as a skops OperatorFuncNode, "
         "which this tool does not load)"),
        (lambda: functools.partial(eval, "1"), "builtins.eval, functools.partial of builtins.eval"),
        (lambda: functools.partial(np.log1p), "functools.partial of numpy.log1p"),
        (lambda: functools.partial(sklearn.utils.validation.check_array, copy=True),
         "functools.partial of sklearn.utils.validation.check_array with copy, sklearn.utils.validation.check_array"),
        (lambda: sklearn.utils.validation.check_array, "sklearn.utils.validation.check_array"),  # trusted inside HistGradientBoosting's partial only
        (_method, "sklearn.preprocessing._data.StandardScaler.transform (a bound method)"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)  # fmt: skip
def test_a_function_outside_the_allow_list_is_refused(make, refused: str, tmp_path: Path, run_cli) -> None:
    """``make`` gives the function: scikit-learn is imported when the test runs, not when it is collected."""
    path = _dump(
        sklearn.pipeline.make_pipeline(
            sklearn.preprocessing.FunctionTransformer(make()), sklearn.preprocessing.StandardScaler()
        ),
        tmp_path / "func.skops",
    )
    result = run_cli("--model-path", str(path))
    assert result.errors == f"error: func.skops {REFUSED}{refused}{HINT}"
    assert result.code == 2
    assert result.written() == []


def _with_attribute(path: Path, key: str, state: dict) -> Path:
    """The .skops file with one more attribute on its top-level object, written by hand: what
    skops.io.dump never writes, a hostile file can."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    attrs = schema["content"]
    attrs["content"][key] = state
    attrs["key_types"]["content"].append({"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"})
    members["schema.json"] = json.dumps(schema).encode()
    crafted = path.with_name(f"crafted{path.suffix}")
    with zipfile.ZipFile(crafted, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return crafted


def _call(module: str, name: str, argument: str) -> dict:
    """skops' ConstructorFromReduceNode: loading calls module.name(argument)."""
    text = {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "content": json.dumps(argument)}
    args = {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode", "content": [text]}
    return {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode", "content": args}


def test_a_crafted_file_that_calls_exec_while_loading_is_refused(tmp_path: Path, run_cli) -> None:
    marker = tmp_path / "marker"
    model = _dump(sklearn.linear_model.LogisticRegression().fit(*dataset("iris")), tmp_path / "model.skops")
    path = _with_attribute(model, "x", _call("builtins", "exec", f"open({str(marker)!r}, 'w').write('pwned')"))
    result = run_cli("--model-path", str(path))
    assert result.errors == f"error: crafted.skops {REFUSED}builtins.exec{HINT}"
    assert result.code == 2
    assert not marker.exists()


def test_a_name_from_the_file_is_printed_without_line_breaks_or_markup(tmp_path: Path, run_cli) -> None:
    model = _dump(sklearn.linear_model.LogisticRegression().fit(*dataset("iris")), tmp_path / "model.skops")
    path = _with_attribute(model, "x", _call("builtins", "x\n::warning::<b>", "1"))
    result = run_cli("--model-path", str(path))
    assert result.errors == f"error: crafted.skops {REFUSED}builtins.x???warning???b?{HINT}"


def test_allow_unsafe_load_loads_a_refused_function_and_says_so(tmp_path: Path, run_cli) -> None:
    model = sklearn.pipeline.make_pipeline(
        sklearn.preprocessing.FunctionTransformer(np.vectorize(np.log1p)), sklearn.preprocessing.StandardScaler()
    ).fit(dataset("iris")[0])
    result = run_cli("--model-path", str(_dump(model, tmp_path / "v.skops")), "--allow-unsafe-load", "true")
    report = result.report("v")
    assert "loaded with --allow-unsafe-load, which let in: numpy.vectorize" in report["warnings"]


def _frame(category: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"city": rng.choice(["oslo", "rome", "lima"], 200), "size": rng.normal(50, 10, 200)})
    target = ((frame["city"] == "rome") ^ (frame["size"] > 50)).to_numpy().astype(int)
    if category:
        frame["city"] = frame["city"].astype("category")
    return frame, target


def _fitted(model: object, data: tuple) -> tuple[object, object]:
    return model.fit(*data), data[0]  # type: ignore[attr-defined]


LEGIT = {
    "onehot_scaler_logistic": lambda: _fitted(
        sklearn.pipeline.make_pipeline(
            sklearn.compose.ColumnTransformer(
                [
                    ("city", sklearn.preprocessing.OneHotEncoder(), ["city"]),
                    ("size", sklearn.preprocessing.StandardScaler(), ["size"]),
                ]
            ),
            sklearn.linear_model.LogisticRegression(),
        ),
        _frame(),
    ),
    "log1p": lambda: _fitted(
        sklearn.pipeline.make_pipeline(
            sklearn.preprocessing.FunctionTransformer(np.log1p), sklearn.linear_model.LogisticRegression()
        ),
        dataset("iris"),
    ),
    "random_forest": lambda: _fitted(sklearn.ensemble.RandomForestClassifier(10, random_state=0), dataset("iris")),
    "kmeans": lambda: _fitted(sklearn.cluster.KMeans(3, n_init=2, random_state=0), (dataset("iris")[0],)),
    "mlp": lambda: _fitted(sklearn.neural_network.MLPClassifier((8,), max_iter=20, random_state=0), dataset("iris")),
    "xgboost_pipeline": lambda: _fitted(
        sklearn.pipeline.make_pipeline(sklearn.preprocessing.StandardScaler(), xgboost.XGBClassifier(n_estimators=5)),
        dataset("iris"),
    ),
    "lightgbm_pipeline": lambda: _fitted(
        sklearn.pipeline.make_pipeline(
            sklearn.preprocessing.StandardScaler(), lightgbm.LGBMClassifier(n_estimators=5, verbose=-1)
        ),
        dataset("iris"),
    ),
}


@pytest.mark.parametrize("name", sorted(LEGIT))
def test_a_real_model_loads_and_predicts_as_before(name: str, tmp_path: Path) -> None:
    from converter.frameworks.sklearn.backend import SklearnBackend
    from converter.request import ConversionRequest

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence
        model, rows = LEGIT[name]()
    path = _dump(model, tmp_path / f"{name}.skops")
    loaded = SklearnBackend().load(ConversionRequest.from_mapping({"model-path": str(path)}), "skops")
    assert type(loaded.model) is type(model)
    np.testing.assert_array_equal(loaded.model.predict(rows), model.predict(rows))
    assert loaded.notes == []


def test_hist_gradient_boosting_from_dtype_loads_and_is_refused_for_its_native_splits(tmp_path: Path, run_cli) -> None:
    """scikit-learn stores partial(check_array, dtype=[float64], ensure_all_finite=False) in it: the file
    passes the trust check (loaded, then inspected), and the categorical splits are what is refused."""
    model, _ = _fitted(
        sklearn.ensemble.HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=10),
        _frame(category=True),
    )
    result = run_cli("--model-path", str(_dump(model, tmp_path / "hgb.skops")))
    assert result.code == 1
    assert "HistGradientBoostingClassifier cannot be converted to ONNX: it splits" in result.stderr
    assert "categorical feature(s) natively (categorical_features)" in result.stderr
    assert "does not load from a .skops file" not in result.stderr  # the trust check let it in


def test_a_zip_bomb_is_refused_before_skops_reads_it(tmp_path: Path, run_cli) -> None:
    """A coefficient array whose member inflates from ~150 kB to 150 MB."""
    model = _dump(sklearn.linear_model.LogisticRegression().fit(*dataset("iris")), tmp_path / "model.skops")
    path = tmp_path / "bomb.skops"
    with zipfile.ZipFile(model) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        schema = json.loads(source.read("schema.json"))
        array = schema["content"]["content"]["coef_"]["file"]
        for name in source.namelist():
            if name != array:
                bomb.writestr(name, source.read(name))
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (3, 6_250_000)})
        with bomb.open(array, "w") as member:
            member.write(header.getvalue())
            for _ in range(150):
                member.write(bytes(1_000_000))
    result = run_cli("--model-path", str(path))
    size = path.stat().st_size
    assert result.errors.startswith(f"error: --model-path: bomb.skops would inflate from {size:,} to 150,")
    assert f"({array!r} alone to 150,000,128); this tool reads at most 64 MiB plus 100x" in result.errors
    assert result.code == 2
    assert result.written() == []
