"""What a .skops file may hold: decided node by node on skops' own tree, before anything is built.

skops reads a file into a tree of nodes (``skops.io._audit.get_tree``) and builds only the types
it is told to trust. Trusting whole module roots (``builtins``, ``numpy``, ...) trusted
``builtins.eval`` and ``numpy.vectorize`` with them: a FunctionTransformer holding
``numpy.vectorize(builtins.eval)`` then evaluated strings during the reference run (issue 14).
So the decision here is per node, by what building that node does, and names types and functions
exactly; a module name in the file is never imported to decide, except a scikit-learn module
(outside its tests and vendored packages) to look a class up.

A node is loaded when it is (docs/sklearn.md says the same):
- an instance of a scikit-learn class that subclasses one of ``SKLEARN_BASES`` (estimators,
  kernels, losses, distance metrics, optimisers, CV splitters, scorers) or is in
  ``SKLEARN_CLASSES``; a tree (``sklearn.tree._tree.Tree``); a scikit-learn Cython loss;
- an instance of ``OTHER_CLASSES`` (XGBoost and LightGBM wrappers: see ``BOOSTER_TYPES``;
  imbalanced-learn's Pipeline and samplers: ``IMBLEARN_TYPES``);
- a numpy array, scalar, dtype, masked array, RandomState or Generator (with a numpy bit
  generator), a scipy sparse matrix, or a builtin container or scalar (``CONTAINERS``,
  ``CONSTRUCTED``);
- a type: a builtin scalar or container type, a numpy scalar type, or one of the classes above;
- a function in the allow-list: numpy ufuncs, scipy.special ufuncs, ``NUMPY_FUNCTIONS``, the
  functions listed in ``sklearn.metrics.__all__``, ``OTHER_FUNCTIONS``;
- a ``functools.partial`` of a function in ``PARTIALS``, with only the keywords listed there.
Everything else is refused: any other function or builtin (eval, exec, compile, __import__,
getattr, open, os.*, subprocess.*, pickle.*, numpy.vectorize, numpy.frompyfunc, ...), bound
methods, ``operator.attrgetter/itemgetter/methodcaller``, and node kinds this module does not know.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

# The XGBoost and LightGBM scikit-learn wrappers, trusted by exact name (the loader checks that
# their package is installed). skops rebuilds them with __new__ and __setstate__, and their
# __setstate__ only hands the model bytes to the library's own parser (XGBoosterUnserializeFromBuffer,
# LGBM_BoosterLoadModelFromString), the one that reads their native model files: no code from
# the file runs. A custom objective or callback is a function, refused like any other.
BOOSTER_TYPES = {
    "xgboost": (
        "xgboost.core.Booster",
        "xgboost.sklearn.XGBClassifier",
        "xgboost.sklearn.XGBRegressor",
        "xgboost.sklearn.XGBRFClassifier",
        "xgboost.sklearn.XGBRFRegressor",
    ),
    "lightgbm": ("lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier", "lightgbm.sklearn.LGBMRegressor"),
}
# scikit-learn classes whose instances are loaded: subclasses of these (looked up by name in the
# class's MRO, so nothing more is imported) ...
SKLEARN_BASES = frozenset(
    {
        "sklearn.base.BaseEstimator",
        "sklearn.gaussian_process.kernels.Kernel",
        "sklearn._loss.loss.BaseLoss",
        "sklearn._loss.link.BaseLink",
        "sklearn.metrics._dist_metrics.DistanceMetric",
        "sklearn.neural_network._stochastic_optimizers.BaseOptimizer",
        "sklearn.model_selection._split.BaseCrossValidator",
        "sklearn.model_selection._split.BaseShuffleSplit",
        "sklearn.metrics._scorer._BaseScorer",
    }
)
# ... and these, which fitted estimators hold and which subclass none of them.
SKLEARN_CLASSES = frozenset(
    {
        "sklearn._loss.link.Interval",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.cluster._bisect_k_means._BisectingTree",
        "sklearn.compose._column_transformer.make_column_selector",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.metrics._scorer._MultimetricScorer",
        "sklearn.metrics._scorer._PassthroughScorer",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.utils._bunch.Bunch",
    }
)
# Modules whose classes are all losses (rebuilt by skops' LossNode, which calls the class).
SKLEARN_LOSS_MODULES = ("sklearn._loss._loss", "sklearn.linear_model._sgd_fast")
# scikit-learn modules never imported to look a class up: tests and vendored packages.
SKLEARN_NOT_IMPORTED = frozenset({"tests", "conftest", "_testing", "estimator_checks", "externals", "_build_utils"})
# imbalanced-learn's Pipeline and samplers (issue 16 item 9), trusted by exact name (the loader
# checks that imblearn is installed). They subclass scikit-learn's BaseEstimator and define no
# __setstate__, __reduce__ or __new__ of their own (imbalanced-learn 0.14.2): skops rebuilds them as it
# rebuilds a scikit-learn estimator. The samplers are dropped before conversion (backend.drop_samplers).
# FunctionSampler is not here: it holds a function of the user's.
IMBLEARN_TYPES = (
    "imblearn.pipeline.Pipeline",
    "imblearn.over_sampling._adasyn.ADASYN",
    "imblearn.over_sampling._random_over_sampler.RandomOverSampler",
    "imblearn.over_sampling._smote.base.SMOTE",
    "imblearn.over_sampling._smote.base.SMOTEN",
    "imblearn.over_sampling._smote.base.SMOTENC",
    "imblearn.over_sampling._smote.cluster.KMeansSMOTE",
    "imblearn.over_sampling._smote.filter.BorderlineSMOTE",
    "imblearn.over_sampling._smote.filter.SVMSMOTE",
    "imblearn.under_sampling._prototype_generation._cluster_centroids.ClusterCentroids",
    "imblearn.under_sampling._prototype_selection._condensed_nearest_neighbour.CondensedNearestNeighbour",
    "imblearn.under_sampling._prototype_selection._edited_nearest_neighbours.AllKNN",
    "imblearn.under_sampling._prototype_selection._edited_nearest_neighbours.EditedNearestNeighbours",
    "imblearn.under_sampling._prototype_selection._edited_nearest_neighbours.RepeatedEditedNearestNeighbours",
    "imblearn.under_sampling._prototype_selection._instance_hardness_threshold.InstanceHardnessThreshold",
    "imblearn.under_sampling._prototype_selection._nearmiss.NearMiss",
    "imblearn.under_sampling._prototype_selection._neighbourhood_cleaning_rule.NeighbourhoodCleaningRule",
    "imblearn.under_sampling._prototype_selection._one_sided_selection.OneSidedSelection",
    "imblearn.under_sampling._prototype_selection._random_under_sampler.RandomUnderSampler",
    "imblearn.under_sampling._prototype_selection._tomek_links.TomekLinks",
    "imblearn.combine._smote_enn.SMOTEENN",
    "imblearn.combine._smote_tomek.SMOTETomek",
)
# The packages those names need, by import name: the loader says which one is missing.
PACKAGE_TYPES = {**BOOSTER_TYPES, "imblearn": IMBLEARN_TYPES}
OTHER_CLASSES = frozenset({"scipy.interpolate._bsplines.BSpline", *(t for ts in PACKAGE_TYPES.values() for t in ts)})
# Containers skops rebuilds by calling the type with their items.
CONTAINERS = {
    "DictNode": frozenset({"builtins.dict", "collections.OrderedDict", "sklearn.utils._bunch.Bunch"}),
    "ListNode": frozenset({"builtins.list"}),
    "TupleNode": frozenset({"builtins.tuple"}),
    "SetNode": frozenset({"builtins.set"}),
    "DefaultDictNode": frozenset({"collections.defaultdict"}),
    "BytesNode": frozenset({"builtins.bytes"}),
    "BytearrayNode": frozenset({"builtins.bytearray"}),
    "SliceNode": frozenset({"builtins.slice"}),
}
# Builtin types skops rebuilds by calling them with stored arguments (ConstructorFromReduceNode).
CONSTRUCTED = frozenset({"builtins.frozenset", "builtins.range"})
BUILTIN_TYPES = frozenset(
    f"builtins.{t}"
    for t in ("bool", "int", "float", "complex", "str", "bytes", "bytearray", "list", "tuple", "dict", "set")
) | {"builtins.frozenset", "builtins.slice", "builtins.object", "collections.OrderedDict"}
# numpy functions that are not ufuncs (FeatureAgglomeration's pooling_func, FunctionTransformer).
# fmt: off
NUMPY_FUNCTIONS = frozenset({
    "mean", "median", "average", "sum", "prod", "min", "max", "amin", "amax", "std", "var", "percentile", "quantile",
    "nanmean", "nanmedian", "nansum", "nanprod", "nanmin", "nanmax", "nanstd", "nanvar", "clip", "round", "around",
})
# fmt: on
OTHER_FUNCTIONS = frozenset(
    {
        # SelectKBest, SelectPercentile, GenericUnivariateSelect: score_func
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.f_regression",
        "sklearn.feature_selection._univariate_selection.r_regression",
        "sklearn.feature_selection._univariate_selection.chi2",
        "sklearn.feature_selection._mutual_info.mutual_info_classif",
        "sklearn.feature_selection._mutual_info.mutual_info_regression",
        # BisectingKMeans keeps its k-means step
        "sklearn.cluster._kmeans._kmeans_single_lloyd",
        "sklearn.cluster._kmeans._kmeans_single_elkan",
        # scipy's BSpline (SplineTransformer) keeps numpy's asarray through array-api-compat
        "scipy._lib.array_api_compat.numpy._aliases.asarray",
    }
)
# functools.partial of these functions, with only these keywords: HistGradientBoosting* fitted
# with categorical_features="from_dtype" keeps partial(check_array, dtype=..., ensure_all_finite=...)
# as its numerical FunctionTransformer (sklearn/ensemble/_hist_gradient_boosting/gradient_boosting.py).
PARTIALS = {"sklearn.utils.validation.check_array": frozenset({"dtype", "ensure_all_finite"})}


def refusals(tree: Any) -> list[str]:
    """What the tree holds that is not loaded, one description each, sorted (empty: load it)."""
    refused: set[str] = set()
    seen: set[int] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        problem = _judge(node)
        if problem:
            refused.add(problem)
        skipped = node.func if type(node).__name__ == "PartialNode" and not problem else None
        stack.extend(child for child in _held_nodes(node) if child is not skipped)
    return sorted(refused)


def shown(name: str, limit: int = 100) -> str:
    """A name from the file, safe to print: no line breaks or markup, at most ``limit`` characters."""
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "._-() " else "?" for c in name)
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


def _held_nodes(node: Any) -> Iterator[Any]:
    """Every node this node holds: its listed children and any other node-valued attribute."""
    from skops.io._audit import Node

    def nodes_in(value: Any, depth: int) -> Iterator[Any]:
        if isinstance(value, Node):
            yield value
        elif depth and isinstance(value, dict | list | tuple):
            for item in value.values() if isinstance(value, dict) else value:
                yield from nodes_in(item, depth - 1)

    # children is {name: node, list of nodes or dict of nodes}: three levels reach every node
    for value in vars(node).values():
        yield from nodes_in(value, 3)


def _judge(node: Any) -> str:
    """Why this node is refused ("" when it is loaded)."""
    kind = type(node).__name__
    name = f"{node.module_name}.{node.class_name}"
    if kind in CONTAINERS:
        return "" if name in CONTAINERS[kind] else shown(name)
    if kind == "PartialNode":
        return _judge_partial(node)
    if kind == "MethodNode":
        return f"{shown(f'{node.obj.module_name}.{node.obj.class_name}.{node.func}')} (a bound method)"
    rule = _RULES.get(kind)
    if rule is None:
        return f"{shown(name)} (stored as a skops {shown(kind)}, which this tool does not load)"
    return "" if rule(node, name) else shown(name)


def _judge_partial(node: Any) -> str:
    func = node.func
    func_name = f"{func.module_name}.{func.class_name}"
    allowed = PARTIALS.get(func_name) if type(func).__name__ == "FunctionNode" else None
    args = getattr(node.args, "content", None)
    keywords = getattr(node.kwds, "content", None)
    plain = type(node.namespace).__name__ == "JsonNode" and node.namespace.content == "null"
    if allowed is None or args != [] or not isinstance(keywords, dict) or not plain:
        return f"functools.partial of {shown(func_name)}"
    if not set(keywords) <= allowed:
        return f"functools.partial of {shown(func_name)} with {shown(', '.join(sorted(set(keywords) - allowed)))}"
    return ""


# -- the rules, by node kind ----------------------------------------------------------------------


def _instance(node: Any, name: str) -> bool:
    return name in OTHER_CLASSES or _sklearn_instance(name)


def _sklearn_instance(name: str) -> bool:
    if name in SKLEARN_CLASSES:
        return True
    cls = _sklearn_class(name)
    return cls is not None and any(f"{base.__module__}.{base.__qualname__}" in SKLEARN_BASES for base in cls.__mro__)


def _loss(node: Any, name: str) -> bool:
    return name.rpartition(".")[0] in SKLEARN_LOSS_MODULES and _sklearn_class(name) is not None


def _type(node: Any, name: str) -> bool:
    """A type as a value (e.g. dtype=np.float64); skops also stores builtin functions this way."""
    return (
        name in BUILTIN_TYPES
        or name in _numpy_scalar_types()
        or name == "sklearn.tree._tree.Tree"
        or _loss(node, name)
        or _instance(node, name)
    )


def _function(node: Any, name: str) -> bool:
    module, _, attr = name.rpartition(".")
    if module == "numpy":
        found = vars(np).get(attr)
        return isinstance(found, np.ufunc) or (attr in NUMPY_FUNCTIONS and callable(found))
    if module.startswith("scipy.special."):
        return _scipy_special_ufunc(module, attr)
    if module.startswith("sklearn.metrics."):
        return name in _metric_functions()
    return name in OTHER_FUNCTIONS


def _scipy_special_ufunc(module: str, attr: str) -> bool:
    import scipy.special

    public = vars(scipy.special).get(attr)
    defined = vars(sys.modules[module]).get(attr) if module in sys.modules else None
    return isinstance(public, np.ufunc) and defined is public


def _random_generator(node: Any, name: str) -> bool:
    bit_generator = vars(np.random).get(node.bit_generator_name)
    is_bit_generator = isinstance(bit_generator, type) and issubclass(bit_generator, np.random.BitGenerator)
    return name == "numpy.random._generator.Generator" and is_bit_generator


def _exactly(*names: str) -> Callable[[Any, str], bool]:
    return lambda node, name: name in names


# -- lookups --------------------------------------------------------------------------------------


@functools.cache
def _sklearn_class(name: str) -> type | None:
    """The scikit-learn class ``name`` defines, importing only its scikit-learn module."""
    module, _, attr = name.rpartition(".")
    parts = module.split(".")
    if parts[0] != "sklearn" or not all(p.isidentifier() for p in parts) or SKLEARN_NOT_IMPORTED & set(parts):
        return None
    if any(p.startswith("test") for p in parts):
        return None
    try:
        found = vars(importlib.import_module(module)).get(attr)
    except Exception:  # a module that does not exist, or fails to import: not a class we load
        return None
    if isinstance(found, type) and found.__module__ == module and found.__name__ == attr:
        return found
    return None


@functools.cache
def _numpy_scalar_types() -> frozenset[str]:
    return frozenset(f"numpy.{n}" for n, t in vars(np).items() if isinstance(t, type) and issubclass(t, np.generic))


@functools.cache
def _metric_functions() -> frozenset[str]:
    import inspect

    import sklearn.metrics

    found = (getattr(sklearn.metrics, n) for n in sklearn.metrics.__all__)
    return frozenset(f"{f.__module__}.{f.__name__}" for f in found if inspect.isfunction(f))


def _is_sparse_class(name: str) -> bool:
    formats = ("bsr", "coo", "csc", "csr", "dia", "dok", "lil")
    return name.rpartition(".")[2] in {f"{f}_{kind}" for f in formats for kind in ("matrix", "array")}


_RULES: dict[str, Callable[[Any, str], bool]] = {
    "ObjectNode": _instance,
    "TreeNode": _exactly("sklearn.tree._tree.Tree"),
    "LossNode": _loss,
    "TypeNode": _type,
    "FunctionNode": _function,
    "NdArrayNode": lambda node, name: name == "numpy.ndarray" or name in _numpy_scalar_types(),
    "MaskedArrayNode": _exactly("numpy.ma.MaskedArray", "numpy.ma.core.MaskedArray"),
    "DTypeNode": _exactly("numpy.dtype"),
    "RandomStateNode": _exactly("numpy.random.mtrand.RandomState"),
    "RandomGeneratorNode": _random_generator,
    "SparseMatrixNode": lambda node, name: name.startswith("scipy.sparse.") and _is_sparse_class(name),
    "ConstructorFromReduceNode": lambda node, name: name in CONSTRUCTED,
    "JsonNode": lambda node, name: True,  # json.loads of its content: numbers, strings, lists, dicts
    "CachedNode": lambda node, name: True,  # the node it repeats is judged where it is held
}
