"""Converters for outlier detectors and clusterers."""

from __future__ import annotations

from typing import Any

import numpy as np

from converter.frameworks.sklearn.converters.blocks import add_to, constant, input_of, nearest_center, onnx_float


def convert_elliptic_envelope(scope: Any, operator: Any, container: Any) -> None:
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
    x, dtype, opv = input_of(operator, container)
    centered = OnnxSub(x, constant(op.location_, dtype), op_version=opv)
    squared = OnnxReduceSumApi11(
        OnnxMul(OnnxMatMul(centered, constant(op.get_precision(), dtype), op_version=opv), centered, op_version=opv),
        axes=[1],
        keepdims=1,
        op_version=opv,
    )
    decision = OnnxSub(OnnxNeg(squared, op_version=opv), constant([op.offset_], dtype), op_version=opv)
    scores = OnnxCast(decision, to=onnx_float(dtype), op_version=opv, output_names=operator.outputs[1:2])
    inlier = OnnxGreaterOrEqual(decision, constant([0.0], dtype), op_version=opv)
    label = OnnxWhere(
        inlier,
        np.array([1], dtype=np.int64),
        np.array([-1], dtype=np.int64),
        op_version=opv,
    )
    flat = OnnxReshapeApi13(label, np.array([-1], dtype=np.int64), op_version=opv, output_names=operator.outputs[:1])
    add_to(scope, container, scores, flat)


def convert_nearest_center(scope: Any, operator: Any, container: Any) -> None:
    """AffinityPropagation/MeanShift.predict: the nearest of cluster_centers_."""
    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    if len(op.cluster_centers_) == 0:
        raise NotImplementedError(f"{type(op).__name__} found no cluster centers, so it labels every sample -1")
    add_to(scope, container, nearest_center(x, op.cluster_centers_, dtype, opv, output_names=operator.outputs[:1]))


def convert_kmeans(scope: Any, operator: Any, container: Any) -> None:
    """KMeans/MiniBatchKMeans: distances to the centers as sums of squared differences.

    skl2onnx expands |x|^2 - 2 x.c + |c|^2 in the input's precision. In float32, with features of
    magnitude 1e3 (wine's proline), that cancels to errors of 0.04 in distances of points near a
    center, over the 1e-3 tolerance (58 of 160,000 scores on wine, raw); the direct sum has no
    cancellation (relative error ~1e-7 of the distance itself).
    """
    from skl2onnx.algebra.complex_functions import onnx_cdist
    from skl2onnx.algebra.onnx_ops import OnnxArgMin, OnnxSqrt

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    squared = onnx_cdist(x, constant(op.cluster_centers_, dtype), metric="sqeuclidean", dtype=dtype, op_version=opv)
    label = OnnxArgMin(squared, axis=1, keepdims=0, op_version=opv, output_names=operator.outputs[:1])
    add_to(scope, container, label, OnnxSqrt(squared, op_version=opv, output_names=operator.outputs[1:2]))


def convert_birch(scope: Any, operator: Any, container: Any) -> None:
    """Birch: label of the nearest subcluster center; transform = distances to the subcluster centers."""
    from skl2onnx.algebra.complex_functions import onnx_cdist
    from skl2onnx.algebra.onnx_ops import OnnxArgMin, OnnxGather, OnnxSqrt

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    squared = onnx_cdist(x, constant(op.subcluster_centers_, dtype), metric="sqeuclidean", dtype=dtype, op_version=opv)
    nearest = OnnxArgMin(squared, axis=1, keepdims=0, op_version=opv)
    labels = OnnxGather(
        np.asarray(op.subcluster_labels_, dtype=np.int64),
        nearest,
        axis=0,
        op_version=opv,
        output_names=operator.outputs[:1],
    )
    add_to(scope, container, labels, OnnxSqrt(squared, op_version=opv, output_names=operator.outputs[1:2]))
