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


def sklearn_iris_retrained(models: Path) -> Path:
    """iris, retrained with another regularisation: the same interface, other numbers."""
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    path = models / "iris-retrained.skops"
    sio.dump(LogisticRegression(max_iter=1000, C=0.1).fit(x, y), path)
    return path


def _pytorch_net(models: Path, input_name: str) -> Path:
    """A torch.export program (nothing unpickled, so no allow-unsafe-load) whose input is ``input_name``."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    class Renamed(Net):
        def forward(self, features: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return self.fc(features)

    model = (Net() if input_name == "x" else Renamed()).eval()
    program = torch.export.export(model, (torch.randn(8, 4),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    path = models / f"net-{input_name}.pt2"
    torch.export.save(program, str(path))
    return path


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "sklearn-iris-retrained": sklearn_iris_retrained,
    "pytorch-net-x": lambda models: _pytorch_net(models, "x"),
    "pytorch-net-features": lambda models: _pytorch_net(models, "features"),
    "sklearn-iris": sklearn_iris,
    "sklearn-forest": sklearn_forest,
    "pytorch-mlp": pytorch_mlp,
    "keras-mlp": keras_mlp,
}

if __name__ == "__main__":
    print(BUILDERS[sys.argv[1]](Path(sys.argv[2])))
