"""Latency of a variant as a ratio to the fp32 file, measured side by side in one process.

The two sessions alternate (A B B A ...), so that a slow moment of a shared machine hits both
sides alike; each side's median is taken. Two warm-up runs each first: the first runs of a
session allocate its buffers (a fresh session's first timed pairs ran up to 25% slow here).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WARM_UP = 2
MIN_PAIRS = 4  # two A B B A cycles
MAX_PAIRS = 200
BUDGET_S = 1.0  # per variant, both sides together: a 1 ms model gets 200 pairs, a 1 s one 4


Runnable = Callable[[dict[str, np.ndarray]], object]


def timing_session(path: Path) -> Runnable:
    """An onnxruntime CPU session for timing: ``run(inputs)``. Its threads do not spin: two
    sessions timed in turn with spinning on starve each other (the idle one's threads keep
    spinning after its run; the fp32 file ran 10x slower next to an int8-static file on 2
    cores here; onnxruntime#17011, #10273). The memory pattern is off, as in validation."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.enable_mem_pattern = False
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return lambda inputs: session.run(None, {name: inputs[name] for name in names})


@dataclass(frozen=True)
class SideBySide:
    variant_ms: float
    fp32_ms: float
    pairs: int

    @property
    def ratio(self) -> float:
        return self.variant_ms / self.fp32_ms if self.fp32_ms > 0 else float("inf")


def side_by_side(variant: Callable[[], object], fp32: Callable[[], object]) -> SideBySide:
    """Median milliseconds of each, alternating, until MAX_PAIRS or the budget (at least MIN_PAIRS)."""
    for _ in range(WARM_UP):
        variant()
        fp32()
    times: dict[str, list[float]] = {"variant": [], "fp32": []}
    spent = 0.0
    pairs = 0
    while pairs < MAX_PAIRS and (pairs < MIN_PAIRS or spent < BUDGET_S):
        order = (("variant", variant), ("fp32", fp32)) if pairs % 2 == 0 else (("fp32", fp32), ("variant", variant))
        for side, run in order:
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
            times[side].append(elapsed)
            spent += elapsed
        pairs += 1
    return SideBySide(
        variant_ms=statistics.median(times["variant"]) * 1000,
        fp32_ms=statistics.median(times["fp32"]) * 1000,
        pairs=pairs,
    )
