"""TensorFlow export routes: each graph repair on a tiny model, and the pipeline's choice between routes.

Every model here is a few layers that reproduce one thing a keras.applications model needs
(ConvNeXt's grouped convolution and exact gelu, EfficientNet's Normalization constants,
MobileNetV3's hard-sigmoid after a bias-free convolution), converted through the CLI and
checked against Keras by the pipeline's validation and by the asserts below.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import pytest

from tests.fixtures.cli import assert_passed
from tests.fixtures.tiers import model_fixture

INITIALIZERS = "tf2onnx, variables kept as initializers"
FROM_FUNCTION = "tf2onnx.convert.from_function"
SAVED_MODEL_INITIALIZERS = "tf2onnx saved-model signature, variables kept as initializers"
SAVED_MODEL = "tf2onnx saved-model"


@model_fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, tensorflow_models: ModuleType) -> Path:
    return tensorflow_models.build_route_models(tmp_path_factory.mktemp("tf_route_models"))


def _onnx(report: dict) -> Any:
    return onnx.load(report["onnx"]["path"])


def _ops(model: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for node in model.graph.node:
        found[node.op_type] = found.get(node.op_type, 0) + 1
    return found


def _worst(report: dict) -> float:
    return max(o["max_abs_diff"] for b in report["validation"]["batches"] for o in b["outputs"])


def test_grouped_convolution_in_a_nested_function_is_inlined(run_cli, models: Path) -> None:
    report = assert_passed(run_cli("--model-path", str(models / "grouped.keras")), "grouped")
    assert report["onnx"]["export_path"] == INITIALIZERS
    assert [a["outcome"] for a in report["export_attempts"]] == ["passed"]
    ops = _ops(_onnx(report))
    assert "StatefulPartitionedCall" not in ops
    conv = next(n for n in _onnx(report).graph.node if n.op_type == "Conv")
    assert next(a.i for a in conv.attribute if a.name == "group") == 2
    assert _worst(report) < 1e-5


def test_exact_gelu_erfc_is_mapped_to_erf(run_cli, models: Path) -> None:
    report = assert_passed(run_cli("--model-path", str(models / "gelu.keras")), "gelu")
    assert report["onnx"]["export_path"] == INITIALIZERS
    ops = _ops(_onnx(report))
    assert ops.get("Erf") == 1 and "Erfc" not in ops
    assert _worst(report) < 1e-5


def test_normalization_constants_become_initializers_not_inputs(run_cli, models: Path) -> None:
    report = assert_passed(run_cli("--model-path", str(models / "normalized.keras")), "normalized")
    assert [t["name"] for t in report["onnx"]["inputs"]] == ["image"]
    assert _worst(report) < 1e-5


def test_scalar_added_after_a_bias_free_convolution_keeps_the_transpose_optimizer_working(
    run_cli, models: Path
) -> None:
    report = assert_passed(run_cli("--model-path", str(models / "hard_sigmoid.keras")), "hard_sigmoid")
    graph = _onnx(report).graph
    consumers = {name: n.op_type for n in graph.node for name in n.input}
    # Each convolution feeds the + 3 directly. Without the fix tf2onnx's transpose optimizer
    # stops at the first Add of a 0-d constant and leaves a Transpose pair around every Conv.
    assert [consumers[n.output[0]] for n in graph.node if n.op_type == "Conv"] == ["Add", "Add"]
    assert _ops(_onnx(report))["Transpose"] == 2  # into NCHW at the input, back before the pooling
    assert _worst(report) < 1e-5


def test_weights_stay_out_of_the_tensorflow_graph_and_are_written_once(run_cli, models: Path, tf, keras) -> None:
    from converter.frameworks.tensorflow import graph as tensorflow_graph

    model = keras.saving.load_model(models / "big.keras")
    signature = [tf.TensorSpec((None, 256), tf.float32, name="x")]
    function = tf.function(lambda x: {"y": model(x, training=False)}, input_signature=signature)
    prepared = tensorflow_graph.prepare_function(function.get_concrete_function(*signature))
    kernel = model.layers[0].kernel.numpy()
    # The 256 KB kernel is a Placeholder whose value waits apart; small vectors are frozen.
    assert [tuple(v.shape) for v in prepared.weights.values()] == [(256, 256)]
    np.testing.assert_array_equal(next(iter(prepared.weights.values())).numpy(), kernel)
    largest_const = max(n.attr["value"].tensor.ByteSize() for n in prepared.graph_def.node if n.op == "Const")
    assert largest_const < tensorflow_graph.FREEZE_LIMIT_BYTES

    report = assert_passed(run_cli("--model-path", str(models / "big.keras")), "big")
    written = _onnx(report)
    big = [i for i in written.graph.initializer if np.prod(i.dims) == 256 * 256]
    assert len(big) == 1  # once, as an initializer, not also as a graph input
    assert {i.name for i in written.graph.input} == {"x"}
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(big[0]), kernel)


def test_variable_read_inside_a_while_loop_falls_back_to_from_function(run_cli, models: Path) -> None:
    result = run_cli("--model-path", str(models / "lstm.keras"))
    report = assert_passed(result, "lstm")
    attempts = report["export_attempts"]
    assert [(a["route"], a["outcome"]) for a in attempts] == [(INITIALIZERS, "error"), (FROM_FUNCTION, "passed")]
    assert "While" in attempts[0]["reason"] and "uses the variable" in attempts[0]["reason"]
    assert report["onnx"]["export_path"] == FROM_FUNCTION
    assert report["onnx"]["fallback_reason"] == f"{INITIALIZERS}: {attempts[0]['reason']}"
    markdown = result.markdown("lstm")
    assert f"<details><summary>Export routes tried ({len(attempts)})</summary>" in markdown
    assert f"| `{INITIALIZERS}` | error |" in markdown
    assert result.written() == ["lstm.onnx", "lstm.report.json", "lstm.report.md"]  # no route folders left


# -- the pipeline's choice between routes ------------------------------------------------------------

LOSSY = "initializers rounded to multiples of 1/16"


def _round_initializers(path: Path, step: float) -> None:
    model = onnx.load(str(path))
    for tensor in model.graph.initializer:
        value = onnx.numpy_helper.to_array(tensor)
        if value.dtype == np.float32:
            tensor.CopyFrom(onnx.numpy_helper.from_array(np.round(value / step) * step, tensor.name))
    onnx.save(model, str(path))


def _lossy_backend(routes: list[str]) -> type:
    """The TensorFlow backend with a real lossy route: the preferred route's file with its weights
    rounded, as a careless quantizer would write it. Its validation fails on its own numbers."""
    from dataclasses import replace

    from converter.frameworks.base import ExportRoute
    from converter.frameworks.tensorflow.backend import TF2ONNX_OPSETS, TensorFlowBackend

    # Each route exports through the initializers route, which frees the model as it goes.
    declared = [ExportRoute(route, TF2ONNX_OPSETS, consumes_model=True) for route in routes]

    class Lossy(TensorFlowBackend):
        def export_routes(self, loaded: Any) -> list[Any]:
            return list(declared)

        def export_impl(self, loaded: Any, job: Any) -> Any:
            exact = replace(job, route=ExportRoute(INITIALIZERS, TF2ONNX_OPSETS, consumes_model=True))
            result = super().export_impl(loaded, exact)
            if job.route.name != INITIALIZERS:
                _round_initializers(job.path, 1 / 16)
            return result

    return Lossy


@pytest.fixture
def lossy_registry(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the registry's tensorflow entry at a backend class built by the test."""
    from converter.frameworks import BACKENDS

    def install(routes: list[str]) -> None:
        globals()["LossyBackend"] = _lossy_backend(routes)
        monkeypatch.setitem(BACKENDS, "tensorflow", f"{__name__}:LossyBackend")

    return install


def test_a_route_whose_file_mismatches_loses_to_the_next_one(run_cli, models: Path, lossy_registry: Any) -> None:
    lossy_registry([LOSSY, INITIALIZERS])
    result = run_cli("--model-path", str(models / "big.keras"))
    report = assert_passed(result, "big")
    attempts = report["export_attempts"]
    assert [(a["route"], a["outcome"]) for a in attempts] == [(LOSSY, "mismatch"), (INITIALIZERS, "passed")]
    assert attempts[0]["reason"].startswith("output y at batch 16: ")
    assert "elements over tolerance, max abs diff" in attempts[0]["reason"]
    assert report["onnx"]["export_path"] == INITIALIZERS
    assert report["onnx"]["fallback_reason"] == f"{LOSSY}: {attempts[0]['reason']}"
    assert _worst(report) < 1e-4  # the kept file is the exact one
    assert f"exported with {INITIALIZERS} after the preferred path failed: {LOSSY}: " in report["warnings"][-1]
    assert result.written() == ["big.onnx", "big.report.json", "big.report.md"]


def test_the_model_is_freed_before_onnxruntime_loads_the_file_and_loaded_again_for_the_next_route(
    run_cli, models: Path, lossy_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keras and onnxruntime never hold the weights at once: every run of the original model
    (both batch sizes, latency) comes before the export, which frees it; a later route loads it again."""
    from converter.validate import OnnxRunner

    lossy_registry([LOSSY, INITIALIZERS])
    backend = globals()["LossyBackend"]
    events: list[str] = []

    def record(cls: Any, method: str, event: str) -> None:
        original = getattr(cls, method)

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            events.append(event if result is not False else "kept")  # release_impl: False = kept
            return result

        monkeypatch.setattr(cls, method, wrapper)

    record(backend, "load_impl", "load")
    record(backend, "run_impl", "run")
    record(backend, "release_impl", "release")
    record(OnnxRunner, "__init__", "session")
    report = assert_passed(run_cli("--model-path", str(models / "big.keras")), "big")
    assert [a["outcome"] for a in report["export_attempts"]] == ["mismatch", "passed"]
    first_session = events.index("session")
    assert events[0] == "load" and set(events[1 : first_session - 1]) == {"run"}
    assert events.count("run") >= 2 + 3  # batch 16 and 8, then three or more timed runs
    assert events[first_session - 1 :] == ["release", "session", "load", "release", "session"]


def test_when_every_route_mismatches_the_first_file_is_kept_and_reported(
    run_cli, models: Path, lossy_registry: Any
) -> None:
    lossy_registry([LOSSY, LOSSY + " again"])
    result = run_cli("--model-path", str(models / "big.keras"))
    assert result.code == 1
    report = result.report("big")
    assert report["status"] == "failed"
    assert [(a["route"], a["outcome"]) for a in report["export_attempts"]] == [
        (LOSSY, "mismatch"),
        (LOSSY + " again", "mismatch"),
    ]
    assert report["onnx"]["export_path"] == LOSSY and report["onnx"]["fallback_reason"] == ""
    assert result.stdout.startswith("FAIL big.keras (tensorflow/keras) -> ")
    assert result.written() == ["big.onnx", "big.report.json", "big.report.md"]


def test_light_model_writes_its_held_initializers_into_one_valid_file(tmp_path: Path) -> None:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from converter.frameworks.tensorflow.onnx_model import LightModel

    weight = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        initializer=[numpy_helper.from_array(np.float32([1.0]), "unused")],  # a small one the graph kept
    )
    light = LightModel(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), {})
    light.initializers["w"] = numpy_helper.from_array(weight, "w")
    light.save(tmp_path / "m.onnx")

    written = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(written, full_check=True)
    assert [i.name for i in written.graph.input] == ["x"]
    assert sorted(i.name for i in written.graph.initializer) == ["unused", "w"]
    np.testing.assert_array_equal(numpy_helper.to_array(written.graph.initializer[1]), weight)
    assert light.initializers == {}  # released as written
    x = np.ones((2, 3), dtype=np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], x @ weight, rtol=1e-6)


def test_light_model_over_the_limit_writes_page_aligned_external_data(tmp_path: Path) -> None:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from converter.frameworks.tensorflow.onnx_model import EXTERNAL_DATA_ALIGNMENT, LightModel

    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal((5, 2)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "a"], ["h"]), helper.make_node("MatMul", ["h", "b"], ["y"])],
        "g",
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
            for n, s in (("x", [1, 3]), ("a", [3, 5]), ("b", [5, 2]))
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )
    light = LightModel(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    light.initializers.update(a=numpy_helper.from_array(a, "a"), b=numpy_helper.from_array(b, "b"))
    extra = light.save(tmp_path / "m.onnx", external_over=0)

    assert extra == [tmp_path / "m.onnx.data"]
    onnx.checker.check_model(str(tmp_path / "m.onnx"), full_check=True)
    pointers = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False).graph.initializer
    offsets = [int(next(e.value for e in t.external_data if e.key == "offset")) for t in pointers]
    assert [t.data_location for t in pointers] == [TensorProto.EXTERNAL] * 2
    assert [o % EXTERNAL_DATA_ALIGNMENT for o in offsets] == [0, 0] and offsets[1] > 0
    x = np.ones((1, 3), dtype=np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], x @ a @ b, rtol=1e-6)
