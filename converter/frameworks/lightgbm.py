"""LightGBM backend: native text model files, exported by onnxmltools' converter through skl2onnx.

Detected without importing lightgbm: a LightGBM text model starts with "tree\\nversion=".
LGBMClassifier/LGBMRegressor inside a scikit-learn pipeline (.skops) go through the scikit-learn
backend. The export is the scikit-learn backend's, as for XGBoost (converter/frameworks/xgboost.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from converter.errors import ConversionError, UserError, describe
from converter.frameworks.base import ExportResult, LoadedModel, TensorSpec
from converter.frameworks.sklearn import SklearnBackend
from converter.frameworks.xgboost import _versions, _via_onnxmltools

if TYPE_CHECKING:
    from converter.request import ConversionRequest

MAGIC = b"tree\nversion="
CLASSIFIER_OBJECTIVES = ("binary", "multiclass", "softmax")
REGRESSOR_OBJECTIVES = (
    "regression",
    "regression_l1",
    "huber",
    "fair",
    "poisson",
    "gamma",
    "tweedie",
    "quantile",
    "lambdarank",
    "rank_xendcg",
)
# Refused before export, measured: onnxmltools 1.16 normalises multiclassova's per-class sigmoids
# as a softmax (max diff 0.19) and ignores average_output (random-forest mode, max diff 0.33);
# it has no converter for cross_entropy, cross_entropy_lambda, mape.


class LightGBMBackend(SklearnBackend):
    name = "lightgbm"
    requirements: ClassVar[dict[str, str]] = {
        "lightgbm": "lightgbm",
        "onnxmltools": "onnxmltools",
        "skl2onnx": "skl2onnx",
        "sklearn": "scikit-learn",
    }
    image_variant = "full"  # every extra; the sklearn image has no boosters
    formats_help = "a LightGBM text model (.txt)"

    @classmethod
    def detect(cls, path: Path) -> str | None:
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            return "lightgbm-text" if handle.read(len(MAGIC)) == MAGIC else None

    def load_impl(self, request: ConversionRequest, fmt: str) -> LoadedModel:
        lightgbm = self.require("lightgbm")
        self.require("onnxmltools")
        from converter.frameworks.sklearn_converters import wrap_booster

        path = request.model_path
        try:
            booster = lightgbm.Booster(model_file=str(path))
        except lightgbm.basic.LightGBMError as exc:
            raise UserError(
                f"{path.name} could not be read by lightgbm {lightgbm.__version__} ({describe(exc, 160)})",
                "save it again with Booster.save_model",
            ) from None
        header = _header(path)
        objective = header.get("objective", "").split(" ")[0]
        if "average_output" in header:
            problem = "random-forest mode (average_output) is converted with other values by onnxmltools"
        elif objective not in (*CLASSIFIER_OBJECTIVES, *REGRESSOR_OBJECTIVES):
            problem = f'objective "{objective}" has no onnxmltools converter that reproduces it'
        else:
            problem = ""
        if problem:
            raise ConversionError(
                f"{path.name}: LightGBM {problem}",
                "train with binary, multiclass or a regression objective in gbdt mode",
            )
        classifier = objective in CLASSIFIER_OBJECTIVES
        plan = [("label", "argmax"), ("probabilities", "predict")] if classifier else [("variable", "predict")]
        return LoadedModel(
            model=wrap_booster("lightgbm", booster),
            format=fmt,
            description=f"LightGBM Booster ({objective}, {booster.num_trees()} trees)",
            label_outputs=frozenset({"label"}) if classifier else frozenset(),
            output_names=tuple(name for name, _ in plan),
            extra={"plan": plan, "booster": booster},
        )

    def input_specs_impl(self, loaded: LoadedModel, request: ConversionRequest) -> list[TensorSpec]:
        return [TensorSpec(name="input", shape=(None, loaded.extra["booster"].num_feature()), dtype="float32")]

    def run_impl(self, loaded: LoadedModel, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        prediction = loaded.extra["booster"].predict(inputs["input"].astype(np.float64))
        if loaded.output_names == ("variable",):
            return {"variable": prediction.reshape(len(prediction), -1)}
        probabilities = np.stack([1 - prediction, prediction], axis=1) if prediction.ndim == 1 else prediction
        return {"label": probabilities.argmax(axis=1), "probabilities": probabilities}

    def export_impl(
        self, loaded: LoadedModel, specs: list[TensorSpec], opset: int, path: Path, dynamic_batch: bool
    ) -> ExportResult:
        return _via_onnxmltools(super().export_impl(loaded, specs, opset, path, dynamic_batch))

    def versions(self) -> dict[str, str]:
        return _versions("lightgbm")


def _header(path: Path) -> dict[str, str]:
    """The key=value lines before the first tree (bare keys such as average_output map to "")."""
    header: dict[str, str] = {}
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if line.startswith("Tree="):
                break
            key, _, value = line.partition("=")
            header[key] = value
    return header
