"""Shape calculators: the output shapes skl2onnx declares for the converters here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _float_type(operator: Any) -> type:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    return DoubleTensorType if isinstance(operator.inputs[0].type, DoubleTensorType) else FloatTensorType


def columns_shape(columns: Callable[[Any], int]) -> Callable[[Any], None]:
    """One output, [N, columns(estimator)], in the input's float precision."""

    def calculate(operator: Any) -> None:
        batch = operator.inputs[0].get_first_dimension()
        operator.outputs[0].type = _float_type(operator)([batch, int(columns(operator.raw_operator))])

    return calculate


def classifier_shape_any_batch(operator: Any) -> None:
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType

    classes = operator.raw_operator.classes_
    batch = operator.inputs[0].get_first_dimension()
    label = StringTensorType if all(isinstance(c, str) for c in classes) else Int64TensorType
    operator.outputs[0].type = label([batch])
    operator.outputs[1].type = _float_type(operator)([batch, len(classes)])


def label_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import Int64TensorType

    operator.outputs[0].type = Int64TensorType([operator.inputs[0].get_first_dimension()])


def label_and_scores_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import Int64TensorType

    batch = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = Int64TensorType([batch])
    op = operator.raw_operator
    width = op.subcluster_centers_.shape[0] if hasattr(op, "subcluster_centers_") else 1
    operator.outputs[1].type = _float_type(operator)([batch, width])


def missing_indicator_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import BooleanTensorType

    batch = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = BooleanTensorType([batch, len(operator.raw_operator.features_)])


def knn_imputer_shape(operator: Any) -> None:
    """[N, kept columns + indicator columns]; skl2onnx's copied the input's width."""
    op = operator.raw_operator
    kept = op.n_features_in_ if op.keep_empty_features else int(np.count_nonzero(op._valid_mask))
    indicator = len(op.indicator_.features_) if op.add_indicator else 0
    batch = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _float_type(operator)([batch, kept + indicator])


def target_count(coef: np.ndarray) -> int:
    return 1 if coef.ndim == 1 else coef.shape[1]


def transformed_target_shape(operator: Any) -> None:
    """[N, targets] for any number of inputs (a ColumnTransformer regressor takes one per column);
    double when an input is, else float. skl2onnx's regressor shape takes one input only."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    batch = operator.inputs[0].get_first_dimension()
    double = any(isinstance(i.type, DoubleTensorType) for i in operator.inputs)
    # _training_dim is y.ndim: one column for 1-D y, else as many as the regressor predicts
    targets = 1 if getattr(operator.raw_operator, "_training_dim", 1) == 1 else None
    operator.outputs[0].type = (DoubleTensorType if double else FloatTensorType)([batch, targets])
