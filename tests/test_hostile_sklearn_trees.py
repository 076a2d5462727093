"""Trees whose node indices scikit-learn would follow out of bounds are refused before anything runs them.

scikit-learn does not check tree node indices (scikit-learn/scikit-learn#34558): each model here
crashed the process (SIGSEGV), hung in predict, or read past X before tree_checks.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converter.frameworks.sklearn.tree_checks import check_trees
from tests.fixtures.sklearn import dataset, lazy

pytestmark = pytest.mark.converts
sklearn, sio, pd = lazy("sklearn"), lazy("skops.io"), lazy("pandas")
HINT = (
    "; the file is damaged or was made to crash whatever runs it (scikit-learn does not check tree nodes before "
    "it follows them); save the model again with skops.io.dump\n"
)


def _with_nodes(tree: Any, change: Callable[[np.ndarray], None]) -> None:
    """Change a fitted ``Tree``'s node array in place (what a crafted file holds)."""
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    change(nodes)
    tree.__setstate__({**state, "nodes": nodes})


def _refusal(run_cli, tmp_path: Path, model: Any, name: str = "tree.skops") -> str:
    sio.dump(model, tmp_path / name)
    result = run_cli("--model-path", str(tmp_path / name))
    assert result.code == 2, result.stdout + result.stderr
    assert result.written() == []
    return result.errors


def test_a_child_index_past_the_nodes_is_refused_not_run(run_cli, tmp_path: Path) -> None:
    model = sklearn.tree.DecisionTreeClassifier(max_depth=3, random_state=0).fit(*dataset("iris"))
    _with_nodes(model.tree_, lambda nodes: nodes["left_child"].__setitem__(0, 10**6))

    assert _refusal(run_cli, tmp_path, model) == (
        "error: tree.skops: DecisionTreeClassifier.tree_: node 0 has children 1000000 and 2, which are not later "
        f"nodes of its {model.tree_.node_count} (a leaf has none)" + HINT
    )


def test_a_child_that_points_back_at_its_parent_is_refused(run_cli, tmp_path: Path) -> None:
    # predict would follow 0 -> 2 -> 0 ... for ever
    model = sklearn.tree.DecisionTreeRegressor(max_depth=2, random_state=0).fit(*dataset("iris"))
    assert list(model.tree_.children_left[:3]) == [1, -1, 3]
    _with_nodes(model.tree_, lambda nodes: nodes["right_child"].__setitem__(2, 0))

    assert "DecisionTreeRegressor.tree_: node 2 has children 3 and 0, which are not later nodes" in _refusal(
        run_cli, tmp_path, model
    )


def test_a_split_on_a_feature_past_the_columns_in_a_forest_member_is_refused(run_cli, tmp_path: Path) -> None:
    model = sklearn.ensemble.RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0).fit(*dataset("iris"))
    _with_nodes(model.estimators_[2].tree_, lambda nodes: nodes["feature"].__setitem__(0, 4000))

    assert _refusal(run_cli, tmp_path, model) == (
        "error: tree.skops: RandomForestClassifier.estimators_[2].tree_: node 0 splits on feature 4000, "
        "but X has 4 columns" + HINT
    )


def test_a_forest_member_wider_than_the_forest_is_refused(tmp_path: Path) -> None:
    # the forest validates X at its own width, then hands it to every member unchecked
    model = sklearn.ensemble.RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0).fit(*dataset("iris"))
    model.n_features_in_ = 2

    with pytest.raises(Exception) as refused:
        check_trees(model, "forest.skops")
    assert str(refused.value) == "forest.skops: RandomForestClassifier.estimators_[0] takes 4 features but is given 2"


def test_a_tree_without_nodes_is_refused(run_cli, tmp_path: Path) -> None:
    # predict reads node 0 of an empty array
    model = sklearn.tree.DecisionTreeClassifier(max_depth=1, random_state=0).fit(*dataset("iris"))
    state = model.tree_.__getstate__()
    model.tree_ = sklearn.tree._tree.Tree(4, np.array([3]), 1)
    model.tree_.__setstate__({**state, "node_count": 0, "nodes": state["nodes"][:0], "values": state["values"][:0]})

    assert _refusal(run_cli, tmp_path, model) == "error: tree.skops: DecisionTreeClassifier.tree_: has no nodes" + HINT


def test_a_hist_gradient_boosting_node_past_the_predictor_is_refused(run_cli, tmp_path: Path) -> None:
    model = sklearn.ensemble.HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(*dataset("iris"))
    model._predictors[1][2].nodes["left"][0] = 70000

    assert _refusal(run_cli, tmp_path, model, "hgb.skops").startswith(
        "error: hgb.skops: HistGradientBoostingClassifier tree 5: node 0 has children 70000 and "
    )


def test_a_hist_gradient_boosting_split_past_the_columns_is_refused(tmp_path: Path) -> None:
    model = sklearn.ensemble.HistGradientBoostingClassifier(max_iter=2, random_state=0).fit(*dataset("iris"))
    model._predictors[0][0].nodes["feature_idx"][0] = 9

    with pytest.raises(Exception) as refused:
        check_trees(model, "hgb.skops")
    assert str(refused.value) == (
        "hgb.skops: HistGradientBoostingClassifier tree 0: node 0 splits on feature 9, but X has 4 columns"
    )


def test_a_categorical_split_without_its_bitset_is_refused() -> None:
    x, y = dataset("iris")
    frame = pd.DataFrame({"colour": pd.Categorical(np.array(["r", "g", "b"])[y]), "x": x[:, 0]})
    model = sklearn.ensemble.HistGradientBoostingClassifier(
        max_iter=2, categorical_features="from_dtype", random_state=0
    )
    model.fit(frame, y)
    assert check_trees(model, "hgb.skops") is None  # as fitted
    predictor = model._predictors[0][0]
    node = int(np.flatnonzero(predictor.nodes["is_categorical"])[0])
    predictor.nodes["bitset_idx"][node] = 50

    with pytest.raises(Exception) as refused:
        check_trees(model, "hgb.skops")
    assert str(refused.value).endswith(f"tree 0: node {node} uses category bitset 50 of 1")


TREE_MODELS: dict[str, Callable[[], Any]] = {
    "DecisionTreeClassifier": lambda: sklearn.tree.DecisionTreeClassifier(random_state=0),
    "ExtraTreesRegressor in a pipeline": lambda: sklearn.pipeline.make_pipeline(
        sklearn.preprocessing.StandardScaler(), sklearn.ensemble.ExtraTreesRegressor(n_estimators=3, random_state=0)
    ),
    "RandomForestClassifier": lambda: sklearn.ensemble.RandomForestClassifier(n_estimators=3, random_state=0),
    "GradientBoostingClassifier": lambda: sklearn.ensemble.GradientBoostingClassifier(n_estimators=3, random_state=0),
    "HistGradientBoostingClassifier": lambda: sklearn.ensemble.HistGradientBoostingClassifier(
        max_iter=3, random_state=0
    ),
    "AdaBoostClassifier": lambda: sklearn.ensemble.AdaBoostClassifier(n_estimators=3, random_state=0),
    "BaggingClassifier": lambda: sklearn.ensemble.BaggingClassifier(
        sklearn.tree.DecisionTreeClassifier(), n_estimators=3, max_features=2, random_state=0
    ),
    "IsolationForest": lambda: sklearn.ensemble.IsolationForest(n_estimators=3, max_features=2, random_state=0),
    "RandomTreesEmbedding": lambda: sklearn.ensemble.RandomTreesEmbedding(n_estimators=3, random_state=0),
}


@pytest.mark.parametrize("name", TREE_MODELS)
def test_trees_as_scikit_learn_fits_them_pass_the_checks(name: str, tmp_path: Path) -> None:
    model = TREE_MODELS[name]().fit(*dataset("iris"))
    sio.dump(model, tmp_path / "model.skops")
    loaded = sio.load(tmp_path / "model.skops", trusted=sio.get_untrusted_types(file=tmp_path / "model.skops"))

    assert check_trees(loaded, "model.skops") is None  # raises on any problem
