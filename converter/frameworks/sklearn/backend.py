"""scikit-learn backend: .skops (safe), .joblib/.pkl (only with --allow-unsafe-load), via skl2onnx."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from converter.archives import check_archive_bounds
from converter.errors import ConversionError, MissingFrameworkError, UserError, describe
from converter.frameworks.base import Backend, ExportResult, LoadedModel, TensorSpec, image_hint
from converter.frameworks.sklearn import skops_trust, tree_checks
from converter.frameworks.sklearn import stable as sklearn_stable

if TYPE_CHECKING:
    from converter.request import ConversionRequest

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib"}
# Encoders whose categories tell us an input column holds strings.
STRING_ENCODERS = ("OneHotEncoder", "OrdinalEncoder", "TargetEncoder")


class SklearnBackend(Backend):
    name = "sklearn"
    requirements: ClassVar[dict[str, str]] = {"sklearn": "scikit-learn", "skl2onnx": "skl2onnx", "skops": "skops"}
    image_variant = "sklearn"
    formats_help = "a .skops, .joblib or .pkl file (scikit-learn)"

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
    def load_impl(self, request: ConversionRequest, fmt: str) -> LoadedModel:
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
        tree_checks.check_trees(model, path.name)  # before anything runs the trees: scikit-learn trusts them
        if not any(hasattr(model, m) for m in ("predict", "predict_proba", "transform")):
            raise ConversionError(
                f"{type(model).__name__} has no predict, predict_proba or transform method to convert",
                "convert an estimator that predicts or transforms new rows (DBSCAN and the like only label their training data)",
            )
        plan = output_plan(model, sklearn_base)
        return LoadedModel(
            model=model,
            format=fmt,
            description=_describe(model),
            label_outputs=frozenset(name for name, _ in plan if name == "label"),
            output_names=tuple(name for name, _ in plan),
            notes=notes,
            extra={"plan": plan},
        )

    def _load_skops(self, path: Path, allow_unsafe: bool) -> tuple[Any, list[str]]:
        """The model, and the notes for the report (what --allow-unsafe-load let in)."""
        with _without_estimator_walk(self.require("sklearn.utils")):
            sio = self.require("skops.io")
        check_archive_bounds(path, "--model-path")
        data = path.read_bytes()  # audited and loaded from the same bytes
        tree, trusted = _skops_tree(path, data)
        refused = skops_trust.refusals(tree)
        del tree
        self._check_booster_packages(path, trusted)
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

    def _check_booster_packages(self, path: Path, trusted: list[str]) -> None:
        for root, names in sorted(skops_trust.BOOSTER_TYPES.items()):
            if set(names) & set(trusted) and importlib.util.find_spec(root) is None:
                raise MissingFrameworkError(
                    f"{path.name} holds a {root} model and {root} is not installed",
                    f"pip install 'onnx-convert-action[{root}]', or use {image_hint('full')}",
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
    def input_specs_impl(self, loaded: LoadedModel, request: ConversionRequest) -> list[TensorSpec]:
        model = loaded.model
        string_columns = _string_columns(model)
        if _by_column(model):
            # A ColumnTransformer fitted on a DataFrame selects columns by name: one input per column.
            columns = _input_columns(loaded)
            loaded.notes.extend(
                f"column {column!r} is the ONNX input {name!r}: {_why_renamed(column, loaded.output_names)}"
                for name, column in columns.items()
                if name != column
            )
            return [
                TensorSpec(
                    name=name,
                    shape=(None, 1),
                    dtype="string" if column in string_columns else "float32",
                    categories=string_columns.get(column, ()),
                )
                for name, column in columns.items()
            ]
        n_features = getattr(model, "n_features_in_", None)
        if n_features is None:
            # e.g. a text pipeline; the user must describe the input
            return [TensorSpec(name="input", shape=None, dtype="float32")]
        return [TensorSpec(name="input", shape=(None, int(n_features)), dtype="float32")]

    # -- reference run ----------------------------------------------------------------------
    def run_impl(self, loaded: LoadedModel, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        model = loaded.model
        features = self._features(loaded, inputs)
        outputs: dict[str, Any] = {}
        for name, method in loaded.extra["plan"]:
            value = getattr(model, method)(features)
            # sparse results (TfidfTransformer, KNeighborsTransformer, ...) are dense in ONNX
            value = np.asarray(value.toarray() if hasattr(value, "toarray") else value)
            outputs[name] = value.reshape(-1, 1) if name == "variable" and value.ndim == 1 else value
        return outputs

    def _features(self, loaded: LoadedModel, inputs: dict[str, np.ndarray]) -> Any:
        # The ONNX model sees float32; sklearn gets the same values in float64, the dtype it
        # was fitted in (some estimators refuse float32 input to float64 fitted state).
        inputs = {n: a.astype(np.float64) if a.dtype.kind == "f" else a for n, a in inputs.items()}
        if not _by_column(loaded.model):
            return next(iter(inputs.values()))
        pandas = self.require("pandas")
        column_of = _input_columns(loaded)
        columns = {column_of[name]: (arr[:, 0] if arr.ndim == 2 else arr) for name, arr in inputs.items()}
        return pandas.DataFrame(columns)[list(loaded.model.feature_names_in_)]

    # -- export -----------------------------------------------------------------------------
    def export_impl(
        self, loaded: LoadedModel, specs: list[TensorSpec], opset: int, path: Path, dynamic_batch: bool
    ) -> ExportResult:
        skl2onnx = self.require("skl2onnx")
        data_types = self.require("skl2onnx.common.data_types")
        from converter.frameworks.sklearn import converters as sklearn_converters

        estimators = _walk(loaded.model)
        sklearn_converters.register()
        foreign = {type(e).__module__.split(".")[0] for e in estimators} & {"xgboost", "lightgbm"}
        if foreign:
            self.require("onnxmltools")
            sklearn_converters.register_boosters(foreign)
        # skl2onnx finds a ColumnTransformer's columns by these names: the columns' own
        column_of = _input_columns(loaded) if _by_column(loaded.model) else {}
        initial_types = [(column_of.get(s.name, s.name), _onnx_type(data_types, s)) for s in specs]
        sklearn_converters.DOUBLED.clear()
        try:
            onx = skl2onnx.convert_sklearn(
                loaded.model,
                name=loaded.description,  # skl2onnx's default is a random uuid4: two runs, two files
                initial_types=initial_types,
                target_opset={"": opset, "ai.onnx.ml": ml_opset(opset)},
                options=_plain_tensor_options(estimators) or None,
            )
        except Exception as exc:
            raise ConversionError(*_conversion_message(loaded.model, exc)) from None
        _name_outputs(onx, loaded)
        _name_inputs(onx, specs)
        sklearn_stable.make_reproducible(onx)
        path.write_bytes(onx.SerializeToString())
        return ExportResult(
            path=path,
            exporter=f"skl2onnx {skl2onnx.__version__}",
            export_path="skl2onnx.convert_sklearn",
            warnings=[
                f"{name} is computed in double precision inside the graph: {why}"
                for name, why in sorted(sklearn_converters.DOUBLED.items())
            ],
        )

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
def _without_estimator_walk(sklearn_utils: Any) -> Iterator[None]:
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


def _walk(estimator: Any) -> list[Any]:
    """The estimator and every estimator nested in it (pipelines, column transformers)."""
    found = [estimator]
    for attr in ("steps", "transformers_", "transformer_list"):
        for item in getattr(estimator, attr, None) or []:
            child = item[1]
            if hasattr(child, "get_params"):
                found.extend(_walk(child))
    for attr in ("estimator_", "regressor_", "base_estimator_"):
        child = getattr(estimator, attr, None)
        if child is not None and hasattr(child, "get_params"):
            found.extend(_walk(child))
    return found


def _by_column(model: Any) -> bool:
    """A ColumnTransformer fitted on a DataFrame: it selects columns by name, one input each."""
    return getattr(model, "feature_names_in_", None) is not None and _has_column_transformer(model)


def _input_columns(loaded: LoadedModel) -> dict[str, str]:
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
    return any(type(e).__name__ == "ColumnTransformer" for e in _walk(model))


def _string_columns(model: Any) -> dict[str, tuple[str, ...]]:
    """Columns routed to a fitted encoder with string categories, and those categories."""
    columns: dict[str, tuple[str, ...]] = {}
    for est in _walk(model):
        for _, transformer, selected in getattr(est, "transformers_", None) or []:
            for inner in _walk(transformer) if hasattr(transformer, "get_params") else []:
                if type(inner).__name__ not in STRING_ENCODERS:
                    continue
                for col, categories in zip(_as_list(selected), getattr(inner, "categories_", []), strict=False):
                    if getattr(categories, "dtype", None) is not None and categories.dtype.kind in "OUS":
                        columns[str(col)] = tuple(str(c) for c in categories)
    return columns


def _as_list(selected: Any) -> list[Any]:
    if isinstance(selected, str):
        return [selected]
    try:
        return list(selected)
    except TypeError:
        return [selected]


def _onnx_type(data_types: Any, spec: TensorSpec) -> Any:
    shape = [d if isinstance(d, int) else None for d in (spec.shape or (None, None))]
    kinds = {
        "float32": data_types.FloatTensorType,
        "float64": data_types.DoubleTensorType,
        "int64": data_types.Int64TensorType,
        "int32": data_types.Int32TensorType,
        "bool": data_types.BooleanTensorType,
        "string": data_types.StringTensorType,
    }
    if spec.dtype not in kinds:
        raise UserError(
            f'--input-dtypes: scikit-learn models take float32, float64, int64, int32, bool or string, not "{spec.dtype}"',
            "use one of those dtypes",
        )
    return kinds[spec.dtype](shape)


def _describe(model: Any) -> str:
    steps = getattr(model, "steps", None)
    if steps:
        return f"Pipeline({', '.join(type(step).__name__ for _, step in steps)})"
    return type(model).__name__


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


def ml_opset(opset: int) -> int:
    """The ai.onnx.ml opset to write next to default-domain ``opset``.

    The one released with it (onnx.helper.VERSION_TABLE), at most 3: skl2onnx 1.20 refuses 4
    ("version 4 of domain 'ai.onnx.ml' not supported yet", seen with IsolationForest at opset 21)
    and version 5 deprecates the TreeEnsembleClassifier/Regressor operators it writes.
    """
    import onnx.helper

    released = [row[3] for row in onnx.helper.VERSION_TABLE if row[2] <= opset and row[3] is not None]
    return min(max(released, default=1), 3)


def _plain_tensor_options(estimators: list[Any]) -> dict[int, dict[str, Any]]:
    """zipmap=False wherever the converter has that option: probabilities as a plain float
    tensor, not a ZipMap (a list of dicts that few runtimes take)."""
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import _converter_pool

    options: dict[int, dict[str, Any]] = {}
    for estimator in estimators:
        if hasattr(estimator, "steps"):  # skl2onnx hands a Pipeline's options to its last step
            continue
        alias = sklearn_operator_name_map.get(type(estimator))
        converter = _converter_pool.get(alias) if alias else None
        allowed = converter.get_allowed_options() if converter is not None else None
        if allowed and "zipmap" in allowed:
            options[id(estimator)] = {"zipmap": False}
    return options


# Binary classifiers without predict_proba: skl2onnx writes two score columns, (-d, d) for
# linear models and (d, -d) for libsvm's SVC/NuSVC, where scikit-learn's decision_function is d;
# for RidgeClassifier it writes d alone but declares two columns. None: keep the one column.
_BINARY_SCORE_COLUMN: dict[str, int | None] = {"SVC": 0, "NuSVC": 0, "RidgeClassifier": None, "RidgeClassifierCV": None}


def _name_outputs(onx: Any, loaded: LoadedModel) -> None:
    """Give the graph outputs the names of the plan, and decision scores scikit-learn's shape."""
    graph = onx.graph
    wanted = list(loaded.output_names)
    actual = [o.name for o in graph.output]
    if len(actual) > len(wanted) and actual[0] == "label" and wanted == ["label"]:
        # e.g. NearestCentroid(metric="manhattan"): scikit-learn has no predict_proba for it, so
        # the file does not expose what the converter computed for one either
        del graph.output[1:]
        actual = actual[:1]
    if len(actual) != len(wanted):
        raise ConversionError(
            f"skl2onnx wrote the outputs {', '.join(actual)} for {loaded.description}, "
            f"which has {', '.join(wanted)} to compare",
            "report this model to onnx-convert-action",
        )
    for old, new in zip(actual, wanted, strict=True):
        if old != new:
            _rename_value(graph, old, new)
    model = _final_estimator(loaded.model)
    classes = getattr(model, "classes_", None)
    if type(model).__name__ in _VOTING_TREES and wanted == ["label", "probabilities"] and classes is not None:
        _label_from_rounded_probabilities(graph, classes)
    if "scores" not in wanted or classes is None or len(classes) != 2 or "label" not in wanted:
        return
    scores = next(o for o in graph.output if o.name == "scores")
    dims = scores.type.tensor_type.shape.dim
    if len(dims) == 2 and dims[1].dim_value == 2:
        import onnx
        from onnx import helper

        column = _BINARY_SCORE_COLUMN.get(type(model).__name__, 1)
        if column is None:
            dims[1].dim_value = 1
            return
        _rename_value(graph, "scores", "scores_both_columns")
        index = helper.make_tensor("scores_column", onnx.TensorProto.INT64, [1], [column])
        graph.initializer.append(index)
        graph.node.append(helper.make_node("Gather", ["scores_both_columns", "scores_column"], ["scores"], axis=1))
        output = next(o for o in graph.output if o.name == "scores_both_columns")
        output.name = "scores"
        dims[1].dim_value = 1


def _name_inputs(onx: Any, specs: list[TensorSpec]) -> None:
    """Give the graph inputs the model's input names: a DataFrame's column names, as they are.

    skl2onnx makes every name it declares a C identifier (``_generate_unique_name`` in
    skl2onnx/common/_topology.py: ``re.sub("[^\\w+]", "_", seed)``, and ``_`` before a leading
    digit), so the column "unit price" became the input "unit_price" and the file no longer took
    the columns by their names. An ONNX value name is any string (onnxruntime feeds by it), so the
    inputs, in ``initial_types`` order, get their names back.
    """
    actual = [value.name for value in onx.graph.input]
    if len(actual) != len(specs) or actual == [spec.name for spec in specs]:
        return
    # Through names of no column first: a wanted name may be another input's name from skl2onnx.
    for number, old in enumerate(actual):
        _rename_value(onx.graph, old, f"onnx-convert input {number}")
    for number, spec in enumerate(specs):
        _rename_value(onx.graph, f"onnx-convert input {number}", spec.name)


# predict() = classes_[argmax(predict_proba)], and the probabilities are vote shares: two classes
# often tie exactly (45 of 100 trees each). scikit-learn then takes the first class; the float32
# sums in TreeEnsembleClassifier land 1e-7 apart either way and flip the label (2 of 500 rows of
# RandomForestClassifier on iris in bench/COVERAGE.md). The label is recomputed from the
# probabilities rounded to 2^-16, far above float32 noise and far below one vote.
_VOTING_TREES = ("RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier", "ExtraTreeClassifier")


def _label_from_rounded_probabilities(graph: Any, classes: Any) -> None:
    import onnx
    from onnx import helper, numpy_helper

    _rename_value(graph, "label", "label_of_the_trees")
    if all(isinstance(c, str) for c in classes):
        table = numpy_helper.from_array(np.array([str(c) for c in classes], dtype=object), "label_classes")
    else:
        table = numpy_helper.from_array(np.asarray(classes).astype(np.int64), "label_classes")
    scale = helper.make_tensor("label_rounding", onnx.TensorProto.FLOAT, [], [65536.0])
    graph.initializer.extend([table, scale])
    graph.node.extend(
        [
            helper.make_node("Cast", ["probabilities"], ["label_probabilities32"], to=onnx.TensorProto.FLOAT),
            helper.make_node("Mul", ["label_probabilities32", "label_rounding"], ["label_scaled"]),
            helper.make_node("Round", ["label_scaled"], ["label_rounded"]),
            helper.make_node("ArgMax", ["label_rounded"], ["label_index"], axis=1, keepdims=0),
            helper.make_node("Gather", ["label_classes", "label_index"], ["label"], axis=0),
        ]
    )
    output = next(o for o in graph.output if o.name == "label_of_the_trees")
    output.name = "label"


def _rename_value(graph: Any, old: str, new: str) -> None:
    """Rename a value everywhere in the graph (an intermediate already called ``new`` moves aside)."""
    taken = {n for node in graph.node for n in [*node.input, *node.output]} | {i.name for i in graph.initializer}
    if new in taken:
        _rename_value(graph, new, f"{new}_0" if f"{new}_0" not in taken else f"{new}_{len(taken)}")
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for value in [*graph.output, *graph.input]:
        if value.name == old:
            value.name = new


def _final_estimator(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return _final_estimator(steps[-1][1]) if steps else model


def _conversion_message(model: Any, exc: Exception) -> tuple[str, str]:
    """The one-line reason and what to do, naming the estimator that cannot be converted."""
    from converter.frameworks.sklearn.converters import NO_ONNX_EQUIVALENT

    text = str(exc)
    # skl2onnx: "Unable to find a shape calculator for type '<class 'sklearn...NearestCentroid'>'"
    missing = re.search(r"for type '<class '([\w.]+)'>'", text)
    where = "" if "(" not in _describe(model) else f" (in {_describe(model)})"
    if missing:
        name = missing.group(1).rsplit(".", 1)[-1]
        if name in NO_ONNX_EQUIVALENT:
            return (
                f"{name} cannot be converted to ONNX{where}: {NO_ONNX_EQUIVALENT[name]}",
                "keep this step outside the exported model, or replace it with an estimator that converts",
            )
        return (
            f"{name} cannot be converted to ONNX{where}: neither skl2onnx nor this tool has a converter for it",
            "replace it with an estimator that converts (bench/COVERAGE.md lists them)",
        )
    name = type(_final_estimator(model)).__name__
    if isinstance(exc, NotImplementedError) or name in NO_ONNX_EQUIVALENT:
        reason = NO_ONNX_EQUIVALENT.get(name, text)
        return f"{name} cannot be converted to ONNX{where}: {reason}", "use a setting of the estimator that converts"
    return f"skl2onnx could not convert {_describe(model)}: {describe(exc)}", "see bench/COVERAGE.md for what converts"
