"""scikit-learn backend: .skops (safe), .joblib/.pkl (only with --allow-unsafe-load), via skl2onnx."""

from __future__ import annotations

import contextlib
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from converter.errors import ConversionError, UserError, describe
from converter.frameworks.base import Backend, ExportResult, LoadedModel, TensorSpec

if TYPE_CHECKING:
    from converter.request import ConversionRequest

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib"}
# Types from these packages are trusted when loading .skops files; anything else is listed.
TRUSTED_MODULE_ROOTS = ("sklearn", "numpy", "scipy", "builtins")
# Encoders whose categories tell us an input column holds strings.
STRING_ENCODERS = ("OneHotEncoder", "OrdinalEncoder", "TargetEncoder")


class SklearnBackend(Backend):
    name = "sklearn"
    requirements: ClassVar[dict[str, str]] = {"sklearn": "scikit-learn", "skl2onnx": "skl2onnx", "skops": "skops"}
    image_variant = "sklearn"
    formats_help = "a .skops, .joblib or .pkl file (scikit-learn)"

    @classmethod
    def detect(cls, path: Path) -> str | None:
        if not path.is_file():
            return None
        suffix = path.suffix.lower()
        if suffix == ".skops":
            return "skops"
        if suffix == ".joblib":
            return "joblib"
        if suffix in {".pkl", ".pickle"}:
            return "pickle"
        return None

    # -- load ---------------------------------------------------------------------------
    def load_impl(self, request: ConversionRequest, fmt: str) -> LoadedModel:
        sklearn_base = self.require("sklearn.base")
        path = request.model_path
        model = self._load_skops(path) if fmt == "skops" else self._load_pickle(path, request.allow_unsafe_load)
        if not isinstance(model, sklearn_base.BaseEstimator):
            raise UserError(
                f"{path.name} holds a {type(model).__name__}, not a scikit-learn estimator",
                "save the fitted estimator or pipeline itself",
            )
        if not any(hasattr(model, m) for m in ("predict", "predict_proba", "transform")):
            raise ConversionError(
                f"{type(model).__name__} has no predict, predict_proba or transform method to convert"
            )
        classifier = hasattr(model, "predict_proba") and sklearn_base.is_classifier(model)
        clusterer = sklearn_base.is_clusterer(model) and hasattr(model, "transform")
        return LoadedModel(
            model=model,
            format=fmt,
            description=_describe(model),
            label_outputs=frozenset({"label"}) if classifier or clusterer else frozenset(),
            extra={"classifier": classifier, "clusterer": clusterer},
        )

    def _load_skops(self, path: Path) -> Any:
        with _without_estimator_walk(self.require("sklearn.utils")):
            sio = self.require("skops.io")
        try:
            untrusted = sio.get_untrusted_types(file=path)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
            raise UserError(
                f"{path.name} is not a readable .skops file ({describe(exc, 120)})", "save it again with skops.io.dump"
            ) from None
        unknown = [t for t in untrusted if t.split(".")[0] not in TRUSTED_MODULE_ROOTS]
        if unknown:
            raise UserError(
                f"{path.name} contains types outside scikit-learn, numpy and scipy: {', '.join(sorted(unknown))}",
                "save the model with scikit-learn types only, or review the file and convert the model from a pickle with --allow-unsafe-load true",
            )
        try:
            return sio.load(path, trusted=untrusted)
        except Exception as exc:  # skops raises many types for a damaged file
            raise UserError(
                f"{path.name} could not be loaded by skops ({describe(exc, 160)})", "save it again with skops.io.dump"
            ) from None

    def _load_pickle(self, path: Path, allowed: bool) -> Any:
        if not allowed:
            raise UserError(
                f"{path.name} is a pickle, and loading a pickle runs any code it contains",
                "save the model with skops.io.dump (.skops), or pass --allow-unsafe-load true if you trust the file",
            )
        joblib = self.require("joblib")
        try:
            return joblib.load(path)
        except Exception as exc:  # a damaged pickle raises nearly anything
            raise UserError(
                f"{path.name} could not be unpickled ({describe(exc, 160)})",
                "check that the file is a complete joblib or pickle file",
            ) from None

    # -- inputs -------------------------------------------------------------------------
    def input_specs_impl(self, loaded: LoadedModel, request: ConversionRequest) -> list[TensorSpec]:
        model = loaded.model
        names = getattr(model, "feature_names_in_", None)
        string_columns = _string_columns(model)
        if names is not None and _has_column_transformer(model):
            # A ColumnTransformer fitted on a DataFrame selects columns by name: one input per column.
            return [
                TensorSpec(
                    name=str(col),
                    shape=(None, 1),
                    dtype="string" if str(col) in string_columns else "float32",
                    categories=string_columns.get(str(col), ()),
                )
                for col in names
            ]
        n_features = getattr(model, "n_features_in_", None)
        if n_features is None:
            # e.g. a text pipeline; the user must describe the input
            return [TensorSpec(name="input", shape=None, dtype="float32")]
        return [TensorSpec(name="input", shape=(None, int(n_features)), dtype="float32")]

    # -- reference run ----------------------------------------------------------------------
    def run_impl(self, loaded: LoadedModel, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        model = loaded.model
        features = self._features(model, inputs)
        outputs: dict[str, Any] = {}
        if loaded.extra["classifier"]:
            outputs["label"] = model.predict(features)
            outputs["probabilities"] = model.predict_proba(features)
        elif loaded.extra["clusterer"]:
            outputs["label"] = model.predict(features)
            outputs["scores"] = model.transform(features)
        elif hasattr(model, "predict"):
            prediction = np.asarray(model.predict(features))
            outputs["variable"] = prediction.reshape(-1, 1) if prediction.ndim == 1 else prediction
        else:
            outputs["variable"] = model.transform(features)
        return outputs

    def _features(self, model: Any, inputs: dict[str, np.ndarray]) -> Any:
        # The ONNX model sees float32; sklearn gets the same values in float64, the dtype it
        # was fitted in (some estimators refuse float32 input to float64 fitted state).
        inputs = {n: a.astype(np.float64) if a.dtype.kind == "f" else a for n, a in inputs.items()}
        if list(inputs) == ["input"]:
            return inputs["input"]
        pandas = self.require("pandas")
        columns = {name: (arr[:, 0] if arr.ndim == 2 else arr) for name, arr in inputs.items()}
        return pandas.DataFrame(columns)[list(model.feature_names_in_)]

    # -- export -----------------------------------------------------------------------------
    def export_impl(
        self, loaded: LoadedModel, specs: list[TensorSpec], opset: int, path: Path, dynamic_batch: bool
    ) -> ExportResult:
        skl2onnx = self.require("skl2onnx")
        data_types = self.require("skl2onnx.common.data_types")
        initial_types = [(s.name, _onnx_type(data_types, s)) for s in specs]
        # Plain float tensor of probabilities, not a ZipMap (list of dicts) that few runtimes take.
        options = {id(est): {"zipmap": False} for est in _walk(loaded.model) if hasattr(est, "predict_proba")}
        try:
            onx = skl2onnx.convert_sklearn(
                loaded.model, initial_types=initial_types, target_opset=opset, options=options or None
            )
        except Exception as exc:
            raise ConversionError(_conversion_message(loaded.model, exc)) from None
        path.write_bytes(onx.SerializeToString())
        return ExportResult(
            path=path, exporter=f"skl2onnx {skl2onnx.__version__}", export_path="skl2onnx.convert_sklearn"
        )

    def opset_range(self) -> tuple[int, int]:
        skl2onnx = self.require("skl2onnx")
        return 1, int(skl2onnx.get_latest_tested_opset_version())

    def versions(self) -> dict[str, str]:
        import importlib.metadata as md

        return {pkg: md.version(pkg) for pkg in ("scikit-learn", "skl2onnx", "skops")}


# -- helpers ------------------------------------------------------------------------------


@contextlib.contextmanager
def _without_estimator_walk(sklearn_utils: Any) -> Iterator[None]:
    """Import skops without its walk over every scikit-learn module.

    At import, skops builds a default list of trusted types with sklearn's all_estimators(),
    which imports every sklearn package (and, through sklearn.externals.array_api_compat,
    torch when it is installed): importing skops took 17.8 s with the walk and 6.9 s without it,
    side by side on this busy 2-core machine (bench/RESULTS.md has the whole conversion). We never
    use that default list (``_load_skops`` passes the types it trusts), so the walk is skipped.
    """
    if "skops.io" in sys.modules:
        yield
        return
    walk = sklearn_utils.all_estimators
    sklearn_utils.all_estimators = lambda *args, **kwargs: []
    try:
        yield
    finally:
        sklearn_utils.all_estimators = walk


def _walk(estimator: Any) -> list[Any]:
    """The estimator and every estimator nested in it (pipelines, column transformers)."""
    found = [estimator]
    for attr in ("steps", "transformers_", "transformer_list"):
        for item in getattr(estimator, attr, None) or []:
            child = item[1]
            if hasattr(child, "get_params"):
                found.extend(_walk(child))
    for attr in ("estimator_", "regressor_", "base_estimator_"):
        child = getattr(estimator, attr, None)
        if child is not None and hasattr(child, "get_params"):
            found.extend(_walk(child))
    return found


def _has_column_transformer(model: Any) -> bool:
    return any(type(e).__name__ == "ColumnTransformer" for e in _walk(model))


def _string_columns(model: Any) -> dict[str, tuple[str, ...]]:
    """Columns routed to a fitted encoder with string categories, and those categories."""
    columns: dict[str, tuple[str, ...]] = {}
    for est in _walk(model):
        for _, transformer, selected in getattr(est, "transformers_", None) or []:
            for inner in _walk(transformer) if hasattr(transformer, "get_params") else []:
                if type(inner).__name__ not in STRING_ENCODERS:
                    continue
                for col, categories in zip(_as_list(selected), getattr(inner, "categories_", []), strict=False):
                    if getattr(categories, "dtype", None) is not None and categories.dtype.kind in "OUS":
                        columns[str(col)] = tuple(str(c) for c in categories)
    return columns


def _as_list(selected: Any) -> list[Any]:
    if isinstance(selected, str):
        return [selected]
    try:
        return list(selected)
    except TypeError:
        return [selected]


def _onnx_type(data_types: Any, spec: TensorSpec) -> Any:
    shape = [d if isinstance(d, int) else None for d in (spec.shape or (None, None))]
    kinds = {
        "float32": data_types.FloatTensorType,
        "float64": data_types.DoubleTensorType,
        "int64": data_types.Int64TensorType,
        "int32": data_types.Int32TensorType,
        "bool": data_types.BooleanTensorType,
        "string": data_types.StringTensorType,
    }
    if spec.dtype not in kinds:
        raise UserError(
            f'--input-dtypes: scikit-learn models take float32, float64, int64, int32, bool or string, not "{spec.dtype}"',
            "use one of those dtypes",
        )
    return kinds[spec.dtype](shape)


def _describe(model: Any) -> str:
    steps = getattr(model, "steps", None)
    if steps:
        return f"Pipeline({', '.join(type(step).__name__ for _, step in steps)})"
    return type(model).__name__


def _conversion_message(model: Any, exc: Exception) -> str:
    text = str(exc)
    # skl2onnx: "Unable to find a shape calculator for type '<class 'sklearn...NearestCentroid'>'"
    missing = re.search(r"for type '<class '([\w.]+)'>'", text)
    if missing:
        return f"skl2onnx has no converter for {missing.group(1).rsplit('.', 1)[-1]} (in {_describe(model)})"
    return f"skl2onnx could not convert {_describe(model)}: {describe(exc)}"
