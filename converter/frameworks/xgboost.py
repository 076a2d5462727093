"""XGBoost backend: native model files (.json, .ubj), exported by onnxmltools' converter through skl2onnx.

Detected without importing xgboost: a JSON model has "learner" at top level, a UBJSON model
the same key in UBJSON's encoding. XGBClassifier/XGBRegressor inside a scikit-learn pipeline
(.skops) go through the scikit-learn backend, which registers the same converter.
The export, options and output naming are the scikit-learn backend's (this class extends it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from converter.errors import ConversionError, UserError, describe
from converter.frameworks.base import ExportResult, LoadedModel, TensorSpec
from converter.frameworks.sklearn import SklearnBackend

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


class XGBoostBackend(SklearnBackend):
    name = "xgboost"
    requirements: ClassVar[dict[str, str]] = {
        "xgboost": "xgboost-cpu",
        "onnxmltools": "onnxmltools",
        "skl2onnx": "skl2onnx",
        "sklearn": "scikit-learn",
    }
    image_variant = "full"  # every extra; the sklearn image has no boosters
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

    def load_impl(self, request: ConversionRequest, fmt: str) -> LoadedModel:
        xgboost = self.require("xgboost")
        self.require("onnxmltools")
        from converter.frameworks.sklearn_converters import wrap_booster

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
            plan = [("label", "argmax"), ("probabilities", "probabilities")]
            wrapped = wrap_booster("xgboost", booster, CLASSIFIER_OBJECTIVES[objective])
        elif objective in REGRESSOR_OBJECTIVES:
            plan = [("variable", "predict")]
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
        return LoadedModel(
            model=wrapped,
            format=fmt,
            description=f"XGBoost Booster ({objective}, {booster.num_boosted_rounds()} rounds)",
            label_outputs=frozenset({"label"}) if len(plan) == 2 else frozenset(),
            output_names=tuple(name for name, _ in plan),
            extra={"plan": plan, "booster": booster, "objective": objective},
        )

    def input_specs_impl(self, loaded: LoadedModel, request: ConversionRequest) -> list[TensorSpec]:
        return [TensorSpec(name="input", shape=(None, loaded.extra["booster"].num_features()), dtype="float32")]

    def run_impl(self, loaded: LoadedModel, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        xgboost = self.require("xgboost")
        booster = loaded.extra["booster"]
        matrix = xgboost.DMatrix(inputs["input"])  # xgboost itself compares features in float32
        if loaded.extra["objective"] == "multi:softmax":  # predict() gives labels; the margins give probabilities
            margins = booster.predict(matrix, output_margin=True).astype(np.float64)
            exp = np.exp(margins - margins.max(axis=1, keepdims=True))
            probabilities = exp / exp.sum(axis=1, keepdims=True)
        else:
            prediction = booster.predict(matrix)
            if loaded.output_names == ("variable",):
                return {"variable": prediction.reshape(len(prediction), -1)}
            probabilities = np.stack([1 - prediction, prediction], axis=1) if prediction.ndim == 1 else prediction
        return {"label": probabilities.argmax(axis=1), "probabilities": probabilities}

    def export_impl(
        self, loaded: LoadedModel, specs: list[TensorSpec], opset: int, path: Path, dynamic_batch: bool
    ) -> ExportResult:
        return _via_onnxmltools(super().export_impl(loaded, specs, opset, path, dynamic_batch))

    def versions(self) -> dict[str, str]:
        return _versions("xgboost-cpu")


def _via_onnxmltools(result: ExportResult) -> ExportResult:
    import importlib.metadata as md

    result.exporter = f"onnxmltools {md.version('onnxmltools')} ({result.exporter})"
    result.export_path = "onnxmltools converter in skl2onnx.convert_sklearn"
    return result


def _versions(package: str) -> dict[str, str]:
    import importlib.metadata as md

    return {pkg: md.version(pkg) for pkg in (package, "onnxmltools", "skl2onnx")}


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
