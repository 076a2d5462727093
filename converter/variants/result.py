"""What the variants came to: data only, with its JSON form next to it.

The report holds one ``VariantsReport``; the markdown table, the action's outputs and the
artifact read it. Nothing here imports onnxruntime.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
FP32 = "fp32"  # the name of the validated fp32 file when the pick compares it with the variants


@dataclass
class OutputCheck:
    """One output of a variant at one batch size, against the original model."""

    name: str
    batch_size: int
    kind: str  # "labels" (label outputs), "classes" (class scores: batch x classes), "values"
    passed: bool
    max_abs_diff: float = 0.0  # of the output itself (labels: 0)
    max_rel_diff: float = 0.0
    probability_error: float | None = None  # classes: max |p - p_original|, logits through softmax
    label_agreement: float | None = None  # labels: equal labels; classes: equal argmax
    failing: int = 0  # elements over tolerance (classes: probabilities)
    elements: int = 0
    problem: str = ""  # why it failed when no number says it (missing output, shape)


@dataclass
class VariantResult:
    """One variant: how it was made, how it compares with the original, and whether it was kept."""

    name: str  # one of options.VARIANT_NAMES
    status: str  # passed (kept), failed (made, outside its tolerance; deleted) or skipped (not made)
    reason: str = ""  # why it failed or was skipped
    method: str = ""  # how it was made, in one line
    path: str = ""  # where it was kept (passed only)
    sha256: str = ""
    bytes: int = 0
    size_ratio: float | None = None  # to the fp32 file
    latency_ms: float | None = None  # onnxruntime, median of latency_runs, alternating with fp32
    fp32_latency_ms: float | None = None  # the fp32 file's median over the same alternation
    latency_ratio: float | None = None
    latency_runs: int = 0
    max_abs_diff: float | None = None  # worst over float outputs and batch sizes
    max_rel_diff: float | None = None
    probability_error: float | None = None
    label_agreement: float | None = None  # lowest over label and class outputs
    tolerance: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # e.g. onnxruntime refused a batch size
    outputs: list[OutputCheck] = field(default_factory=list)
    seconds: float = 0.0  # making, checking, validating and timing it

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantResult:
        outputs = [OutputCheck(**o) for o in data.get("outputs", [])]
        return cls(**{**data, "outputs": outputs})


@dataclass
class VariantsReport:
    """Every variant asked for, and the file the pick names."""

    pick: str  # "smallest" or "fastest"
    best: str = ""  # FP32, a variant name, or "" when nothing passed
    best_path: str = ""
    required: list[str] = field(default_factory=list)
    latency_batch_size: int = 0
    results: list[VariantResult] = field(default_factory=list)

    def passed(self) -> list[VariantResult]:
        return [r for r in self.results if r.status == PASSED]

    def required_failures(self) -> list[VariantResult]:
        return [r for r in self.results if r.name in self.required and r.status != PASSED]

    def kept_files(self) -> list[str]:
        """Paths of the variant files kept (and uploaded): the passing ones."""
        return [r.path for r in self.passed()]

    def summary(self) -> str:
        """One line for the headline: each variant's outcome."""
        return ", ".join(f"{r.name} {r.status}" for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantsReport:
        results = [VariantResult.from_dict(r) for r in data.get("results", [])]
        return cls(**{**data, "results": results})
