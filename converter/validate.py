"""Run the ONNX file in onnxruntime and compare it with the original framework.

An element fails when ``|onnx - ref| > atol + rtol * |ref|``. Outputs are paired by name,
never by position. Label outputs (classifier labels, cluster ids) must agree exactly.
A file that does not take the model's inputs (a batch axis fixed, a rank changed) fails its
validation; a file that takes them but that onnxruntime cannot run is an ``OnnxRuntimeFailure``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from converter.errors import ConversionError, shorten
from converter.inputs import BATCH
from converter.padding import padded_positions, without_padded
from converter.tensors import shape_text

if TYPE_CHECKING:
    from converter.frameworks.base import TensorSpec
    from converter.onnx_file import OnnxFacts

Reference = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]  # inputs, the original model's outputs


NON_FINITE_NAMES = {"nan": "NaN", "+inf": "+Inf", "-inf": "-Inf"}
DERIVED_FIELDS = ("batch_sizes", "outputs", "passing_atol", "passing_rtol")  # in the JSON, computed from the batches


@dataclass
class OutputComparison:
    """Statistics of one output at one batch size."""

    name: str
    passed: bool
    shape: list[int] = field(default_factory=list)  # the reference's shape
    onnx_shape: list[int] = field(default_factory=list)
    dtype: str = ""
    elements: int = 0
    failing: int = 0
    max_abs_diff: float = 0.0
    mean_abs_diff: float = 0.0
    p99_abs_diff: float = 0.0
    max_rel_diff: float = 0.0
    mean_rel_diff: float = 0.0
    p99_rel_diff: float = 0.0
    label_agreement: float | None = None  # fraction of equal labels, for label outputs
    problem: str = ""  # why it failed when no statistic says it (missing output, shape)
    # Elements that are NaN, +Inf or -Inf, per side: {"original": {"nan": 0, "+inf": 0, "-inf": 0}, "onnx": {...}}.
    # Equal infinities and NaN on both sides count as equal, so they pass unless this is read.
    non_finite: dict[str, dict[str, int]] = field(default_factory=dict)
    # Where the output is furthest over (or nearest to) its tolerance: the element with the largest
    # |diff| / allowed, its |diff|, allowed (atol + rtol·|original|) and index. max_ratio is None
    # when that ratio is unbounded (a difference where the tolerance is 0, or a NaN on one side).
    max_ratio: float | None = 0.0
    worst_diff: float = 0.0
    worst_allowed: float = 0.0
    worst_index: list[int] = field(default_factory=list)
    # The smallest atol that passes at the given rtol, and the smallest rtol at the given atol;
    # None when no value does (a NaN on one side; for rtol, a difference where the original is 0).
    min_atol: float | None = 0.0
    min_rtol: float | None = 0.0
    # Elements per decade of |diff|: "0" (equal), "1e-07" for [1e-7, 1e-6) ..., "inf" (unbounded).
    diff_decades: dict[str, int] = field(default_factory=dict)
    # How much the original output varies across the validation batch (axis 0): the largest range of
    # any element, and whether a file that returned the first row for every row would pass too.
    spread: float | None = None
    insensitive: bool = False
    # Elements at positions attention_mask pads, left out of every statistic above (converter/padding.py),
    # and the largest |diff| among them (for the record: no caller reads them).
    padded: int = 0
    padded_max_diff: float = 0.0

    def non_finite_text(self) -> str:
        """e.g. "original 2 NaN, 1 -Inf; ONNX 2 NaN, 1 -Inf"; empty when every element is finite."""
        sides = []
        for side, label in (("original", "original"), ("onnx", "ONNX")):
            counts = self.non_finite.get(side, {})
            found = [f"{counts[kind]:,} {name}" for kind, name in NON_FINITE_NAMES.items() if counts.get(kind)]
            if found:
                sides.append(f"{label} {', '.join(found)}")
        return "; ".join(sides)


@dataclass
class BatchCheck:
    """One validation run: every output compared at one batch size."""

    batch_size: int
    passed: bool
    outputs: list[OutputComparison] = field(default_factory=list)
    problem: str = ""  # e.g. onnxruntime refused this batch size


@dataclass
class OutputVerdict:
    """One output over every batch size it was compared at: what the summary shows first.

    Counts add up over the batch sizes; the worst element is the one of the batch size where the
    output is furthest over its tolerance (``batch_size``).
    """

    name: str
    passed: bool
    batch_size: int
    max_abs_diff: float
    max_ratio: float | None
    worst_diff: float
    worst_allowed: float
    failing: int
    elements: int
    min_atol: float | None
    min_rtol: float | None
    diff_decades: dict[str, int]
    label_agreement: float | None
    problem: str
    spread: float | None
    insensitive: bool

    @property
    def tolerance_applies(self) -> bool:
        """A numeric output compared element by element (not labels, not a missing or misshapen one)."""
        return self.label_agreement is None and not self.problem

    @classmethod
    def of(cls, comparisons: list[tuple[int, OutputComparison]]) -> OutputVerdict:
        """Merge one output's comparisons, given as (batch size, comparison), in batch order."""
        batch, worst = max(comparisons, key=lambda pair: _ratio_key(pair[1].max_ratio))
        found = [c for _, c in comparisons]
        spreads = [c.spread for c in found if c.spread is not None]
        decades: dict[str, int] = {}
        for comparison in found:
            for label, count in comparison.diff_decades.items():
                decades[label] = decades.get(label, 0) + count
        return cls(
            name=worst.name,
            passed=all(c.passed for c in found),
            batch_size=batch,
            max_abs_diff=max(c.max_abs_diff for c in found),
            max_ratio=worst.max_ratio,
            worst_diff=worst.worst_diff,
            worst_allowed=worst.worst_allowed,
            failing=sum(c.failing for c in found),
            elements=sum(c.elements for c in found),
            min_atol=_largest([c.min_atol for c in found]),
            min_rtol=_largest([c.min_rtol for c in found]),
            diff_decades=dict(sorted(decades.items(), key=lambda item: _decade_order(item[0]))),
            label_agreement=min((c.label_agreement for c in found if c.label_agreement is not None), default=None),
            problem=next((c.problem for c in found if c.problem), ""),
            spread=max(spreads) if spreads else None,
            insensitive=all(c.insensitive for c in found),
        )


def _ratio_key(ratio: float | None) -> float:
    return float("inf") if ratio is None else ratio


def _largest(values: list[float | None]) -> float | None:
    """The largest value, or None when one is None (no value of it passes)."""
    return None if any(v is None for v in values) else max((v for v in values if v is not None), default=0.0)


def _decade_order(label: str) -> float:
    """ "0" first, "inf" last, the decades ("1e-07") by value between."""
    return -1.0 if label == "0" else float(label)


@dataclass
class Validation:
    rtol: float
    atol: float
    batch_size: int  # of the first run (JSON: ``samples``, the name schema 1 gave it)
    input_source: str  # "generated (seed 0)" or the sample-data file
    passed: bool
    batches: list[BatchCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # file-level failures, e.g. a fixed batch axis

    @property
    def batch_sizes(self) -> list[int]:
        return [b.batch_size for b in self.batches]

    def failing_outputs(self) -> list[str]:
        names = []
        for batch in self.batches:
            names += [o.name for o in batch.outputs if not o.passed and o.name not in names]
        return names

    def failures(self) -> list[str]:
        """Every problem found, one line each, file-level problems first; empty when it passed."""
        found = list(self.problems)
        for batch in self.batches:
            if batch.problem:
                found.append(f"batch {batch.batch_size}: {batch.problem}")
            for out in batch.outputs:
                if not out.passed:
                    detail = out.problem or (
                        f"{out.failing:,} of {out.elements:,} elements over tolerance, "
                        f"max abs diff {out.max_abs_diff:.3g}"
                        if out.label_agreement is None
                        else f"{out.label_agreement:.1%} of labels agree"
                    )
                    found.append(f"output {out.name} at batch {batch.batch_size}: {detail}")
        return list(dict.fromkeys(found))

    def non_finite_outputs(self) -> list[str]:
        """Outputs with a NaN or an infinity on either side, at any batch size."""
        names = []
        for batch in self.batches:
            names += [o.name for o in batch.outputs if o.non_finite_text() and o.name not in names]
        return names

    def verdicts(self) -> list[OutputVerdict]:
        """Each output over every batch size, in the order the outputs first appear."""
        found: dict[str, list[tuple[int, OutputComparison]]] = {}
        for batch in self.batches:
            for out in batch.outputs:
                found.setdefault(out.name, []).append((batch.batch_size, out))
        return [OutputVerdict.of(comparisons) for comparisons in found.values()]

    def worst_verdict(self) -> OutputVerdict | None:
        """The output that decides the verdict: a failing one before a passing one, one with numbers
        (not labels) before one without, then the furthest over its tolerance."""
        return max(
            self.verdicts(), key=lambda v: (not v.passed, v.tolerance_applies, _ratio_key(v.max_ratio)), default=None
        )

    def passing_tolerance(self) -> tuple[float | None, float | None]:
        """The smallest atol (at this rtol) and rtol (at this atol) with which every output passes;
        None where no value does, or where the failure is not a matter of tolerance at all."""
        verdicts = self.verdicts()
        if self.problems or any(b.problem for b in self.batches):
            return None, None
        if any(not v.passed and not v.tolerance_applies for v in verdicts):
            return None, None
        numeric = [v for v in verdicts if v.tolerance_applies]
        return _largest([v.min_atol for v in numeric]), _largest([v.min_rtol for v in numeric])

    def insensitive_outputs(self) -> list[OutputVerdict]:
        """Outputs that barely depend on the inputs: a file that ignored them would pass too."""
        return [v for v in self.verdicts() if v.insensitive]

    def worst(self, stat: str) -> float:
        values = [getattr(o, stat) for b in self.batches for o in b.outputs if o.label_agreement is None]
        return max(values, default=0.0)

    def to_dict(self) -> dict[str, Any]:
        data = {("samples" if key == "batch_size" else key): value for key, value in asdict(self).items()}
        # Derived from the batches, for readers of the JSON; from_dict recomputes them.
        data["batch_sizes"] = self.batch_sizes
        data["outputs"] = [asdict(v) for v in self.verdicts()]
        data["passing_atol"], data["passing_rtol"] = self.passing_tolerance()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Validation:
        data = {("batch_size" if k == "samples" else k): v for k, v in data.items() if k not in DERIVED_FIELDS}
        batches = [
            BatchCheck(**{**b, "outputs": [OutputComparison(**o) for o in b["outputs"]]})
            for b in data.pop("batches", [])
        ]
        return cls(**data, batches=batches)


class OnnxRunner:
    """An onnxruntime CPU session on the exported file."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 4  # fatal only: an error is raised, and reported, as one line
        # No memory pattern: with it, the second run of a shape allocates one block for the whole
        # plan beside the arena chunks of the first (NASNetLarge at batch 16: 2.0 -> 3.0 GB;
        # without it 2.2 GB, and no slower here). The validation and latency runs repeat shapes.
        options.enable_mem_pattern = False
        # No arena: it keeps the largest run's blocks for the life of the session (the report's later
        # stages run beside it). swin_tiny at batch 16 then 8: peak 879 -> 827 MB above the session's
        # start, and 879 -> 515 MB held after the runs (bench/timm_memory.py).
        options.enable_cpu_mem_arena = False
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ConversionError(f"onnxruntime cannot load the exported file: {shorten(exc, 300)}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise ConversionError(
                f"the ONNX file expects inputs {', '.join(self.input_names)} but the model was fed {', '.join(inputs)}"
            )
        feed = {n: inputs[n] for n in self.input_names}
        return dict(zip(self.output_names, self.session.run(None, feed), strict=True))

    def input_shapes(self) -> dict[str, list[Any]]:
        return {i.name: list(i.shape) for i in self.session.get_inputs()}


@dataclass(frozen=True)
class Criteria:
    """What counts as equal: the tolerances, and the outputs compared as labels (exactly)."""

    rtol: float
    atol: float
    label_outputs: frozenset[str] = frozenset()


def compare(
    reference: dict[str, np.ndarray],
    actual: dict[str, np.ndarray],
    rtol: float,
    atol: float,
    label_outputs: frozenset[str] = frozenset(),
) -> list[OutputComparison]:
    """Compare every output by name; a reference output the ONNX file lacks fails, and vice versa."""
    results = []
    for name, ref in reference.items():
        if name not in actual:
            results.append(
                OutputComparison(
                    name=name,
                    passed=False,
                    shape=list(ref.shape),
                    problem=f"the ONNX file has no output {name} (it has {', '.join(actual)})",
                    min_atol=None,
                    min_rtol=None,
                )
            )
            continue
        results.append(_compare_one(name, ref, actual[name], Criteria(rtol, atol, label_outputs)))
    for name in actual:
        if name not in reference:
            results.append(
                OutputComparison(
                    name=name,
                    passed=False,
                    onnx_shape=list(actual[name].shape),
                    problem=f"the original model has no output {name} to compare with",
                    min_atol=None,
                    min_rtol=None,
                )
            )
    return results


def _compare_one(name: str, ref: np.ndarray, out: np.ndarray, criteria: Criteria) -> OutputComparison:
    result = OutputComparison(
        name=name,
        passed=True,
        shape=list(ref.shape),
        onnx_shape=list(out.shape),
        dtype=str(out.dtype),
        elements=int(ref.size),
    )
    if ref.shape != out.shape:
        # A label vector and an Nx1 column are the same data.
        if ref.size == out.size and ref.squeeze().shape == out.squeeze().shape:
            out = out.reshape(ref.shape)
        else:
            result.passed = False
            result.problem = f"shape {shape_text(out.shape)} in ONNX, {shape_text(ref.shape)} in the original"
            result.min_atol = result.min_rtol = None  # no tolerance makes the shapes agree
            return result
    if name in criteria.label_outputs or ref.dtype.kind in "OUSb" or out.dtype.kind in "OUSb":
        equal = ref.astype(str) == out.astype(str) if ref.dtype.kind in "OUS" or out.dtype.kind in "OUS" else ref == out
        result.failing = int(equal.size - np.count_nonzero(equal))
        result.label_agreement = float(np.count_nonzero(equal) / equal.size) if equal.size else 1.0
        result.passed = result.failing == 0
        if not result.passed:  # labels agree or not: no tolerance applies
            result.min_atol = result.min_rtol = None
        if ref.ndim and ref.shape[0] > 1:  # every row has the first row's labels
            result.insensitive = bool(np.all(ref.astype(str) == ref[:1].astype(str)))
        return result
    ref64 = ref.astype(np.float64)
    out64 = out.astype(np.float64)
    result.non_finite = {"original": _count_non_finite(ref64), "onnx": _count_non_finite(out64)}
    # Equal values (the same infinity included: inf - inf is NaN) and NaN on both sides are equal.
    same = (ref64 == out64) | (np.isnan(ref64) & np.isnan(out64))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(out64 - ref64))
    diff = np.where(np.isnan(diff), np.inf, diff)  # NaN on one side only is a failure
    magnitude = np.abs(np.nan_to_num(ref64))
    allowed = criteria.atol + criteria.rtol * magnitude
    result.failing = int(np.count_nonzero(diff > allowed))
    result.passed = result.failing == 0
    if diff.size:
        _difference_statistics(result, diff, np.abs(ref64))
        _tolerance_statistics(result, diff, allowed, magnitude, (criteria.rtol, criteria.atol))
        result.diff_decades = decade_histogram(diff)
        _sensitivity(result, ref64, allowed)
    return result


def _tolerance_statistics(
    result: OutputComparison,
    diff: np.ndarray,
    allowed: np.ndarray,
    magnitude: np.ndarray,
    tolerance: tuple[float, float],
) -> None:
    """The element furthest over its tolerance, and the smallest atol (at rtol) and rtol (at atol) that
    pass; ``tolerance`` is (rtol, atol)."""
    rtol, atol = tolerance
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / allowed)  # a difference where nothing is allowed: inf
    flat = int(np.argmax(ratio))
    if np.isinf(ratio.flat[flat]):  # among the unbounded ones, the largest difference
        flat = int(np.argmax(np.where(np.isinf(ratio), diff, -1.0)))
    index = np.unravel_index(flat, diff.shape)
    peak = float(ratio[index])
    result.max_ratio = peak if np.isfinite(peak) else None
    result.worst_diff = _finite(diff[index])
    result.worst_allowed = float(allowed[index])
    result.worst_index = [int(i) for i in index]
    if np.isinf(diff).any():  # a NaN on one side, or infinities that differ: no tolerance passes
        result.min_atol = result.min_rtol = None
        return
    result.min_atol = max(0.0, float((diff - rtol * magnitude).max()))
    over = diff > atol
    if not over.any():
        result.min_rtol = 0.0
    elif (magnitude[over] == 0).any():
        result.min_rtol = None
    else:
        result.min_rtol = float(((diff[over] - atol) / magnitude[over]).max())


def decade_histogram(diff: np.ndarray) -> dict[str, int]:
    """How many elements of |diff| fall in each decade, from the lowest to the highest non-empty one."""
    counts: dict[str, int] = {}
    zero = int(np.count_nonzero(diff == 0))
    if zero:
        counts["0"] = zero
    positive = diff[(diff > 0) & np.isfinite(diff)]
    if positive.size:
        exponents = np.floor(np.log10(positive)).astype(np.int64)
        low = int(exponents.min())
        for offset, count in enumerate(np.bincount(exponents - low)):
            counts[f"{10.0 ** (low + offset):.0e}"] = int(count)
    unbounded = int(np.count_nonzero(np.isinf(diff)))
    if unbounded:
        counts["inf"] = unbounded
    return counts


def _sensitivity(result: OutputComparison, ref: np.ndarray, allowed: np.ndarray) -> None:
    """How far each row of the original is from the first: when within the tolerance, the output
    barely depends on the inputs, and a file that ignored them would pass as well."""
    if ref.ndim == 0 or ref.shape[0] < 2:
        return
    with np.errstate(invalid="ignore", over="ignore"):
        deviation = np.abs(ref - ref[:1])
    deviation = np.where(np.isfinite(deviation), deviation, 0.0)  # NaN and Inf are counted apart
    result.spread = float(deviation.max()) if deviation.size else 0.0
    result.insensitive = bool(np.all(deviation <= allowed))


def _difference_statistics(result: OutputComparison, diff: np.ndarray, magnitude: np.ndarray) -> None:
    """Max, mean and p99 of the absolute and relative differences (an infinite one is reported as the largest float)."""
    with np.errstate(invalid="ignore"):  # percentiles and ratios of infinities
        result.max_abs_diff = _finite(diff.max())
        result.mean_abs_diff = _finite(diff.mean())
        result.p99_abs_diff = _finite(np.percentile(diff, 99))
        nonzero = magnitude > 0
        if nonzero.any():
            # An infinite difference stays infinite (inf / |inf| would be NaN).
            rel = np.where(np.isinf(diff[nonzero]), np.inf, diff[nonzero] / magnitude[nonzero])
            result.max_rel_diff = _finite(rel.max())
            result.mean_rel_diff = _finite(rel.mean())
            result.p99_rel_diff = _finite(np.percentile(rel, 99))


def _count_non_finite(values: np.ndarray) -> dict[str, int]:
    return {
        "nan": int(np.count_nonzero(np.isnan(values))),
        "+inf": int(np.count_nonzero(np.isposinf(values))),
        "-inf": int(np.count_nonzero(np.isneginf(values))),
    }


def _finite(value: float) -> float:
    # JSON has no infinity: report an unbounded difference as the largest float.
    value = float(value)
    return value if np.isfinite(value) else float(np.finfo(np.float64).max)


def validate(
    runner: OnnxRunner, references: list[Reference], criteria: Criteria, problems: list[str], input_source: str
) -> Validation:
    """Compare the ONNX file with the reference on each (inputs, reference outputs) run.

    ``problems`` are file-level failures found before running (such as a fixed batch axis).
    Raises ``OnnxRuntimeFailure`` when onnxruntime cannot run inputs the file declares it takes.
    """
    batches = [_check_batch(runner, inputs, reference, criteria) for inputs, reference in references]
    return Validation(
        rtol=criteria.rtol,
        atol=criteria.atol,
        batch_size=batches[0].batch_size if batches else 0,
        input_source=input_source,
        passed=not problems and all(b.passed for b in batches),
        batches=batches,
        problems=problems,
    )


def _check_batch(
    runner: OnnxRunner, inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], criteria: Criteria
) -> BatchCheck:
    batch_size = int(next(iter(inputs.values())).shape[0]) if inputs else 0
    try:
        actual = runner.run(inputs)
    except ConversionError:
        raise
    except Exception as exc:
        declared = runner.input_shapes()
        fed = ", ".join(f"{n} {shape_text(a.shape)}" for n, a in inputs.items())
        if all(_fits(inputs[name].shape, shape) for name, shape in declared.items() if name in inputs):
            raise OnnxRuntimeFailure.from_exception(exc, fed) from None
        declares = ", ".join(f"{n} {shape_text(s)}" for n, s in declared.items())
        problem = f"onnxruntime failed on inputs {fed} (the file declares {declares}): {shorten(exc, 200)}"
        return BatchCheck(batch_size=batch_size, passed=False, problem=problem)
    padded = padded_positions(inputs)
    left_out: dict[str, tuple[int, float]] = {}
    if padded is not None:
        reference, actual, left_out = without_padded(reference, actual, padded)
    outputs = compare(reference, actual, criteria.rtol, criteria.atol, criteria.label_outputs)
    for output in outputs:
        output.padded, output.padded_max_diff = left_out.get(output.name, (0, 0.0))
    return BatchCheck(batch_size=batch_size, passed=all(o.passed for o in outputs), outputs=outputs)


def _fits(shape: tuple[int, ...], declared: Sequence[Any]) -> bool:
    """Whether an array of ``shape`` matches a declared input shape (a name or None matches any size)."""
    return len(shape) == len(declared) and all(
        not isinstance(d, int) or d == n for n, d in zip(shape, declared, strict=True)
    )


# "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Non-zero status code returned while running
# RotaryEmbedding node. Name:'node_RotaryEmbedding_12' Status Message: ..."
_NODE_FAILURE = re.compile(r"while running (\S+) node\. Name:'([^']*)'\s*(?:Status Message:\s*)?(.*)", re.DOTALL)
# What an ORT_ENFORCE message starts with: the source file and line, and the C++ function
# ("/onnxruntime_src/.../reshape_helper.h:91 onnxruntime::ReshapeHelper::ReshapeHelper(...) ").
_SOURCE_PREFIX = re.compile(r"^\S+:\d+ (?:[\w:~<>]+\(.*?\)(?: const)? )?")


class OnnxRuntimeFailure(ConversionError):
    """onnxruntime could not run the exported file on inputs it declares it takes."""

    @classmethod
    def from_exception(cls, exc: BaseException, fed: str) -> OnnxRuntimeFailure:
        """The op and node onnxruntime failed on, and its message, from its error text."""
        text = " ".join(str(exc).split())
        found = _NODE_FAILURE.search(text)
        if found is None:
            return cls(f"onnxruntime failed on inputs {fed}: {shorten(text, 300)}")
        op, node, message = found.groups()
        message = _SOURCE_PREFIX.sub("", message)
        return cls(f"onnxruntime failed running the {op} node {node} on inputs {fed}: {shorten(message, 240)}")


def fixed_axis_problems(facts: OnnxFacts, specs: list[TensorSpec], dynamic_batch: bool) -> list[str]:
    """A batch axis the user asked to be dynamic that the file fixed is a failure."""
    if not dynamic_batch:
        return []
    batch_inputs = {s.name for s in specs if s.shape and s.shape[0] == BATCH}
    problems = []
    for kind, tensors in (("input", facts.inputs), ("output", facts.outputs)):
        for tensor in tensors:
            if kind == "input" and tensor.name not in batch_inputs:
                continue
            if tensor.shape and isinstance(tensor.shape[0], int):
                problems.append(
                    f"{kind} {tensor.name}: the batch axis is fixed at {tensor.shape[0]} in the ONNX file "
                    f"(shape {shape_text(tensor.shape)}); --dynamic-batch true expects it dynamic"
                )
    return problems
