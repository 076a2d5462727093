"""skl2onnx converters this tool adds or corrects, registered once when the scikit-learn backend exports.

Three kinds:

- corrections of skl2onnx 1.20 converters that write a wrong file or none (each says what it fixes);
- converters for estimators skl2onnx has none for, written with skl2onnx's algebra API
  (https://onnx.ai/sklearn-onnx/api_summary.html#register-a-new-converter), each a few lines
  that restate the estimator's own ``predict``/``transform`` in ONNX operators;
- ``NO_ONNX_EQUIVALENT``: why the remaining estimators cannot be converted, for the error message.

Constants are computed in float64 by numpy and stored in the input's precision. Where the
estimator's result depends on float64 range (exp underflow) or precision (distances compared with
each other or with a radius, an ill-conditioned Nystroem), the graph computes in double
internally and says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

# Estimators without a converter, and why there can be none. The message names the reason.
NO_ONNX_EQUIVALENT: dict[str, str] = {
    "NMF": "its transform solves a non-negative least-squares problem per sample by iteration; ONNX has no such operator",
    "MiniBatchNMF": "its transform solves a non-negative least-squares problem per sample by iteration; ONNX has no such operator",
    "LatentDirichletAllocation": "its transform runs the variational E-step by iteration until convergence; ONNX has no such operator",
    "DictionaryLearning": "its transform runs orthogonal matching pursuit (a per-sample greedy solver); ONNX has no such operator",
    "MiniBatchDictionaryLearning": "its transform runs orthogonal matching pursuit (a per-sample greedy solver); ONNX has no such operator",
    "LocallyLinearEmbedding": "its transform solves a small linear system per sample for barycentric weights; ONNX has no batched solver",
    "Isomap": "its transform needs geodesic (shortest-path) distances through the training graph; no converter is written",
    "BisectingKMeans": "its predict walks the bisection tree level by level; no converter is written (KMeans converts)",
    "PolynomialCountSketch": "its transform needs an FFT-based count sketch; no converter is written",
    "GaussianProcessClassifier": "skl2onnx converts the binary case only; the multiclass one-vs-rest Laplace approximation has no converter",
    "TargetEncoder": "skl2onnx converts it for a binary or continuous target only; a multiclass target has no converter",
    "FeatureHasher": "it takes dicts or strings, not a numeric matrix; hash the features before the model",
    "HashingVectorizer": "it takes raw text and hashes tokens; skl2onnx has no converter for it (TfidfVectorizer and CountVectorizer convert)",
    "PatchExtractor": "it takes images and returns a variable number of patches; not a per-row model",
    "KernelDensity": "it has no predict or transform, only score_samples",
    "DummyClassifier(stratified)": "its predictions are random draws; ONNX graphs are deterministic",
    "DummyClassifier(uniform)": "its predictions are random draws; ONNX graphs are deterministic",
}

# Estimators computed in double inside the graph (float32 in and out) during the last
# conversion, with why; the backend clears it before converting and reports it after.
DOUBLED: dict[str, str] = {}
EXP_UNDERFLOW = "its rbf weights exp(-gamma d^2) underflow in float32 long before float64"
# float32 keeps ~7 digits: a product summed over terms this much larger than the result loses them
FLOAT32_BUDGET = 1e-4
RADIUS_BOUNDARY = (
    "whether a row is within the radius is a comparison of its distance with it, which float32 "
    "rounding decides the other way for rows on the boundary"
)
NEAREST_DONORS = (
    "its donors are the training rows nearest in nan-euclidean distance, whose float32 rounding "
    "reorders rows at near-equal distances"
)


_registered = False


def register() -> None:
    """Register every converter below with skl2onnx (once per process)."""
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from sklearn.cluster import AffinityPropagation, Birch, FeatureAgglomeration, MeanShift
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.covariance import EllipticEnvelope
    from sklearn.cross_decomposition import PLSSVD
    from sklearn.decomposition import FactorAnalysis, FastICA, MiniBatchSparsePCA, SparsePCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.impute import MissingIndicator
    from sklearn.isotonic import IsotonicRegression
    from sklearn.kernel_approximation import AdditiveChi2Sampler, Nystroem, RBFSampler, SkewedChi2Sampler
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.neighbors import (
        NearestCentroid,
        RadiusNeighborsClassifier,
        RadiusNeighborsRegressor,
        RadiusNeighborsTransformer,
    )
    from sklearn.neural_network import BernoulliRBM
    from sklearn.preprocessing import SplineTransformer
    from sklearn.semi_supervised import LabelPropagation, LabelSpreading

    _register_corrections()
    classifier_options = {"zipmap": [True, False, "columns"], "nocl": [True, False]}
    # skl2onnx's parser gives every ClusterMixin the outputs label and scores: these have one each
    parsers = {
        FeatureAgglomeration: _parser("variable"),
        AffinityPropagation: _parser("label"),
        MeanShift: _parser("label"),
    }
    for model, shape, convert, options in (
        (DummyClassifier, calculate_linear_classifier_output_shapes, _convert_dummy_classifier, classifier_options),
        (DummyRegressor, _columns_shape(lambda op: np.size(op.constant_)), _convert_dummy_regressor, None),
        (NearestCentroid, calculate_linear_classifier_output_shapes, _convert_nearest_centroid, classifier_options),
        (
            LinearDiscriminantAnalysis,
            calculate_linear_classifier_output_shapes,
            _convert_linear_discriminant,
            classifier_options,
        ),
        (LabelPropagation, calculate_linear_classifier_output_shapes, _convert_label_propagation, classifier_options),
        (LabelSpreading, calculate_linear_classifier_output_shapes, _convert_label_propagation, classifier_options),
        (KernelRidge, _columns_shape(lambda op: _targets(op.dual_coef_)), _convert_kernel_ridge, None),
        (TransformedTargetRegressor, calculate_linear_regressor_output_shapes, _convert_transformed_target, None),
        (Nystroem, _columns_shape(lambda op: op.components_.shape[0]), _convert_nystroem, None),
        (RBFSampler, _columns_shape(lambda op: op.random_weights_.shape[1]), _convert_rbf_sampler, None),
        (SkewedChi2Sampler, _columns_shape(lambda op: op.random_weights_.shape[1]), _convert_skewed_chi2, None),
        (
            AdditiveChi2Sampler,
            _columns_shape(lambda op: op.n_features_in_ * (2 * op.sample_steps - 1)),
            _convert_additive_chi2,
            None,
        ),
        (SplineTransformer, _columns_shape(lambda op: op.n_features_out_), _convert_spline, None),
        (FactorAnalysis, _columns_shape(lambda op: op.components_.shape[0]), _convert_factor_analysis, None),
        (FastICA, _columns_shape(lambda op: op.components_.shape[0]), _convert_fast_ica, None),
        (SparsePCA, _columns_shape(lambda op: op.components_.shape[0]), _convert_sparse_pca, None),
        (MiniBatchSparsePCA, _columns_shape(lambda op: op.components_.shape[0]), _convert_sparse_pca, None),
        (BernoulliRBM, _columns_shape(lambda op: op.components_.shape[0]), _convert_bernoulli_rbm, None),
        (FeatureAgglomeration, _columns_shape(lambda op: int(np.max(op.labels_)) + 1), _convert_agglomeration, None),
        (MissingIndicator, _missing_indicator_shape, _convert_missing_indicator, None),
        (RadiusNeighborsTransformer, _columns_shape(lambda op: op.n_samples_fit_), _convert_radius_transformer, None),
        (EllipticEnvelope, _label_and_scores_shape, _convert_elliptic_envelope, None),
        (AffinityPropagation, _label_shape, _convert_nearest_center, None),
        (MeanShift, _label_shape, _convert_nearest_center, None),
        (Birch, _label_and_scores_shape, _convert_birch, None),
        (RadiusNeighborsRegressor, _columns_shape(lambda op: _targets(op._y)), _convert_radius_regressor, None),
        (
            RadiusNeighborsClassifier,
            calculate_linear_classifier_output_shapes,
            _convert_radius_classifier,
            classifier_options,
        ),
        (IsotonicRegression, _columns_shape(lambda op: 1), _convert_isotonic, None),
        (PLSSVD, _columns_shape(lambda op: op.x_weights_.shape[1]), _convert_pls_svd, None),
    ):
        update_registered_converter(
            model, f"OnnxConvert{model.__name__}", shape, convert, options=options, parser=parsers.get(model)
        )
    _registered = True


# -- corrections of skl2onnx converters ---------------------------------------------------------


def _register_corrections() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import _converter_pool, _shape_calculator_pool
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.cross_decomposition import CCA, PLSCanonical, PLSRegression
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomTreesEmbedding,
    )
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.impute import KNNImputer
    from sklearn.preprocessing import KBinsDiscretizer

    def original(model: type) -> tuple[str, Any, Any, dict[str, Any] | None]:
        alias = sklearn_operator_name_map[model]
        converter = _converter_pool[alias]  # a RegisteredConverter; registration wants the function
        return alias, _shape_calculator_pool[alias], converter._fct, converter.get_allowed_options()

    # HistGradientBoosting*: skl2onnx passes Python bools (a leaf's "missing goes left" flag) in
    # the integer attribute nodes_missing_value_tracks_true; protobuf >= 7.34 rejects a bool for
    # an int field ("Expected an int, got a boolean", onnx/ir-py#175), so creating the node fails.
    for model in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        alias, shape, convert, options = original(model)
        update_registered_converter(model, alias, shape, _ints_not_bools(convert), options=options)

    # Shape calculators that fix the batch axis at 1: the graph computes any batch, the declared
    # output shape says 1, and onnxruntime and the checker trust the declaration.
    alias, _, convert, options = original(QuadraticDiscriminantAnalysis)
    update_registered_converter(
        QuadraticDiscriminantAnalysis, alias, _classifier_shape_any_batch, convert, options=options
    )
    alias, _, convert, options = original(TfidfTransformer)
    update_registered_converter(
        TfidfTransformer, alias, _columns_shape(lambda op: op.n_features_in_), convert, options=options
    )
    # PLSRegression: since scikit-learn 1.3 coef_ is (n_targets, n_features); skl2onnx's shape
    # calculator still reads coef_.shape[1], so the output is declared n_features wide and the
    # checker rejects the Add node (https://github.com/scikit-learn/scikit-learn/pull/24998).
    # CCA and PLSCanonical predict with the same formula (_PLS.predict), so they share the converter.
    alias, _, convert, options = original(PLSRegression)
    for model in (PLSRegression, CCA, PLSCanonical):
        update_registered_converter(
            model, alias, _columns_shape(lambda op: op.coef_.shape[0]), convert, options=options
        )
    # GaussianProcessClassifier: skl2onnx solves L v = b with com.microsoft:Solve, which
    # onnxruntime does not ship ("Fatal error: com.microsoft:Solve(-1) is not a registered
    # function/op"). L is the fitted Cholesky factor L_, a constant: v = inv(L) b instead.
    alias, shape, convert, options = original(GaussianProcessClassifier)
    update_registered_converter(GaussianProcessClassifier, alias, shape, _solve_by_inverse(convert), options=options)
    # KNNImputer: distances in double, and the donors as scikit-learn picks them (see _convert_knn_imputer).
    alias, _, _, options = original(KNNImputer)
    update_registered_converter(KNNImputer, alias, _knn_imputer_shape, _convert_knn_imputer, options=options)
    # KMeans/MiniBatchKMeans: distances without cancellation (see _convert_kmeans).
    for model in (KMeans, MiniBatchKMeans):
        alias, shape, _, options = original(model)
        update_registered_converter(model, alias, shape, _convert_kmeans, options=options)
    # Sparse-output defaults (KBinsDiscretizer encode="onehot", RandomTreesEmbedding
    # sparse_output=True): ONNX has no sparse tensors, so the file holds the same values dense
    # and the reference run densifies the scipy matrix before comparing.
    for model, attribute, dense in (
        (KBinsDiscretizer, "encode", "onehot-dense"),
        (RandomTreesEmbedding, "sparse_output", False),
    ):
        alias, shape, convert, options = original(model)
        update_registered_converter(
            model,
            alias,
            _shape_with_attribute(shape, attribute, dense),
            _convert_with_attribute(convert, attribute, dense),
            options=options,
        )


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


def _parser(*names: str) -> Callable[..., list[Any]]:
    """A skl2onnx parser declaring the outputs ``names`` (signature of skl2onnx._parse.parse_sklearn)."""

    def parse(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
        from skl2onnx._parse import _get_sklearn_operator_name
        from skl2onnx.common.data_types import Int64TensorType, guess_tensor_type

        operator = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
        operator.inputs = inputs
        for name in names:
            kind = Int64TensorType() if name == "label" else guess_tensor_type(inputs[0].type)
            operator.outputs.append(scope.declare_local_variable(name, kind))
        return list(operator.outputs)

    return parse


# -- shape calculators ------------------------------------------------------------------------------


def _float_type(operator: Any) -> type:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    return DoubleTensorType if isinstance(operator.inputs[0].type, DoubleTensorType) else FloatTensorType


def _columns_shape(columns: Callable[[Any], int]) -> Callable[[Any], None]:
    """One output, [N, columns(estimator)], in the input's float precision."""

    def calculate(operator: Any) -> None:
        batch = operator.inputs[0].get_first_dimension()
        operator.outputs[0].type = _float_type(operator)([batch, int(columns(operator.raw_operator))])

    return calculate


def _classifier_shape_any_batch(operator: Any) -> None:
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType

    classes = operator.raw_operator.classes_
    batch = operator.inputs[0].get_first_dimension()
    label = StringTensorType if all(isinstance(c, str) for c in classes) else Int64TensorType
    operator.outputs[0].type = label([batch])
    operator.outputs[1].type = _float_type(operator)([batch, len(classes)])


def _label_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import Int64TensorType

    operator.outputs[0].type = Int64TensorType([operator.inputs[0].get_first_dimension()])


def _label_and_scores_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import Int64TensorType

    batch = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = Int64TensorType([batch])
    op = operator.raw_operator
    width = op.subcluster_centers_.shape[0] if hasattr(op, "subcluster_centers_") else 1
    operator.outputs[1].type = _float_type(operator)([batch, width])


def _missing_indicator_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import BooleanTensorType

    batch = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = BooleanTensorType([batch, len(operator.raw_operator.features_)])


def _knn_imputer_shape(operator: Any) -> None:
    """[N, kept columns + indicator columns]; skl2onnx's copied the input's width."""
    op = operator.raw_operator
    kept = op.n_features_in_ if op.keep_empty_features else int(np.count_nonzero(op._valid_mask))
    indicator = len(op.indicator_.features_) if op.add_indicator else 0
    batch = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _float_type(operator)([batch, kept + indicator])


def _targets(coef: np.ndarray) -> int:
    return 1 if coef.ndim == 1 else coef.shape[1]


# -- building blocks ------------------------------------------------------------------------------------


def _input(operator: Any, container: Any) -> tuple[Any, type, int]:
    """The input as a float tensor, its numpy dtype, and the opset."""
    from skl2onnx.algebra.onnx_ops import OnnxCast
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    from skl2onnx.proto import onnx_proto

    opv = container.target_opset
    x = operator.inputs[0]
    if isinstance(x.type, DoubleTensorType):
        return x, np.float64, opv
    if isinstance(x.type, FloatTensorType):
        return x, np.float32, opv
    return OnnxCast(x, to=onnx_proto.TensorProto.FLOAT, op_version=opv), np.float32, opv


def _const(array: Any, dtype: type) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(array, dtype=np.float64).astype(dtype))


def _rows_of(x: Any, row: np.ndarray, dtype: type, opv: int, output_names: Any = None) -> Any:
    """A [N, len(row)] tensor whose every row is ``row`` (N from ``x``; values of x unused)."""
    from onnx import numpy_helper
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxConcat, OnnxConstantOfShape, OnnxShape, OnnxSlice

    batch = OnnxSlice(OnnxShape(x, op_version=opv), np.array([0], np.int64), np.array([1], np.int64), op_version=opv)
    shape = OnnxConcat(batch, np.array([row.size], dtype=np.int64), axis=0, op_version=opv)
    zeros = OnnxConstantOfShape(shape, value=numpy_helper.from_array(np.zeros(1, dtype=dtype)), op_version=opv)
    return OnnxAdd(zeros, _const(row.reshape(1, -1), dtype), op_version=opv, output_names=output_names)


def _labels(index: Any, classes: np.ndarray, opv: int, output_names: Any) -> Any:
    """classes_[index], int64 or string, like ``classes_.take(argmax)``."""
    from skl2onnx.algebra.onnx_ops import OnnxGather

    if all(isinstance(c, str) for c in classes):
        table = np.array([str(c) for c in classes], dtype=object)
    else:
        table = np.asarray(classes).astype(np.int64)
    return OnnxGather(table, index, axis=0, op_version=opv, output_names=output_names)


def _kernel(x: Any, fit: np.ndarray, kernel: str, params: dict[str, Any], dtype: type, opv: int) -> Any:
    """``pairwise_kernels(X, fit, metric=kernel, **params)`` for the kernels with a closed form."""
    from skl2onnx.algebra.complex_functions import onnx_cdist
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxDiv, OnnxExp, OnnxMatMul, OnnxMul, OnnxPow, OnnxTanh
    from skl2onnx.algebra.onnx_ops import OnnxReduceL2Api18 as OnnxReduceL2

    n_features = fit.shape[1]
    gamma = params.get("gamma")
    gamma = 1.0 / n_features if gamma is None else float(gamma)
    degree = 3 if params.get("degree") is None else params["degree"]
    coef0 = 1.0 if params.get("coef0") is None else params["coef0"]
    if kernel == "linear":
        return OnnxMatMul(x, _const(fit.T, dtype), op_version=opv)
    if kernel in ("rbf", "laplacian"):
        metric = "sqeuclidean" if kernel == "rbf" else "cityblock"
        distances = onnx_cdist(x, _const(fit, dtype), metric=metric, dtype=dtype, op_version=opv)
        return OnnxExp(OnnxMul(distances, _const([-gamma], dtype), op_version=opv), op_version=opv)
    if kernel in ("poly", "polynomial", "sigmoid"):
        dot = OnnxMatMul(x, _const(fit.T * gamma, dtype), op_version=opv)
        shifted = OnnxAdd(dot, _const([coef0], dtype), op_version=opv)
        if kernel == "sigmoid":
            return OnnxTanh(shifted, op_version=opv)
        return OnnxPow(shifted, _const([degree], dtype), op_version=opv)
    if kernel == "cosine":
        norms = np.linalg.norm(fit, axis=1, keepdims=True)
        unit_fit = fit / np.where(norms == 0, 1, norms)
        x_norm = OnnxReduceL2(x, np.array([1], np.int64), keepdims=1, op_version=opv)
        return OnnxMatMul(OnnxDiv(x, x_norm, op_version=opv), _const(unit_fit.T, dtype), op_version=opv)
    raise NotImplementedError(f'kernel "{kernel}" has no converter (linear, rbf, laplacian, poly, sigmoid, cosine do)')


def _nearest(x: Any, centers: np.ndarray, dtype: type, opv: int, output_names: Any = None) -> Any:
    """Index of the nearest center (euclidean), like ``pairwise_distances_argmin``."""
    from skl2onnx.algebra.complex_functions import onnx_cdist
    from skl2onnx.algebra.onnx_ops import OnnxArgMin

    distances = onnx_cdist(x, _const(centers, dtype), metric="sqeuclidean", dtype=dtype, op_version=opv)
    return OnnxArgMin(distances, axis=1, keepdims=0, op_version=opv, output_names=output_names)


def _add_to(scope: Any, container: Any, *nodes: Any) -> None:
    for node in nodes:
        node.add_to(scope, container)


# -- classifiers ----------------------------------------------------------------------------------------


def _convert_dummy_classifier(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxArgMax

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    if getattr(op, "n_outputs_", 1) != 1:
        raise NotImplementedError("DummyClassifier with several outputs has no converter")
    prior = np.asarray(op.class_prior_, dtype=np.float64)
    if op.strategy == "prior":
        proba = prior
    elif op.strategy == "most_frequent":
        proba = np.eye(prior.size)[prior.argmax()]
    elif op.strategy == "constant":
        proba = (np.asarray(op.classes_) == op.constant).astype(np.float64).ravel()
    else:
        raise NotImplementedError(NO_ONNX_EQUIVALENT[f"DummyClassifier({op.strategy})"])
    probabilities = _rows_of(x, proba, dtype, opv, output_names=operator.outputs[1:2])
    index = OnnxArgMax(probabilities, axis=1, keepdims=0, op_version=opv)
    _add_to(scope, container, probabilities, _labels(index, op.classes_, opv, operator.outputs[:1]))


def _convert_nearest_centroid(scope: Any, operator: Any, container: Any) -> None:
    """NearestCentroid.predict_proba/predict (scikit-learn >= 1.5, DiscriminantAnalysisPredictionMixin)."""
    from skl2onnx.algebra.complex_functions import onnx_cdist
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxArgMax, OnnxArgMin, OnnxDiv, OnnxMul, OnnxNeg, OnnxSoftmax

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    if op.metric not in ("euclidean", "manhattan"):
        raise NotImplementedError(f'NearestCentroid metric "{op.metric}" has no converter')
    std = np.where(op.within_class_std_dev_ != 0, op.within_class_std_dev_, 1.0)
    normalized = OnnxDiv(x, _const(std, dtype), op_version=opv)
    metric = "sqeuclidean" if op.metric == "euclidean" else "cityblock"
    distances = onnx_cdist(normalized, _const(op.centroids_ / std, dtype), metric=metric, dtype=dtype, op_version=opv)
    if op.metric == "manhattan":
        distances = OnnxMul(distances, distances, op_version=opv)
    scores = OnnxAdd(OnnxNeg(distances, op_version=opv), _const(2.0 * np.log(op.class_prior_), dtype), op_version=opv)
    probabilities = OnnxSoftmax(scores, axis=1, op_version=opv, output_names=operator.outputs[1:2])
    if np.isclose(op.class_prior_, 1 / len(op.classes_)).all():
        # predict() then takes the nearest centroid in the raw space, not the normalised one
        raw = onnx_cdist(x, _const(op.centroids_, dtype), metric=metric, dtype=dtype, op_version=opv)
        index = OnnxArgMin(raw, axis=1, keepdims=0, op_version=opv)
    else:
        index = OnnxArgMax(scores, axis=1, keepdims=0, op_version=opv)
    _add_to(scope, container, probabilities, _labels(index, op.classes_, opv, operator.outputs[:1]))


def _convert_linear_discriminant(scope: Any, operator: Any, container: Any) -> None:
    """LinearDiscriminantAnalysis: probabilities from the decision function.

    skl2onnx writes LinearClassifier(SOFTMAX) over [-d, d] for two classes, which is
    sigmoid(2d); scikit-learn's predict_proba is expit(d) (discriminant_analysis.py,
    predict_proba). Found by the breast-cancer model in bench/COVERAGE.md (max diff 0.148).
    """
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxArgMax, OnnxConcat, OnnxMatMul, OnnxSigmoid, OnnxSoftmax, OnnxSub

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    decision = OnnxAdd(
        OnnxMatMul(x, _const(op.coef_.T, dtype), op_version=opv), _const(op.intercept_, dtype), op_version=opv
    )
    if len(op.classes_) == 2:
        positive = OnnxSigmoid(decision, op_version=opv)
        negative = OnnxSub(_const([1.0], dtype), positive, op_version=opv)
        probabilities = OnnxConcat(negative, positive, axis=1, op_version=opv, output_names=operator.outputs[1:2])
    else:
        probabilities = OnnxSoftmax(decision, axis=1, op_version=opv, output_names=operator.outputs[1:2])
    index = OnnxArgMax(probabilities, axis=1, keepdims=0, op_version=opv)
    _add_to(scope, container, probabilities, _labels(index, op.classes_, opv, operator.outputs[:1]))


def _convert_label_propagation(scope: Any, operator: Any, container: Any) -> None:
    """LabelPropagation/LabelSpreading with the rbf kernel: normalised kernel-weighted label distributions.

    Computed in double: with gamma=20 the weights exp(-gamma d^2) underflow to 0 in float32
    from d^2 > 5.2, in float64 (as scikit-learn computes) from d^2 > 37, and the normalisation
    then divides by zero in one precision and not the other.
    """
    from skl2onnx.algebra.onnx_ops import OnnxArgMax, OnnxCast, OnnxDiv, OnnxMatMul, OnnxReduceSumApi11
    from skl2onnx.proto import onnx_proto

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    if op.kernel != "rbf":
        raise NotImplementedError(f'{type(op).__name__} kernel "{op.kernel}" has no converter (rbf does)')
    DOUBLED[type(op).__name__] = EXP_UNDERFLOW
    x64 = OnnxCast(x, to=onnx_proto.TensorProto.DOUBLE, op_version=opv)
    weights = _kernel(x64, op.X_, "rbf", {"gamma": op.gamma}, np.float64, opv)
    unnormalized = OnnxMatMul(weights, _const(op.label_distributions_, np.float64), op_version=opv)
    total = OnnxReduceSumApi11(unnormalized, axes=[1], keepdims=1, op_version=opv)
    probabilities64 = OnnxDiv(unnormalized, total, op_version=opv)
    target = onnx_proto.TensorProto.DOUBLE if dtype == np.float64 else onnx_proto.TensorProto.FLOAT
    probabilities = OnnxCast(probabilities64, to=target, op_version=opv, output_names=operator.outputs[1:2])
    index = OnnxArgMax(probabilities64, axis=1, keepdims=0, op_version=opv)
    _add_to(scope, container, probabilities, _labels(index, op.classes_, opv, operator.outputs[:1]))


# -- regressors ---------------------------------------------------------------------------------------------


def _convert_dummy_regressor(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    _add_to(scope, container, _rows_of(x, np.ravel(op.constant_), dtype, opv, output_names=operator.outputs[:1]))


def _convert_kernel_ridge(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxIdentity, OnnxMatMul

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    dual = op.dual_coef_.reshape(op.dual_coef_.shape[0], -1)
    if callable(op.kernel) or op.kernel == "precomputed":
        raise NotImplementedError(f"KernelRidge with kernel={op.kernel!r} has no converter")
    if op.kernel == "linear":
        # K(X, X_fit) @ dual == X @ (X_fit.T @ dual): folded in float64, one small MatMul, and no
        # float32 cancellation over the training-set sum.
        prediction = OnnxMatMul(x, _const(op.X_fit_.T @ dual, dtype), op_version=opv)
    else:
        params = {"gamma": op.gamma, "degree": op.degree, "coef0": op.coef0, **(op.kernel_params or {})}
        kernel = _kernel(x, op.X_fit_, op.kernel, params, dtype, opv)
        prediction = OnnxMatMul(kernel, _const(dual, dtype), op_version=opv)
    _add_to(scope, container, OnnxIdentity(prediction, op_version=opv, output_names=operator.outputs[:1]))


def _convert_transformed_target(scope: Any, operator: Any, container: Any) -> None:
    """regressor_ then the inverse of transformer_ (or inverse_func)."""
    from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxDiv, OnnxExp, OnnxIdentity, OnnxLog, OnnxMul, OnnxSqrt, OnnxSub

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    y = OnnxSubEstimator(op.regressor_, x, op_version=opv)
    inverse = op.transformer_
    name = type(inverse).__name__
    if name == "FunctionTransformer":
        function = inverse.inverse_func
        unary = {
            None: lambda v: v,
            np.exp: lambda v: OnnxExp(v, op_version=opv),
            np.log: lambda v: OnnxLog(v, op_version=opv),
            np.expm1: lambda v: OnnxSub(OnnxExp(v, op_version=opv), _const([1.0], dtype), op_version=opv),
            np.log1p: lambda v: OnnxLog(OnnxAdd(v, _const([1.0], dtype), op_version=opv), op_version=opv),
            np.sqrt: lambda v: OnnxSqrt(v, op_version=opv),
            np.square: lambda v: OnnxMul(v, v, op_version=opv),
        }
        if function not in unary:
            raise NotImplementedError(
                f"TransformedTargetRegressor with inverse_func={getattr(function, '__name__', function)} has no converter "
                "(exp, log, expm1, log1p, sqrt, square do)"
            )
        y = unary[function](y)
    elif name == "StandardScaler":
        if inverse.scale_ is not None:
            y = OnnxMul(y, _const(inverse.scale_, dtype), op_version=opv)
        if inverse.mean_ is not None:
            y = OnnxAdd(y, _const(inverse.mean_, dtype), op_version=opv)
    elif name == "MinMaxScaler":
        y = OnnxDiv(
            OnnxSub(y, _const(inverse.min_, dtype), op_version=opv), _const(inverse.scale_, dtype), op_version=opv
        )
    else:
        raise NotImplementedError(
            f"TransformedTargetRegressor with transformer={name} has no converter (StandardScaler, MinMaxScaler and functions do)"
        )
    _add_to(scope, container, OnnxIdentity(y, op_version=opv, output_names=operator.outputs[:1]))


def _radius_membership(x: Any, op: Any, opv: int) -> tuple[Any, Any]:
    """Squared distances to the training rows and 1.0 where within the radius, both in double.

    In float32 the distances are within ~1e-7 of scikit-learn's: rows that lie on the radius
    were inside in the file and outside in scikit-learn, or the reverse (957 of 2,000 such rows
    for RadiusNeighborsTransformer on iris). The comparison is squared distance <= radius^2,
    as scikit-learn's trees make it.
    """
    from skl2onnx.algebra.complex_functions import onnx_cdist
    from skl2onnx.algebra.onnx_ops import OnnxCast, OnnxLessOrEqual

    DOUBLED[type(op).__name__] = RADIUS_BOUNDARY
    squared = onnx_cdist(
        _cast(x, np.float64, opv), _const(op._fit_X, np.float64), metric="sqeuclidean", dtype=np.float64, op_version=opv
    )
    radius = _const([float(op.radius) ** 2], np.float64)
    inside = OnnxCast(OnnxLessOrEqual(squared, radius, op_version=opv), to=_onnx_float(np.float64), op_version=opv)
    return squared, inside


def _convert_radius_regressor(scope: Any, operator: Any, container: Any) -> None:
    """RadiusNeighborsRegressor: mean of the targets within the radius; NaN where there are none.

    skl2onnx's converter gathers neighbour index -1 when a sample has no neighbour and
    onnxruntime stops ("index is out of range"); scikit-learn returns NaN with a warning.
    """
    from skl2onnx.algebra.onnx_ops import OnnxDiv, OnnxMatMul, OnnxReduceSumApi11

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    if op.weights != "uniform" or op.effective_metric_ != "euclidean":
        raise NotImplementedError('RadiusNeighborsRegressor converts with weights="uniform" and the euclidean metric')
    _, inside = _radius_membership(x, op, opv)
    targets = _const(np.asarray(op._y).reshape(len(op._y), -1), np.float64)
    total = OnnxMatMul(inside, targets, op_version=opv)
    count = OnnxReduceSumApi11(inside, axes=[1], keepdims=1, op_version=opv)
    mean = OnnxDiv(total, count, op_version=opv)  # 0 / 0 is NaN, as in scikit-learn
    _add_to(scope, container, _cast(mean, dtype, opv, output_names=operator.outputs[:1]))


def _convert_radius_classifier(scope: Any, operator: Any, container: Any) -> None:
    """RadiusNeighborsClassifier(weights="uniform"): class shares among the training rows within the radius.

    skl2onnx's converter pads each sample's neighbour list with index -1 and onnxruntime then
    stops ("index is out of range") on some batches; this one masks the distance matrix instead.
    A sample without neighbours gets NaN probabilities where scikit-learn raises.
    """
    from skl2onnx.algebra.onnx_ops import OnnxArgMax, OnnxDiv, OnnxMatMul, OnnxReduceSumApi11

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    if op.weights != "uniform" or op.effective_metric_ != "euclidean" or op.outputs_2d_ or op.outlier_label is not None:
        raise NotImplementedError(
            'RadiusNeighborsClassifier converts with weights="uniform", the euclidean metric, one output and no outlier_label'
        )
    _, inside = _radius_membership(x, op, opv)
    one_hot = np.eye(len(op.classes_))[np.asarray(op._y).ravel()]
    votes = OnnxMatMul(inside, _const(one_hot, np.float64), op_version=opv)
    total = OnnxReduceSumApi11(votes, axes=[1], keepdims=1, op_version=opv)
    probabilities = _cast(OnnxDiv(votes, total, op_version=opv), dtype, opv, output_names=operator.outputs[1:2])
    index = OnnxArgMax(votes, axis=1, keepdims=0, op_version=opv)
    _add_to(scope, container, probabilities, _labels(index, op.classes_, opv, operator.outputs[:1]))


def _convert_isotonic(scope: Any, operator: Any, container: Any) -> None:
    """IsotonicRegression.predict: linear interpolation between the thresholds (scipy interp1d);
    out_of_bounds="nan" gives NaN outside [X_min_, X_max_], "clip" clips first."""
    from skl2onnx.algebra.onnx_ops import (
        OnnxAdd,
        OnnxCast,
        OnnxGather,
        OnnxGreater,
        OnnxGreaterOrEqual,
        OnnxIdentity,
        OnnxLess,
        OnnxMul,
        OnnxOr,
        OnnxReduceSumApi11,
        OnnxSub,
        OnnxWhere,
    )

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    if op.out_of_bounds == "raise":
        raise NotImplementedError('IsotonicRegression(out_of_bounds="raise") has no converter; ONNX cannot raise')
    xs, ys = np.asarray(op.X_thresholds_, np.float64), np.asarray(op.y_thresholds_, np.float64)
    if xs.size == 1:
        xs, ys = np.r_[xs, xs + 1.0], np.r_[ys, ys]  # a constant fit: one flat piece
    if op.out_of_bounds == "clip":
        x = _clip_columns(x, _const([op.X_min_], dtype), _const([op.X_max_], dtype), opv)
    piece = OnnxReduceSumApi11(
        OnnxCast(
            OnnxGreaterOrEqual(x, _const(xs[1:-1].reshape(1, -1), dtype), op_version=opv),
            to=_onnx_int64(),
            op_version=opv,
        ),
        axes=[1],
        keepdims=1,
        op_version=opv,
    )  # (N, 1): index of the interval
    slopes = np.diff(ys) / np.where(np.diff(xs) == 0, 1.0, np.diff(xs))
    left_x = OnnxGather(_const(xs[:-1], dtype), piece, axis=0, op_version=opv)
    left_y = OnnxGather(_const(ys[:-1], dtype), piece, axis=0, op_version=opv)
    slope = OnnxGather(_const(slopes, dtype), piece, axis=0, op_version=opv)
    value = OnnxAdd(left_y, OnnxMul(OnnxSub(x, left_x, op_version=opv), slope, op_version=opv), op_version=opv)
    if op.out_of_bounds == "nan":
        outside = OnnxOr(
            OnnxLess(x, _const([xs[0]], dtype), op_version=opv),
            OnnxGreater(x, _const([xs[-1]], dtype), op_version=opv),
            op_version=opv,
        )
        value = OnnxWhere(outside, _const([np.nan], dtype), value, op_version=opv)
    _add_to(scope, container, OnnxIdentity(value, op_version=opv, output_names=operator.outputs[:1]))


def _onnx_int64() -> int:
    from onnx import TensorProto

    return TensorProto.INT64


def _onnx_float(dtype: type) -> int:
    from onnx import TensorProto

    return TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT


# -- transformers -------------------------------------------------------------------------------------------


def _linear_transform(scope: Any, operator: Any, container: Any, weights: np.ndarray, mean: np.ndarray | None) -> None:
    """(X - mean) @ weights, with ``weights`` folded in float64 beforehand."""
    from skl2onnx.algebra.onnx_ops import OnnxMatMul, OnnxSub

    x, dtype, opv = _input(operator, container)
    centered = x if mean is None else OnnxSub(x, _const(mean, dtype), op_version=opv)
    _add_to(
        scope,
        container,
        OnnxMatMul(centered, _const(weights, dtype), op_version=opv, output_names=operator.outputs[:1]),
    )


def _convert_factor_analysis(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    wpsi = op.components_ / op.noise_variance_
    cov_z = np.linalg.inv(np.eye(len(op.components_)) + wpsi @ op.components_.T)
    _linear_transform(scope, operator, container, wpsi.T @ cov_z, op.mean_)


def _convert_fast_ica(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    _linear_transform(scope, operator, container, op.components_.T, op.mean_ if op.whiten else None)


def _convert_sparse_pca(scope: Any, operator: Any, container: Any) -> None:
    # transform = ridge_regression(components_.T, (X - mean_).T, ridge_alpha): a fixed linear map
    op = operator.raw_operator
    components = op.components_
    gram = components @ components.T + op.ridge_alpha * np.eye(len(components))
    _linear_transform(scope, operator, container, components.T @ np.linalg.inv(gram), op.mean_)


def _convert_pls_svd(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    _linear_transform(scope, operator, container, op.x_weights_ / op._x_std[:, None], op._x_mean)


def _convert_bernoulli_rbm(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxMatMul, OnnxSigmoid

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    logits = OnnxAdd(
        OnnxMatMul(x, _const(op.components_.T, dtype), op_version=opv),
        _const(op.intercept_hidden_, dtype),
        op_version=opv,
    )
    _add_to(scope, container, OnnxSigmoid(logits, op_version=opv, output_names=operator.outputs[:1]))


def _convert_nystroem(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxMatMul

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    if callable(op.kernel) or op.kernel == "precomputed":
        raise NotImplementedError(f"Nystroem with kernel={op.kernel!r} has no converter")
    params = {"gamma": op.gamma, "degree": op.degree, "coef0": op.coef0, **(op.kernel_params or {})}
    # normalization_ is the inverse square root of the components' kernel matrix; when that matrix
    # is near-singular (100 components out of iris' 150 rows) its entries reach 1e6 and the
    # products cancel to O(1): 0.09 off in float32 (bench/COVERAGE.md). Then compute in double.
    rounding = np.finfo(np.float32).eps * np.abs(op.normalization_).sum(axis=1).max()
    inner = np.float64 if rounding > FLOAT32_BUDGET else dtype
    if inner != dtype:
        DOUBLED["Nystroem"] = f"its normalization matrix is ill-conditioned (float32 rounding up to {rounding:.1g})"
    kernel = _kernel(_cast(x, inner, opv), op.components_, op.kernel, params, inner, opv)
    features = OnnxMatMul(kernel, _const(op.normalization_.T, inner), op_version=opv)
    _add_to(scope, container, _cast(features, dtype, opv, output_names=operator.outputs[:1]))


def _cast(x: Any, dtype: type, opv: int, output_names: Any = None) -> Any:
    """``x`` as ``dtype`` (float32 or float64; a Cast to its own type is a no-op that names the output)."""
    from skl2onnx.algebra.onnx_ops import OnnxCast

    return OnnxCast(x, to=_onnx_float(dtype), op_version=opv, output_names=output_names)


def _random_fourier(scope: Any, operator: Any, container: Any, features: Any, scale: float) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxCos, OnnxMatMul, OnnxMul

    op = operator.raw_operator
    _, dtype, opv = _input(operator, container)
    projection = OnnxAdd(
        OnnxMatMul(features, _const(op.random_weights_, dtype), op_version=opv),
        _const(op.random_offset_, dtype),
        op_version=opv,
    )
    cosine = OnnxCos(projection, op_version=opv)
    _add_to(
        scope, container, OnnxMul(cosine, _const([scale], dtype), op_version=opv, output_names=operator.outputs[:1])
    )


def _convert_rbf_sampler(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    x, _, _ = _input(operator, container)
    _random_fourier(scope, operator, container, x, (2.0 / op.n_components) ** 0.5)


def _convert_skewed_chi2(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxLog

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    logged = OnnxLog(OnnxAdd(x, _const([op.skewedness], dtype), op_version=opv), op_version=opv)
    _random_fourier(scope, operator, container, logged, np.sqrt(2.0) / np.sqrt(op.n_components))


def _convert_additive_chi2(scope: Any, operator: Any, container: Any) -> None:
    """AdditiveChi2Sampler._transform_dense: zero inputs give zero features."""
    from skl2onnx.algebra.onnx_ops import OnnxConcat, OnnxCos, OnnxEqual, OnnxLog, OnnxMul, OnnxSin, OnnxSqrt, OnnxWhere

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    interval = op.sample_interval if op.sample_interval is not None else {1: 0.8, 2: 0.5, 3: 0.4}[op.sample_steps]
    zero = OnnxEqual(x, _const([0.0], dtype), op_version=opv)
    safe = OnnxWhere(zero, _const([1.0], dtype), x, op_version=opv)  # log(0) never reaches the output
    zeros = OnnxMul(x, _const([0.0], dtype), op_version=opv)

    def masked(value: Any) -> Any:
        return OnnxWhere(zero, zeros, value, op_version=opv)

    parts = [masked(OnnxSqrt(OnnxMul(safe, _const([interval], dtype), op_version=opv), op_version=opv))]
    log_step = OnnxMul(OnnxLog(safe, op_version=opv), _const([interval], dtype), op_version=opv)
    for j in range(1, op.sample_steps):
        factor = OnnxSqrt(
            OnnxMul(safe, _const([2 * interval / np.cosh(np.pi * j * interval)], dtype), op_version=opv),
            op_version=opv,
        )
        angle = OnnxMul(log_step, _const([j], dtype), op_version=opv)
        parts.append(masked(OnnxMul(factor, OnnxCos(angle, op_version=opv), op_version=opv)))
        parts.append(masked(OnnxMul(factor, OnnxSin(angle, op_version=opv), op_version=opv)))
    _add_to(scope, container, OnnxConcat(*parts, axis=1, op_version=opv, output_names=operator.outputs[:1]))


def _convert_spline(scope: Any, operator: Any, container: Any) -> None:
    """SplineTransformer as piecewise polynomials: find the knot interval, evaluate its cubic.

    The B-spline bases are turned into per-interval polynomial coefficients with
    scipy's PPoly.from_spline (in float64). extrapolation="constant" equals clipping x to the
    base interval (outside it scikit-learn repeats the boundary values); "continue" extends the
    first and last pieces, as BSpline(extrapolate=True) does.
    """
    from scipy.interpolate import BSpline, PPoly
    from skl2onnx.algebra.onnx_ops import (
        OnnxAdd,
        OnnxCast,
        OnnxGather,
        OnnxGreaterOrEqual,
        OnnxIdentity,
        OnnxMul,
        OnnxPow,
        OnnxReduceSumApi11,
        OnnxReshapeApi13,
        OnnxSub,
        OnnxUnsqueezeApi11,
    )
    from skl2onnx.proto import onnx_proto

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    if op.extrapolation not in ("constant", "continue"):
        raise NotImplementedError(
            f'SplineTransformer extrapolation="{op.extrapolation}" has no converter (constant and continue do)'
        )
    if op.sparse_output:
        raise NotImplementedError("SplineTransformer(sparse_output=True) has no converter; ONNX has no sparse tensors")
    degree = op.degree
    n_features = len(op.bsplines_)
    n_splines = op.bsplines_[0].c.shape[1]
    knots = [spl.t[degree : len(spl.t) - degree] for spl in op.bsplines_]  # the base interval's knots
    n_pieces = len(knots[0]) - 1
    # coefficients[f * n_pieces + piece, power, spline]: highest power first, in (x - left knot)
    coefficients = np.zeros((n_features * n_pieces, degree + 1, n_splines))
    for f, spl in enumerate(op.bsplines_):
        for s in range(n_splines):
            ppoly = PPoly.from_spline(BSpline(spl.t, spl.c[:, s], spl.k))
            coefficients[f * n_pieces : (f + 1) * n_pieces, :, s] = ppoly.c[:, degree : degree + n_pieces].T
    lefts = np.stack([k[:-1] for k in knots])  # (F, pieces)
    inner = np.stack([k[1:-1] for k in knots])  # (F, pieces - 1)
    if op.extrapolation == "constant":
        low = _const([k[0] for k in knots], dtype)
        high = _const([k[-1] for k in knots], dtype)
        x = _clip_columns(x, low, high, opv)
    piece = OnnxReduceSumApi11(
        OnnxCast(
            OnnxGreaterOrEqual(OnnxUnsqueezeApi11(x, axes=[2], op_version=opv), _const(inner, dtype), op_version=opv),
            to=onnx_proto.TensorProto.INT64,
            op_version=opv,
        ),
        axes=[2],
        keepdims=0,
        op_version=opv,
    )  # (N, F): index of the knot interval (clamped to the first and last by construction)
    flat = OnnxAdd(piece, (np.arange(n_features) * n_pieces).astype(np.int64), op_version=opv)
    local = OnnxSub(x, OnnxGather(_const(lefts.ravel(), dtype), flat, axis=0, op_version=opv), op_version=opv)
    powers = np.arange(degree, -1, -1, dtype=np.float64)  # highest first, like PPoly's coefficients
    local3 = OnnxUnsqueezeApi11(local, axes=[2], op_version=opv)  # (N, F, 1)
    power_terms = OnnxPow(local3, _const(powers, dtype), op_version=opv)  # (N, F, degree+1)
    gathered = OnnxGather(_const(coefficients, dtype), flat, axis=0, op_version=opv)  # (N, F, degree+1, S)
    values = OnnxReduceSumApi11(
        OnnxMul(gathered, OnnxUnsqueezeApi11(power_terms, axes=[3], op_version=opv), op_version=opv),
        axes=[2],
        keepdims=0,
        op_version=opv,
    )  # (N, F, S)
    columns = np.array([-1, n_features * n_splines], dtype=np.int64)
    out = OnnxReshapeApi13(values, columns, op_version=opv)
    if not op.include_bias:
        keep = np.array([i for i in range(n_features * n_splines) if (i + 1) % n_splines != 0], dtype=np.int64)
        out = OnnxGather(out, keep, axis=1, op_version=opv)
    _add_to(scope, container, OnnxIdentity(out, op_version=opv, output_names=operator.outputs[:1]))


def _clip_columns(x: Any, low: np.ndarray, high: np.ndarray, opv: int) -> Any:
    from skl2onnx.algebra.onnx_ops import OnnxMax, OnnxMin

    return OnnxMin(OnnxMax(x, low, op_version=opv), high, op_version=opv)


def _convert_agglomeration(scope: Any, operator: Any, container: Any) -> None:
    """FeatureAgglomeration with pooling_func=np.mean: each output column is a mean of input columns."""
    op = operator.raw_operator
    if op.pooling_func is not np.mean:
        raise NotImplementedError(f"FeatureAgglomeration with pooling_func={op.pooling_func.__name__} has no converter")
    labels = np.asarray(op.labels_)
    weights = np.zeros((labels.size, labels.max() + 1))
    weights[np.arange(labels.size), labels] = 1.0
    _linear_transform(scope, operator, container, weights / weights.sum(axis=0), None)


def _convert_missing_indicator(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxEqual, OnnxGather, OnnxIsNaN

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    value = op.missing_values
    if isinstance(value, float) and np.isnan(value):
        mask = OnnxIsNaN(x, op_version=opv)
    else:
        mask = OnnxEqual(x, _const([value], dtype), op_version=opv)
    features = np.asarray(op.features_, dtype=np.int64)
    _add_to(scope, container, OnnxGather(mask, features, axis=1, op_version=opv, output_names=operator.outputs[:1]))


def _convert_radius_transformer(scope: Any, operator: Any, container: Any) -> None:
    """RadiusNeighborsTransformer(mode="distance") as a dense matrix: distance within the radius, else 0."""
    from skl2onnx.algebra.onnx_ops import OnnxMul, OnnxSqrt

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    if op.mode != "distance" or op.effective_metric_ != "euclidean":
        raise NotImplementedError('RadiusNeighborsTransformer converts with mode="distance" and the euclidean metric')
    squared, inside = _radius_membership(x, op, opv)
    distances = OnnxMul(OnnxSqrt(squared, op_version=opv), inside, op_version=opv)
    _add_to(scope, container, _cast(distances, dtype, opv, output_names=operator.outputs[:1]))


def _convert_knn_imputer(scope: Any, operator: Any, container: Any) -> None:
    """KNNImputer(weights="uniform"): each missing value is the mean of that column over the
    n_neighbors training rows nearest in nan-euclidean distance that have it; the column's
    training mean when no such row shares a present coordinate with the row.

    skl2onnx's converter computes the distances as x^2 + y^2 - 2xy in float32: on unscaled
    features (wine's proline, up to 1680) that cancels to errors of ~0.5 %, and donors whose
    distances differ by 0.2 % changed places (18 to 30 of 2,000 rows with proline missing).
    Here the distances are in double, as in scikit-learn. Rows at exactly equal distances still
    tie: scikit-learn keeps whichever np.argpartition leaves in front, which depends on float64
    rounding noise and on the CPU's SIMD (docs/sklearn.md); TopK keeps the lower training index.
    """
    from skl2onnx.algebra.onnx_ops import (
        OnnxAdd,
        OnnxConcat,
        OnnxDiv,
        OnnxEqual,
        OnnxGather,
        OnnxGreater,
        OnnxIsNaN,
        OnnxLess,
        OnnxMatMul,
        OnnxMax,
        OnnxMul,
        OnnxNot,
        OnnxReduceSumApi11,
        OnnxSub,
        OnnxTopK,
        OnnxWhere,
    )

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    if op.metric != "nan_euclidean" or op.weights != "uniform":
        raise NotImplementedError('KNNImputer converts with weights="uniform" and metric="nan_euclidean"')
    DOUBLED["KNNImputer"] = NEAREST_DONORS
    f64 = np.float64
    x64 = _cast(x, f64, opv)
    value = op.missing_values
    missing = (
        OnnxIsNaN(x, op_version=opv)
        if isinstance(value, float) and np.isnan(value)
        else OnnxEqual(x64, _const([value], f64), op_version=opv)
    )
    zero = np.array([0.0], dtype=f64)
    x0 = OnnxWhere(missing, zero, x64, op_version=opv)
    present = _cast(OnnxNot(missing, op_version=opv), f64, opv)
    fit_missing = np.asarray(op._mask_fit_X, dtype=bool)
    fit0 = np.where(fit_missing, 0.0, np.asarray(op._fit_X, dtype=f64))
    fit_present = (~fit_missing).astype(f64)
    # sum over the coordinates both rows have of (x - y)^2, without the terms of the others
    squares = OnnxAdd(
        OnnxMatMul(OnnxMul(x0, x0, op_version=opv), fit_present.T, op_version=opv),
        OnnxSub(
            OnnxMatMul(present, (fit0 * fit0).T, op_version=opv),
            OnnxMatMul(OnnxMul(x0, np.array([2.0], dtype=f64), op_version=opv), fit0.T, op_version=opv),
            op_version=opv,
        ),
        op_version=opv,
    )
    shared = OnnxMatMul(present, fit_present.T, op_version=opv)
    # scikit-learn scales by n_features / shared, the same for every row: order by squares / shared;
    # no shared coordinate is no distance (NaN there), never a donor: +inf here
    inf = np.array([np.inf], dtype=f64)
    distance = OnnxWhere(
        OnnxGreater(shared, zero, op_version=opv),
        OnnxDiv(OnnxMax(squares, zero, op_version=opv), shared, op_version=opv),
        inf,
        op_version=opv,
    )
    k = np.array([min(op.n_neighbors, len(fit0))], dtype=np.int64)
    columns = []
    for col in range(op.n_features_in_):
        if not op._valid_mask[col]:  # missing in every training row: dropped, or 0 (keep_empty_features)
            columns.append(_rows_of(x, np.zeros(1), f64, opv))
            continue
        # only rows that have the column are donors for it
        candidates = OnnxAdd(distance, np.where(fit_missing[:, col], np.inf, 0.0).astype(f64), op_version=opv)
        top = OnnxTopK(candidates, k, largest=0, sorted=1, axis=-1, op_version=opv)
        nearest, index = top[0], top[1]
        weight = _cast(OnnxLess(nearest, inf, op_version=opv), f64, opv)
        donated = OnnxGather(fit0[:, col], index, axis=0, op_version=opv)
        total = OnnxReduceSumApi11(OnnxMul(weight, donated, op_version=opv), axes=[1], keepdims=1, op_version=opv)
        count = OnnxReduceSumApi11(weight, axes=[1], keepdims=1, op_version=opv)
        mean = np.array([fit0[~fit_missing[:, col], col].mean()], dtype=f64)
        imputed = OnnxWhere(
            OnnxGreater(count, zero, op_version=opv),
            OnnxDiv(total, OnnxMax(count, np.array([1.0], dtype=f64), op_version=opv), op_version=opv),
            mean,
            op_version=opv,
        )
        pick = np.array([col], np.int64)
        columns.append(
            OnnxWhere(
                OnnxGather(missing, pick, axis=1, op_version=opv),
                imputed,
                OnnxGather(x64, pick, axis=1, op_version=opv),
                op_version=opv,
            )
        )
    kept = columns if op.keep_empty_features else [c for c, valid in zip(columns, op._valid_mask, strict=True) if valid]
    if op.add_indicator:
        features = np.asarray(op.indicator_.features_, dtype=np.int64)
        kept.append(_cast(OnnxGather(missing, features, axis=1, op_version=opv), f64, opv))
    imputed_all = OnnxConcat(*kept, axis=1, op_version=opv)
    _add_to(scope, container, _cast(imputed_all, dtype, opv, output_names=operator.outputs[:1]))


# -- outlier detection and clustering -------------------------------------------------------------------------


def _convert_elliptic_envelope(scope: Any, operator: Any, container: Any) -> None:
    """decision = -mahalanobis^2 - offset_; label 1 when decision >= 0, else -1."""
    from skl2onnx.algebra.onnx_ops import (
        OnnxCast,
        OnnxGreaterOrEqual,
        OnnxMatMul,
        OnnxMul,
        OnnxNeg,
        OnnxReduceSumApi11,
        OnnxReshapeApi13,
        OnnxSub,
        OnnxWhere,
    )

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    centered = OnnxSub(x, _const(op.location_, dtype), op_version=opv)
    squared = OnnxReduceSumApi11(
        OnnxMul(OnnxMatMul(centered, _const(op.get_precision(), dtype), op_version=opv), centered, op_version=opv),
        axes=[1],
        keepdims=1,
        op_version=opv,
    )
    decision = OnnxSub(OnnxNeg(squared, op_version=opv), _const([op.offset_], dtype), op_version=opv)
    scores = OnnxCast(decision, to=_onnx_float(dtype), op_version=opv, output_names=operator.outputs[1:2])
    inlier = OnnxGreaterOrEqual(decision, _const([0.0], dtype), op_version=opv)
    label = OnnxWhere(
        inlier,
        np.array([1], dtype=np.int64),
        np.array([-1], dtype=np.int64),
        op_version=opv,
    )
    flat = OnnxReshapeApi13(label, np.array([-1], dtype=np.int64), op_version=opv, output_names=operator.outputs[:1])
    _add_to(scope, container, scores, flat)


def _convert_nearest_center(scope: Any, operator: Any, container: Any) -> None:
    """AffinityPropagation/MeanShift.predict: the nearest of cluster_centers_."""
    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    if len(op.cluster_centers_) == 0:
        raise NotImplementedError(f"{type(op).__name__} found no cluster centers, so it labels every sample -1")
    _add_to(scope, container, _nearest(x, op.cluster_centers_, dtype, opv, output_names=operator.outputs[:1]))


def _convert_kmeans(scope: Any, operator: Any, container: Any) -> None:
    """KMeans/MiniBatchKMeans: distances to the centers as sums of squared differences.

    skl2onnx expands |x|^2 - 2 x.c + |c|^2 in the input's precision. In float32, with features of
    magnitude 1e3 (wine's proline), that cancels to errors of 0.04 in distances of points near a
    center, over the 1e-3 tolerance (58 of 160,000 scores on wine, raw); the direct sum has no
    cancellation (relative error ~1e-7 of the distance itself).
    """
    from skl2onnx.algebra.complex_functions import onnx_cdist
    from skl2onnx.algebra.onnx_ops import OnnxArgMin, OnnxSqrt

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    squared = onnx_cdist(x, _const(op.cluster_centers_, dtype), metric="sqeuclidean", dtype=dtype, op_version=opv)
    label = OnnxArgMin(squared, axis=1, keepdims=0, op_version=opv, output_names=operator.outputs[:1])
    _add_to(scope, container, label, OnnxSqrt(squared, op_version=opv, output_names=operator.outputs[1:2]))


def _convert_birch(scope: Any, operator: Any, container: Any) -> None:
    """Birch: label of the nearest subcluster center; transform = distances to the subcluster centers."""
    from skl2onnx.algebra.complex_functions import onnx_cdist
    from skl2onnx.algebra.onnx_ops import OnnxArgMin, OnnxGather, OnnxSqrt

    op = operator.raw_operator
    x, dtype, opv = _input(operator, container)
    squared = onnx_cdist(x, _const(op.subcluster_centers_, dtype), metric="sqeuclidean", dtype=dtype, op_version=opv)
    nearest = OnnxArgMin(squared, axis=1, keepdims=0, op_version=opv)
    labels = OnnxGather(
        np.asarray(op.subcluster_labels_, dtype=np.int64),
        nearest,
        axis=0,
        op_version=opv,
        output_names=operator.outputs[:1],
    )
    _add_to(scope, container, labels, OnnxSqrt(squared, op_version=opv, output_names=operator.outputs[1:2]))


# -- XGBoost and LightGBM estimators inside scikit-learn pipelines ----------------------------------------------


def register_boosters(module_roots: set[str]) -> None:
    """Register onnxmltools' converters for the xgboost/lightgbm scikit-learn wrappers that are used.

    The pattern of https://onnx.ai/sklearn-onnx/auto_tutorial/plot_gexternal_xgboost.html and
    plot_gexternal_lightgbm.html; imported only when the model holds such an estimator.
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    if "xgboost" in module_roots:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor, XGBRFClassifier, XGBRFRegressor

        for classifier in (XGBClassifier, XGBRFClassifier):
            update_registered_converter(
                classifier,
                f"XGBoost{classifier.__name__}",
                calculate_linear_classifier_output_shapes,
                convert_xgboost,
                options=classifier_options,
            )
        for regressor in (XGBRegressor, XGBRFRegressor):
            update_registered_converter(
                regressor, f"XGBoost{regressor.__name__}", calculate_linear_regressor_output_shapes, convert_xgboost
            )
    if "lightgbm" in module_roots:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(
            LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=classifier_options,
        )
        update_registered_converter(
            LGBMRegressor,
            "LightGbmLGBMRegressor",
            calculate_linear_regressor_output_shapes,
            convert_lightgbm,
            options={"split": None},
        )


_booster_classes: dict[tuple[str, bool], type] = {}


def wrap_booster(library: str, booster: Any, objective: str = "") -> Any:
    """A native XGBoost or LightGBM Booster as an object skl2onnx converts with onnxmltools.

    onnxmltools' own entry points (convert_xgboost, convert_lightgbm) stop at opset 15 ("the
    converter support (15)"); its operator converters registered with skl2onnx write any opset
    skl2onnx does. onnxmltools' WrappedBooster gives the booster the attributes its converter
    reads (classes_, operator_name); a subclass per library and kind carries the registration.
    ``objective`` replaces the booster's objective where the replacement computes the same values.
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    if library == "xgboost":
        from onnxmltools.convert.xgboost._parse import WrappedBooster
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost as convert
    else:
        from onnxmltools.convert.lightgbm._parse import WrappedBooster
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm as convert
    wrapped = WrappedBooster(booster)
    if objective:
        wrapped.kwargs["objective"] = objective
    classifier = hasattr(wrapped, "classes_")
    key = (library, classifier)
    if key not in _booster_classes:
        kind = "Classifier" if classifier else "Regressor"
        cls = type(f"{library.capitalize()}Booster{kind}", (WrappedBooster,), {"__module__": __name__})
        if classifier:
            # the converter reads the nocl option; our parser declares label and probabilities (no ZipMap)
            update_registered_converter(
                cls,
                f"OnnxConvert{cls.__name__}",
                calculate_linear_classifier_output_shapes,
                convert,
                parser=_parser("label", "probabilities"),
                options={"nocl": [True, False]},
            )
        else:
            update_registered_converter(
                cls, f"OnnxConvert{cls.__name__}", calculate_linear_regressor_output_shapes, convert
            )
        _booster_classes[key] = cls
    wrapped.__class__ = _booster_classes[key]
    return wrapped
