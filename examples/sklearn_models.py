"""Small scikit-learn example models, saved as .skops (the safe format)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def build(out_dir: Path) -> list[tuple[Path, list[str]]]:
    """Train the examples; return (model path, extra CLI arguments) for each."""
    import pandas as pd
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    out_dir.mkdir(parents=True, exist_ok=True)
    x_iris, y_iris = load_iris(return_X_y=True)
    x_diab, y_diab = load_diabetes(return_X_y=True)
    rng = np.random.default_rng(0)
    tips = pd.DataFrame({"day": rng.choice(["thu", "fri", "sat", "sun"], 200), "bill": rng.gamma(4, 5, 200)})
    tipped = (tips["bill"] > 20).astype(int) ^ (tips["day"] == "sun").astype(int)

    models = {
        "iris_logistic_regression": LogisticRegression(max_iter=1000).fit(x_iris, y_iris),
        "iris_random_forest": RandomForestClassifier(n_estimators=50, random_state=0).fit(x_iris, y_iris),
        "diabetes_gradient_boosting": GradientBoostingRegressor(random_state=0).fit(x_diab, y_diab),
        "tips_column_transformer": Pipeline(
            [
                (
                    "columns",
                    ColumnTransformer([("day", OneHotEncoder(), ["day"]), ("bill", StandardScaler(), ["bill"])]),
                ),
                ("classifier", LogisticRegression()),
            ]
        ).fit(tips, tipped),
    }
    built = []
    for name, model in models.items():
        path = out_dir / f"{name}.skops"
        sio.dump(model, path)
        built.append((path, []))
    return built
