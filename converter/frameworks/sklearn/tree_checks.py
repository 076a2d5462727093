"""Tree arrays checked after loading and before anything runs them: scikit-learn trusts them.

scikit-learn's Cython code follows a tree's node indices and reads ``X[i, feature]`` without a
bounds check (scikit-learn/scikit-learn#34558, open): a .skops file whose DecisionTree has a
``children_left`` past its node array loads, then crashes the process (SIGSEGV) in predict or
reads memory it should not. skops rebuilds ``Tree`` through its ``__setstate__``, which checks
the arrays' dtypes and the value array's shape against the node array, not the indices inside.

Checked here, for every ``tree_`` (decision trees, and the trees of forests, gradient boosting,
bagging, isolation forests) and every HistGradientBoosting ``TreePredictor``:

- the tree has nodes (predict starts at node 0), and ``node_count`` is at most the nodes it holds;
- a node is a leaf (both children -1; HistGradientBoosting: ``is_leaf``) or both its children are
  later nodes of the tree (scikit-learn's builders add children after their parent, so a walk from
  the root always ends);
- a split's feature is a column of the X that reaches the tree: below its estimator's
  ``n_features_in_``, which an ensemble's members must have as the ensemble passes it (the
  ensemble's width, or a bagging member's own feature subset);
- a categorical HistGradientBoosting split's bitset exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from converter.errors import UserError

LEAF = -1  # sklearn.tree._tree.TREE_LEAF


def check_trees(model: Any, file_name: str) -> None:
    """Refuse (exit 2) a model holding a tree that scikit-learn could not run safely."""
    for estimator, where in _estimators(model):
        problem = _estimator_problem(estimator, where)
        if problem:
            raise UserError(
                f"{file_name}: {problem}",
                "the file is damaged or was made to crash whatever runs it (scikit-learn does not check tree nodes "
                "before it follows them); save the model again with skops.io.dump",
            )


def _estimators(model: Any) -> Iterator[tuple[Any, str]]:
    """Every estimator in the model's object graph (pipelines, ensembles, meta-estimators), with its path."""
    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(model, type(model).__name__)]
    while stack:
        obj, where = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if hasattr(obj, "get_params") and not isinstance(obj, type):
            yield obj, where
        stack.extend(reversed(list(_children(obj, where))))


def _children(obj: Any, where: str) -> Iterator[tuple[Any, str]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield value, f"{where}[{key!r}]"
    elif isinstance(obj, list | tuple):
        for index, value in enumerate(obj):
            yield value, f"{where}[{index}]"
    elif isinstance(obj, np.ndarray):
        if obj.dtype == object:
            for index, value in enumerate(obj.ravel()):
                yield value, f"{where}.flat[{index}]"
    elif not isinstance(obj, str | bytes | type) and hasattr(obj, "__dict__"):
        for name, value in vars(obj).items():
            yield value, f"{where}.{name}"


def _estimator_problem(estimator: Any, where: str) -> str:
    """What is wrong with the trees ``estimator`` holds, starting with ``where`` it is; or ""."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._tree import Tree

    width = _width(estimator)
    tree = getattr(estimator, "tree_", None)
    if isinstance(tree, Tree):
        if width is None:
            return f"{where} holds a tree but no n_features_in_, the number of columns its splits may read"
        if problem := tree_problem(tree, width):
            return f"{where}.tree_: {problem}"
    for index, predictor in enumerate(_flat(getattr(estimator, "_predictors", None))):
        if isinstance(predictor, TreePredictor):
            if width is None:
                return f"{where} holds trees but no n_features_in_, the number of columns their splits may read"
            if problem := predictor_problem(predictor, width):
                return f"{where} tree {index}: {problem}"
    if width is not None and (problem := _members_problem(estimator, width)):
        return f"{where}.{problem}"
    return ""


def _width(estimator: Any) -> int | None:
    width = getattr(estimator, "n_features_in_", None)
    return int(width) if isinstance(width, int | np.integer) else None


def tree_problem(tree: Any, width: int) -> str:
    """What is wrong with a ``sklearn.tree._tree.Tree`` whose splits read ``width`` columns, or ""."""
    count, capacity = tree.node_count, tree.capacity
    if count < 1:  # predict starts at node 0
        return "has no nodes"
    if count > capacity:  # first: the arrays below are node_count long, read from capacity nodes
        return f"has node_count {count} but holds {capacity} nodes"
    if tree.n_features != width:
        return f"is built for {tree.n_features} features but its estimator takes {width}"
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    leaf = (left == LEAF) & (right == LEAF)
    if problem := _children_problem(leaf, left, right):
        return problem
    bad = np.flatnonzero(~leaf & ((feature < 0) | (feature >= width)))
    if bad.size:
        return f"node {bad[0]} splits on feature {feature[bad[0]]}, but X has {width} columns"
    return ""


def predictor_problem(predictor: Any, width: int) -> str:
    """What is wrong with a HistGradientBoosting ``TreePredictor`` whose splits read ``width`` columns, or ""."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    nodes = predictor.nodes
    if not isinstance(nodes, np.ndarray) or nodes.ndim != 1 or nodes.dtype != PREDICTOR_RECORD_DTYPE or not len(nodes):
        return "has no nodes of the layout scikit-learn reads"
    leaf = nodes["is_leaf"] != 0
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    if problem := _children_problem(leaf, left, right):
        return problem
    feature = nodes["feature_idx"]
    bad = np.flatnonzero(~leaf & (feature >= width))
    if bad.size:
        return f"node {bad[0]} splits on feature {feature[bad[0]]}, but X has {width} columns"
    bitsets = min(len(predictor.raw_left_cat_bitsets), len(predictor.binned_left_cat_bitsets))
    bad = np.flatnonzero(~leaf & (nodes["is_categorical"] != 0) & (nodes["bitset_idx"] >= bitsets))
    if bad.size:
        return f"node {bad[0]} uses category bitset {nodes['bitset_idx'][bad[0]]} of {bitsets}"
    return ""


def _children_problem(leaf: np.ndarray, left: np.ndarray, right: np.ndarray) -> str:
    count = len(leaf)
    ids = np.arange(count)
    later = (left > ids) & (left < count) & (right > ids) & (right < count)
    bad = np.flatnonzero(~leaf & ~later)
    if bad.size:
        node = bad[0]
        return (
            f"node {node} has children {left[node]} and {right[node]}, which are not later nodes of its {count} "
            "(a leaf has none)"
        )
    return ""


def _members_problem(ensemble: Any, width: int) -> str:
    """An ensemble's tree members get X as the ensemble validated it, unchecked: their width must match."""
    members = getattr(ensemble, "estimators_", None)
    if members is None:
        return ""
    subsets = getattr(ensemble, "estimators_features_", None)  # bagging: each member sees its own columns
    for index, member in enumerate(_flat(members)):
        if not (hasattr(member, "tree_") or hasattr(member, "_predictors")):
            continue
        expected = width
        if subsets is not None:
            if index >= len(subsets):
                return f"estimators_ has {index + 1} or more trees but {len(subsets)} feature subsets"
            expected = len(subsets[index])
        if _width(member) != expected:
            return f"estimators_[{index}] takes {_width(member)} features but is given {expected}"
    return ""


def _flat(items: Any) -> list[Any]:
    """A list, a list of lists or an object array (GradientBoosting's estimators_), flattened."""
    if items is None:
        return []
    if isinstance(items, np.ndarray):
        return list(items.ravel())
    flat: list[Any] = []
    for item in items:
        flat.extend(item if isinstance(item, list | tuple) else [item])
    return flat
