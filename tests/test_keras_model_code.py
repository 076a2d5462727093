"""--model-code for Keras (issue 15, item 6): a .keras file whose layers and functions are registered
with ``keras.saving.register_keras_serializable`` in the user's code converts when that file is named,
under either name of the option; without it the refusal names the option; a Lambda layer stays refused.

The models are saved in another process: a registration made in this one would let the .keras file
load without the option, and the refusal could not be seen. The refusal runs in a process of its
own for the same reason (the passing conversions register the classes here).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fixtures.cli import assert_one_line_error, error_lines

pytestmark = pytest.mark.converts

LAYERS = textwrap.dedent(
    """
    import keras


    @keras.saving.register_keras_serializable(package="demo")
    class Scale(keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def build(self, input_shape):
            self.gain = self.add_weight(shape=(input_shape[-1],), initializer="random_normal", name="gain")

        def call(self, x):
            return x * self.gain * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}


    @keras.saving.register_keras_serializable(package="demo")
    def scaled_tanh(x):
        return 1.5 * keras.ops.tanh(x)
    """
)
SAVE = textwrap.dedent(
    """
    import os, sys
    os.environ["KERAS_BACKEND"] = "tensorflow"
    sys.path.insert(0, sys.argv[1])
    import keras
    import layers

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,), name="x")
    hidden = keras.layers.Dense(8, activation=layers.scaled_tanh)(layers.Scale(3.0)(inputs))
    keras.Model(inputs, keras.layers.Dense(2, name="y")(hidden), name="custom").save(sys.argv[2] + "/custom.keras")
    lambdas = keras.layers.Lambda(lambda t: t * 2.0)(layers.Scale()(inputs))
    keras.Model(inputs, lambdas, name="with_lambda").save(sys.argv[2] + "/with_lambda.keras")
    """
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """custom.keras (a registered layer and activation) and with_lambda.keras, with layers.py beside them."""
    folder = tmp_path_factory.mktemp("keras_code")
    (folder / "layers.py").write_text(LAYERS, encoding="utf-8")
    subprocess.run([sys.executable, "-c", SAVE, str(folder), str(folder)], check=True, capture_output=True)
    return folder


@pytest.mark.parametrize("option", ["--model-code", "--model-class"])
def test_keras_with_registered_custom_layer_and_activation_converts_with_its_code(
    run_cli, saved: Path, option: str
) -> None:
    result = run_cli("--model-path", str(saved / "custom.keras"), option, str(saved / "layers.py"))
    assert result.code == 0, result.stdout + result.stderr
    assert result.stdout.startswith("PASS custom.keras (tensorflow/keras)")
    assert result.report("custom")["validation"]["passed"] is True


def test_keras_custom_layer_without_its_code_is_refused_naming_the_option(saved: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "converter", "--model-path", str(saved / "custom.keras"), "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert error_lines(done.stderr) == [
        "error: custom.keras uses the custom Keras object Scale, whose Python code is not in the file; "
        "pass --model-code path/to/file.py, the file that defines and registers it (it is imported, so run), "
        'or export the model with model.export("saved_model_dir") and convert the SavedModel directory'
    ]
    assert list(tmp_path.iterdir()) == []


KERAS_HUB_SAVE = textwrap.dedent(
    """
    import os, sys
    os.environ["KERAS_BACKEND"] = "tensorflow"
    sys.path.insert(0, sys.argv[1])
    import keras
    from keras_hub.src.layers.gain import Gain

    inputs = keras.Input((6,), name="x")
    keras.Model(inputs, Gain()(inputs), name="from_hub").save(sys.argv[2] + "/from_hub.keras")
    """
)


def test_a_keras_hub_model_without_keras_hub_is_refused_naming_the_package(tmp_path: Path) -> None:
    """Keras imports a KerasHub class by the module named in the file: without the package, the one line
    says which distribution to list in --requirements (a package here stands in for keras-hub)."""
    hub = tmp_path / "site" / "keras_hub" / "src" / "layers"
    hub.mkdir(parents=True)
    for folder in (hub, hub.parent, hub.parent.parent):
        (folder / "__init__.py").write_text("")
    (hub / "gain.py").write_text(
        "import keras\n\n\n@keras.saving.register_keras_serializable(package='keras_hub')\n"
        "class Gain(keras.layers.Layer):\n    def call(self, x):\n        return x * 2.0\n"
    )
    subprocess.run([sys.executable, "-c", KERAS_HUB_SAVE, str(tmp_path / "site"), str(tmp_path)], check=True)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "converter", "--model-path", str(tmp_path / "from_hub.keras"), "--output-dir"]
    done = subprocess.run([*command, str(out)], capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr
    assert error_lines(done.stderr) == [
        "error: from_hub.keras is built from keras_hub's Gain, and keras-hub is not installed here; list keras-hub "
        "in --requirements (a requirements file installed before the conversion), or install it beside onnx-convert"
    ]
    assert not out.exists() or list(out.iterdir()) == []


def test_lambda_layer_stays_refused_with_model_code(run_cli, saved: Path) -> None:
    result = run_cli("--model-path", str(saved / "with_lambda.keras"), "--model-code", str(saved / "layers.py"))
    assert_one_line_error(
        result,
        2,
        "error: with_lambda.keras contains a Lambda layer, whose Python code would run while the model loads; "
        "pass --allow-unsafe-load true if you trust the file, or replace the Lambda with a built-in or registered layer",
    )


def test_keras_model_code_with_a_class_name_is_refused(run_cli, saved: Path) -> None:
    value = f"{saved / 'layers.py'}:Scale"
    result = run_cli("--model-path", str(saved / "custom.keras"), "--model-code", value)
    assert_one_line_error(
        result,
        2,
        f'error: --model-code "{value}": a Keras model takes the file only (its layers are found by the names they '
        f"are saved under); give --model-code {saved / 'layers.py'}",
    )
