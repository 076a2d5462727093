"""What the comparison with the baseline found: plain data, serialised next to the types."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

BREAKING = "breaking"
COMPATIBLE = "compatible"


@dataclass
class InterfaceChange:
    """One difference between the baseline file's interface and this one's."""

    kind: str  # "input", "output" or "model" (opset, IR version)
    name: str  # the tensor's name in the baseline (for an added one: in this file), or the version's
    change: str  # added, removed, renamed, dtype, rank, axis, order, opset, ir_version
    baseline: str  # what the baseline had, as text ("" for an added tensor)
    current: str  # what this file has ("" for a removed tensor)
    severity: str  # BREAKING or COMPATIBLE
    reason: str  # why, for a client written for the baseline


@dataclass
class OutputNumbers:
    """One output's validation (this file against the original) next to the baseline's."""

    name: str
    baseline: dict[str, float]  # max_abs_diff, p99_abs_diff, max_rel_diff, p99_rel_diff (or label_agreement)
    current: dict[str, float]


@dataclass
class OutputDrift:
    """How far one output of this file is from the baseline file's, on the same inputs (worst batch)."""

    name: str
    elements: int = 0
    max_abs_diff: float = 0.0
    p99_abs_diff: float = 0.0
    max_rel_diff: float = 0.0
    p99_rel_diff: float = 0.0
    label_agreement: float | None = None  # label outputs: fraction of equal labels
    over_limit: int = 0  # elements beyond --max-drift (0 when it is not given)


@dataclass
class Drift:
    batch_sizes: list[int] = field(default_factory=list)  # the validation batches both files ran
    outputs: list[OutputDrift] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why a batch or an output was not compared

    @property
    def zero(self) -> bool:
        return all(o.max_abs_diff == 0 and o.label_agreement in (None, 1.0) for o in self.outputs)


@dataclass
class SizeComparison:
    baseline_bytes: int
    bytes: int

    @property
    def ratio(self) -> float:
        return self.bytes / self.baseline_bytes if self.baseline_bytes else float("inf")

    @property
    def increase_percent(self) -> float:
        return (self.ratio - 1) * 100


@dataclass
class LatencyComparison:
    """Both files timed in this process on the same inputs, in alternating runs."""

    batch_size: int
    runs: int  # of each file
    baseline_ms: float  # medians
    onnx_ms: float
    ratio: float  # median of the paired ratios (this run / baseline)
    ratio_low: float  # their 25th and 75th percentiles: the noise
    ratio_high: float

    @property
    def increase_percent(self) -> float:
        return (self.ratio - 1) * 100


@dataclass
class BaselineComparison:
    source: str  # the baseline report as given (or the path that was looked for)
    compared: bool  # False: no baseline there, and --baseline-optional true (the first release)
    release: str = ""  # the baseline's release (git ref, or commit), when its report says
    onnx: str = ""  # the baseline .onnx that ran beside this one ("" when none was found)
    interface: list[InterfaceChange] = field(default_factory=list)
    numbers: list[OutputNumbers] = field(default_factory=list)
    drift: Drift | None = None
    size: SizeComparison | None = None
    latency: LatencyComparison | None = None
    limits: dict[str, Any] = field(default_factory=dict)  # the gates in force
    notes: list[str] = field(default_factory=list)  # what was not compared, and why
    failures: list[str] = field(default_factory=list)  # why the comparison fails the run

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def breaking(self) -> list[InterfaceChange]:
        return [c for c in self.interface if c.severity == BREAKING]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        if self.size:
            data["size"].update(ratio=round(self.size.ratio, 6), increase_percent=round(self.size.increase_percent, 4))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineComparison:
        data = {k: v for k, v in data.items() if k != "passed"}
        drift = data.pop("drift", None)
        size = data.pop("size", None)
        latency = data.pop("latency", None)
        return cls(
            **{k: v for k, v in data.items() if k not in ("interface", "numbers")},
            interface=[InterfaceChange(**c) for c in data.get("interface", [])],
            numbers=[OutputNumbers(**n) for n in data.get("numbers", [])],
            drift=(
                Drift(**{**drift, "outputs": [OutputDrift(**o) for o in drift.get("outputs", [])]}) if drift else None
            ),
            size=SizeComparison(size["baseline_bytes"], size["bytes"]) if size else None,
            latency=LatencyComparison(**latency) if latency else None,
        )
