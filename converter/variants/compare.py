"""A variant against the ORIGINAL model's outputs (the pipeline's runs), under its own tolerance.

Each output is judged by what it is:

- labels (the backend's label outputs: classifier labels, cluster ids): the share of rows
  whose label agrees must reach ``label_agreement``;
- class scores (a float output of shape batch x classes, classes >= 2): the argmax over the
  class axis must agree on ``label_agreement`` of the rows, and the probabilities must be
  within ``atol + rtol * p``. Rows that are already probabilities (non-negative, summing to 1)
  are compared as they are; anything else is taken for logits and goes through a softmax, so
  that the error is the probability error a user of the classifier sees. A model whose
  batch x N output is not class scores (a multi-target regressor, an embedding) sets
  ``label-agreement=0``: its outputs are then values;
- values (everything else: regressors, embeddings, images): every element within
  ``atol + rtol * |original|``, the relative error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from converter.errors import ConversionError, shorten
from converter.validate import OnnxRunner, OutputComparison, compare
from converter.variants.options import Tolerance
from converter.variants.result import OutputCheck

Run = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]  # inputs, the original's outputs
_PROBABILITY_SUM_TOLERANCE = 1e-3  # float32 softmax rows sum to 1 within ~1e-6; 1e-3 for float16 heads


@dataclass
class VariantCheck:
    """Every output of a variant at every batch size, and the verdict."""

    outputs: list[OutputCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # e.g. onnxruntime refused a batch size

    @property
    def passed(self) -> bool:
        return not self.problems and all(o.passed for o in self.outputs)

    def failures(self) -> list[str]:
        """What failed, one line each; empty when it passed."""
        return self.problems + [
            f"output {o.name} at batch {o.batch_size}: {o.problem}" for o in self.outputs if not o.passed
        ]

    def worst(self, stat: str, kinds: tuple[str, ...]) -> float | None:
        values = [getattr(o, stat) for o in self.outputs if o.kind in kinds and getattr(o, stat) is not None]
        return max(values) if values else None

    def lowest_agreement(self) -> float | None:
        values = [o.label_agreement for o in self.outputs if o.label_agreement is not None]
        return min(values) if values else None


def check_variant(
    runner: OnnxRunner, runs: list[Run], tolerance: Tolerance, label_outputs: frozenset[str]
) -> VariantCheck:
    """Run the variant on each run's inputs and judge every output against the original's."""
    check = VariantCheck()
    for inputs, reference in runs:
        batch = int(next(iter(inputs.values())).shape[0]) if inputs else 0
        try:
            actual = runner.run(inputs)
        except ConversionError as exc:
            check.problems.append(f"batch {batch}: {exc.one_line()}")
            continue
        except Exception as exc:  # onnxruntime's own errors have no common base class
            check.problems.append(f"batch {batch}: onnxruntime failed: {shorten(exc, 200)}")
            continue
        raw = compare(reference, actual, tolerance.rtol, tolerance.atol, label_outputs)
        for result in raw:
            check.outputs.append(_judge(result, reference.get(result.name), actual.get(result.name), tolerance, batch))
    return check


def _judge(
    raw: OutputComparison, ref: np.ndarray | None, out: np.ndarray | None, tolerance: Tolerance, batch: int
) -> OutputCheck:
    check = OutputCheck(
        name=raw.name,
        batch_size=batch,
        kind="values",
        passed=raw.passed,
        max_abs_diff=raw.max_abs_diff,
        max_rel_diff=raw.max_rel_diff,
        failing=raw.failing,
        elements=raw.elements,
        problem=raw.problem,
    )
    if raw.problem or ref is None or out is None:
        return check
    if raw.label_agreement is not None:
        return _judge_labels(check, raw.label_agreement, tolerance)
    if tolerance.label_agreement > 0 and is_class_scores(ref):
        return _judge_classes(check, ref, out.reshape(ref.shape), tolerance)
    if not check.passed:
        check.problem = (
            f"{raw.failing:,} of {raw.elements:,} elements differ by more than atol {tolerance.atol:g} "
            f"+ rtol {tolerance.rtol:g}·|original| (max abs diff {_text(raw.max_abs_diff)}, max rel diff {_text(raw.max_rel_diff)})"
        )
    return check


def is_class_scores(ref: np.ndarray) -> bool:
    """A float output of shape batch x classes, with at least two classes."""
    return ref.dtype.kind == "f" and ref.ndim == 2 and ref.shape[1] >= 2


def _judge_labels(check: OutputCheck, agreement: float, tolerance: Tolerance) -> OutputCheck:
    check.kind = "labels"
    check.label_agreement = agreement
    check.passed = agreement >= tolerance.label_agreement
    check.problem = "" if check.passed else f"{agreement:.1%} of labels agree, below {tolerance.label_agreement:.0%}"
    return check


def _judge_classes(check: OutputCheck, ref: np.ndarray, out: np.ndarray, tolerance: Tolerance) -> OutputCheck:
    check.kind = "classes"
    as_given = _are_probabilities(ref)
    p_ref = ref.astype(np.float64) if as_given else _softmax(ref)
    p_out = out.astype(np.float64) if as_given else _softmax(out)
    diff = np.abs(p_out - p_ref)
    diff = np.where(np.isnan(diff), np.inf, diff)  # NaN in the variant is a failure
    check.failing = int(np.count_nonzero(diff > tolerance.atol + tolerance.rtol * p_ref))
    check.probability_error = float(np.nan_to_num(diff.max(), posinf=np.finfo(np.float64).max)) if diff.size else 0.0
    agreement = float(np.mean(ref.argmax(axis=1) == out.argmax(axis=1))) if len(ref) else 1.0
    check.label_agreement = agreement
    problems = []
    if agreement < tolerance.label_agreement:
        problems.append(f"{agreement:.1%} of argmax labels agree, below {tolerance.label_agreement:.0%}")
    if check.failing:
        what = "probabilities" if as_given else "softmax probabilities (of logits)"
        problems.append(
            f"{check.failing:,} of {check.elements:,} {what} differ by more than atol {tolerance.atol:g} "
            f"+ rtol {tolerance.rtol:g}·p (max {_text(check.probability_error)})"
        )
    check.passed = not problems
    check.problem = "; ".join(problems)
    return check


def _are_probabilities(ref: np.ndarray) -> bool:
    values = ref.astype(np.float64)
    return bool(
        np.all(np.isfinite(values))
        and np.all(values >= 0)
        and np.all(np.abs(values.sum(axis=1) - 1) <= _PROBABILITY_SUM_TOLERANCE)
    )


def _softmax(logits: np.ndarray) -> np.ndarray:
    values = logits.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = np.exp(values - values.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)


def _text(value: float) -> str:
    # The JSON holds an unbounded difference (NaN or inf on one side) as the largest float.
    return "inf" if value >= np.finfo(np.float64).max else f"{value:.3g}"
