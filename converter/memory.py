"""How much memory the validation inputs may take, decided before any of them is allocated.

The inputs are only the start: the original framework and onnxruntime each run on them, and
their outputs are compared in float64. Measured with /usr/bin/time on the iris
LogisticRegression, the peak RSS grows by 11 bytes per byte of inputs (4 and 8 million rows:
1.38 and 2.44 GB). A fixed cap keeps the answer the same on every machine that has the memory;
a share of the memory available keeps a small runner out of the OOM killer.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAX_INPUT_BYTES = 256 * 1024**2  # 16 rows of 512x512x3 float32 take 48 MiB
AVAILABLE_SHARE = 16  # at most a sixteenth of the memory available
MEMINFO = Path("/proc/meminfo")
# cgroup v2, then v1: a container's limit and what it already uses.
CGROUP_FILES = (
    (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")),
    (Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"), Path("/sys/fs/cgroup/memory/memory.usage_in_bytes")),
)


@dataclass(frozen=True)
class Budget:
    """The most bytes the inputs may take, and why that much."""

    limit: int
    reason: str


def input_budget(available: int | None = None) -> Budget:
    """The lesser of ``MAX_INPUT_BYTES`` and a share of ``available`` (default: this machine's)."""
    available = available_bytes() if available is None else available
    share = available // AVAILABLE_SHARE if available is not None else None
    if share is None or share >= MAX_INPUT_BYTES:
        return Budget(MAX_INPUT_BYTES, f"at most {format_bytes(MAX_INPUT_BYTES)}")
    assert available is not None
    return Budget(share, f"at most a sixteenth of the {format_bytes(available)} of memory available")


def available_bytes() -> int | None:
    """Memory available to this process: MemAvailable, or less under a cgroup limit; None if unknown."""
    found = [value for value in (_meminfo_available(), _cgroup_room()) if value is not None]
    return min(found) if found else None


def format_bytes(count: int) -> str:
    """1536 -> "1.5 KiB", 2**28 -> "256 MiB"; binary units, as the limits are."""
    size = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            if unit == "bytes":
                return f"{count:,} bytes"
            return f"{size:.3g} {unit}" if size < 1000 else f"{size:,.0f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _meminfo_available() -> int | None:
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    for limit_file, usage_file in CGROUP_FILES:
        try:
            limit_text, usage = limit_file.read_text().strip(), int(usage_file.read_text())
        except (OSError, ValueError):
            continue
        if limit_text.isascii() and limit_text.isdigit() and int(limit_text) < 2**60:  # "max" or 2**63: no limit
            return max(0, int(limit_text) - usage)
    return None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return None


def return_freed_memory() -> None:
    """Give the memory the process has freed back to the system (glibc ``malloc_trim``).

    glibc keeps freed memory in its arenas, one per thread that allocated it, and TensorFlow's
    threads leave much there: after a ConvNeXtLarge reference run 600 MB of RSS is freed memory
    that the next phase (tf2onnx, onnxruntime's session, on other threads) cannot reuse.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
