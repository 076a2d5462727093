"""XGBoost and LightGBM estimators inside scikit-learn pipelines, and native Boosters wrapped for skl2onnx."""

from __future__ import annotations

from typing import Any

from converter.frameworks.sklearn.converters.blocks import parser_of


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
                parser=parser_of("label", "probabilities"),
                options={"nocl": [True, False]},
            )
        else:
            update_registered_converter(
                cls, f"OnnxConvert{cls.__name__}", calculate_linear_regressor_output_shapes, convert
            )
        _booster_classes[key] = cls
    wrapped.__class__ = _booster_classes[key]
    return wrapped
