"""Small example models for the e2e workflow, one builder per framework.

Run as ``python -m tests.e2e.models NAME DIRECTORY``: each model is made in a process of its own,
so the test process never imports torch and TensorFlow together. Prints the model's path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path


def sklearn_iris(models: Path) -> Path:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    path = models / "iris.skops"
    sio.dump(LogisticRegression(max_iter=1000).fit(x, y), path)
    return path


def sklearn_forest(models: Path) -> Path:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    x, y = load_iris(return_X_y=True)
    path = models / "forest.skops"
    sio.dump(RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y), path)
    return path


def pytorch_mlp(models: Path) -> Path:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()
    path = models / "mlp.pt"
    torch.jit.save(torch.jit.script(model), path)  # TorchScript: carries its code (needs no model-class)
    return path


def keras_mlp(models: Path) -> Path:
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
    path = models / "mlp.keras"
    model.save(path)
    return path


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "sklearn-iris": sklearn_iris,
    "sklearn-forest": sklearn_forest,
    "pytorch-mlp": pytorch_mlp,
    "keras-mlp": keras_mlp,
}

if __name__ == "__main__":
    print(BUILDERS[sys.argv[1]](Path(sys.argv[2])))
