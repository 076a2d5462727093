"""Keep TensorFlow's C++ start-up notices out of the user's log, and nothing else.

TensorFlow 2.21 logs through absl before ``absl::InitializeLog()`` runs, and those lines ignore
``TF_CPP_MIN_LOG_LEVEL``: importing it prints "All log messages before absl::InitializeLog() ..."
and "oneDNN custom operations are on ..." twice (once per native library that carries absl),
written by C++ to file descriptor 2 where Python cannot filter them. So file descriptor 2 goes
to a temporary file while TensorFlow loads, and every line that is not a known notice is written
back to stderr afterwards: a real error still reaches the user. oneDNN stays on (turning it off
to hide its notice would change the numbers).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# Informational lines of TensorFlow's and TFLite's native start-up on a CPU-only machine.
START_UP_NOTICES = re.compile(
    "|".join(
        (
            r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
            r"oneDNN custom operations are on\.",
            r"This TensorFlow binary is optimized to use available CPU instructions",
            r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$",
            r"Unable to register cu(DNN|FFT|BLAS) factory",
            r"Could not find cuda drivers on your machine",
            r"TF-TRT Warning: Could not find TensorRT",
            r"failed call to cuInit",
            r"computation placer already registered",
            r"Created TensorFlow Lite XNNPACK delegate for CPU\.",
        )
    )
)


@contextmanager
def native_notices_filtered(enabled: bool = True) -> Iterator[None]:
    """Capture file descriptor 2 for the block; write back the lines that are not start-up notices.

    ``enabled`` False (the user set ``TF_CPP_MIN_LOG_LEVEL`` to see the logs) leaves stderr alone.
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines() if not _is_notice(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def _is_notice(line: str) -> bool:
    return not line.strip() or START_UP_NOTICES.search(line.strip()) is not None
