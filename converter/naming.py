"""The one rule for names made from a model's path: output file stems and manifest entry names.

ASCII letters, digits, ``.``, ``_`` and ``-`` are kept; any other character becomes ``_`` (a name
comes from the repository, so from pull requests: no path separators, spaces, newlines or
markup), and ``.``, ``_``, ``-`` are stripped from both ends. A name that would be empty is ``model``.
"""

from __future__ import annotations

import re
from pathlib import Path

_OTHER = re.compile(r"[^A-Za-z0-9._-]")


def file_stem(path: Path) -> str:
    """``models/iris.skops`` -> ``iris``; a directory (a SavedModel) by its own name."""
    stem = path.name if path.is_dir() else path.stem
    return _OTHER.sub("_", stem).strip("._-") or "model"
