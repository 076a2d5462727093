"""The numbers: this run's validation next to the baseline's, and both files on the same inputs.

Drift is how far this file's outputs are from the baseline file's on the validation inputs of this
run (both batch sizes): what a client sees change between releases. It is reported; it fails the
run only beyond ``--max-drift`` (absolute difference; a label output must then agree exactly).
"""

from __future__ import annotations

import numpy as np

from converter.baseline.interface import pair_tensors
from converter.baseline.result import Drift, OutputDrift, OutputNumbers
from converter.baseline.source import STATS, Baseline, Interface
from converter.validate import OnnxRunner, OutputComparison, Validation, compare

Run = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


def compare_validations(baseline: Baseline, validation: Validation) -> list[OutputNumbers]:
    """Per output in both: the worst statistics of the baseline's validation and of this one."""
    current: dict[str, dict[str, float]] = {}
    for batch in validation.batches:
        for out in batch.outputs:
            stats = current.setdefault(out.name, {})
            if out.label_agreement is not None:
                stats["label_agreement"] = min(stats.get("label_agreement", 1.0), out.label_agreement)
            else:
                for key in STATS:
                    stats[key] = max(stats.get(key, 0.0), float(getattr(out, key)))
    return [
        OutputNumbers(name, baseline.validation[name], stats)
        for name, stats in current.items()
        if name in baseline.validation
    ]


def measure_drift(
    baseline_runner: OnnxRunner,
    current_runner: OnnxRunner,
    runs: list[Run],
    interfaces: tuple[Interface, Interface],
    max_drift: float | None,
) -> Drift:
    """Both files on each run's inputs (a renamed input fed by position); outputs paired the same way."""
    old, new = interfaces
    inputs = {c.name: b.name for b, c in pair_tensors(old.inputs, new.inputs)}  # this file's name -> baseline's
    outputs = {b.name: c.name for b, c in pair_tensors(old.outputs, new.outputs)}
    drift = Drift()
    worst: dict[str, OutputDrift] = {}
    for feed, _ in runs:
        batch = int(next(iter(feed.values())).shape[0]) if feed else 0
        missing = [name for name in feed if name not in inputs]
        if missing:
            drift.skipped.append(f"the baseline file has no input for {', '.join(missing)}")
            break
        try:
            theirs = baseline_runner.run({inputs[name]: array for name, array in feed.items()})
        except Exception as exc:  # onnxruntime refuses the batch size or a dtype: the interface says why
            drift.skipped.append(f"batch {batch}: the baseline file does not run on these inputs ({_short(exc)})")
            continue
        ours = current_runner.run(feed)
        reference = {outputs[name]: theirs[name] for name in theirs if name in outputs}
        # integer, bool and string outputs are labels (classes, cluster ids): equal or not
        labels = frozenset(n for n, a in reference.items() if a.dtype.kind in "OUSbiu")
        for result in compare(reference, ours, 0.0, max_drift or 0.0, labels):
            if result.name in reference and result.name in ours:
                _keep_worst(worst, result, max_drift is not None)
        drift.batch_sizes.append(batch)
    drift.outputs = list(worst.values())
    return drift


def _keep_worst(worst: dict[str, OutputDrift], result: OutputComparison, gated: bool) -> None:
    if result.problem:  # another shape: the interface diff reports it
        return
    seen = worst.setdefault(result.name, OutputDrift(result.name))
    seen.elements = max(seen.elements, result.elements)
    for key in STATS:
        setattr(seen, key, max(getattr(seen, key), getattr(result, key)))
    if result.label_agreement is not None:
        seen.label_agreement = min(
            1.0 if seen.label_agreement is None else seen.label_agreement, result.label_agreement
        )
    if gated:
        seen.over_limit += result.failing


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."
