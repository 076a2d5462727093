"""Corrections of skl2onnx 1.20 converters that write a wrong file or none (each says what it fixes)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from converter.frameworks.sklearn.converters.clustering import convert_kmeans
from converter.frameworks.sklearn.converters.functions import convert_function_transformer
from converter.frameworks.sklearn.converters.shapes import (
    classifier_shape_any_batch,
    columns_shape,
    knn_imputer_shape,
)
from converter.frameworks.sklearn.converters.transformers import convert_knn_imputer
from converter.input_roles import MISSING_STRING


def register_corrections() -> None:
    """Register the corrected converters in place of skl2onnx's own."""
    _route_missing_values_as_fitted()
    _wrap_converters()
    _fix_shape_calculators()
    _replace_converters()


def _original(model: type) -> tuple[str, Any, Any, dict[str, Any] | None]:
    """skl2onnx's alias, shape calculator, converter function and options for ``model``."""
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import _converter_pool, _shape_calculator_pool

    alias = sklearn_operator_name_map[model]
    converter = _converter_pool[alias]  # a RegisteredConverter; registration wants the function
    return alias, _shape_calculator_pool[alias], converter._fct, converter.get_allowed_options()


def _route_missing_values_as_fitted() -> None:
    """Trees send NaN where scikit-learn does.

    Since scikit-learn 1.3 a fitted tree stores, per split, the side a missing value goes
    (``tree_.missing_go_to_left``; predict follows it). skl2onnx 1.20 writes every split with
    nodes_missing_value_tracks_true=0, so onnxruntime sends NaN to the false (right) branch:
    RandomForest fitted on NaN disagreed on 1 probability in 20 by 0.1. The flag is written from
    the tree (left is the BRANCH_LEQ true branch), in every converter that writes sklearn trees.
    """
    from skl2onnx.common import tree_ensemble
    from skl2onnx.operator_converters import decision_tree, gradient_boosting, isolation_forest, random_forest

    original = tree_ensemble.add_tree_to_attribute_pairs
    if getattr(original, "routes_missing_values", False):
        return

    def add_tree(attr_pairs: dict[str, list[Any]], is_classifier: bool, tree: Any, *args: Any, **kwargs: Any) -> None:
        original(attr_pairs, is_classifier, tree, *args, **kwargs)
        go_left = getattr(tree, "missing_go_to_left", None)
        if go_left is None:
            return
        flags = attr_pairs["nodes_missing_value_tracks_true"]
        start = len(flags) - tree.node_count
        for i in range(tree.node_count):
            leaf = tree.children_left[i] == -1
            flags[start + i] = 0 if leaf else int(go_left[i])

    add_tree.routes_missing_values = True  # type: ignore[attr-defined]
    for module in (tree_ensemble, decision_tree, gradient_boosting, isolation_forest, random_forest):
        if hasattr(module, "add_tree_to_attribute_pairs"):
            module.add_tree_to_attribute_pairs = add_tree


def _wrap_converters() -> None:
    """skl2onnx's converters, run with what they need changed around them."""
    from skl2onnx import update_registered_converter
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomTreesEmbedding,
        VotingClassifier,
    )
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import KBinsDiscretizer, OrdinalEncoder

    # HistGradientBoosting*: skl2onnx passes Python bools (a leaf's "missing goes left" flag) in
    # the integer attribute nodes_missing_value_tracks_true; protobuf >= 7.34 rejects a bool for
    # an int field ("Expected an int, got a boolean", onnx/ir-py#175), so creating the node fails.
    for model in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        alias, shape, convert, options = _original(model)
        update_registered_converter(model, alias, shape, _ints_not_bools(convert), options=options)
    # GaussianProcessClassifier: skl2onnx solves L v = b with com.microsoft:Solve, which
    # onnxruntime does not ship ("Fatal error: com.microsoft:Solve(-1) is not a registered
    # function/op"). L is the fitted Cholesky factor L_, a constant: v = inv(L) b instead.
    alias, shape, convert, options = _original(GaussianProcessClassifier)
    update_registered_converter(GaussianProcessClassifier, alias, shape, _solve_by_inverse(convert), options=options)
    # Sparse-output defaults (KBinsDiscretizer encode="onehot", RandomTreesEmbedding
    # sparse_output=True): ONNX has no sparse tensors, so the file holds the same values dense
    # and the reference run densifies the scipy matrix before comparing.
    for model, attribute, dense in (
        (KBinsDiscretizer, "encode", "onehot-dense"),
        (RandomTreesEmbedding, "sparse_output", False),
        # VotingClassifier(voting="soft", flatten_transform=True): the flag shapes transform() only;
        # predict and predict_proba, which the file computes, are the same either way
        (VotingClassifier, "flatten_transform", False),
    ):
        alias, shape, convert, options = _original(model)
        shape, convert = (
            _shape_with_attribute(shape, attribute, dense),
            _convert_with_attribute(convert, attribute, dense),
        )
        update_registered_converter(model, alias, shape, convert, options=options)
    # OrdinalEncoder fitted on a column with NaN: scikit-learn encodes a missing value as
    # encoded_missing_value (NaN by default); skl2onnx 1.20 writes the NaN category's index
    # instead, which a tree after it routes as a number (lgbm_in_df_pipeline was off by 0.44).
    alias, shape, convert, options = _original(OrdinalEncoder)
    update_registered_converter(OrdinalEncoder, alias, shape, _missing_code_as_nan(convert), options=options)
    # SimpleImputer on a string column (the Titanic recipe, strategy most_frequent or constant):
    # skl2onnx takes only a string missing_values, and scikit-learn's default is NaN. A missing
    # string reaches the file as MISSING_STRING (docs/sklearn.md), so that is the value replaced.
    alias, shape, convert, options = _original(SimpleImputer)
    update_registered_converter(SimpleImputer, alias, shape, _string_missing_as_text(convert), options=options)


# Stands for NaN while skl2onnx's converter writes the codes, then replaced by NaN.
_NAN_CODE = -(2**20)


def _missing_code_as_nan(convert: Callable[..., None]) -> Callable[..., None]:
    def converter(scope: Any, operator: Any, container: Any) -> None:
        encoder = operator.raw_operator
        nan_category = any(len(c) and isinstance(c[-1], float) and np.isnan(c[-1]) for c in encoder.categories_)
        if not (nan_category and np.isnan(encoder.encoded_missing_value)):
            convert(scope, operator, container)
            return
        add_node = container.add_node

        def add_node_nan(*args: Any, **attrs: Any) -> Any:
            if "values_floats" in attrs:
                values = np.asarray(attrs["values_floats"], dtype=np.float32)
                attrs["values_floats"] = np.where(values == _NAN_CODE, np.float32(np.nan), values)
            return add_node(*args, **attrs)

        # a float unknown_value makes the converter write float codes, which can hold NaN
        unknown = float(encoder.unknown_value) if encoder.unknown_value is not None else 0.0
        container.add_node = add_node_nan
        try:
            with (
                _temporarily(encoder, "encoded_missing_value", _NAN_CODE),
                _temporarily(encoder, "unknown_value", unknown),
            ):
                convert(scope, operator, container)
        finally:
            del container.add_node  # back to the class's method

    return converter


def _string_missing_as_text(convert: Callable[..., None]) -> Callable[..., None]:
    def converter(scope: Any, operator: Any, container: Any) -> None:
        from skl2onnx.common.data_types import StringTensorType

        imputer = operator.raw_operator
        nan = isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values)
        if nan and isinstance(operator.inputs[0].type, StringTensorType):
            with _temporarily(imputer, "missing_values", MISSING_STRING):
                convert(scope, operator, container)
        else:
            convert(scope, operator, container)

    return converter


def _fix_shape_calculators() -> None:
    """skl2onnx's converters, with shape calculators that declare what the graph computes."""
    from skl2onnx import update_registered_converter
    from sklearn.cross_decomposition import CCA, PLSCanonical, PLSRegression
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
    from sklearn.feature_extraction.text import TfidfTransformer

    # Shape calculators that fix the batch axis at 1: the graph computes any batch, the declared
    # output shape says 1, and onnxruntime and the checker trust the declaration.
    alias, _, convert, options = _original(QuadraticDiscriminantAnalysis)
    update_registered_converter(
        QuadraticDiscriminantAnalysis, alias, classifier_shape_any_batch, convert, options=options
    )
    alias, _, convert, options = _original(TfidfTransformer)
    update_registered_converter(TfidfTransformer, alias, columns_shape(_tfidf_columns), convert, options=options)
    # PLSRegression: since scikit-learn 1.3 coef_ is (n_targets, n_features); skl2onnx's shape
    # calculator still reads coef_.shape[1], so the output is declared n_features wide and the
    # checker rejects the Add node (https://github.com/scikit-learn/scikit-learn/pull/24998).
    # CCA and PLSCanonical predict with the same formula (_PLS.predict), so they share the converter.
    alias, _, convert, options = _original(PLSRegression)
    for model in (PLSRegression, CCA, PLSCanonical):
        update_registered_converter(model, alias, columns_shape(lambda op: op.coef_.shape[0]), convert, options=options)


def _replace_converters() -> None:
    """Converters of this package in place of skl2onnx's, whose float32 arithmetic loses the answer."""
    from skl2onnx import update_registered_converter
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.impute import KNNImputer
    from sklearn.preprocessing import FunctionTransformer

    # FunctionTransformer: skl2onnx converts the identity only; numpy ufuncs map to ONNX operators.
    alias, _, _, options = _original(FunctionTransformer)
    update_registered_converter(
        FunctionTransformer,
        alias,
        columns_shape(lambda op: op.n_features_in_),
        convert_function_transformer,
        options=options,
    )
    # KNNImputer: distances in double, and the donors as scikit-learn picks them (see convert_knn_imputer).
    alias, _, _, options = _original(KNNImputer)
    update_registered_converter(KNNImputer, alias, knn_imputer_shape, convert_knn_imputer, options=options)
    # KMeans/MiniBatchKMeans: distances without cancellation (see convert_kmeans).
    for model in (KMeans, MiniBatchKMeans):
        alias, shape, _, options = _original(model)
        update_registered_converter(model, alias, shape, convert_kmeans, options=options)


def _tfidf_columns(op: Any) -> int:
    # skl2onnx runs a TfidfVectorizer's second half under this calculator, with the vectorizer as
    # raw_operator: it has no n_features_in_, its vocabulary has the width
    return int(op.n_features_in_) if hasattr(op, "n_features_in_") else len(op.vocabulary_)


def _ints_not_bools(convert: Callable[..., None]) -> Callable[..., None]:
    def converter(scope: Any, operator: Any, container: Any) -> None:
        add_node = container.add_node

        def add_node_ints(*args: Any, **attrs: Any) -> Any:
            return add_node(*args, **{k: _no_bools(v) for k, v in attrs.items()})

        container.add_node = add_node_ints
        try:
            convert(scope, operator, container)
        finally:
            del container.add_node  # back to the class's method

    return converter


def _solve_by_inverse(convert: Callable[..., None]) -> Callable[..., None]:
    def converter(scope: Any, operator: Any, container: Any) -> None:
        from skl2onnx.algebra.onnx_ops import OnnxMatMul
        from skl2onnx.operator_converters import gaussian_process

        def solve(a: np.ndarray, b: Any, lower: bool = False, transposed: bool = False, **kwargs: Any) -> Any:
            inverse = np.linalg.inv(np.asarray(a, dtype=np.float64)).astype(a.dtype)
            return OnnxMatMul(inverse, b, **kwargs)

        with _temporarily(gaussian_process, "OnnxSolve", solve):
            convert(scope, operator, container)

    return converter


def _no_bools(value: Any) -> Any:
    if isinstance(value, list) and any(isinstance(v, bool | np.bool_) for v in value):
        return [int(v) if isinstance(v, bool | np.bool_) else v for v in value]
    return value


def _shape_with_attribute(calculate: Callable[[Any], None], attribute: str, value: Any) -> Callable[[Any], None]:
    def shape(operator: Any) -> None:
        with _temporarily(operator.raw_operator, attribute, value):
            calculate(operator)

    return shape


def _convert_with_attribute(convert: Callable[..., None], attribute: str, value: Any) -> Callable[..., None]:
    def converter(scope: Any, operator: Any, container: Any) -> None:
        with _temporarily(operator.raw_operator, attribute, value):
            convert(scope, operator, container)

    return converter


@contextlib.contextmanager
def _temporarily(obj: Any, attribute: str, value: Any) -> Iterator[None]:
    saved = getattr(obj, attribute)
    setattr(obj, attribute, value)
    try:
        yield
    finally:
        setattr(obj, attribute, saved)
