"""Padded positions: the places of a token-level output that no caller reads.

A tokenizer pads a short row on the right and says so in ``attention_mask`` (1 = a real token,
0 = padding: the Hugging Face convention). What a model computes at a padded query position is
discarded by every consumer (pooling and token heads read the mask), and implementations need not
agree there: ModernBERT's exported file matches PyTorch to 4.8e-7 at real positions and differs by
3.1e-3 at padded ones. Those elements are left out of the comparison, counted and reported.
Real positions still see the padding through attention, so a file that ignores the mask fails.

Only an input named ``attention_mask`` counts: PyTorch's ``key_padding_mask`` means the opposite
(True = padding), so a mask's meaning is never guessed from other names.
"""

from __future__ import annotations

import numpy as np

MASK_INPUT = "attention_mask"


def padded_positions(inputs: dict[str, np.ndarray]) -> np.ndarray | None:
    """``(batch, sequence)`` booleans, True where ``attention_mask`` is 0; None when nothing is padded
    or the input is not a 0/1 mask with a real token in every row."""
    mask = inputs.get(MASK_INPUT)
    if mask is None or mask.ndim != 2 or mask.dtype.kind not in "biuf" or not mask.size:
        return None
    if not np.isin(mask, (0, 1)).all() or not (mask == 1).any(axis=1).all():
        return None
    padded = mask == 0
    return padded if padded.any() else None


def without_padded(
    reference: dict[str, np.ndarray], actual: dict[str, np.ndarray], padded: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, tuple[int, float]]]:
    """Both sides with padded positions set to 0 in each float output laid out ``(batch, sequence, ...)``,
    and for each such output the number of elements left out and the largest |difference| there."""
    reference, actual = dict(reference), dict(actual)
    left_out: dict[str, tuple[int, float]] = {}
    for name, ref in reference.items():
        out = actual.get(name)
        if out is None or ref.shape != out.shape or ref.ndim < 2 or ref.shape[:2] != padded.shape:
            continue
        if ref.dtype.kind != "f" or out.dtype.kind != "f":
            continue
        at_padding = np.abs(ref[padded].astype(np.float64) - out[padded].astype(np.float64))
        top = np.finfo(np.float64).max  # a NaN or Inf on one side: the largest number JSON can hold
        largest = float(np.nan_to_num(at_padding, nan=top, posinf=top).max()) if at_padding.size else 0.0
        left_out[name] = (int(at_padding.size), largest)
        reference[name], actual[name] = _zeroed(ref, padded), _zeroed(out, padded)
    return reference, actual, left_out


def _zeroed(values: np.ndarray, padded: np.ndarray) -> np.ndarray:
    copy = values.copy()
    copy[padded] = 0
    return copy
