"""What the XGBoost and LightGBM backends share: a native Booster file, one float32 input, and
the scikit-learn backend's export (skl2onnx) with onnxmltools' tree converters registered.

Each subclass detects and reads its own file format and decides which objectives it converts;
this base turns the Booster into the LoadedModel the pipeline runs and exports.
"""

from __future__ import annotations

import importlib.metadata as md
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from converter.frameworks.base import Backend, ExportJob, ExportResult, ExportRoute, LoadedModel, TensorSpec
from converter.frameworks.sklearn.export import export_with_skl2onnx

if TYPE_CHECKING:
    from converter.request import ConversionRequest

CLASSIFIER_OUTPUTS = ("label", "probabilities")
REGRESSOR_OUTPUTS = ("variable",)
ROUTE = "onnxmltools converter in skl2onnx.convert_sklearn"
# What the export needs besides the library itself (module -> pip package).
EXPORT_REQUIREMENTS = {"onnxmltools": "onnxmltools", "skl2onnx": "skl2onnx", "sklearn": "scikit-learn"}


@dataclass
class BoosterState:
    booster: Any  # the library's own Booster, which the reference run calls
    objective: str


class BoosterBackend(Backend[BoosterState]):
    """A gradient-boosting library's native model, exported through skl2onnx + onnxmltools."""

    package: ClassVar[str]  # the distribution whose version the report lists
    image_variant = "full"  # every extra; the sklearn image has no boosters

    def feature_count(self, booster: Any) -> int:
        raise NotImplementedError

    def booster_model(
        self, wrapped: Any, fmt: str, description: str, state: BoosterState, classifier: bool
    ) -> LoadedModel[BoosterState]:
        """The LoadedModel of a Booster whose objective is known to convert (``wrapped`` by wrap_booster)."""
        outputs = CLASSIFIER_OUTPUTS if classifier else REGRESSOR_OUTPUTS
        return LoadedModel(
            model=wrapped,
            format=fmt,
            description=description,
            state=state,
            label_outputs=frozenset({"label"}) if classifier else frozenset(),
            output_names=outputs,
        )

    def input_specs_impl(self, loaded: LoadedModel[BoosterState], request: ConversionRequest) -> list[TensorSpec]:
        return [TensorSpec(name="input", shape=(None, self.feature_count(loaded.state.booster)), dtype="float32")]

    def export_routes(self, loaded: LoadedModel[BoosterState]) -> list[ExportRoute]:
        return [ExportRoute(ROUTE, self.opset_range())]

    def export_impl(self, loaded: LoadedModel[BoosterState], job: ExportJob) -> ExportResult:
        result = export_with_skl2onnx(self.require, loaded, job)
        result.exporter = f"onnxmltools {md.version('onnxmltools')} ({result.exporter})"
        return result

    def opset_range(self) -> tuple[int, int]:
        skl2onnx = self.require("skl2onnx")
        return 1, int(skl2onnx.get_latest_tested_opset_version())

    def versions(self) -> dict[str, str]:
        return {pkg: md.version(pkg) for pkg in (self.package, "onnxmltools", "skl2onnx")}


def outputs_of_prediction(loaded: LoadedModel[BoosterState], prediction: np.ndarray) -> dict[str, np.ndarray]:
    """The reference outputs from Booster.predict: a column of values, or label + probabilities
    (a binary model predicts the positive class's probability only)."""
    if loaded.output_names == REGRESSOR_OUTPUTS:
        return {"variable": prediction.reshape(len(prediction), -1)}
    probabilities = np.stack([1 - prediction, prediction], axis=1) if prediction.ndim == 1 else prediction
    return {"label": probabilities.argmax(axis=1), "probabilities": probabilities}
