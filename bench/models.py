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


def small_sklearn_zoo(out_dir: Path) -> Path:
    """20 small scikit-learn models of different kinds, each fitted and saved as .skops, and a
    manifest (onnx-models.yml) that lists them; returns the manifest's path.

    Classifiers, regressors, a pipeline, a transformer and a clusterer, on 300 rows of 8
    features: the conversions are short, so a run's cost is mostly imports and per-model overhead.
    """
    import skops.io as sio
    from sklearn.cluster import KMeans
    from sklearn.datasets import make_classification, make_regression
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge, SGDClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    xc, yc = make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3, random_state=0)
    xr, yr = make_regression(n_samples=300, n_features=8, noise=0.1, random_state=0)
    classifiers = {
        "logistic_regression": LogisticRegression(max_iter=1000),
        "random_forest": RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0),
        "extra_trees": ExtraTreesClassifier(n_estimators=10, max_depth=6, random_state=0),
        "gradient_boosting": GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0),
        "linear_discriminant": LinearDiscriminantAnalysis(),
        "decision_tree": DecisionTreeClassifier(max_depth=6, random_state=0),
        "k_neighbors": KNeighborsClassifier(n_neighbors=5),
        "gaussian_nb": GaussianNB(),
        "mlp": MLPClassifier(hidden_layer_sizes=(16,), max_iter=2000, random_state=0),
        "sgd": SGDClassifier(loss="log_loss", random_state=0),
        "scaled_logistic_regression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    }
    regressors = {
        "linear_regression": LinearRegression(),
        "ridge": Ridge(),
        "lasso": Lasso(alpha=0.1),
        "random_forest_regressor": RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0),
        "decision_tree_regressor": DecisionTreeRegressor(max_depth=6, random_state=0),
        "k_neighbors_regressor": KNeighborsRegressor(n_neighbors=5),
        "gradient_boosting_regressor": GradientBoostingRegressor(n_estimators=10, max_depth=3, random_state=0),
    }
    unsupervised = {"pca": PCA(n_components=4), "kmeans": KMeans(n_clusters=3, n_init=3, random_state=0)}
    lines = ["models:"]
    for group, (x, y) in ((classifiers, (xc, yc)), (regressors, (xr, yr)), (unsupervised, (xc, None))):
        for name, estimator in group.items():
            sio.dump(estimator.fit(x, y), out_dir / f"{name}.skops")
            lines += [f"  - name: {name}", f"    model-path: {name}.skops"]
    manifest = out_dir / "onnx-models.yml"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest
