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


# -- the variants section (7): each model with real-looking sample data, so int8-static can be made --


def resnet50(out_dir: Path) -> tuple[Path, Path]:
    """A ResNet-50-sized CNN (25.6 M parameters, bottleneck blocks 3-4-6-3) in plain torch with
    random weights and BatchNorm statistics of a real batch, as a .pt2 program; 8 images as .npy.

    torchvision is not importable here; the architecture is torchvision's resnet50."""
    import numpy as np
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, width: int, stride: int) -> None:
            super().__init__()
            cout = width * 4
            self.body = nn.Sequential(
                nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout),
            )  # fmt: skip
            self.down = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else nn.Identity()
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.body(x) + self.down(x))

    class ResNet50(nn.Module):
        def __init__(self, classes: int = 1000) -> None:
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
            )
            blocks, cin = [], 64
            for width, count, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
                for i in range(count):
                    blocks.append(Bottleneck(cin, width, stride if i == 0 else 1))
                    cin = width * 4
            self.blocks = nn.Sequential(*blocks)
            self.head = nn.Linear(2048, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.blocks(self.stem(x))
            return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))

    torch.manual_seed(0)
    model = ResNet50()
    images = torch.from_numpy(np.random.default_rng(0).standard_normal((8, 3, 224, 224)).astype(np.float32))
    for module in model.modules():  # statistics of a real batch: identity statistics shrink the signal
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # a cumulative average: one batch sets them
    with torch.no_grad():
        model.train()(images)
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (images[:2],), dynamic_shapes=({0: batch},))
    path, samples = out_dir / "resnet50.pt2", out_dir / "resnet50_images.npy"
    torch.export.save(program, path)
    rng = np.random.default_rng(1)  # other images than the statistics': the calibration and validation rows
    np.save(samples, rng.standard_normal((8, 3, 224, 224)).astype(np.float32))
    return path, samples


def bert_small(out_dir: Path) -> tuple[Path, Path]:
    """A small BERT sequence classifier (4 layers, hidden 256, 4 heads, 30522-token vocabulary:
    11 M parameters, the size of google/bert_uncased_L-4_H-256_A-4) with random weights, as a .pt2
    program taking input_ids and attention_mask; 8 sequences of 128 tokens as .npz."""
    import numpy as np
    import torch
    import transformers

    config = transformers.BertConfig(
        vocab_size=30522, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
        num_labels=2,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    rng = np.random.default_rng(0)

    def tokens(rows: int) -> dict[str, np.ndarray]:
        lengths = rng.integers(32, 129, rows)
        lengths[0] = 128
        return {
            "input_ids": rng.integers(1000, 30522, (rows, 128), dtype=np.int64),
            "attention_mask": (np.arange(128)[None, :] < lengths[:, None]).astype(np.int64),
        }

    example = {name: torch.from_numpy(value) for name, value in tokens(2).items()}
    batch, seq = torch.export.Dim("batch", min=1, max=1024), torch.export.Dim("seq", max=512)
    with torch.no_grad():
        program = torch.export.export(
            model, (), kwargs=example, dynamic_shapes={name: {0: batch, 1: seq} for name in example}
        )
    path, samples = out_dir / "bert_small.pt2", out_dir / "bert_small_tokens.npz"
    torch.export.save(program, path)
    np.savez(samples, **tokens(8))
    return path, samples


def mlp_digits(out_dir: Path) -> tuple[Path, Path]:
    """A scikit-learn MLP classifier (StandardScaler, hidden layers 512 and 256) fitted on 1,500
    digits, as .skops; the 297 held-out digits as .npy."""
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(512, 256), max_iter=300, random_state=0))
    path, samples = out_dir / "mlp_digits.skops", out_dir / "mlp_digits_rows.npy"
    sio.dump(model.fit(x[:1500], y[:1500]), path)
    np.save(samples, x[1500:].astype(np.float32))
    return path, samples
