"""scikit-learn backend: .skops (safe), .joblib/.pkl (only with --allow-unsafe-load), via skl2onnx."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from converter.archives import check_archive_bounds
from converter.errors import ConversionError, MissingFrameworkError, UserError, describe, shorten
from converter.escape import printable
from converter.frameworks.base import Backend, ExportJob, ExportResult, ExportRoute, LoadedModel, TensorSpec, image_hint
from converter.frameworks.sklearn import export as sklearn_export
from converter.frameworks.sklearn import skops_trust, tree_checks
from converter.frameworks.sklearn.columns import VECTORIZERS, column_specs, documents
from converter.frameworks.sklearn.export import describe_estimator, step_path, walk
from converter.input_roles import MISSING_STRING

if TYPE_CHECKING:
    from converter.request import ConversionRequest

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib"}
# What a package in skops_trust.PACKAGE_TYPES brings, its extra and its image, when not the defaults.
PACKAGES = {"imblearn": ("an imbalanced-learn pipeline or sampler (imblearn)", "sklearn", "sklearn")}


@dataclass
class SklearnState:
    plan: list[tuple[str, str]]  # (ONNX output, the estimator method that computes it), in skl2onnx's order


class SklearnBackend(Backend[SklearnState]):
    name = "sklearn"
    requirements: ClassVar[dict[str, str]] = {"sklearn": "scikit-learn", "skl2onnx": "skl2onnx", "skops": "skops"}
    image_variant = "sklearn"
    formats_help = "a .skops, .joblib or .pkl file (scikit-learn)"
    runs_on_samples_as_read = True  # float64 from a CSV, as the model was fitted (the file gets float32)

    @classmethod
    def detect(cls, path: Path) -> str | None:
        if not path.is_file():
            return None
        suffix = path.suffix.lower()
        if suffix == ".skops":
            return "skops"
        if suffix == ".joblib":
            return "joblib"
        if suffix in {".pkl", ".pickle"}:
            return "pickle"
        return None

    # -- load ---------------------------------------------------------------------------
    def load_impl(self, request: ConversionRequest, fmt: str) -> LoadedModel[SklearnState]:
        sklearn_base = self.require("sklearn.base")
        path = request.model_path
        notes: list[str] = []
        if fmt == "skops":
            model, notes = self._load_skops(path, request.allow_unsafe_load)
        else:
            model = self._load_pickle(path, request.allow_unsafe_load)
        if not isinstance(model, sklearn_base.BaseEstimator):
            raise UserError(
                f"{path.name} holds a {type(model).__name__}, not a scikit-learn estimator",
                "save the fitted estimator or pipeline itself",
            )
        model, description, unwrapped = unwrap_search(model)  # a search predicts with its best_estimator_
        model, description, dropped = drop_samplers(model, description)  # samplers act in fit only
        notes.extend(unwrapped + dropped)
        tree_checks.check_trees(model, path.name)  # before anything runs the trees: scikit-learn trusts them
        if not any(hasattr(model, m) for m in ("predict", "predict_proba", "transform")):
            raise ConversionError(
                f"{type(model).__name__} has no predict, predict_proba or transform method to convert",
                "convert an estimator that predicts or transforms new rows (DBSCAN and the like only label their training data)",
            )
        _refuse_native_categories(model)
        plan = output_plan(model, sklearn_base)
        return LoadedModel(
            model=model,
            format=fmt,
            description=description,
            label_outputs=frozenset(name for name, _ in plan if name == "label"),
            output_names=tuple(name for name, _ in plan),
            notes=notes,
            state=SklearnState(plan),
        )

    def _load_skops(self, path: Path, allow_unsafe: bool) -> tuple[Any, list[str]]:
        """The model, and the notes for the report (what --allow-unsafe-load let in)."""
        with _without_estimatorwalk(self.require("sklearn.utils")):
            sio = self.require("skops.io")
        check_archive_bounds(path, "--model-path")
        data = path.read_bytes()  # audited and loaded from the same bytes
        tree, trusted = _skops_tree(path, data)
        refused = skops_trust.refusals(tree)
        del tree
        self._check_packages(path, trusted)
        if refused and not allow_unsafe:
            raise UserError(
                f"{path.name} holds what this tool does not load from a .skops file: {', '.join(refused)}",
                "a .skops file may hold scikit-learn estimators, the numpy and scipy types they keep and the "
                "functions listed in docs/sklearn.md; save the model without the others, or pass "
                "--allow-unsafe-load true if you trust the file",
            )
        try:
            model = sio.loads(data, trusted=trusted)
        except Exception as exc:  # skops raises many types for a damaged file
            raise UserError(
                f"{path.name} could not be loaded by skops ({describe(exc, 160)})", "save it again with skops.io.dump"
            ) from None
        return model, [f"loaded with --allow-unsafe-load, which let in: {', '.join(refused)}"] if refused else []

    def _check_packages(self, path: Path, trusted: list[str]) -> None:
        """The packages the file's trusted types come from are installed (else skops fails on an import)."""
        for root, names in sorted(skops_trust.PACKAGE_TYPES.items()):
            if set(names) & set(trusted) and importlib.util.find_spec(root) is None:
                what, extra, image = PACKAGES.get(root, (f"a {root} model", root, "full"))
                raise MissingFrameworkError(
                    f"{path.name} holds {what} and {root} is not installed",
                    f"pip install 'onnx-convert-action[{extra}]', or use {image_hint(image)}",
                )

    def _load_pickle(self, path: Path, allowed: bool) -> Any:
        if not allowed:
            raise UserError(
                f"{path.name} is a pickle, and loading a pickle runs any code it contains",
                "save the model with skops.io.dump (.skops), or pass --allow-unsafe-load true if you trust the file",
            )
        joblib = self.require("joblib")
        try:
            return joblib.load(path)
        except Exception as exc:  # a damaged pickle raises nearly anything
            raise UserError(
                f"{path.name} could not be unpickled ({describe(exc, 160)})",
                "check that the file is a complete joblib or pickle file",
            ) from None

    # -- inputs -------------------------------------------------------------------------
    def input_specs_impl(self, loaded: LoadedModel[SklearnState], request: ConversionRequest) -> list[TensorSpec]:
        model = loaded.model
        if _by_column(model):
            # A ColumnTransformer fitted on a DataFrame selects columns by name: one input per column.
            columns = _input_columns(loaded)
            loaded.notes.extend(
                f"column {column!r} is the ONNX input {name!r}: {_why_renamed(column, loaded.output_names)}"
                for name, column in columns.items()
                if name != column
            )
            by_column = {s.name: s for s in column_specs(model, list(columns.values()))}
            return [replace(by_column[column], name=name) for name, column in columns.items()]
        vectorizer = _leading_vectorizer(model)
        if vectorizer is not None:
            # a text model: one document per row, drawn from the fitted vocabulary
            vocabulary = getattr(vectorizer, "vocabulary_", {})
            return [TensorSpec(name="input", shape=(None, 1), dtype="string", categories=documents(vocabulary))]
        n_features = getattr(model, "n_features_in_", None)
        names = getattr(model, "feature_names_in_", None)
        if n_features is None:
            # e.g. a text pipeline; the user must describe the input
            return [TensorSpec(name="input", shape=None, dtype="float32")]
        fitted_on = tuple(str(col) for col in names) if names is not None else ()
        return [TensorSpec(name="input", shape=(None, int(n_features)), dtype="float32", columns=fitted_on)]

    # -- reference run ----------------------------------------------------------------------
    def run_impl(self, loaded: LoadedModel[SklearnState], inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        model = loaded.model
        features = self._features(loaded, inputs)
        outputs: dict[str, Any] = {}
        for name, method in loaded.state.plan:
            value = getattr(model, method)(features)
            # sparse results (TfidfTransformer, KNeighborsTransformer, ...) are dense in ONNX
            value = np.asarray(value.toarray() if hasattr(value, "toarray") else value)
            outputs[name] = value.reshape(-1, 1) if name == "variable" and value.ndim == 1 else value
        return outputs

    def _features(self, loaded: LoadedModel[SklearnState], inputs: dict[str, np.ndarray]) -> Any:
        # The ONNX model sees float32; sklearn gets the same values in float64, the dtype it
        # was fitted in (some estimators refuse float32 input to float64 fitted state).
        inputs = {n: _as_sklearn_sees(a) for n, a in inputs.items()}
        model = loaded.model
        if not _by_column(model):
            table = next(iter(inputs.values()))
            if _leading_vectorizer(model) is not None:
                return table.ravel()  # vectorizers take a 1-D sequence of documents
            names = getattr(model, "feature_names_in_", None)
            if names is None or table.ndim != 2 or table.shape[1] != len(names):
                return table
            # fitted on a DataFrame: given one, as it was fitted (no feature-name warning, same dtypes)
            return self.require("pandas").DataFrame(table, columns=list(names))
        pandas = self.require("pandas")
        column_of = _input_columns(loaded)
        columns = {column_of[name]: (arr[:, 0] if arr.ndim == 2 else arr) for name, arr in inputs.items()}
        return pandas.DataFrame(columns)[list(loaded.model.feature_names_in_)]

    # -- export -----------------------------------------------------------------------------
    def export_routes(self, loaded: LoadedModel[SklearnState]) -> list[ExportRoute]:
        return [ExportRoute(sklearn_export.ROUTE, self.opset_range())]

    def export_impl(self, loaded: LoadedModel[SklearnState], job: ExportJob) -> ExportResult:
        # skl2onnx finds a ColumnTransformer's columns by their own names
        columns = _input_columns(loaded) if _by_column(loaded.model) else {}
        return sklearn_export.export_with_skl2onnx(self.require, loaded, job, columns)

    def opset_range(self) -> tuple[int, int]:
        skl2onnx = self.require("skl2onnx")
        return 1, int(skl2onnx.get_latest_tested_opset_version())

    def versions(self) -> dict[str, str]:
        import importlib.metadata as md

        found = {pkg: md.version(pkg) for pkg in ("scikit-learn", "skl2onnx", "skops")}
        # a pipeline holding an XGBoost or LightGBM estimator (loaded by now) exports with onnxmltools
        for module, package in (("xgboost", "xgboost-cpu"), ("lightgbm", "lightgbm")):
            if module in sys.modules:
                with contextlib.suppress(md.PackageNotFoundError):
                    found[package] = md.version(package)
                    found["onnxmltools"] = md.version("onnxmltools")
        return found


# -- helpers ------------------------------------------------------------------------------


@contextlib.contextmanager
def _without_estimatorwalk(sklearn_utils: Any) -> Iterator[None]:
    """Import skops without its walk over every scikit-learn module.

    At import, skops builds a default list of trusted types with sklearn's all_estimators(),
    which imports every sklearn package (and, through sklearn.externals.array_api_compat,
    torch when it is installed): importing skops took 17.8 s with the walk and 6.9 s without it,
    side by side on this busy 2-core machine (bench/RESULTS.md has the whole conversion). We never
    use that default list (``_load_skops`` passes the types it trusts), so the walk is skipped.
    """
    if "skops.io" in sys.modules:
        yield
        return
    walk = sklearn_utils.all_estimators
    sklearn_utils.all_estimators = lambda *args, **kwargs: []
    try:
        yield
    finally:
        sklearn_utils.all_estimators = walk


def _skops_tree(path: Path, data: bytes) -> tuple[Any, list[str]]:
    """skops' tree of the file's nodes (what it would build, nothing built yet), and the names
    skops itself wants trusted before it builds them."""
    from skops.io._audit import get_tree
    from skops.io._utils import read_schema

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema, context = read_schema(archive)
            tree = get_tree(schema, context, trusted=None)
        return tree, sorted(tree.get_unsafe_set())
    except Exception as exc:  # a hostile or damaged file raises nearly anything (KeyError, RecursionError, ...)
        raise UserError(
            f"{path.name} is not a readable .skops file ({describe(exc, 120)})", "save it again with skops.io.dump"
        ) from None


def _as_sklearn_sees(array: np.ndarray) -> np.ndarray:
    """Floats in float64, the dtype the model was fitted in (some estimators refuse float32 input to
    float64 fitted state); in text columns, the missing-value convention (MISSING_STRING) as NaN."""
    if array.dtype.kind == "f":
        return array.astype(np.float64)
    if array.dtype.kind == "O":
        flat = [np.nan if v == MISSING_STRING else v for v in array.ravel().tolist()]
        return np.array(flat, dtype=object).reshape(array.shape)
    return array


def _by_column(model: Any) -> bool:
    """A ColumnTransformer fitted on a DataFrame: it selects columns by name, one input each."""
    return getattr(model, "feature_names_in_", None) is not None and _has_column_transformer(model)


def _input_columns(loaded: LoadedModel[SklearnState]) -> dict[str, str]:
    """Each ONNX input name, and the DataFrame column it is: the column's own name, as ONNX allows
    any string (spaces, dots, ``:``, ``;``, newlines, markup, a leading digit) except three cases.

    A value cannot share an output's name (label, probabilities, scores, variable), and a name
    that is not valid UTF-8 (a lone surrogate) cannot be stored: such a column is the input
    ``<name>_input`` (the invalid characters as ``\\udc80``), numbered ``_2``, ``_3`` ... if that is
    taken too. An empty name is refused (ONNX reads it as no input, and skl2onnx needs a name).
    """
    columns = [str(col) for col in loaded.model.feature_names_in_]
    if "" in columns:
        raise ConversionError(
            f"{loaded.description} takes a DataFrame column whose name is empty, and an ONNX input needs a name",
            "give the column a name before fitting",
        )
    taken = set(columns) | set(loaded.output_names)
    names: dict[str, str] = {}
    for column in columns:
        name = column
        if _why_renamed(column, loaded.output_names):
            base = column.encode("utf-8", "backslashreplace").decode("utf-8") + "_input"
            name, number = base, 2
            while name in taken:
                name, number = f"{base}_{number}", number + 1
            taken.add(name)
        names[name] = column
    return names


def _why_renamed(column: str, outputs: tuple[str, ...]) -> str:
    """Why ``column`` cannot be an ONNX input's name, or ""."""
    if column in outputs:
        return "an output of the model has that name"
    try:
        column.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid UTF-8, which ONNX names are"
    return ""


def _has_column_transformer(model: Any) -> bool:
    return any(type(e).__name__ == "ColumnTransformer" for e in walk(model))


def _refuse_native_categories(model: Any) -> None:
    """HistGradientBoosting with native categorical splits (categorical_features): neither skl2onnx
    nor this tool writes them yet, and its category columns would need string inputs."""
    for est in walk(model):
        categorical = getattr(est, "is_categorical_", None)
        if categorical is not None and np.any(categorical):
            where = "" if est is model else f" at step {step_path(model, est)}"
            raise ConversionError(
                f"{type(est).__name__}{where} cannot be converted to ONNX: it splits "
                f"{int(np.sum(categorical))} categorical feature(s) natively (categorical_features), "
                "which neither skl2onnx nor this tool converts yet",
                "encode those columns with an OrdinalEncoder in the pipeline and fit without categorical_features",
            )


def unwrap_search(model: Any) -> tuple[Any, str, list[str]]:
    """A fitted search (GridSearchCV, RandomizedSearchCV, HalvingGridSearchCV...) predicts with the
    estimator it refitted on all the data, ``best_estimator_``: that is what is converted.

    Returns the model to convert, its description and the notes for the report."""
    best = getattr(model, "best_estimator_", None)
    if best is None or not hasattr(best, "get_params"):
        return model, describe_estimator(model), []
    search = type(model).__name__
    # the parameters come from the file: printable, and bounded in length
    params = shorten(
        printable(", ".join(f"{k}={v!r}" for k, v in sorted(getattr(model, "best_params_", {}).items()))), 200
    )
    note = f"{search}: converted its refitted best_estimator_ ({describe_estimator(best)}; best parameters {params or 'none'})"
    return best, f"{search}.best_estimator_: {describe_estimator(best)}", [note]


def drop_samplers(model: Any, description: str) -> tuple[Any, str, list[str]]:
    """An imbalanced-learn Pipeline resamples the training rows in fit only: at predict and transform
    it skips every step with ``fit_resample`` (SMOTE, RandomUnderSampler...; ``Pipeline._iter`` in
    imblearn/pipeline.py). The same steps without those, as a scikit-learn Pipeline, are converted.

    Returns the model to convert, its description and the notes for the report."""
    steps = getattr(model, "steps", None)
    if not steps or type(model).__module__.partition(".")[0] != "imblearn":
        return model, description, []
    from sklearn.pipeline import Pipeline

    *before, last = steps  # a last step that samples is kept: the pipeline then has nothing to convert
    dropped = [(name, step) for name, step in before if hasattr(step, "fit_resample")]
    kept = [(name, step) for name, step in before if not hasattr(step, "fit_resample")]
    converted = Pipeline([*kept, last])
    if not dropped:
        return converted, description, []
    samplers = ", ".join(sorted({type(step).__name__ for _, step in dropped}))
    named = shorten(printable(", ".join(f"{name!r} ({type(step).__name__})" for name, step in dropped)), 200)
    note = (
        f"imblearn Pipeline: converted without its sampler step(s) {named}: samplers resample the "
        f"training rows in fit and pass rows through untouched at predict ({describe_estimator(converted)})"
    )
    return converted, f"{description} without its sampler(s) {samplers}", [note]


def _leading_vectorizer(model: Any) -> Any:
    """The text vectorizer that reads the model's input first, if any."""
    first = model
    while getattr(first, "steps", None):
        first = first.steps[0][1]
    return first if type(first).__name__ in VECTORIZERS else None


def output_plan(model: Any, sklearn_base: Any) -> list[tuple[str, str]]:
    """The ONNX outputs, in skl2onnx's order, and the estimator method that computes each.

    Classifiers and mixtures: label and probabilities (predict_proba), or scores
    (decision_function) for a classifier without predict_proba (skl2onnx calls that output
    "probabilities" too; we do not). Outlier detectors: label and scores (decision_function);
    clusterers: label and scores (transform) when they transform. Else one output, variable.
    """

    def kind(test: Callable[[Any], bool]) -> bool:
        try:
            return bool(test(model))
        except (AttributeError, TypeError, ValueError):  # tags of a half-configured meta-estimator
            return False

    predicts = hasattr(model, "predict")
    if predicts and hasattr(model, "predict_proba") and not kind(sklearn_base.is_regressor):
        return [("label", "predict"), ("probabilities", "predict_proba")]  # classifiers, mixtures
    if predicts and kind(sklearn_base.is_classifier):
        if hasattr(model, "decision_function"):
            return [("label", "predict"), ("scores", "decision_function")]
        return [("label", "predict")]
    if predicts and kind(sklearn_base.is_outlier_detector) and hasattr(model, "decision_function"):
        return [("label", "predict"), ("scores", "decision_function")]
    if predicts and kind(sklearn_base.is_clusterer):
        return (
            [("label", "predict"), ("scores", "transform")] if hasattr(model, "transform") else [("label", "predict")]
        )
    return [("variable", "predict" if predicts else "transform")]
