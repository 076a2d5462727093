"""LightGBM backend: native text model files, exported by onnxmltools' converter through skl2onnx.

Detected without importing lightgbm: a LightGBM text model starts with "tree\\nversion=".
LGBMClassifier/LGBMRegressor inside a scikit-learn pipeline (.skops) go through the scikit-learn
backend. What it shares with the XGBoost backend is in converter/frameworks/boosters/base.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from converter.errors import ConversionError, UserError, describe
from converter.frameworks.base import LoadedModel
from converter.frameworks.boosters.base import (
    EXPORT_REQUIREMENTS,
    BoosterBackend,
    BoosterState,
    outputs_of_prediction,
)

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


class LightGBMBackend(BoosterBackend):
    name = "lightgbm"
    package = "lightgbm"
    requirements: ClassVar[dict[str, str]] = {"lightgbm": "lightgbm", **EXPORT_REQUIREMENTS}
    formats_help = "a LightGBM text model (.txt)"

    @classmethod
    def detect(cls, path: Path) -> str | None:
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            return "lightgbm-text" if handle.read(len(MAGIC)) == MAGIC else None

    def load_impl(self, request: ConversionRequest, fmt: str) -> LoadedModel[BoosterState]:
        lightgbm = self.require("lightgbm")
        self.require("onnxmltools")
        from converter.frameworks.sklearn.converters import wrap_booster

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
        return self.booster_model(
            wrap_booster("lightgbm", booster),
            fmt,
            f"LightGBM Booster ({objective}, {booster.num_trees()} trees)",
            BoosterState(booster, objective),
            classifier=objective in CLASSIFIER_OBJECTIVES,
        )

    def feature_count(self, booster: Any) -> int:
        return int(booster.num_feature())

    def run_impl(self, loaded: LoadedModel[BoosterState], inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        return outputs_of_prediction(loaded, loaded.state.booster.predict(inputs["input"].astype(np.float64)))


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
