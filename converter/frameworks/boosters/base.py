"""What the XGBoost and LightGBM backends share: a native Booster file, one float32 input, and
the scikit-learn backend's export with onnxmltools' tree converters registered.

Each subclass detects and reads its own file format and decides which objectives it converts;
this base turns the Booster into the LoadedModel the pipeline runs and exports.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from converter.frameworks.base import ExportResult, LoadedModel, TensorSpec
from converter.frameworks.sklearn.backend import SklearnBackend

if TYPE_CHECKING:
    from converter.request import ConversionRequest

CLASSIFIER_OUTPUTS = ("label", "probabilities")
REGRESSOR_OUTPUTS = ("variable",)


class BoosterBackend(SklearnBackend):
    """A gradient-boosting library's native model, exported through skl2onnx + onnxmltools."""

    package: ClassVar[str]  # the distribution whose version the report lists
    image_variant = "full"  # every extra; the sklearn image has no boosters

    def feature_count(self, booster: Any) -> int:
        raise NotImplementedError

    def booster_model(
        self, booster: Any, wrapped: Any, fmt: str, description: str, classifier: bool, **extra: Any
    ) -> LoadedModel:
        """The LoadedModel of a Booster whose objective is known to convert (``wrapped`` by wrap_booster)."""
        outputs = CLASSIFIER_OUTPUTS if classifier else REGRESSOR_OUTPUTS
        return LoadedModel(
            model=wrapped,
            format=fmt,
            description=description,
            label_outputs=frozenset({"label"}) if classifier else frozenset(),
            output_names=outputs,
            extra={"booster": booster, **extra},
        )

    def input_specs_impl(self, loaded: LoadedModel, request: ConversionRequest) -> list[TensorSpec]:
        return [TensorSpec(name="input", shape=(None, self.feature_count(loaded.extra["booster"])), dtype="float32")]

    def export_impl(
        self, loaded: LoadedModel, specs: list[TensorSpec], opset: int, path: Path, dynamic_batch: bool
    ) -> ExportResult:
        import importlib.metadata as md

        result = super().export_impl(loaded, specs, opset, path, dynamic_batch)
        result.exporter = f"onnxmltools {md.version('onnxmltools')} ({result.exporter})"
        result.export_path = "onnxmltools converter in skl2onnx.convert_sklearn"
        return result

    def versions(self) -> dict[str, str]:
        import importlib.metadata as md

        return {pkg: md.version(pkg) for pkg in (self.package, "onnxmltools", "skl2onnx")}


def outputs_of_prediction(loaded: LoadedModel, prediction: np.ndarray) -> dict[str, np.ndarray]:
    """The reference outputs from Booster.predict: a column of values, or label + probabilities
    (a binary model predicts the positive class's probability only)."""
    if loaded.output_names == REGRESSOR_OUTPUTS:
        return {"variable": prediction.reshape(len(prediction), -1)}
    probabilities = np.stack([1 - prediction, prediction], axis=1) if prediction.ndim == 1 else prediction
    return {"label": probabilities.argmax(axis=1), "probabilities": probabilities}
