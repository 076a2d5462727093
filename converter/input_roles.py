"""What each model input is for, and generated values it accepts and that exercise it.

A backend says what it knows about an input in its ``TensorSpec``: the rows of the smallest
table the input indexes (``high``, with ``bound`` saying where that came from) and, when it
knows it, the input's ``role``. Here the rest is decided once for every backend: the role from
the name when the backend gave none, and values for that role:

- ``mask``: 0/1 (or False/True, 0.0/1.0) with right padding on half the rows, never a fully
  padded row: a padded row is what exposes an attention bug. Positions derived from the mask
  (OPT takes the mask's cumulative sum) stay small, as they do on real data.
- ``positions``: 0..seq-1 on every row.
- ``token_types``: 0 on a first part of each row, then 1 (a realistic segment split).
- ``ids`` and other integers: uniform below the table the input indexes.
- floats: standard normal; strings: the model's categories.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from converter.frameworks.base import TensorSpec

MASK, POSITIONS, TOKEN_TYPES, IDS, VALUES, CATEGORIES = (
    "mask",
    "positions",
    "token_types",
    "ids",
    "values",
    "categories",
)
# The share of generated values left missing in an input that takes missing values (TensorSpec.missing).
MISSING_SHARE = 0.15
# How a missing value reaches a string input of the ONNX file: as the text "nan", which is what
# pandas' astype(str) makes of NaN and what pd.read_csv reads back as NaN (docs/sklearn.md).
MISSING_STRING = "nan"
DEFAULT_HIGH = 100  # integers that index no table we found (and not ids): a small range
# Name fallbacks, used only when the backend did not say: (pattern on the lower-cased name, role).
_NAME_ROLES = (
    (re.compile(r"mask"), MASK),
    (re.compile(r"(^|_)(token_type|segment)(_ids?|s)?$"), TOKEN_TYPES),
    (re.compile(r"(^|_)position(_ids?|s)?$"), POSITIONS),
    (re.compile(r"(^|_)(ids|tokens?)$|_ids?$"), IDS),
)


@dataclass(frozen=True)
class InputPlan:
    """How one input is generated: shown in the report, one per input."""

    name: str
    dtype: str
    role: str
    low: int | None = None  # integers: drawn from [low, high)
    high: int | None = None
    bound: str = ""  # where ``high`` came from, e.g. "the 2-row table it indexes (graph)"
    padding: str = ""  # masks: how rows are padded

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "role": self.role}
        if self.high is not None:
            data["range"] = [self.low, self.high]
            data["bound"] = self.bound
        if self.padding:
            data["padding"] = self.padding
        return data


def plan_for(spec: TensorSpec) -> InputPlan:
    """The role and range of one input, from what the backend found and, failing that, its name."""
    kind = _kind(spec.dtype)
    role = spec.role or _role_from_name(spec.name)
    if kind == "string":
        return InputPlan(spec.name, spec.dtype, CATEGORIES)
    if role == MASK:
        return InputPlan(spec.name, spec.dtype, MASK, padding=PADDING)
    if kind == "bool":
        return InputPlan(spec.name, spec.dtype, VALUES)
    if kind != "int":
        return InputPlan(spec.name, spec.dtype, VALUES)
    role = role if role in (POSITIONS, TOKEN_TYPES, IDS) else VALUES
    high, bound = spec.high, spec.bound or "the smallest table in the model"
    if high is None:
        high, bound = (2, "a two-segment split (from its name)") if role == TOKEN_TYPES else (DEFAULT_HIGH, "default")
    return InputPlan(spec.name, spec.dtype, role, spec.low, max(high, spec.low + 1), bound)


PADDING = "right padding on half the rows (random length, first position kept)"


def _role_from_name(name: str) -> str:
    lowered = name.lower()
    return next((role for pattern, role in _NAME_ROLES if pattern.search(lowered)), "")


def _kind(dtype: str) -> str:
    if dtype == "string":
        return "string"
    if dtype == "bfloat16":
        return "float"
    return {"i": "int", "u": "int", "b": "bool"}.get(np.dtype(dtype).kind, "float")


def generate(plan: InputPlan, spec: TensorSpec, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Values for one input of ``shape``, as ``plan`` says."""
    dtype = "float32" if plan.dtype == "bfloat16" else plan.dtype  # numpy has no bfloat16: the backend casts
    if plan.role == CATEGORIES:
        strings = rng.choice(np.array(spec.categories, dtype=object), size=shape)
        return _with_missing(strings, MISSING_STRING, spec, rng)
    if plan.role == MASK:
        return padded_mask(shape, rng).astype(dtype)
    if plan.dtype == "bool":
        return rng.random(shape) < 0.5
    if plan.high is None:
        values = rng.standard_normal(shape)
        return _with_missing(np.abs(values) if spec.nonnegative else values, np.nan, spec, rng).astype(dtype)
    assert plan.low is not None
    if plan.role == POSITIONS and len(shape) >= 1:
        return np.broadcast_to(plan.low + np.arange(shape[-1]) % (plan.high - plan.low), shape).astype(dtype)
    if plan.role == TOKEN_TYPES and len(shape) >= 1:
        return (_segments(shape, rng) * min(1, plan.high - plan.low - 1) + plan.low).astype(dtype)
    return rng.integers(plan.low, plan.high, size=shape).astype(dtype)


def padded_mask(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """1 where a position is real, 0 where it is padding: half the rows (axis 0) padded on the
    right of the last axis by a random amount, the first position of every row kept."""
    mask = np.ones(shape, dtype=np.int64)
    if len(shape) < 2 or shape[-1] < 2:  # no rows of positions to pad
        return mask
    batch, length = shape[0], shape[-1]
    padded = rng.permutation(batch)[: batch // 2]
    for row in sorted(padded.tolist()):
        mask[row, ..., int(rng.integers(1, length)) :] = 0
    return mask


def _segments(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """0 on a first part of each row (axis 0) and 1 after it, split at a random point of the last axis."""
    length = shape[-1]
    if len(shape) < 2 or length < 2:
        return np.zeros(shape, dtype=np.int64)
    splits = rng.integers(1, length, size=shape[0]).reshape((shape[0],) + (1,) * (len(shape) - 1))
    return np.broadcast_to(np.arange(length) >= splits, shape).astype(np.int64)


def padded_like_the_mask(
    inputs: dict[str, np.ndarray], specs: list[TensorSpec], plans: dict[str, InputPlan]
) -> dict[str, np.ndarray]:
    """``inputs`` with the positions the first 2-D mask pads holding what a tokenizer writes there:
    the pad id (``TensorSpec.pad``) in token ids and 0 in token types. ``plans``: each input's, by name."""
    masks = [s.name for s in specs if plans[s.name].role == MASK and inputs[s.name].ndim == 2]
    if not masks:
        return inputs
    padding = inputs[masks[0]] == 0
    for spec in specs:
        array, role = inputs[spec.name], plans[spec.name].role
        if array.shape != padding.shape or role not in (IDS, TOKEN_TYPES):
            continue
        fill = spec.pad if role == IDS and spec.pad is not None else 0
        if role == TOKEN_TYPES or spec.pad is not None:
            inputs[spec.name] = np.where(padding, fill, array).astype(array.dtype)
    return inputs


def _with_missing(values: np.ndarray, missing: Any, spec: TensorSpec, rng: np.random.Generator) -> np.ndarray:
    """``values`` with a share of them missing when the model takes missing values there (TensorSpec.missing)."""
    if spec.missing:
        values[rng.random(values.shape) < MISSING_SHARE] = missing
    return values
