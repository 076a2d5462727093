"""XGBoost backend: native model files (.json, .ubj), exported by onnxmltools' converter through skl2onnx.

Detected without importing xgboost: a JSON model has "learner" at top level, a UBJSON model
the same key in UBJSON's encoding. XGBClassifier/XGBRegressor inside a scikit-learn pipeline
(.skops) go through the scikit-learn backend, which registers the same converter.
What it shares with the LightGBM backend is in converter/frameworks/boosters/base.py.
"""

from __future__ import annotations

import json
import re
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

# Objectives whose ONNX graph reproduces xgboost (bench/COVERAGE.md, family xgboost). multi:softmax
# predicts labels; it is exported as multi:softprob (same trees, softmax of the margins), whose
# argmax is that label. Others are refused before export: onnxmltools 1.16 writes graphs whose
# values differ from xgboost's for binary:logitraw, binary:hinge and reg:logistic (a probability-
# space base_score read as a margin), and NaN for rank:pairwise.
CLASSIFIER_OBJECTIVES = {"binary:logistic": "", "multi:softprob": "", "multi:softmax": "multi:softprob"}
REGRESSOR_OBJECTIVES = (
    "reg:squarederror",
    "reg:linear",
    "reg:squaredlogerror",
    "reg:absoluteerror",
    "reg:pseudohubererror",
    "count:poisson",
    "reg:gamma",
    "reg:tweedie",
)
MEASURED_WRONG = ("binary:logitraw", "binary:hinge", "reg:logistic", "rank:pairwise", "rank:ndcg", "rank:map")
_JSON_HEAD = re.compile(rb'^\s*\{\s*(?:"version"\s*:\s*\[[^\]]*\]\s*,\s*)?"learner"\s*:')
_UBJ_LENGTH = {ord("i"): 1, ord("U"): 1, ord("I"): 2, ord("l"): 4, ord("L"): 8}


class XGBoostBackend(BoosterBackend):
    name = "xgboost"
    package = "xgboost-cpu"
    requirements: ClassVar[dict[str, str]] = {"xgboost": "xgboost-cpu", **EXPORT_REQUIREMENTS}
    formats_help = "an XGBoost .json or .ubj model"

    @classmethod
    def detect(cls, path: Path) -> str | None:
        if not path.is_file() or path.suffix.lower() not in (".json", ".ubj"):
            return None
        with path.open("rb") as handle:
            head = handle.read(256)
        if path.suffix.lower() == ".json":
            return "xgboost-json" if _JSON_HEAD.match(head) else None
        return "xgboost-ubj" if _ubj_first_key(head) in (b"learner", b"version") else None

    def load_impl(self, request: ConversionRequest, fmt: str) -> LoadedModel[BoosterState]:
        xgboost = self.require("xgboost")
        self.require("onnxmltools")
        from converter.frameworks.sklearn.converters import wrap_booster

        path = request.model_path
        try:
            booster = xgboost.Booster(model_file=str(path))
        except xgboost.core.XGBoostError as exc:
            raise UserError(
                f"{path.name} could not be read by xgboost {xgboost.__version__} ({describe(exc, 160)})",
                "save it again with Booster.save_model (.json or .ubj)",
            ) from None
        learner = json.loads(booster.save_config())["learner"]
        objective = learner["objective"]["name"]
        if objective in CLASSIFIER_OBJECTIVES:
            wrapped = wrap_booster("xgboost", booster, CLASSIFIER_OBJECTIVES[objective])
        elif objective in REGRESSOR_OBJECTIVES:
            wrapped = wrap_booster("xgboost", booster)
        else:
            why = (
                "onnxmltools writes a graph whose values differ from xgboost's for it"
                if objective in MEASURED_WRONG
                else "onnxmltools has no converter for it"
            )
            raise ConversionError(
                f'{path.name}: XGBoost objective "{objective}" is not converted: {why}',
                "train with binary:logistic, multi:softprob, multi:softmax or a regression objective (reg:squarederror, ...)",
            )
        if int(learner["learner_model_param"].get("num_target", "1")) > 1:
            raise ConversionError(f"{path.name}: a multi-target XGBoost model is not converted", "train one per target")
        return self.booster_model(
            wrapped,
            fmt,
            f"XGBoost Booster ({objective}, {booster.num_boosted_rounds()} rounds)",
            BoosterState(booster, objective),
            classifier=objective in CLASSIFIER_OBJECTIVES,
        )

    def feature_count(self, booster: Any) -> int:
        return int(booster.num_features())

    def run_impl(self, loaded: LoadedModel[BoosterState], inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        xgboost = self.require("xgboost")
        booster = loaded.state.booster
        matrix = xgboost.DMatrix(inputs["input"])  # xgboost itself compares features in float32
        if loaded.state.objective == "multi:softmax":  # predict() gives labels; the margins give probabilities
            margins = booster.predict(matrix, output_margin=True).astype(np.float64)
            exp = np.exp(margins - margins.max(axis=1, keepdims=True))
            probabilities = exp / exp.sum(axis=1, keepdims=True)
            return {"label": probabilities.argmax(axis=1), "probabilities": probabilities}
        return outputs_of_prediction(loaded, booster.predict(matrix))


def _ubj_first_key(head: bytes) -> bytes:
    """The first key of a UBJSON object (b"" if ``head`` does not start one)."""
    if len(head) < 3 or head[0] != ord("{"):
        return b""
    start = 1
    if head[start] in (ord("$"), ord("#")):  # optimized container markers: not what xgboost writes
        return b""
    size_bytes = _UBJ_LENGTH.get(head[start])
    if size_bytes is None:
        return b""
    length = int.from_bytes(head[start + 1 : start + 1 + size_bytes], "big", signed=False)
    key_start = start + 1 + size_bytes
    return head[key_start : key_start + length] if length < 64 else b""
