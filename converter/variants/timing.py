"""Latency of a variant as a ratio to the fp32 file, measured side by side in one process.

The two sessions alternate (A B B A ...), so that a slow moment of a shared machine hits both
sides alike; each side's median is taken. One warm-up run each first: the first run of a
session allocates its buffers.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

MIN_PAIRS = 4  # two A B B A cycles
MAX_PAIRS = 200
BUDGET_S = 1.0  # per variant, both sides together: a 1 ms model gets 200 pairs, a 1 s one 4


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
