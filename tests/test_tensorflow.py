"""TensorFlow / Keras backend end to end: real small models in every format, converted and validated.

The models are built once per module (MobileNetV2 at 32x32, alpha 0.35) and each test
converts one of them through the CLI in process, so TensorFlow is imported once.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.fixtures.cli import assert_passed
from tests.fixtures.tiers import model_fixture

ROOT = Path(__file__).resolve().parent.parent
INITIALIZERS = "tf2onnx, variables kept as initializers"
FROM_FUNCTION = "tf2onnx.convert.from_function"
SAVED_MODEL_INITIALIZERS = "tf2onnx saved-model signature, variables kept as initializers"
SAVED_MODEL = "tf2onnx saved-model"
FROM_TFLITE = "tf2onnx.convert.from_tflite"


@model_fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, tensorflow_models: ModuleType) -> Path:
    return tensorflow_models.build_models(tmp_path_factory.mktemp("tf_models"))


def _passed(result: Any, stem: str) -> dict:
    report = assert_passed(result, stem)  # the second batch size is the dynamic batch check
    assert result.errors == ""
    assert not report["validation"]["problems"]
    return report


def _tensors(report: dict, kind: str) -> dict[str, list]:
    return {t["name"]: t["shape"] for t in report["onnx"][kind]}


def _max_diff(report: dict, output: str) -> float:
    return max(o["max_abs_diff"] for b in report["validation"]["batches"] for o in b["outputs"] if o["name"] == output)


# -- the "done when" models, one per format ------------------------------------------------------


def test_sequential_mlp_keras_converts_within_tolerance(run_cli, models: Path, tf) -> None:
    report = _passed(run_cli("--model-path", str(models / "mlp.keras")), "mlp")
    assert report["model"]["format"] == "keras"
    assert report["onnx"]["export_path"] == INITIALIZERS and report["onnx"]["fallback_reason"] == ""
    assert _tensors(report, "inputs") == {"features": ["batch", 8]}
    assert _tensors(report, "outputs") == {"probs": ["batch", 3]}
    assert _max_diff(report, "probs") < 1e-5
    assert report["versions"]["tensorflow"] == tf.__version__ and "tf2onnx" in report["versions"]


def test_functional_cnn_with_batch_norm_from_h5_converts_within_tolerance(run_cli, models: Path) -> None:
    result = run_cli("--model-path", str(models / "cnn.h5"))
    report = _passed(result, "cnn")
    assert report["model"]["format"] == "keras-h5"
    assert _tensors(report, "inputs") == {"image": ["batch", 16, 16, 3]}
    assert _tensors(report, "outputs") == {"logits": ["batch", 4]}
    # calibrated statistics on 0..255 inputs make logits large; the error stays relative
    assert report["validation"]["batches"][0]["outputs"][0]["max_rel_diff"] < 1e-4
    assert f"tf2onnx {_version('tf2onnx')} ({INITIALIZERS})" in result.markdown("cnn")


def test_lstm_saved_model_converts_with_signature_output_names(run_cli, models: Path) -> None:
    report = _passed(run_cli("--model-path", str(models / "lstm_savedmodel")), "lstm_savedmodel")
    assert report["model"]["format"] == "saved-model"
    # The LSTM reads its variables inside a while loop, which the initializers route does not
    # take apart: tf2onnx's own saved-model recipe converts it.
    assert [(a["route"], a["outcome"]) for a in report["export_attempts"]] == [
        (SAVED_MODEL_INITIALIZERS, "error"),
        (SAVED_MODEL, "passed"),
    ]
    assert report["onnx"]["export_path"] == SAVED_MODEL
    assert _tensors(report, "inputs") == {"series": ["batch", 10, 6]}
    assert _tensors(report, "outputs") == {"output_0": ["batch", 3]}  # model.export()'s signature key
    assert _max_diff(report, "output_0") < 1e-5


def test_two_inputs_two_outputs_are_paired_by_name(run_cli, models: Path) -> None:
    report = _passed(run_cli("--model-path", str(models / "two_heads.keras")), "two_heads")
    assert _tensors(report, "inputs") == {"a": ["batch", 4], "b": ["batch", 3]}
    # The ONNX file lists probs before score, the Keras model score before probs: pairing by
    # position would compare a 16x3 with a 16x2 array and fail.
    assert [t["name"] for t in report["onnx"]["outputs"]] == ["probs", "score"]
    first = report["validation"]["batches"][0]["outputs"]
    assert {o["name"]: o["shape"] for o in first} == {"score": [16, 2], "probs": [16, 3]}
    assert max(_max_diff(report, "score"), _max_diff(report, "probs")) < 1e-5


def test_mobilenet_v2_tflite_converts_within_tolerance(run_cli, models: Path) -> None:
    report = _passed(run_cli("--model-path", str(models / "mobilenet_v2.tflite")), "mobilenet_v2")
    assert report["model"]["format"] == "tflite"
    assert report["onnx"]["export_path"] == FROM_TFLITE
    assert list(_tensors(report, "inputs").values()) == [["batch", 32, 32, 3]]
    outputs = _tensors(report, "outputs")
    assert list(outputs) == ["output_0"]  # the TFLite signature key, not the tensor name
    # ONNX shape inference cannot trace the batch through tf2onnx's TFLite graph (unk__N),
    # but the axis is dynamic: the batch-8 run above passed.
    assert isinstance(outputs["output_0"][0], str) and outputs["output_0"][1] == 10
    assert _max_diff(report, "output_0") < 1e-4


def test_saved_model_signature_option_picks_the_signature(run_cli, models: Path) -> None:
    default = _passed(run_cli("--model-path", str(models / "two_heads_savedmodel")), "two_heads_savedmodel")
    assert default["onnx"]["export_path"] == SAVED_MODEL_INITIALIZERS
    assert sorted(_tensors(default, "outputs")) == ["probs", "score"]
    chosen = _passed(
        run_cli("--model-path", str(models / "two_heads_savedmodel"), "--signature", "probs_only"),
        "two_heads_savedmodel",
    )
    assert _tensors(chosen, "outputs") == {"probs": ["batch", 3]}
    assert chosen["model"]["description"] == "SavedModel signature probs_only (2 inputs, 1 outputs)"


def test_keras_fallback_route_through_a_saved_model_matches_the_model(models: Path, tmp_path: Path) -> None:
    """The route used when from_function fails, run on its own and checked in onnxruntime."""
    import onnxruntime as ort

    from converter.frameworks.tensorflow import keras as keras_format
    from converter.frameworks.tensorflow.backend import TensorFlowBackend
    from converter.inputs import generate_inputs, resolve_specs
    from converter.request import ConversionRequest

    backend = TensorFlowBackend()
    request = ConversionRequest.from_mapping({"model-path": str(models / "two_heads.keras")})
    loaded = backend.load(request, "keras")
    specs = resolve_specs(backend.input_specs(loaded, request), request, None)
    keras_format.export_saved_model_archive(backend.import_module, loaded, specs, 17).save(tmp_path / "two_heads.onnx")
    session = ort.InferenceSession(str(tmp_path / "two_heads.onnx"), providers=["CPUExecutionProvider"])
    inputs = generate_inputs(specs, 5, seed=3)
    reference = backend.run(loaded, inputs)
    actual = dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs), strict=True))
    assert sorted(actual) == ["probs", "score"]
    for name in ("score", "probs"):
        assert np.abs(actual[name] - reference[name]).max() < 1e-5


# -- options ----------------------------------------------------------------------------------------


def test_explicit_opset_is_honoured(run_cli, models: Path) -> None:
    report = _passed(run_cli("--model-path", str(models / "mlp.keras"), "--opset", "15"), "mlp")
    assert report["onnx"]["opset"] == 15


def test_opset_below_what_tf2onnx_supports_is_refused(run_cli, models: Path) -> None:
    result = run_cli("--model-path", str(models / "mlp.keras"), "--opset", "11")
    assert result.code == 2
    assert result.errors.startswith('error: --opset "11": the tensorflow exporter writes opsets 14 to 18')
    assert result.errors.endswith("; use an opset from 14 to 18, or auto\n")
    assert result.written() == []


def test_fixed_batch_keeps_the_validation_batch(run_cli, models: Path) -> None:
    result = run_cli("--model-path", str(models / "mlp.keras"), "--dynamic-batch", "false")
    assert result.code == 0
    report = result.report("mlp")
    assert _tensors(report, "inputs") == {"features": [16, 8]}
    assert report["validation"]["batch_sizes"] == [16]


def test_fixed_batch_keeps_the_tflite_models_own_batch(run_cli, models: Path) -> None:
    # shape_signature -1, shape 1: the interpreter runs at 1, so the ONNX file takes 1 (it took 16).
    result = run_cli("--model-path", str(models / "mobilenet_v2.tflite"), "--dynamic-batch", "false")
    assert result.code == 0, result.stdout + result.stderr
    report = result.report("mobilenet_v2")
    assert list(_tensors(report, "inputs").values()) == [[1, 32, 32, 3]]
    assert report["validation"]["batch_sizes"] == [1]
    assert report["validation"]["batches"][0]["outputs"][0]["shape"] == [1, 10]


def test_fixed_batch_keeps_a_keras_models_own_batch(run_cli, models: Path) -> None:
    result = run_cli("--model-path", str(models / "batch_of_two.keras"), "--dynamic-batch", "false")
    assert result.code == 0, result.stdout + result.stderr
    report = result.report("batch_of_two")
    assert _tensors(report, "inputs") == {"features": [2, 8]}
    assert report["validation"]["batch_sizes"] == [2]


def test_sample_rows_must_fit_a_fixed_batch(run_cli, models: Path, tmp_path: Path, tf) -> None:
    np.save(tmp_path / "rows.npy", np.zeros((5, 32, 32, 3), np.float32))
    result = run_cli(
        "--model-path", str(models / "mobilenet_v2.tflite"), "--dynamic-batch", "false",
        "--sample-data", str(tmp_path / "rows.npy"),
    )  # fmt: skip
    name = next(iter(_input_names(models / "mobilenet_v2.tflite", tf)))  # keras_tensor_N, N from the fixture
    _one_line_error(
        result,
        2,
        f"--sample-data: input {name} has 5 rows but its batch axis is fixed at 1; give 1 row, or pass --dynamic-batch true",
    )


def _input_names(tflite: Path, tf: ModuleType) -> list[str]:
    with pytest.warns(UserWarning, match="tf.lite.Interpreter is deprecated"):
        interpreter = tf.lite.Interpreter(model_path=str(tflite))
    runner = interpreter.get_signature_runner(next(iter(interpreter.get_signature_list())))
    return list(runner.get_input_details())


def test_equal_infinities_and_nan_pass_and_are_reported(run_cli, models: Path, tmp_path: Path) -> None:
    x = np.array([[0.0, -1.0, np.inf, 2.0], [1.0, 0.0, 3.0, -np.inf]], np.float32)
    np.save(tmp_path / "x.npy", x)
    result = run_cli("--model-path", str(models / "log_savedmodel"), "--sample-data", str(tmp_path / "x.npy"))
    assert result.code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].endswith("; NaN or Inf in outputs log (see the report)")
    first = result.report("log_savedmodel")["validation"]["batches"][0]["outputs"][0]
    counts = {"nan": 2, "+inf": 1, "-inf": 2}  # log(-1), log(-inf); log(inf); log(0) twice
    assert first["passed"] and first["non_finite"] == {"original": counts, "onnx": counts}
    assert "`log` at batch 2: original 2 NaN, 1 +Inf, 2 -Inf; ONNX 2 NaN, 1 +Inf, 2 -Inf" in result.markdown(
        "log_savedmodel"
    )


def test_a_zip_bomb_keras_file_is_refused_before_keras_reads_it(run_cli, models: Path, tmp_path: Path) -> None:
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(models / "mlp.keras") as real, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        for name in ("config.json", "metadata.json"):
            bomb.writestr(name, real.read(name))
        with bomb.open("model.weights.h5", "w") as member:  # 320 MB of zeros in 0.3 MB
            for _ in range(20):
                member.write(bytes(16_000_000))
    result = run_cli("--model-path", str(path))
    assert result.code == 2
    assert result.errors.startswith(f"error: --model-path: bomb.keras would inflate from {path.stat().st_size:,} to ")
    assert "('model.weights.h5' alone to 320,000,000); this tool reads at most 64 MiB plus 100x" in result.errors
    assert result.errors.count("\n") == 1 and result.written() == []


def test_unknown_image_size_stays_dynamic_unless_input_shapes_fix_it(run_cli, models: Path) -> None:
    dynamic = _passed(run_cli("--model-path", str(models / "any_size.keras")), "any_size")
    assert _tensors(dynamic, "inputs") == {"image": ["batch", "image_dim1", "image_dim2", 3]}
    assert _tensors(dynamic, "outputs") == {"scores": ["batch", 2]}
    fixed = _passed(
        run_cli("--model-path", str(models / "any_size.keras"), "--input-shapes", "image:batchx24x24x3"), "any_size"
    )
    assert _tensors(fixed, "inputs") == {"image": ["batch", 24, 24, 3]}


def test_token_ids_are_generated_below_the_embedding_vocabulary(run_cli, models: Path) -> None:
    report = _passed(run_cli("--model-path", str(models / "tokens.keras")), "tokens")
    assert report["onnx"]["inputs"] == [{"name": "tokens", "shape": ["batch", 12], "dtype": "int32"}]
    assert _max_diff(report, "positive") < 1e-5


def test_lambda_layer_converts_with_allow_unsafe_load(run_cli, models: Path) -> None:
    report = _passed(run_cli("--model-path", str(models / "lambda.keras"), "--allow-unsafe-load", "true"), "lambda")
    assert _max_diff(report, "lambda") < 1e-5


def test_format_is_detected_from_content_not_suffix(run_cli, models: Path, tmp_path: Path) -> None:
    from converter.frameworks.tensorflow.backend import TensorFlowBackend

    renamed = {"keras.bin": "mlp.keras", "h5.bin": "cnn.h5", "tflite.bin": "mobilenet_v2.tflite"}
    for new, old in renamed.items():
        (tmp_path / new).write_bytes((models / old).read_bytes())
    assert [TensorFlowBackend.detect(tmp_path / n) for n in renamed] == ["keras", "keras-h5", "tflite"]
    assert TensorFlowBackend.detect(models / "lstm_savedmodel") == "saved-model"
    assert TensorFlowBackend.detect(models) is None
    _passed(run_cli("--model-path", str(tmp_path / "keras.bin")), "keras")


# -- bad input ----------------------------------------------------------------------------------------


def _one_line_error(result: Any, code: int, message: str) -> None:
    assert result.code == code
    assert result.stdout == ""
    assert result.errors == f"error: {message}\n"
    assert result.written() == []


def test_missing_signature_lists_the_signatures_that_exist(run_cli, models: Path) -> None:
    result = run_cli("--model-path", str(models / "two_heads_savedmodel"), "--signature", "predict")
    _one_line_error(
        result,
        2,
        '--signature "predict": the SavedModel two_heads_savedmodel has no such signature; '
        "its signatures are probs_only, serving_default; pass one of them with --signature",
    )


def test_signature_option_is_refused_for_a_keras_file(run_cli, models: Path) -> None:
    result = run_cli("--model-path", str(models / "mlp.keras"), "--signature", "probs_only")
    _one_line_error(
        result,
        2,
        '--signature "probs_only": only SavedModel directories have signatures to choose, and mlp.keras is a keras file; '
        "remove --signature, or convert the SavedModel directory",
    )


def test_corrupt_keras_file(run_cli, models: Path) -> None:
    result = run_cli("--model-path", str(models / "truncated.keras"))
    _one_line_error(
        result,
        2,
        'truncated.keras is not a readable Keras archive (it is not a zip archive); save the model again with model.save("model.keras")',
    )


def test_keras_zip_without_config(run_cli, tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "weights_only.keras", "w") as archive:
        archive.writestr("model.weights.h5", b"")
    result = run_cli("--model-path", str(tmp_path / "weights_only.keras"))
    _one_line_error(
        result,
        2,
        "weights_only.keras is not a readable Keras archive (it lacks config.json, metadata.json); "
        'save the model again with model.save("model.keras")',
    )


def test_h5_with_weights_only(run_cli, models: Path) -> None:
    result = run_cli("--model-path", str(models / "mlp.weights.h5"))
    _one_line_error(
        result,
        2,
        "mlp.weights.h5 holds weights only (no model_config), so there is no model to convert; "
        'build the model in Python, load these weights into it and save it whole with model.save("model.keras")',
    )


@pytest.mark.parametrize("name", ["custom.keras", "custom.h5"])
def test_custom_layer_that_cannot_be_deserialized_is_named(run_cli, models: Path, name: str) -> None:
    result = run_cli("--model-path", str(models / name))
    _one_line_error(
        result,
        2,
        f"{name} uses the custom Keras object Scale, whose Python code is not in the file; "
        "pass --model-code path/to/file.py, the file that defines and registers it (it is imported, so run), "
        'or export the model with model.export("saved_model_dir") and convert the SavedModel directory',
    )


def test_lambda_layer_is_refused_in_safe_mode(run_cli, models: Path) -> None:
    result = run_cli("--model-path", str(models / "lambda.keras"))
    _one_line_error(
        result,
        2,
        "lambda.keras contains a Lambda layer, whose Python code would run while the model loads; "
        "pass --allow-unsafe-load true if you trust the file, or replace the Lambda with a built-in or registered layer",
    )


def test_keras_model_saved_before_it_was_built(run_cli, tmp_path: Path, keras) -> None:
    with pytest.warns(UserWarning, match="not yet been built"):
        keras.Sequential([keras.layers.Dense(3)], name="unbuilt").save(tmp_path / "unbuilt.keras")
    result = run_cli("--model-path", str(tmp_path / "unbuilt.keras"))
    _one_line_error(
        result,
        2,
        "the Keras model unbuilt has no defined inputs (it was saved before it was built); "
        "build it with keras.Input(shape=...) as its first layer, save it again and convert that file",
    )


def test_saved_model_without_signatures(run_cli, tmp_path: Path, tf) -> None:
    tf.saved_model.save(tf.Module(), str(tmp_path / "bare"))
    result = run_cli("--model-path", str(tmp_path / "bare"))
    _one_line_error(
        result,
        2,
        "the SavedModel bare has no signatures; "
        "save it with model.export(path), or tf.saved_model.save(module, path, signatures=...)",
    )


@pytest.mark.converts  # the converter imports TensorFlow to read it
def test_damaged_saved_model(run_cli, tmp_path: Path) -> None:
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "saved_model.pb").write_bytes(b"\x08\x01 not a protobuf")
    result = run_cli("--model-path", str(tmp_path / "damaged"))
    assert result.code == 2
    assert result.errors.startswith("error: damaged is not a readable SavedModel (")
    assert result.errors.endswith("); save it again with model.export(path) or tf.saved_model.save\n")
    assert result.written() == []


def test_corrupt_tflite_file(run_cli, models: Path, tmp_path: Path) -> None:
    whole = (models / "mobilenet_v2.tflite").read_bytes()
    (tmp_path / "cut.tflite").write_bytes(whole[:4096])
    result = run_cli("--model-path", str(tmp_path / "cut.tflite"))
    assert result.code == 2
    assert result.errors.startswith("error: cut.tflite is not a readable TFLite model (")
    assert result.errors.endswith("); convert the model again with tf.lite.TFLiteConverter\n")
    assert result.written() == []


def test_operator_tf2onnx_cannot_convert_exits_1_with_its_name(run_cli, models: Path) -> None:
    result = run_cli("--model-path", str(models / "lgamma_savedmodel"))
    assert result.code == 1
    assert result.stdout.startswith(
        "FAIL lgamma_savedmodel: tf2onnx cannot convert the TensorFlow op Lgamma in SavedModel signature serving_default"
    )
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr  # tf2onnx's own log stays quiet
    report = result.report("lgamma_savedmodel")
    assert report["status"] == "error" and report["onnx"] is None
    # no .onnx, only the reports that explain the failure
    assert result.written() == ["lgamma_savedmodel.report.json", "lgamma_savedmodel.report.md"]


# -- the framework stays out of the way ---------------------------------------------------------------


@pytest.mark.converts  # tf2onnx imports TensorFlow
def test_opset_range_matches_tf2onnx() -> None:
    import tf2onnx.constants

    from converter.frameworks.tensorflow.backend import TF2ONNX_OPSETS

    assert TF2ONNX_OPSETS[1] == max(tf2onnx.constants.OPSET_TO_IR_VERSION)


def test_detection_never_imports_tensorflow(models: Path) -> None:
    code = (
        "import sys, json; from pathlib import Path; from converter.frameworks import resolve_backend; "
        f"d = Path({str(models)!r}); "
        "found = [resolve_backend('auto', d / n)[1] for n in "
        "('mlp.keras', 'cnn.h5', 'mlp.weights.h5', 'lstm_savedmodel', 'mobilenet_v2.tflite')]; "
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tf2onnx', 'h5py') if m in sys.modules); "
        "print(json.dumps([found, heavy]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(done.stdout) == [["keras", "keras-h5", "keras-h5", "saved-model", "tflite"], []]


def test_tensorflow_start_up_noise_stays_out_of_the_log(models: Path, tmp_path: Path) -> None:
    """A fresh process: the C++ runtime's notices (oneDNN, CPU features, XNNPACK) would show here."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "converter",
            "--model-path",
            str(models / "mobilenet_v2.tflite"),
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if not line.startswith("onnx-convert: ")] == []
    assert done.stdout.startswith("PASS mobilenet_v2.tflite (tensorflow/tflite)")


def _convert_in_a_fresh_process(model: Path, output_dir: Path) -> tuple[str, list[str]]:
    """sha256 of the .onnx a new process writes, and the lines it printed to stderr besides progress."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-m", "converter", "--model-path", str(model), "--output-dir", str(output_dir)],
        capture_output=True, text=True, check=False, cwd=ROOT, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    [onnx_file] = output_dir.glob("*.onnx")
    noise = [line for line in done.stderr.splitlines() if not line.startswith("onnx-convert: ")]
    return hashlib.sha256(onnx_file.read_bytes()).hexdigest(), noise


@pytest.mark.parametrize("name", ["mlp.keras", "cnn.h5", "lstm_savedmodel", "mobilenet_v2.tflite"])
def test_two_runs_write_the_same_file_and_nothing_else_to_stderr(models: Path, tmp_path: Path, name: str) -> None:
    """Release pipelines need reproducible files; tf2onnx's generated names and node order differed."""
    first, noise = _convert_in_a_fresh_process(models / name, tmp_path / "first")
    second, _ = _convert_in_a_fresh_process(models / name, tmp_path / "second")
    assert first == second
    assert noise == []


def test_canonical_form_does_not_depend_on_generated_names_or_node_order() -> None:
    from onnx import TensorProto, helper

    from converter.frameworks.tensorflow.canonical import canonicalize

    def model(counter: int, swap: bool) -> Any:
        two = helper.make_tensor(f"const__{counter}", TensorProto.FLOAT, [], [2.0])
        double = helper.make_node(
            "Mul", ["x", f"const__{counter}"], [f"double__{counter + 1}:0"], f"mul__{counter + 1}"
        )
        add = helper.make_node("Add", ["x", "x"], [f"sum__{counter + 2}:0"], f"add__{counter + 2}")
        twin = helper.make_node("Add", ["x", "x"], [f"sum__{counter + 3}:0"], f"add__{counter + 3}")  # merged
        out = helper.make_node(
            "Sum", [f"double__{counter + 1}:0", f"sum__{counter + 2}:0", f"sum__{counter + 3}:0"], ["y"]
        )
        nodes = [add, twin, double, out] if swap else [double, twin, add, out]
        value = helper.make_tensor_value_info
        graph = helper.make_graph(nodes, "g", [value("x", 1, [2])], [value("y", 1, [2])], [two])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    first, second = model(3, swap=False), model(40, swap=True)
    assert canonicalize(first, {}) == {} and canonicalize(second, {}) == {}
    assert first.SerializeToString() == second.SerializeToString()
    assert [(n.op_type, list(n.input)) for n in first.graph.node] == [
        ("Add", ["x", "x"]),
        ("Mul", ["x", "Mul_1_in1"]),
        ("Sum", ["Mul_1:0", "Add_0:0", "Add_0:0"]),
    ]
    import onnx.checker

    onnx.checker.check_model(first)


def test_native_start_up_notices_are_filtered_and_real_errors_kept(capfd: pytest.CaptureFixture[str]) -> None:
    from converter.frameworks.tensorflow.startup import native_notices_filtered

    with native_notices_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1.2 1 port.cc:153] oneDNN custom operations are on. You may see ...\n")
        os.write(2, b"E0000 00:00:1.3 1 loader.cc:12] could not open libfoo.so\n")
    assert capfd.readouterr().err == "E0000 00:00:1.3 1 loader.cc:12] could not open libfoo.so\n"


def _version(package: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(package)
