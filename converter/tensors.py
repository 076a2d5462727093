"""How shapes and dtypes are written in every message and report: ``16x4``, ``batchx4``, ``float32``, ``string``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def shape_text(shape: Sequence[int | str | None] | None) -> str:
    """``16x4``; a named dimension by its name (``batchx4``), an unknown one as ``?``; ``scalar`` for
    a 0-d shape and ``?`` when even the rank is unknown."""
    if shape is None:
        return "?"
    if len(shape) == 0:
        return "scalar"
    return "x".join("?" if d is None else str(d) for d in shape)


def dtype_name(dtype: Any) -> str:
    """The numpy name (``float32``, ``int64``) of a numpy or TensorFlow dtype; ``string`` for text and objects."""
    numpy_dtype = np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
    return "string" if numpy_dtype.kind in "OSU" else numpy_dtype.name
