"""Converters for transformers skl2onnx has none for, or gets wrong."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from converter.frameworks.sklearn.converters.blocks import (
    add_to,
    cast,
    clip_columns,
    constant,
    input_of,
    kernel_matrix,
    radius_membership,
    rows_of,
)
from converter.frameworks.sklearn.converters.notes import DOUBLED, FLOAT32_BUDGET, NEAREST_DONORS


def _linear_transform(scope: Any, operator: Any, container: Any, weights: np.ndarray, mean: np.ndarray | None) -> None:
    """(X - mean) @ weights, with ``weights`` folded in float64 beforehand."""
    from skl2onnx.algebra.onnx_ops import OnnxMatMul, OnnxSub

    x, dtype, opv = input_of(operator, container)
    centered = x if mean is None else OnnxSub(x, constant(mean, dtype), op_version=opv)
    add_to(
        scope,
        container,
        OnnxMatMul(centered, constant(weights, dtype), op_version=opv, output_names=operator.outputs[:1]),
    )


def convert_factor_analysis(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    wpsi = op.components_ / op.noise_variance_
    cov_z = np.linalg.inv(np.eye(len(op.components_)) + wpsi @ op.components_.T)
    _linear_transform(scope, operator, container, wpsi.T @ cov_z, op.mean_)


def convert_fast_ica(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    _linear_transform(scope, operator, container, op.components_.T, op.mean_ if op.whiten else None)


def convert_sparse_pca(scope: Any, operator: Any, container: Any) -> None:
    # transform = ridge_regression(components_.T, (X - mean_).T, ridge_alpha): a fixed linear map
    op = operator.raw_operator
    components = op.components_
    gram = components @ components.T + op.ridge_alpha * np.eye(len(components))
    _linear_transform(scope, operator, container, components.T @ np.linalg.inv(gram), op.mean_)


def convert_pls_svd(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    _linear_transform(scope, operator, container, op.x_weights_ / op._x_std[:, None], op._x_mean)


def convert_bernoulli_rbm(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxMatMul, OnnxSigmoid

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    logits = OnnxAdd(
        OnnxMatMul(x, constant(op.components_.T, dtype), op_version=opv),
        constant(op.intercept_hidden_, dtype),
        op_version=opv,
    )
    add_to(scope, container, OnnxSigmoid(logits, op_version=opv, output_names=operator.outputs[:1]))


def convert_nystroem(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxMatMul

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
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
    kernel = kernel_matrix(cast(x, inner, opv), op.components_, {"metric": op.kernel, **params}, inner, opv)
    features = OnnxMatMul(kernel, constant(op.normalization_.T, inner), op_version=opv)
    add_to(scope, container, cast(features, dtype, opv, output_names=operator.outputs[:1]))


def _random_fourier(scope: Any, operator: Any, container: Any, features: Any, scale: float) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxCos, OnnxMatMul, OnnxMul

    op = operator.raw_operator
    _, dtype, opv = input_of(operator, container)
    projection = OnnxAdd(
        OnnxMatMul(features, constant(op.random_weights_, dtype), op_version=opv),
        constant(op.random_offset_, dtype),
        op_version=opv,
    )
    cosine = OnnxCos(projection, op_version=opv)
    add_to(
        scope, container, OnnxMul(cosine, constant([scale], dtype), op_version=opv, output_names=operator.outputs[:1])
    )


def convert_rbf_sampler(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    x, _, _ = input_of(operator, container)
    _random_fourier(scope, operator, container, x, (2.0 / op.n_components) ** 0.5)


def convert_skewed_chi2(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxLog

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    logged = OnnxLog(OnnxAdd(x, constant([op.skewedness], dtype), op_version=opv), op_version=opv)
    _random_fourier(scope, operator, container, logged, np.sqrt(2.0) / np.sqrt(op.n_components))


def convert_additive_chi2(scope: Any, operator: Any, container: Any) -> None:
    """AdditiveChi2Sampler._transform_dense: zero inputs give zero features."""
    from skl2onnx.algebra.onnx_ops import OnnxConcat, OnnxCos, OnnxEqual, OnnxLog, OnnxMul, OnnxSin, OnnxSqrt, OnnxWhere

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    interval = op.sample_interval if op.sample_interval is not None else {1: 0.8, 2: 0.5, 3: 0.4}[op.sample_steps]
    zero = OnnxEqual(x, constant([0.0], dtype), op_version=opv)
    safe = OnnxWhere(zero, constant([1.0], dtype), x, op_version=opv)  # log(0) never reaches the output
    zeros = OnnxMul(x, constant([0.0], dtype), op_version=opv)

    def masked(value: Any) -> Any:
        return OnnxWhere(zero, zeros, value, op_version=opv)

    parts = [masked(OnnxSqrt(OnnxMul(safe, constant([interval], dtype), op_version=opv), op_version=opv))]
    log_step = OnnxMul(OnnxLog(safe, op_version=opv), constant([interval], dtype), op_version=opv)
    for j in range(1, op.sample_steps):
        factor = OnnxSqrt(
            OnnxMul(safe, constant([2 * interval / np.cosh(np.pi * j * interval)], dtype), op_version=opv),
            op_version=opv,
        )
        angle = OnnxMul(log_step, constant([j], dtype), op_version=opv)
        parts.append(masked(OnnxMul(factor, OnnxCos(angle, op_version=opv), op_version=opv)))
        parts.append(masked(OnnxMul(factor, OnnxSin(angle, op_version=opv), op_version=opv)))
    add_to(scope, container, OnnxConcat(*parts, axis=1, op_version=opv, output_names=operator.outputs[:1]))


def convert_spline(scope: Any, operator: Any, container: Any) -> None:
    """SplineTransformer as piecewise polynomials: find the knot interval, evaluate its cubic.

    The B-spline bases are turned into per-interval polynomial coefficients with
    scipy's PPoly.from_spline (in float64). extrapolation="constant" equals clipping x to the
    base interval (outside it scikit-learn repeats the boundary values); "continue" extends the
    first and last pieces, as BSpline(extrapolate=True) does.
    """
    from skl2onnx.algebra.onnx_ops import OnnxGather, OnnxIdentity, OnnxReshapeApi13

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    if op.extrapolation not in ("constant", "continue"):
        raise NotImplementedError(
            f'SplineTransformer extrapolation="{op.extrapolation}" has no converter (constant and continue do)'
        )
    if op.sparse_output:
        raise NotImplementedError("SplineTransformer(sparse_output=True) has no converter; ONNX has no sparse tensors")
    pieces = _SplinePieces.of(op)
    if op.extrapolation == "constant":
        low = constant([k[0] for k in pieces.knots], dtype)
        high = constant([k[-1] for k in pieces.knots], dtype)
        x = clip_columns(x, low, high, opv)
    values = _spline_values(x, pieces, dtype, opv)  # (N, F, S)
    n_features, n_splines = len(pieces.knots), pieces.coefficients.shape[2]
    columns = np.array([-1, n_features * n_splines], dtype=np.int64)
    out = OnnxReshapeApi13(values, columns, op_version=opv)
    if not op.include_bias:
        keep = np.array([i for i in range(n_features * n_splines) if (i + 1) % n_splines != 0], dtype=np.int64)
        out = OnnxGather(out, keep, axis=1, op_version=opv)
    add_to(scope, container, OnnxIdentity(out, op_version=opv, output_names=operator.outputs[:1]))


@dataclass
class _SplinePieces:
    """A SplineTransformer's B-splines as polynomials, one per feature and knot interval (float64)."""

    degree: int
    knots: list[np.ndarray]  # per feature, the base interval's knots
    coefficients: np.ndarray  # [f * n_pieces + piece, power, spline]: highest power first, in (x - left knot)

    @classmethod
    def of(cls, op: Any) -> _SplinePieces:
        from scipy.interpolate import BSpline, PPoly

        degree = op.degree
        n_splines = op.bsplines_[0].c.shape[1]
        knots = [spl.t[degree : len(spl.t) - degree] for spl in op.bsplines_]
        n_pieces = len(knots[0]) - 1
        coefficients = np.zeros((len(op.bsplines_) * n_pieces, degree + 1, n_splines))
        for f, spl in enumerate(op.bsplines_):
            for s in range(n_splines):
                ppoly = PPoly.from_spline(BSpline(spl.t, spl.c[:, s], spl.k))
                coefficients[f * n_pieces : (f + 1) * n_pieces, :, s] = ppoly.c[:, degree : degree + n_pieces].T
        return cls(degree, knots, coefficients)


def _spline_values(x: Any, pieces: _SplinePieces, dtype: type, opv: int) -> Any:
    """Each feature's splines at x: the polynomial of x's knot interval, (N, F, splines)."""
    from skl2onnx.algebra.onnx_ops import (
        OnnxAdd,
        OnnxCast,
        OnnxGather,
        OnnxGreaterOrEqual,
        OnnxMul,
        OnnxPow,
        OnnxReduceSumApi11,
        OnnxSub,
        OnnxUnsqueezeApi11,
    )
    from skl2onnx.proto import onnx_proto

    n_features, n_pieces, degree = len(pieces.knots), len(pieces.knots[0]) - 1, pieces.degree
    lefts = np.stack([k[:-1] for k in pieces.knots])  # (F, pieces)
    inner = np.stack([k[1:-1] for k in pieces.knots])  # (F, pieces - 1)
    piece = OnnxReduceSumApi11(
        OnnxCast(
            OnnxGreaterOrEqual(OnnxUnsqueezeApi11(x, axes=[2], op_version=opv), constant(inner, dtype), op_version=opv),
            to=onnx_proto.TensorProto.INT64,
            op_version=opv,
        ),
        axes=[2],
        keepdims=0,
        op_version=opv,
    )  # (N, F): index of the knot interval (clamped to the first and last by construction)
    flat = OnnxAdd(piece, (np.arange(n_features) * n_pieces).astype(np.int64), op_version=opv)
    local = OnnxSub(x, OnnxGather(constant(lefts.ravel(), dtype), flat, axis=0, op_version=opv), op_version=opv)
    powers = np.arange(degree, -1, -1, dtype=np.float64)  # highest first, like PPoly's coefficients
    local3 = OnnxUnsqueezeApi11(local, axes=[2], op_version=opv)  # (N, F, 1)
    power_terms = OnnxPow(local3, constant(powers, dtype), op_version=opv)  # (N, F, degree+1)
    gathered = OnnxGather(constant(pieces.coefficients, dtype), flat, axis=0, op_version=opv)  # (N, F, degree+1, S)
    return OnnxReduceSumApi11(
        OnnxMul(gathered, OnnxUnsqueezeApi11(power_terms, axes=[3], op_version=opv), op_version=opv),
        axes=[2],
        keepdims=0,
        op_version=opv,
    )


def convert_agglomeration(scope: Any, operator: Any, container: Any) -> None:
    """FeatureAgglomeration with pooling_func=np.mean: each output column is a mean of input columns."""
    op = operator.raw_operator
    if op.pooling_func is not np.mean:
        raise NotImplementedError(f"FeatureAgglomeration with pooling_func={op.pooling_func.__name__} has no converter")
    labels = np.asarray(op.labels_)
    weights = np.zeros((labels.size, labels.max() + 1))
    weights[np.arange(labels.size), labels] = 1.0
    _linear_transform(scope, operator, container, weights / weights.sum(axis=0), None)


def convert_missing_indicator(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxEqual, OnnxGather, OnnxIsNaN

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    value = op.missing_values
    if isinstance(value, float) and np.isnan(value):
        mask = OnnxIsNaN(x, op_version=opv)
    else:
        mask = OnnxEqual(x, constant([value], dtype), op_version=opv)
    features = np.asarray(op.features_, dtype=np.int64)
    add_to(scope, container, OnnxGather(mask, features, axis=1, op_version=opv, output_names=operator.outputs[:1]))


def convert_radius_transformer(scope: Any, operator: Any, container: Any) -> None:
    """RadiusNeighborsTransformer(mode="distance") as a dense matrix: distance within the radius, else 0."""
    from skl2onnx.algebra.onnx_ops import OnnxMul, OnnxSqrt

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    if op.mode != "distance" or op.effective_metric_ != "euclidean":
        raise NotImplementedError('RadiusNeighborsTransformer converts with mode="distance" and the euclidean metric')
    squared, inside = radius_membership(x, op, opv)
    distances = OnnxMul(OnnxSqrt(squared, op_version=opv), inside, op_version=opv)
    add_to(scope, container, cast(distances, dtype, opv, output_names=operator.outputs[:1]))


def convert_knn_imputer(scope: Any, operator: Any, container: Any) -> None:
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
    from skl2onnx.algebra.onnx_ops import OnnxConcat, OnnxEqual, OnnxGather, OnnxIsNaN

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    if op.metric != "nan_euclidean" or op.weights != "uniform":
        raise NotImplementedError('KNNImputer converts with weights="uniform" and metric="nan_euclidean"')
    DOUBLED["KNNImputer"] = NEAREST_DONORS
    x64 = cast(x, np.float64, opv)
    value = op.missing_values
    missing = (
        OnnxIsNaN(x, op_version=opv)
        if isinstance(value, float) and np.isnan(value)
        else OnnxEqual(x64, constant([value], np.float64), op_version=opv)
    )
    donors = _Donors.of(op, x64, missing, opv)
    columns = []
    for col in range(op.n_features_in_):
        if not op._valid_mask[col]:  # missing in every training row: dropped, or 0 (keep_empty_features)
            columns.append(rows_of(x, np.zeros(1), np.float64, opv))
        else:
            columns.append(_imputed_column(donors, col, op.n_neighbors, opv))
    kept = columns if op.keep_empty_features else [c for c, valid in zip(columns, op._valid_mask, strict=True) if valid]
    if op.add_indicator:
        features = np.asarray(op.indicator_.features_, dtype=np.int64)
        kept.append(cast(OnnxGather(missing, features, axis=1, op_version=opv), np.float64, opv))
    imputed_all = OnnxConcat(*kept, axis=1, op_version=opv)
    add_to(scope, container, cast(imputed_all, dtype, opv, output_names=operator.outputs[:1]))


@dataclass
class _Donors:
    """The rows being imputed (in double), and their nan-euclidean order to every training row."""

    x64: Any
    missing: Any  # where the rows miss a value
    distance: Any  # (N, training rows): squared distance over shared coordinates / their count; +inf without any
    fit0: np.ndarray  # the training rows, 0 where missing
    fit_missing: np.ndarray

    @classmethod
    def of(cls, op: Any, x64: Any, missing: Any, opv: int) -> _Donors:
        from skl2onnx.algebra.onnx_ops import (
            OnnxAdd,
            OnnxDiv,
            OnnxGreater,
            OnnxMatMul,
            OnnxMax,
            OnnxMul,
            OnnxNot,
            OnnxSub,
            OnnxWhere,
        )

        f64 = np.float64
        zero = np.array([0.0], dtype=f64)
        x0 = OnnxWhere(missing, zero, x64, op_version=opv)
        present = cast(OnnxNot(missing, op_version=opv), f64, opv)
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
        distance = OnnxWhere(
            OnnxGreater(shared, zero, op_version=opv),
            OnnxDiv(OnnxMax(squares, zero, op_version=opv), shared, op_version=opv),
            np.array([np.inf], dtype=f64),
            op_version=opv,
        )
        return cls(x64, missing, distance, fit0, fit_missing)


def _imputed_column(donors: _Donors, col: int, n_neighbors: int, opv: int) -> Any:
    """Column ``col``: the value where present, else the mean over the nearest training rows that have it."""
    from skl2onnx.algebra.onnx_ops import (
        OnnxAdd,
        OnnxDiv,
        OnnxGather,
        OnnxGreater,
        OnnxLess,
        OnnxMax,
        OnnxMul,
        OnnxReduceSumApi11,
        OnnxTopK,
        OnnxWhere,
    )

    f64, fit0, fit_missing = np.float64, donors.fit0, donors.fit_missing
    zero, inf = np.array([0.0], dtype=f64), np.array([np.inf], dtype=f64)
    k = np.array([min(n_neighbors, len(fit0))], dtype=np.int64)
    # only rows that have the column are donors for it
    candidates = OnnxAdd(donors.distance, np.where(fit_missing[:, col], np.inf, 0.0).astype(f64), op_version=opv)
    top = OnnxTopK(candidates, k, largest=0, sorted=1, axis=-1, op_version=opv)
    nearest, index = top[0], top[1]
    weight = cast(OnnxLess(nearest, inf, op_version=opv), f64, opv)
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
    return OnnxWhere(
        OnnxGather(donors.missing, pick, axis=1, op_version=opv),
        imputed,
        OnnxGather(donors.x64, pick, axis=1, op_version=opv),
        op_version=opv,
    )
