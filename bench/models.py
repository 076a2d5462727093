"""The benchmark models, built here so both sides convert the very same file."""

from __future__ import annotations

from pathlib import Path


def random_forest(out_dir: Path) -> Path:
    """RandomForestClassifier with 100 trees on a 20-feature, 3-class problem, saved as .skops."""
    import skops.io as sio
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    x, y = make_classification(n_samples=2000, n_features=20, n_informative=10, n_classes=3, random_state=0)
    path = out_dir / "random_forest.skops"
    sio.dump(RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y), path)
    return path


def resnet18(out_dir: Path) -> Path:
    """A ResNet-18-sized CNN (11.7 M parameters) built in code with random weights, as a .pt2 program."""
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else nn.Identity()
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.down(x))

    class ResNet18(nn.Module):
        def __init__(self, classes: int = 1000) -> None:
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
            )
            layers, cin = [], 64
            for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
                cin = cout
            self.layers = nn.Sequential(*layers)
            self.head = nn.Linear(512, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.layers(self.stem(x))
            return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))

    torch.manual_seed(0)
    model = ResNet18().eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (torch.randn(2, 3, 224, 224),), dynamic_shapes=({0: batch},))
    path = out_dir / "resnet18.pt2"
    torch.export.save(program, path)
    return path


def mobilenet_v2(out_dir: Path) -> Path:
    """keras.applications.MobileNetV2(weights=None) at 224x224, saved as .keras."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(0)
    path = out_dir / "mobilenet_v2.keras"
    keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3)).save(path)
    return path
