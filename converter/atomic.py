"""A file written whole or not at all, and never through a link: a new temporary file, renamed into place.

The DESIGN rule (a failed run leaves no half-written file), with what an output folder in the
repository adds: a name there may already be a symbolic link, committed by a pull request. The
temporary file is created (``mkstemp``: ``O_CREAT | O_EXCL``, which never follows a link) with a
random name, and the rename replaces whatever was at the final name, a link included, without
following it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_file(path: Path, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path``, replacing what was there; ``path``."""
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return path
