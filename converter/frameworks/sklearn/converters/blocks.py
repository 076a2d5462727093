"""Building blocks the converters share, in skl2onnx's algebra API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from converter.frameworks.sklearn.converters.notes import DOUBLED, RADIUS_BOUNDARY


def input_of(operator: Any, container: Any) -> tuple[Any, type, int]:
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


def constant(array: Any, dtype: type) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(array, dtype=np.float64).astype(dtype))


def rows_of(x: Any, row: np.ndarray, dtype: type, opv: int, output_names: Any = None) -> Any:
    """A [N, len(row)] tensor whose every row is ``row`` (N from ``x``; values of x unused)."""
    from onnx import numpy_helper
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxConcat, OnnxConstantOfShape, OnnxShape, OnnxSlice

    batch = OnnxSlice(OnnxShape(x, op_version=opv), np.array([0], np.int64), np.array([1], np.int64), op_version=opv)
    shape = OnnxConcat(batch, np.array([row.size], dtype=np.int64), axis=0, op_version=opv)
    zeros = OnnxConstantOfShape(shape, value=numpy_helper.from_array(np.zeros(1, dtype=dtype)), op_version=opv)
    return OnnxAdd(zeros, constant(row.reshape(1, -1), dtype), op_version=opv, output_names=output_names)


def labels_of(index: Any, classes: np.ndarray, opv: int, output_names: Any) -> Any:
    """classes_[index], int64 or string, like ``classes_.take(argmax)``."""
    from skl2onnx.algebra.onnx_ops import OnnxGather

    if all(isinstance(c, str) for c in classes):
        table = np.array([str(c) for c in classes], dtype=object)
    else:
        table = np.asarray(classes).astype(np.int64)
    return OnnxGather(table, index, axis=0, op_version=opv, output_names=output_names)


def kernel_matrix(x: Any, fit: np.ndarray, params: dict[str, Any], dtype: type, opv: int) -> Any:
    """``pairwise_kernels(X, fit, **params)`` (``params["metric"]`` names the kernel) for the kernels with a closed form."""
    from skl2onnx.algebra.complex_functions import onnx_cdist
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxDiv, OnnxExp, OnnxMatMul, OnnxMul, OnnxPow, OnnxTanh
    from skl2onnx.algebra.onnx_ops import OnnxReduceL2Api18 as OnnxReduceL2

    kernel = params["metric"]
    n_features = fit.shape[1]
    gamma = params.get("gamma")
    gamma = 1.0 / n_features if gamma is None else float(gamma)
    degree = 3 if params.get("degree") is None else params["degree"]
    coef0 = 1.0 if params.get("coef0") is None else params["coef0"]
    if kernel == "linear":
        return OnnxMatMul(x, constant(fit.T, dtype), op_version=opv)
    if kernel in ("rbf", "laplacian"):
        metric = "sqeuclidean" if kernel == "rbf" else "cityblock"
        distances = onnx_cdist(x, constant(fit, dtype), metric=metric, dtype=dtype, op_version=opv)
        return OnnxExp(OnnxMul(distances, constant([-gamma], dtype), op_version=opv), op_version=opv)
    if kernel in ("poly", "polynomial", "sigmoid"):
        dot = OnnxMatMul(x, constant(fit.T * gamma, dtype), op_version=opv)
        shifted = OnnxAdd(dot, constant([coef0], dtype), op_version=opv)
        if kernel == "sigmoid":
            return OnnxTanh(shifted, op_version=opv)
        return OnnxPow(shifted, constant([degree], dtype), op_version=opv)
    if kernel == "cosine":
        norms = np.linalg.norm(fit, axis=1, keepdims=True)
        unit_fit = fit / np.where(norms == 0, 1, norms)
        x_norm = OnnxReduceL2(x, np.array([1], np.int64), keepdims=1, op_version=opv)
        return OnnxMatMul(OnnxDiv(x, x_norm, op_version=opv), constant(unit_fit.T, dtype), op_version=opv)
    raise NotImplementedError(f'kernel "{kernel}" has no converter (linear, rbf, laplacian, poly, sigmoid, cosine do)')


def nearest_center(x: Any, centers: np.ndarray, dtype: type, opv: int, output_names: Any = None) -> Any:
    """Index of the nearest center (euclidean), like ``pairwise_distances_argmin``."""
    from skl2onnx.algebra.complex_functions import onnx_cdist
    from skl2onnx.algebra.onnx_ops import OnnxArgMin

    distances = onnx_cdist(x, constant(centers, dtype), metric="sqeuclidean", dtype=dtype, op_version=opv)
    return OnnxArgMin(distances, axis=1, keepdims=0, op_version=opv, output_names=output_names)


def add_to(scope: Any, container: Any, *nodes: Any) -> None:
    for node in nodes:
        node.add_to(scope, container)


def cast(x: Any, dtype: type, opv: int, output_names: Any = None) -> Any:
    """``x`` as ``dtype`` (float32 or float64; a Cast to its own type is a no-op that names the output)."""
    from skl2onnx.algebra.onnx_ops import OnnxCast

    return OnnxCast(x, to=onnx_float(dtype), op_version=opv, output_names=output_names)


def clip_columns(x: Any, low: np.ndarray, high: np.ndarray, opv: int) -> Any:
    from skl2onnx.algebra.onnx_ops import OnnxMax, OnnxMin

    return OnnxMin(OnnxMax(x, low, op_version=opv), high, op_version=opv)


def onnx_float(dtype: type) -> int:
    from onnx import TensorProto

    return TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT


def onnx_int64() -> int:
    from onnx import TensorProto

    return TensorProto.INT64


def radius_membership(x: Any, op: Any, opv: int) -> tuple[Any, Any]:
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
        cast(x, np.float64, opv),
        constant(op._fit_X, np.float64),
        metric="sqeuclidean",
        dtype=np.float64,
        op_version=opv,
    )
    radius = constant([float(op.radius) ** 2], np.float64)
    inside = OnnxCast(OnnxLessOrEqual(squared, radius, op_version=opv), to=onnx_float(np.float64), op_version=opv)
    return squared, inside


def parser_of(*names: str) -> Callable[..., list[Any]]:
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
