"""Converters for classifiers skl2onnx has none for."""

from __future__ import annotations

from typing import Any

import numpy as np

from converter.frameworks.sklearn.converters.blocks import add_to, constant, input_of, kernel_matrix, labels_of, rows_of
from converter.frameworks.sklearn.converters.notes import DOUBLED, EXP_UNDERFLOW, NO_ONNX_EQUIVALENT


def convert_dummy_classifier(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxArgMax

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
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
    probabilities = rows_of(x, proba, dtype, opv, output_names=operator.outputs[1:2])
    index = OnnxArgMax(probabilities, axis=1, keepdims=0, op_version=opv)
    add_to(scope, container, probabilities, labels_of(index, op.classes_, opv, operator.outputs[:1]))


def convert_nearest_centroid(scope: Any, operator: Any, container: Any) -> None:
    """NearestCentroid.predict_proba/predict (scikit-learn >= 1.5, DiscriminantAnalysisPredictionMixin)."""
    from skl2onnx.algebra.complex_functions import onnx_cdist
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxArgMax, OnnxArgMin, OnnxDiv, OnnxMul, OnnxNeg, OnnxSoftmax

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    if op.metric not in ("euclidean", "manhattan"):
        raise NotImplementedError(f'NearestCentroid metric "{op.metric}" has no converter')
    std = np.where(op.within_class_std_dev_ != 0, op.within_class_std_dev_, 1.0)
    normalized = OnnxDiv(x, constant(std, dtype), op_version=opv)
    metric = "sqeuclidean" if op.metric == "euclidean" else "cityblock"
    distances = onnx_cdist(normalized, constant(op.centroids_ / std, dtype), metric=metric, dtype=dtype, op_version=opv)
    if op.metric == "manhattan":
        distances = OnnxMul(distances, distances, op_version=opv)
    scores = OnnxAdd(OnnxNeg(distances, op_version=opv), constant(2.0 * np.log(op.class_prior_), dtype), op_version=opv)
    probabilities = OnnxSoftmax(scores, axis=1, op_version=opv, output_names=operator.outputs[1:2])
    if np.isclose(op.class_prior_, 1 / len(op.classes_)).all():
        # predict() then takes the nearest centroid in the raw space, not the normalised one
        raw = onnx_cdist(x, constant(op.centroids_, dtype), metric=metric, dtype=dtype, op_version=opv)
        index = OnnxArgMin(raw, axis=1, keepdims=0, op_version=opv)
    else:
        index = OnnxArgMax(scores, axis=1, keepdims=0, op_version=opv)
    add_to(scope, container, probabilities, labels_of(index, op.classes_, opv, operator.outputs[:1]))


def convert_linear_discriminant(scope: Any, operator: Any, container: Any) -> None:
    """LinearDiscriminantAnalysis: probabilities from the decision function.

    skl2onnx writes LinearClassifier(SOFTMAX) over [-d, d] for two classes, which is
    sigmoid(2d); scikit-learn's predict_proba is expit(d) (discriminant_analysis.py,
    predict_proba). Found by the breast-cancer model in bench/COVERAGE.md (max diff 0.148).
    """
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxArgMax, OnnxConcat, OnnxMatMul, OnnxSigmoid, OnnxSoftmax, OnnxSub

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    decision = OnnxAdd(
        OnnxMatMul(x, constant(op.coef_.T, dtype), op_version=opv), constant(op.intercept_, dtype), op_version=opv
    )
    if len(op.classes_) == 2:
        positive = OnnxSigmoid(decision, op_version=opv)
        negative = OnnxSub(constant([1.0], dtype), positive, op_version=opv)
        probabilities = OnnxConcat(negative, positive, axis=1, op_version=opv, output_names=operator.outputs[1:2])
    else:
        probabilities = OnnxSoftmax(decision, axis=1, op_version=opv, output_names=operator.outputs[1:2])
    index = OnnxArgMax(probabilities, axis=1, keepdims=0, op_version=opv)
    add_to(scope, container, probabilities, labels_of(index, op.classes_, opv, operator.outputs[:1]))


def convert_label_propagation(scope: Any, operator: Any, container: Any) -> None:
    """LabelPropagation/LabelSpreading with the rbf kernel: normalised kernel-weighted label distributions.

    Computed in double: with gamma=20 the weights exp(-gamma d^2) underflow to 0 in float32
    from d^2 > 5.2, in float64 (as scikit-learn computes) from d^2 > 37, and the normalisation
    then divides by zero in one precision and not the other.
    """
    from skl2onnx.algebra.onnx_ops import OnnxArgMax, OnnxCast, OnnxDiv, OnnxMatMul, OnnxReduceSumApi11
    from skl2onnx.proto import onnx_proto

    op = operator.raw_operator
    x, dtype, opv = input_of(operator, container)
    if op.kernel != "rbf":
        raise NotImplementedError(f'{type(op).__name__} kernel "{op.kernel}" has no converter (rbf does)')
    DOUBLED[type(op).__name__] = EXP_UNDERFLOW
    x64 = OnnxCast(x, to=onnx_proto.TensorProto.DOUBLE, op_version=opv)
    weights = kernel_matrix(x64, op.X_, {"metric": "rbf", "gamma": op.gamma}, np.float64, opv)
    unnormalized = OnnxMatMul(weights, constant(op.label_distributions_, np.float64), op_version=opv)
    total = OnnxReduceSumApi11(unnormalized, axes=[1], keepdims=1, op_version=opv)
    probabilities64 = OnnxDiv(unnormalized, total, op_version=opv)
    target = onnx_proto.TensorProto.DOUBLE if dtype == np.float64 else onnx_proto.TensorProto.FLOAT
    probabilities = OnnxCast(probabilities64, to=target, op_version=opv, output_names=operator.outputs[1:2])
    index = OnnxArgMax(probabilities64, axis=1, keepdims=0, op_version=opv)
    add_to(scope, container, probabilities, labels_of(index, op.classes_, opv, operator.outputs[:1]))
