"""Converters for regressors skl2onnx has none for."""

from __future__ import annotations

from typing import Any

import numpy as np

from converter.frameworks.sklearn.converters.blocks import (
    add_to,
    cast,
    clip_columns,
    constant,
    input_of,
    kernel_matrix,
    labels_of,
    onnx_int64,
    radius_membership,
    rows_of,
)
from converter.frameworks.sklearn.converters.functions import function_name, unary


def convert_dummy_regressor(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    add_to(scope, container, rows_of(x, np.ravel(op.constant_), dtype, opv, output_names=operator.outputs[:1]))


def convert_kernel_ridge(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxIdentity, OnnxMatMul

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    dual = op.dual_coef_.reshape(op.dual_coef_.shape[0], -1)
    if callable(op.kernel) or op.kernel == "precomputed":
        raise NotImplementedError(f"KernelRidge with kernel={op.kernel!r} has no converter")
    if op.kernel == "linear":
        # K(X, X_fit) @ dual == X @ (X_fit.T @ dual): folded in float64, one small MatMul, and no
        # float32 cancellation over the training-set sum.
        prediction = OnnxMatMul(x, constant(op.X_fit_.T @ dual, dtype), op_version=opv)
    else:
        params = {"gamma": op.gamma, "degree": op.degree, "coef0": op.coef0, **(op.kernel_params or {})}
        kernel = kernel_matrix(x, op.X_fit_, {"metric": op.kernel, **params}, dtype, opv)
        prediction = OnnxMatMul(kernel, constant(dual, dtype), op_version=opv)
    add_to(scope, container, OnnxIdentity(prediction, op_version=opv, output_names=operator.outputs[:1]))


def convert_transformed_target(scope: Any, operator: Any, container: Any) -> None:
    """regressor_ then the inverse of transformer_ (or inverse_func)."""
    from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxDiv, OnnxIdentity, OnnxMul, OnnxSub

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    # A regressor that is a ColumnTransformer pipeline takes one input per DataFrame column: all of them.
    inputs = [x] if len(operator.inputs) == 1 else list(operator.inputs)
    y = OnnxSubEstimator(op.regressor_, *inputs, op_version=opv)
    inverse = op.transformer_
    name = type(inverse).__name__
    if name == "FunctionTransformer":
        function = inverse.inverse_func
        apply = unary(function, dtype, opv)
        if apply is None:
            raise NotImplementedError(
                f"TransformedTargetRegressor with inverse_func={function_name(function)} has no converter "
                "(numpy ufuncs such as exp, expm1, log, log1p, sqrt, square do)"
            )
        y = apply(y)
    elif name == "StandardScaler":
        if inverse.scale_ is not None:
            y = OnnxMul(y, constant(inverse.scale_, dtype), op_version=opv)
        if inverse.mean_ is not None:
            y = OnnxAdd(y, constant(inverse.mean_, dtype), op_version=opv)
    elif name == "MinMaxScaler":
        y = OnnxDiv(
            OnnxSub(y, constant(inverse.min_, dtype), op_version=opv), constant(inverse.scale_, dtype), op_version=opv
        )
    else:
        raise NotImplementedError(
            f"TransformedTargetRegressor with transformer={name} has no converter (StandardScaler, MinMaxScaler and functions do)"
        )
    add_to(scope, container, OnnxIdentity(y, op_version=opv, output_names=operator.outputs[:1]))


def convert_radius_regressor(scope: Any, operator: Any, container: Any) -> None:
    """RadiusNeighborsRegressor: mean of the targets within the radius; NaN where there are none.

    skl2onnx's converter gathers neighbour index -1 when a sample has no neighbour and
    onnxruntime stops ("index is out of range"); scikit-learn returns NaN with a warning.
    """
    from skl2onnx.algebra.onnx_ops import OnnxDiv, OnnxMatMul, OnnxReduceSumApi11

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    if op.weights != "uniform" or op.effective_metric_ != "euclidean":
        raise NotImplementedError('RadiusNeighborsRegressor converts with weights="uniform" and the euclidean metric')
    _, inside = radius_membership(x, op, opv)
    targets = constant(np.asarray(op._y).reshape(len(op._y), -1), np.float64)
    total = OnnxMatMul(inside, targets, op_version=opv)
    count = OnnxReduceSumApi11(inside, axes=[1], keepdims=1, op_version=opv)
    mean = OnnxDiv(total, count, op_version=opv)  # 0 / 0 is NaN, as in scikit-learn
    add_to(scope, container, cast(mean, dtype, opv, output_names=operator.outputs[:1]))


def convert_radius_classifier(scope: Any, operator: Any, container: Any) -> None:
    """RadiusNeighborsClassifier(weights="uniform"): class shares among the training rows within the radius.

    skl2onnx's converter pads each sample's neighbour list with index -1 and onnxruntime then
    stops ("index is out of range") on some batches; this one masks the distance matrix instead.
    A sample without neighbours gets NaN probabilities where scikit-learn raises.
    """
    from skl2onnx.algebra.onnx_ops import OnnxArgMax, OnnxDiv, OnnxMatMul, OnnxReduceSumApi11

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    if op.weights != "uniform" or op.effective_metric_ != "euclidean" or op.outputs_2d_ or op.outlier_label is not None:
        raise NotImplementedError(
            'RadiusNeighborsClassifier converts with weights="uniform", the euclidean metric, one output and no outlier_label'
        )
    _, inside = radius_membership(x, op, opv)
    one_hot = np.eye(len(op.classes_))[np.asarray(op._y).ravel()]
    votes = OnnxMatMul(inside, constant(one_hot, np.float64), op_version=opv)
    total = OnnxReduceSumApi11(votes, axes=[1], keepdims=1, op_version=opv)
    probabilities = cast(OnnxDiv(votes, total, op_version=opv), dtype, opv, output_names=operator.outputs[1:2])
    index = OnnxArgMax(votes, axis=1, keepdims=0, op_version=opv)
    add_to(scope, container, probabilities, labels_of(index, op.classes_, opv, operator.outputs[:1]))


def convert_isotonic(scope: Any, operator: Any, container: Any) -> None:
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
    x, dtype, opv = input_of(operator, container)
    if op.out_of_bounds == "raise":
        raise NotImplementedError('IsotonicRegression(out_of_bounds="raise") has no converter; ONNX cannot raise')
    xs, ys = np.asarray(op.X_thresholds_, np.float64), np.asarray(op.y_thresholds_, np.float64)
    if xs.size == 1:
        xs, ys = np.r_[xs, xs + 1.0], np.r_[ys, ys]  # a constant fit: one flat piece
    if op.out_of_bounds == "clip":
        x = clip_columns(x, constant([op.X_min_], dtype), constant([op.X_max_], dtype), opv)
    piece = OnnxReduceSumApi11(
        OnnxCast(
            OnnxGreaterOrEqual(x, constant(xs[1:-1].reshape(1, -1), dtype), op_version=opv),
            to=onnx_int64(),
            op_version=opv,
        ),
        axes=[1],
        keepdims=1,
        op_version=opv,
    )  # (N, 1): index of the interval
    slopes = np.diff(ys) / np.where(np.diff(xs) == 0, 1.0, np.diff(xs))
    left_x = OnnxGather(constant(xs[:-1], dtype), piece, axis=0, op_version=opv)
    left_y = OnnxGather(constant(ys[:-1], dtype), piece, axis=0, op_version=opv)
    slope = OnnxGather(constant(slopes, dtype), piece, axis=0, op_version=opv)
    value = OnnxAdd(left_y, OnnxMul(OnnxSub(x, left_x, op_version=opv), slope, op_version=opv), op_version=opv)
    if op.out_of_bounds == "nan":
        outside = OnnxOr(
            OnnxLess(x, constant([xs[0]], dtype), op_version=opv),
            OnnxGreater(x, constant([xs[-1]], dtype), op_version=opv),
            op_version=opv,
        )
        value = OnnxWhere(outside, constant([np.nan], dtype), value, op_version=opv)
    add_to(scope, container, OnnxIdentity(value, op_version=opv, output_names=operator.outputs[:1]))
