"""Generated token inputs that look like a tokenizer's: some rows right-padded, the mask saying where.

A model fed random ids with a mask of ones never sees padding, and a conversion that ignores
the mask (or pads on the wrong side) would still validate. Here the first row is full and the
others end after a random length; padded positions hold the pad id and token type 0. The input's
``role`` (``TensorSpec.role``) says which tensor is which; the role names are those of issue 15's
generation by role (converter/input_roles.py on its branch), which takes this module's place when it lands.
"""

from __future__ import annotations

import numpy as np

from converter.frameworks.base import TensorSpec


def pad_rows(inputs: dict[str, np.ndarray], specs: list[TensorSpec], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``inputs`` with each attention mask made 0/1 right-padded, and the other token inputs padded to match."""
    masks = [s for s in specs if s.role == "mask" and inputs[s.name].ndim == 2]
    if not masks:
        return inputs
    rows, length = inputs[masks[0].name].shape
    kept = right_padded(rows, length, rng)
    for spec in specs:
        array = inputs[spec.name]
        if spec.role == "mask" and array.shape == kept.shape:
            inputs[spec.name] = kept.astype(array.dtype)
        elif spec.role in ("ids", "token_types") and array.shape == kept.shape:
            fill = spec.pad if spec.role == "ids" and spec.pad is not None else 0
            inputs[spec.name] = np.where(kept == 1, array, fill).astype(array.dtype)
    return inputs


def right_padded(rows: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """A 0/1 mask: row 0 full, every other row keeps 1 to ``length`` leading positions."""
    kept = rng.integers(1, length + 1, size=rows)
    kept[0] = length
    return (np.arange(length)[None, :] < kept[:, None]).astype(np.int64)
