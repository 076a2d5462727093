"""What the TensorFlow formats share: quiet imports and runs, and the TensorSpec of a TF signature.

No TensorFlow import here: the format modules get TensorFlow's modules through an ``Importer``
(the backend's, which filters TensorFlow's start-up noise and names what to install).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

Importer = Callable[[str], ModuleType]
DEFAULT_SIGNATURE = "serving_default"
# Loggers that print through Python's last-resort handler when nothing is configured.
QUIET_LOGGERS = {"tensorflow": logging.ERROR, "absl": logging.ERROR, "tf2onnx": logging.CRITICAL}


@contextmanager
def quiet() -> Iterator[None]:
    """Keep Python-side warnings and log records of TF, Keras and tf2onnx out of the user's log."""
    saved = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def notices_hidden() -> bool:
    """TensorFlow's native notices are filtered unless the user asked for them (TF_CPP_MIN_LOG_LEVEL 0 or 1)."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") in {"2", "3"}


def signature_of(tf: ModuleType, specs: list[Any]) -> list[Any]:
    """tf.TensorSpecs for our TensorSpecs: a named (dynamic) dimension is None."""
    return [
        tf.TensorSpec([d if isinstance(d, int) else None for d in s.shape or ()], tf.as_dtype(s.dtype), name=s.name)
        for s in specs
    ]
