"""The inputs of a model fitted on a DataFrame: one per column, typed by what the fitted steps
that read the column kept (string categories, a text vocabulary, an imputer's string fill).

A column the model drops gets its type from the sample data (``dtype_known=False``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from converter.frameworks.base import TensorSpec
from converter.frameworks.sklearn.export import walk
from converter.input_roles import MISSING_STRING
from converter.samples import is_missing

# Encoders whose categories tell us an input column holds strings.
STRING_ENCODERS = ("OneHotEncoder", "OrdinalEncoder", "TargetEncoder")
VECTORIZERS = ("CountVectorizer", "TfidfVectorizer", "HashingVectorizer")
IMPUTERS = ("SimpleImputer", "KNNImputer", "IterativeImputer")
# Documents generated from a vectorizer's vocabulary for validation inputs.
DOCUMENTS = 48


def column_specs(model: Any, names: list[str]) -> list[TensorSpec]:
    """One (batch, 1) input per DataFrame column, in ``feature_names_in_`` order."""
    readers = _column_readers(model, names)
    specs = []
    for name in names:
        steps = readers.get(name)
        if steps is None:  # dropped by every ColumnTransformer: the sample data says what it holds
            specs.append(TensorSpec(name=name, shape=(None, 1), dtype="float32", dtype_known=False, role="values"))
            continue
        categories = _strings(steps, name)
        specs.append(
            TensorSpec(
                name=name,
                shape=(None, 1),
                dtype="string" if categories is not None else "float32",
                categories=categories or (),
                missing=_takes_missing(steps, name, model),
                nonnegative=bool(steps) and _needs_nonnegative(steps[0][0]),
                role="values",  # a column named "mask" is data, not an attention mask
            )
        )
    return specs


def _column_readers(model: Any, names: list[str]) -> dict[str, list[tuple[Any, list[str]]]]:
    """For each column used, the fitted estimators that read it and the columns each was given."""
    readers: dict[str, list[tuple[Any, list[str]]]] = {}
    for est in walk(model):
        for _, transformer, selected in getattr(est, "transformers_", None) or []:
            if transformer == "drop":
                continue
            chosen = selected_names(selected, names)
            # the steps themselves, not the pipelines that hold them
            inner = (
                [e for e in walk(transformer) if not hasattr(e, "steps")] if hasattr(transformer, "get_params") else []
            )
            for column in chosen:
                readers.setdefault(column, []).extend((step, chosen) for step in inner)
                if not inner:  # passthrough: the next step reads it
                    readers.setdefault(column, [])
    return readers


def selected_names(selected: Any, names: list[str]) -> list[str]:
    """A ColumnTransformer's column selection as names: a name, names, indices, a mask or a slice."""
    if isinstance(selected, str):
        return [selected]
    if isinstance(selected, slice):
        return names[selected]
    items = list(np.asarray(selected).ravel()) if not isinstance(selected, list) else selected
    if items and all(isinstance(i, bool | np.bool_) for i in items):
        return [n for n, keep in zip(names, items, strict=False) if keep]
    return [names[int(i)] if isinstance(i, int | np.integer) else str(i) for i in items]


def _strings(steps: list[tuple[Any, list[str]]], column: str) -> tuple[str, ...] | None:
    """The values a string column takes (categories, or documents from a vocabulary), or None if numeric."""
    for step, chosen in steps:
        kind = type(step).__name__
        if kind in VECTORIZERS:
            return documents(getattr(step, "vocabulary_", {}))
        if kind in STRING_ENCODERS:
            categories = _categories_of(step, chosen, column)
            if categories is not None and categories.dtype.kind in "OUS":
                return tuple(str(c) for c in categories if not is_missing(c))
        if kind == "SimpleImputer" and getattr(step, "statistics_", np.zeros(0)).dtype.kind in "OUS":
            continue  # the encoder after it has the categories
    return None


def _categories_of(encoder: Any, chosen: list[str], column: str) -> Any:
    categories = getattr(encoder, "categories_", None)
    if categories is None or column not in chosen or chosen.index(column) >= len(categories):
        return None
    return categories[chosen.index(column)]


def _takes_missing(steps: list[tuple[Any, list[str]]], column: str, model: Any) -> bool:
    """Whether the first step that reads the column takes missing values as scikit-learn documents
    it (an imputer, an encoder fitted with a missing category, a tree that routes NaN)."""
    if not steps:
        first = model.steps[-1][1] if hasattr(model, "steps") else model
        return _allows_nan(first)
    step, chosen = steps[0]
    kind = type(step).__name__
    if kind in IMPUTERS:
        return True
    if kind in STRING_ENCODERS:
        categories = _categories_of(step, chosen, column)
        return categories is not None and any(is_missing(c) for c in categories)
    # Others (a scaler) pass NaN on to the next step, which may refuse it: no missing values
    return False


def _needs_nonnegative(step: Any) -> bool:
    """A FunctionTransformer whose function is undefined below zero (or -1): generated values
    must stay in its domain, or the reference run fails on NaN."""
    return type(step).__name__ == "FunctionTransformer" and step.func in (np.log, np.log1p, np.sqrt, np.log2, np.log10)


def _allows_nan(estimator: Any) -> bool:
    from sklearn.utils import get_tags

    try:
        return bool(get_tags(estimator).input_tags.allow_nan)
    except (AttributeError, TypeError, ValueError):
        return False


def documents(vocabulary: dict[str, int]) -> tuple[str, ...]:
    """Realistic documents for a fitted vocabulary: a few of its words (in any case) with unknown
    words and punctuation, the same for the same vocabulary."""
    words = sorted(vocabulary)
    if not words:
        return ("some text",)
    rng = np.random.default_rng(len(words))
    unknown = ["zqx", "Xylo", "42", "ok!"]
    made = []
    for _ in range(DOCUMENTS):
        picked = [str(w) for w in rng.choice(words, size=int(rng.integers(2, 7)))]
        picked += [str(w) for w in rng.choice(unknown, size=int(rng.integers(0, 2)))]
        rng.shuffle(picked)
        text = " ".join(w.upper() if rng.random() < 0.15 else w for w in picked)
        made.append(text + rng.choice([".", "!", "", ","]))
    return tuple(made)


__all__ = ["MISSING_STRING", "column_specs", "documents", "selected_names"]
