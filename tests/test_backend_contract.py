"""One contract, checked against every backend with its tiny models (converter/frameworks/base.py).

``TINY_MODELS`` is the fixture registry: for each backend in ``BACKENDS``, builders of small real
model files, one per format the backend reads differently (a guard test fails when a backend has
none). Each model goes through the contract the pipeline relies on: detection, load into a typed
state, input specs, the reference run, export routes that say which opsets they write, an export
by each route whose file onnxruntime runs to the same outputs, and the model's lifecycle (a route
that consumes the model leaves it released; a released model refuses to run or export until it
is loaded again).
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converter.errors import ConversionError
from converter.frameworks import BACKENDS, backend_class, detect
from converter.frameworks.base import ExportJob, ExportRoute
from converter.inputs import generate_inputs, resolve_specs
from converter.onnx_file import check_and_describe, runtime_max_opset
from converter.request import ConversionRequest
from converter.validate import Criteria, OnnxRunner, validate

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@dataclass
class TinyModel:
    path: Path
    fmt: str  # what the backend's detect must say
    options: dict[str, str] = field(default_factory=dict)  # CLI options the model needs


def _sklearn_skops(directory: Path) -> TinyModel:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    sio.dump(LogisticRegression(max_iter=300).fit(x, y), directory / "iris.skops")
    return TinyModel(directory / "iris.skops", "skops")


def _xgboost_json(directory: Path) -> TinyModel:
    import xgboost
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 2}
    xgboost.train(params, xgboost.DMatrix(x, label=y), num_boost_round=5).save_model(directory / "xgb.json")
    return TinyModel(directory / "xgb.json", "xgboost-json")


def _lightgbm_text(directory: Path) -> TinyModel:
    import lightgbm
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    params = {"objective": "regression", "verbose": -1, "num_leaves": 7, "min_data_in_leaf": 5}
    lightgbm.train(params, lightgbm.Dataset(x, label=y), num_boost_round=5).save_model(directory / "lgb.txt")
    return TinyModel(directory / "lgb.txt", "lightgbm-text")


_TORCH_MODEL = """
import torch


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 3)

    def forward(self, x):
        return torch.tanh(self.layer(x))
"""


def _torch_module(directory: Path) -> Any:
    import importlib.util

    (directory / "tiny_torch.py").write_text(textwrap.dedent(_TORCH_MODEL))
    spec = importlib.util.spec_from_file_location("tiny_torch", directory / "tiny_torch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Tiny().eval()


def _pytorch_state_dict(directory: Path) -> TinyModel:
    import torch

    torch.save(_torch_module(directory).state_dict(), directory / "tiny.pt")
    options = {"model-class": f"{directory / 'tiny_torch.py'}:Tiny", "input-shapes": "batchx4"}
    return TinyModel(directory / "tiny.pt", "state_dict", options)


def _pytorch_program(directory: Path) -> TinyModel:
    import torch

    model = _torch_module(directory)
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (torch.randn(4, 4),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(directory / "tiny.pt2"))
    return TinyModel(directory / "tiny.pt2", "exported_program")


def _pytorch_hf_folder(directory: Path) -> TinyModel:
    from tests.fixtures.hf_folders import RECIPES, save_folder

    save_folder(RECIPES["distilbert"], directory / "distilbert")
    return TinyModel(directory / "distilbert", "transformers")


def _tensorflow_keras(directory: Path) -> TinyModel:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    model = keras.Sequential([keras.Input((5,), name="x"), keras.layers.Dense(3, name="y")], name="tiny")
    model.save(directory / "tiny.keras")
    return TinyModel(directory / "tiny.keras", "keras")


# The fixture registry: backend name -> builders of its tiny models.
TINY_MODELS: dict[str, list[Callable[[Path], TinyModel]]] = {
    "sklearn": [_sklearn_skops],
    "xgboost": [_xgboost_json],
    "lightgbm": [_lightgbm_text],
    "pytorch": [_pytorch_state_dict, _pytorch_program, _pytorch_hf_folder],
    "tensorflow": [_tensorflow_keras],
}
CASES = [
    pytest.param(name, build, id=f"{name}-{build.__name__}") for name, builds in TINY_MODELS.items() for build in builds
]


def test_every_backend_has_tiny_models() -> None:
    assert set(TINY_MODELS) == set(BACKENDS)
    assert all(TINY_MODELS.values())


@pytest.mark.converts
@pytest.mark.parametrize(("name", "build"), CASES)
def test_backend_keeps_the_contract(name: str, build: Callable[[Path], TinyModel], tmp_path: Path) -> None:
    tiny = build(tmp_path)
    cls = backend_class(name)
    assert cls.detect(tiny.path) == tiny.fmt
    assert detect(tiny.path) == (name, tiny.fmt)

    backend = cls()
    request = ConversionRequest.from_mapping({"model-path": str(tiny.path), **tiny.options})
    loaded = backend.load(request, tiny.fmt)
    assert dataclasses.is_dataclass(loaded.state) and not loaded.released
    specs = resolve_specs(backend.input_specs(loaded, request), request, None)
    inputs = generate_inputs(specs, 6, seed=0)
    reference = backend.run(loaded, inputs)
    assert list(reference) == list(loaded.output_names)
    assert all(isinstance(value, np.ndarray) for value in reference.values())

    routes = backend.export_routes(loaded)
    low, high = backend.opset_range()
    assert routes and len({r.name for r in routes}) == len(routes)
    assert all(isinstance(r, ExportRoute) and low <= r.opsets[0] <= r.opsets[1] <= high for r in routes)
    for number, route in enumerate(routes):
        if loaded.released:  # the previous route consumed it: load it again, as the pipeline does
            loaded = backend.reload(loaded, request)
        opset = min(route.opsets[1], runtime_max_opset())
        job = ExportJob(route, opset, specs, tmp_path / f"route{number}.onnx", request.dynamic_batch, inputs)
        exported = backend.export(loaded, job)
        assert loaded.released == route.consumes_model
        facts = check_and_describe(exported.path)
        assert facts.opset <= opset
        criteria = Criteria(1e-4, 1e-4, loaded.label_outputs)
        validation = validate(OnnxRunner(exported.path), [(inputs, reference)], criteria, [], "generated")
        assert validation.passed, validation.failures()


@pytest.mark.converts
@pytest.mark.parametrize(("name", "build"), CASES)
def test_a_released_model_refuses_to_run_and_export_until_loaded_again(
    name: str, build: Callable[[Path], TinyModel], tmp_path: Path
) -> None:
    tiny = build(tmp_path)
    backend = backend_class(name)()
    request = ConversionRequest.from_mapping({"model-path": str(tiny.path), **tiny.options})
    loaded = backend.load(request, tiny.fmt)
    specs = resolve_specs(backend.input_specs(loaded, request), request, None)
    inputs = generate_inputs(specs, 6, seed=0)
    reference = backend.run(loaded, inputs)
    loaded.released = True  # as Backend.release leaves a model its backend freed
    with pytest.raises(ConversionError, match=f"the {name} model was released and cannot run"):
        backend.run(loaded, inputs)
    route = backend.export_routes(loaded)[0]
    job = ExportJob(route, route.opsets[1], specs, tmp_path / "m.onnx", True, inputs)
    with pytest.raises(ConversionError, match=f"the {name} model was released and cannot export"):
        backend.export(loaded, job)
    again = backend.reload(loaded, request)
    assert not again.released and again.output_names == loaded.output_names
    exported = backend.export(again, job)  # before any run: what the first run learnt carried over
    assert check_and_describe(exported.path).outputs
    if again.released:  # the route consumed it
        again = backend.reload(again, request)
    again_reference = backend.run(again, inputs)
    for output, value in reference.items():
        np.testing.assert_allclose(again_reference[output], value, rtol=1e-6)
