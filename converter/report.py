"""The report of one conversion: one dataclass, rendered as JSON and as markdown."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from converter.baseline.result import BaselineComparison
from converter.escape import printable
from converter.provenance import Provenance
from converter.validate import Validation
from converter.variants.result import VariantsReport

if TYPE_CHECKING:
    from converter.frameworks.base import ExportResult
    from converter.onnx_file import OnnxFacts

SCHEMA_VERSION = 1
MAX_TABLE_ROWS = 200  # per table; the JSON report has every row


@dataclass
class ModelInfo:
    path: str
    framework: str
    format: str
    description: str
    sha256: str
    bytes: int


@dataclass
class OnnxInfo:
    path: str
    sha256: str
    bytes: int
    opset: int
    opsets: dict[str, int]
    ir_version: int
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    operators: dict[str, int]
    exporter: str
    export_path: str  # the route that wrote the file (the JSON name schema 1 gave it)
    fallback_reason: str = ""
    files: list[str] = field(default_factory=list)  # every file the model needs, the .onnx first


@dataclass
class ExportAttempt:
    """One export route the pipeline tried for the model, and how it ended."""

    route: str  # the backend's name for it, e.g. "tf2onnx.convert.from_function"
    outcome: str  # "passed", "mismatch" (exported, validation failed) or "error" (no usable file)
    reason: str = ""  # why it lost: the error, or what the validation found
    seconds: float = 0.0  # export, check and validation
    opset: int | None = None  # the default-domain opset asked for


@dataclass
class Report:
    passed: bool
    # "passed"; "failed" (validation); "rejected" (validated, but the comparison with the baseline
    # failed: never forgiven by fail-on-mismatch); "error" (conversion failed)
    status: str
    model: ModelInfo
    onnx: OnnxInfo | None = None
    validation: Validation | None = None
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    requirements: dict[str, Any] = field(default_factory=dict)  # --requirements: file, seconds, packages
    latency: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    command: str = ""
    reports: dict[str, str] = field(default_factory=dict)  # "json" and "markdown" paths
    export_attempts: list[ExportAttempt] = field(default_factory=list)  # every route tried, in order
    baseline: BaselineComparison | None = None  # the comparison with the last release (--baseline)
    provenance: Provenance | None = None
    variants: VariantsReport | None = None  # --variants: each validated against the original
    inputs: list[dict[str, Any]] = field(default_factory=list)  # how each generated input was made (input_roles)
    schema_version: int = SCHEMA_VERSION

    # -- JSON ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["validation"] = self.validation.to_dict() if self.validation else None
        data["baseline"] = self.baseline.to_dict() if self.baseline else None
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        data = dict(data)
        data["model"] = ModelInfo(**data["model"])
        data["onnx"] = OnnxInfo(**data["onnx"]) if data.get("onnx") else None
        data["validation"] = Validation.from_dict(data["validation"]) if data.get("validation") else None
        data["export_attempts"] = [ExportAttempt(**a) for a in data.get("export_attempts", [])]
        data["baseline"] = BaselineComparison.from_dict(data["baseline"]) if data.get("baseline") else None
        data["provenance"] = Provenance(**data["provenance"]) if data.get("provenance") else None
        data["variants"] = VariantsReport.from_dict(data["variants"]) if data.get("variants") else None
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> Report:
        return cls.from_dict(json.loads(text))

    # -- facts the shells read -------------------------------------------------------------
    @property
    def max_abs_diff(self) -> float | None:
        return self.validation.worst("max_abs_diff") if self.validation else None

    @property
    def max_rel_diff(self) -> float | None:
        return self.validation.worst("max_rel_diff") if self.validation else None

    def headline(self) -> str:
        """One line for the log and annotations: a name in it cannot start a workflow command."""
        return printable(self._headline())

    def _headline(self) -> str:
        name = self.model.path.rsplit("/", 1)[-1]
        if self.status == "error":
            return f"FAIL {name}: {self.error}"
        verdict = "PASS" if self.passed else "FAIL"
        assert self.onnx is not None and self.validation is not None
        sizes = " and ".join(str(b) for b in self.validation.batch_sizes)
        text = (
            f"{verdict} {name} ({self.model.framework}/{self.model.format}) -> {self.onnx.path}: opset {self.onnx.opset}, "
            f"max abs diff {_num(self.max_abs_diff)}, batch {sizes}"
        )
        if not self.validation.passed:
            failing = self.validation.failing_outputs()
            text += f"; failing: {', '.join(failing) if failing else '; '.join(self.validation.problems)}"
            text += _passing_text(self.validation)
        elif self.variants and self.variants.required_failures():
            text += "; failing: " + ", ".join(f"required variant {r.name}" for r in self.variants.required_failures())
        if self.baseline and self.baseline.failures:
            text += f"; rejected by the baseline: {'; '.join(self.baseline.failures)}"
        if self.variants:
            text += f"; variants: {self.variants.summary()}"
        non_finite = self.validation.non_finite_outputs()
        if non_finite:  # equal NaN and Inf pass; say they were there
            text += f"; NaN or Inf in outputs {', '.join(non_finite)} (see the report)"
        return text

    # -- markdown ----------------------------------------------------------------------------
    def to_markdown(self, limit: int | None = None) -> str:
        """The markdown report (converter/markdown/report.py); with ``limit``, in that many bytes,
        as a job summary must be (the .report.md has no limit)."""
        from converter.markdown.report import render

        text = render(self, MAX_TABLE_ROWS)
        if limit is None:
            return text
        rows = MAX_TABLE_ROWS
        while len(text.encode()) > limit and rows > 5:
            rows //= 4
            text = render(self, rows)
        if len(text.encode()) > limit:
            text = (
                text.encode()[: limit - 200].decode(errors="ignore")
                + "\n\n_(report cut at the job summary size limit; see the JSON report)_\n"
            )
        return text


def _passing_text(validation: Validation) -> str:
    """ "; would pass with atol 1.3e-04 or rtol 3.5e-07" (rounded up: the values shown pass), or ""."""
    from converter.markdown.numbers import ceil_sig

    atol, rtol = validation.passing_tolerance()
    options = [f"{name} {ceil_sig(value)}" for name, value in (("atol", atol), ("rtol", rtol)) if value is not None]
    return f"; would pass with {' or '.join(options)}" if options else ""


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:.3g}"


def onnx_info(exported: ExportResult, facts: OnnxFacts, route: str, fallback_reason: str, output_dir: Path) -> OnnxInfo:
    """The ONNX section of the report, for a file about to be published into ``output_dir``."""
    from converter.onnx_file import sha256_of, size_of  # imports onnx: not for the shells that only read reports

    files = [exported.path, *exported.extra_files]
    return OnnxInfo(
        path=str(output_dir / exported.path.name),
        sha256=sha256_of(exported.path),
        bytes=sum(size_of(p) for p in files),
        opset=facts.opset,
        opsets=facts.opsets,
        ir_version=facts.ir_version,
        inputs=[t.to_dict() for t in facts.inputs],
        outputs=[t.to_dict() for t in facts.outputs],
        operators=facts.operators,
        exporter=exported.exporter,
        export_path=route,
        fallback_reason=fallback_reason,
        files=[str(output_dir / p.name) for p in files],
    )
