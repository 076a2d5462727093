"""Both files timed side by side, in this process, on the same inputs: a ratio, not an absolute time.

An absolute time on a shared runner means little, and the baseline's recorded latency came from
another machine. Here the two sessions run in alternating pairs (the order flips every pair, so
neither always runs on a warm cache), and the ratio is the median of the pairs' ratios: a load
that comes and goes slows both runs of a pair alike. The 25th and 75th percentiles of the pairs'
ratios are kept as the measured noise.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from converter.baseline.result import LatencyComparison

MIN_PAIRS = 15
MAX_PAIRS = 201
BUDGET_S = 2.0  # per comparison, both files; a slow model stops at MIN_PAIRS
WARMUP = 2  # runs of each before timing: first runs allocate


def time_side_by_side(
    baseline: Callable[[], object], current: Callable[[], object], batch_size: int
) -> LatencyComparison:
    for _ in range(WARMUP):
        baseline()
        current()
    ours: list[float] = []
    theirs: list[float] = []
    spent = 0.0
    while len(ours) < MAX_PAIRS and (len(ours) < MIN_PAIRS or spent < BUDGET_S):
        first, second = (current, baseline) if len(ours) % 2 == 0 else (baseline, current)
        a = _seconds(first)
        b = _seconds(second)
        mine, other = (a, b) if first is current else (b, a)
        ours.append(mine)
        theirs.append(other)
        spent += a + b
    ratios = [o / t if t > 0 else 1.0 for o, t in zip(ours, theirs, strict=True)]
    low, high = np.percentile(ratios, [25, 75])
    return LatencyComparison(
        batch_size=batch_size,
        runs=len(ours),
        baseline_ms=round(statistics.median(theirs) * 1000, 4),
        onnx_ms=round(statistics.median(ours) * 1000, 4),
        ratio=round(statistics.median(ratios), 4),
        ratio_low=round(float(low), 4),
        ratio_high=round(float(high), 4),
    )


def _seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start
