"""Export through skl2onnx, for scikit-learn estimators and (with onnxmltools' converters
registered) XGBoost and LightGBM models: the call, the outputs named after the reference run's,
and the message that names what cannot be converted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import numpy as np

from converter.errors import ConversionError, UnsupportedByRoute, UserError, describe
from converter.escape import printable
from converter.frameworks.base import ExportJob, ExportResult, LoadedModel, TensorSpec
from converter.frameworks.sklearn import stable as sklearn_stable

ROUTE = "skl2onnx.convert_sklearn"


def export_with_skl2onnx(
    require: Callable[[str], ModuleType],
    loaded: LoadedModel[Any],
    job: ExportJob,
    columns: Mapping[str, str] | None = None,
) -> ExportResult:
    """Write ``job.path`` with ``skl2onnx.convert_sklearn``; the outputs get ``loaded.output_names``,
    the inputs the specs' names. ``columns``: the DataFrame column an input name stands for, where
    they differ (a ColumnTransformer selects its columns by their own names)."""
    skl2onnx = require("skl2onnx")
    data_types = require("skl2onnx.common.data_types")
    from converter.frameworks.sklearn import converters as sklearn_converters

    estimators = walk(loaded.model)
    sklearn_converters.register()
    foreign = {type(e).__module__.split(".")[0] for e in estimators} & {"xgboost", "lightgbm"}
    if foreign:
        require("onnxmltools")
        sklearn_converters.register_boosters(foreign)
    initial_types = [((columns or {}).get(s.name, s.name), onnx_type(data_types, s)) for s in job.specs]
    sklearn_converters.DOUBLED.clear()
    try:
        onx = skl2onnx.convert_sklearn(
            loaded.model,
            name=loaded.description,  # skl2onnx's default is a random uuid4: two runs, two files
            initial_types=initial_types,
            target_opset={"": job.opset, "ai.onnx.ml": ml_opset(job.opset)},
            options=_plain_tensor_options(estimators) or None,
        )
    except Exception as exc:
        raise conversion_error(loaded.model, exc) from None
    _name_outputs(onx, loaded)
    _name_inputs(onx, job.specs)
    _portable_locale(onx.graph)
    _drop_unused_inputs(onx.graph)
    sklearn_stable.make_reproducible(onx)
    job.path.write_bytes(onx.SerializeToString())
    return ExportResult(
        path=job.path,
        exporter=f"skl2onnx {skl2onnx.__version__}",
        warnings=[
            f"{name} is computed in double precision inside the graph: {why}"
            for name, why in sorted(sklearn_converters.DOUBLED.items())
        ],
    )


# skl2onnx writes StringNormalizer (a vectorizer's lowercase) with locale en_US.UTF-8, which
# onnxruntime must construct at load: machines without it (python:3.11-slim, most CI images)
# cannot load the file ("Failed to construct locale with name:en_US.UTF-8"). C.UTF-8 is built
# into glibc since 2.35 and lowercases Unicode the same way.
PORTABLE_LOCALE = "C.UTF-8"


def _portable_locale(graph: Any) -> None:
    from onnx import helper

    for node in graph.node:
        if node.op_type == "StringNormalizer":
            kept = [a for a in node.attribute if a.name != "locale"]
            del node.attribute[:]
            node.attribute.extend([*kept, helper.make_attribute("locale", PORTABLE_LOCALE)])


def _drop_unused_inputs(graph: Any) -> None:
    """Remove inputs no node reads: DataFrame columns the ColumnTransformer drops. A serving
    client need not send them, and the file cannot know their type (the model keeps none)."""
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    kept = [i for i in graph.input if i.name in used]
    if len(kept) < len(graph.input) and kept:
        del graph.input[:]
        graph.input.extend(kept)


def walk(estimator: Any) -> list[Any]:
    """The estimator and every estimator nested in it (pipelines, column transformers)."""
    found = [estimator]
    for attr in ("steps", "transformers_", "transformer_list"):
        for item in getattr(estimator, attr, None) or []:
            child = item[1]
            if hasattr(child, "get_params"):
                found.extend(walk(child))
    for attr in ("estimator_", "regressor_", "base_estimator_"):
        child = getattr(estimator, attr, None)
        if child is not None and hasattr(child, "get_params"):
            found.extend(walk(child))
    return found


def describe_estimator(model: Any) -> str:
    steps = getattr(model, "steps", None)
    if steps:
        return f"Pipeline({', '.join(type(step).__name__ for _, step in steps)})"
    return type(model).__name__


def onnx_type(data_types: Any, spec: TensorSpec) -> Any:
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
        elif allowed is not None and _is_classifier(estimator):
            # skl2onnx's pipeline parser gives a classifier with no options zipmap=True, which
            # LinearSVC's converter refuses ("Option 'zipmap' not in [...]"): an entry stops that
            options[id(estimator)] = {}
    return options


def _is_classifier(estimator: Any) -> bool:
    from sklearn.base import is_classifier

    try:
        return bool(is_classifier(estimator))
    except (AttributeError, TypeError):  # a wrapped booster has no scikit-learn tags
        return False


# Binary classifiers without predict_proba: skl2onnx writes two score columns, (-d, d) for
# linear models and (d, -d) for libsvm's SVC/NuSVC, where scikit-learn's decision_function is d;
# for RidgeClassifier it writes d alone but declares two columns. None: keep the one column.
_BINARY_SCORE_COLUMN: dict[str, int | None] = {"SVC": 0, "NuSVC": 0, "RidgeClassifier": None, "RidgeClassifierCV": None}


def _name_outputs(onx: Any, loaded: LoadedModel[Any]) -> None:
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
    model = final_estimator(loaded.model)
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


def final_estimator(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return final_estimator(steps[-1][1]) if steps else model


def conversion_error(model: Any, exc: Exception) -> ConversionError:
    """The one-line reason and what to do, naming the estimator that cannot be converted.

    No converter, or an estimator setting with no ONNX equivalent, is the same at every opset:
    ``UnsupportedByRoute`` (the pipeline tries no lower opset); anything else may be the opset's.
    """
    from converter.frameworks.sklearn.converters import NO_ONNX_EQUIVALENT

    text = str(exc)
    # skl2onnx: "Unable to find a shape calculator for type '<class 'sklearn...NearestCentroid'>'"
    missing = re.search(r"for type '<class '([\w.]+)'>'", text)
    where = "" if "(" not in describe_estimator(model) else f" (in {describe_estimator(model)})"
    failed = _failed_step(exc)
    path = step_path(model, failed) if failed is not None else None
    if path and failed is not model and not missing:
        reason = NO_ONNX_EQUIVALENT.get(type(failed).__name__, describe(exc))
        return UnsupportedByRoute(
            f"{type(failed).__name__} at step {path} cannot be converted to ONNX: {reason}",
            "use a setting of this step that converts, or keep it outside the exported model",
        )
    if missing:
        name = missing.group(1).rsplit(".", 1)[-1]
        if name in NO_ONNX_EQUIVALENT:
            return UnsupportedByRoute(
                f"{name} cannot be converted to ONNX{where}: {NO_ONNX_EQUIVALENT[name]}",
                "keep this step outside the exported model, or replace it with an estimator that converts",
            )
        return UnsupportedByRoute(
            f"{name} cannot be converted to ONNX{where}: neither skl2onnx nor this tool has a converter for it",
            "replace it with an estimator that converts (bench/COVERAGE.md lists them)",
        )
    name = type(final_estimator(model)).__name__
    if isinstance(exc, NotImplementedError) or name in NO_ONNX_EQUIVALENT:
        reason = NO_ONNX_EQUIVALENT.get(name, text)
        return UnsupportedByRoute(
            f"{name} cannot be converted to ONNX{where}: {reason}", "use a setting of the estimator that converts"
        )
    return ConversionError(
        f"skl2onnx could not convert {describe_estimator(model)}: {describe(exc)}",
        "see bench/COVERAGE.md for what converts",
    )


def _failed_step(exc: BaseException) -> Any:
    """The estimator whose skl2onnx converter or shape calculator raised: the innermost frame of the
    traceback that holds an ``operator`` with a ``raw_operator`` (skl2onnx's argument name)."""
    failed = None
    tb = exc.__traceback__
    while tb is not None:
        operator = tb.tb_frame.f_locals.get("operator")
        raw = getattr(operator, "raw_operator", None)
        if raw is not None and hasattr(raw, "get_params"):
            failed = raw
        tb = tb.tb_next
    return failed


def step_path(model: Any, target: Any, prefix: str = "") -> str | None:
    """Where ``target`` sits in ``model`` by step names, e.g. ``columns/cat/imputer``; None if absent."""
    if model is target:
        return prefix or type(model).__name__
    children = [(n, c) for n, c in getattr(model, "steps", None) or []]
    children += [(n, c) for n, c, *_ in getattr(model, "transformers_", None) or []]
    children += [(n, c) for n, c in getattr(model, "transformer_list", None) or []]
    children += [(a, getattr(model, a)) for a in ("estimator_", "regressor_") if hasattr(model, a)]
    for name, child in children:
        if hasattr(child, "get_params"):
            found = step_path(child, target, f"{prefix}/{printable(name)}" if prefix else printable(name))
            if found is not None:
                return found
    return None
