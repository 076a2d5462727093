"""The report of one conversion: one dataclass, rendered as JSON and as markdown."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from converter.baseline.render import render_baseline
from converter.baseline.result import BaselineComparison
from converter.escape import markdown_block, markdown_code, markdown_text, printable
from converter.markdown import table
from converter.provenance import Provenance
from converter.tensors import shape_text
from converter.validate import Validation
from converter.variants.result import FP32, VariantResult, VariantsReport

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
        """The markdown report; with ``limit``, in at most that many bytes (fewer table rows, then cut)."""
        text = render_markdown(self, MAX_TABLE_ROWS)
        if limit is None:
            return text
        rows = MAX_TABLE_ROWS
        while len(text.encode()) > limit and rows > 5:
            rows //= 4
            text = render_markdown(self, rows)
        if len(text.encode()) > limit:
            text = (
                text.encode()[: limit - 200].decode(errors="ignore")
                + "\n\n_(report cut at the job summary size limit; see the JSON report)_\n"
            )
        return text


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:.3g}"


# Every value below may come from the model file or its name: escaped (converter/escape.py).
_code = markdown_code
_text = markdown_text


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


def render_markdown(report: Report, max_rows: int) -> str:
    lines = _verdict_lines(report)
    if report.baseline:
        lines += render_baseline(report.baseline, max_rows)
    lines += ["### Model", "", *table(["", ""], _model_rows(report), max_rows), ""]
    lines += _attempt_lines(report, max_rows)
    if report.validation:
        lines += _comparison_lines(report.validation, max_rows) + _generated_lines(report.inputs)
    if report.variants:
        lines += render_variants(report, max_rows)
    if report.timings or report.latency:
        lines += ["### Timings", "", *table(["Stage", "Time"], _timing_rows(report), max_rows), ""]
    if report.versions:
        lines += ["### Versions", "", " · ".join(_text(f"{k} {v}") for k, v in report.versions.items()), ""]
    if report.command:
        lines += ["### Reproduce", "", markdown_block(report.command, "sh"), ""]
    return "\n".join(lines)


def _verdict_lines(report: Report) -> list[str]:
    """The heading, the error or the failing outputs and problems, and the warnings."""
    name = _text(report.model.path.rsplit("/", 1)[-1])
    if report.status == "error":
        head = f"## ❌ {name}: conversion failed"
    elif report.passed:
        head = f"## ✅ {name}: converted and validated"
    elif report.status == "rejected":
        head = f"## ❌ {name}: validated, but rejected by the comparison with the baseline"
    elif report.validation and report.validation.passed:
        head = f"## ❌ {name}: a required variant did not pass"
    else:
        head = f"## ❌ {name}: ONNX output differs from the original"
    lines = [head, ""]
    if report.error:
        lines += [f"**Error:** {_text(report.error)}", ""]
    if report.validation and not report.passed:
        failing = report.validation.failing_outputs()
        if failing:
            lines += [f"**Failing outputs:** {', '.join(_code(n) for n in failing)}", ""]
        lines += [f"**Problem:** {_text(p)}" for p in report.validation.problems]
        if report.validation.problems:
            lines.append("")
    for warning in report.warnings:
        lines += [f"> ⚠️ {_text(warning)}", ""]
    return lines


def _model_rows(report: Report) -> list[list[str]]:
    rows = [
        ["Model", _code(report.model.path)],
        ["Framework / format", f"{_text(report.model.framework)} / {_text(report.model.format)}"],
        ["Model class", _text(report.model.description)],
        ["Model size", f"{report.model.bytes:,} bytes"],
        ["Model sha256", _code(report.model.sha256)],
    ]
    return rows + (_onnx_rows(report.onnx) if report.onnx else [])


def _onnx_rows(onnx_info: OnnxInfo) -> list[list[str]]:
    rows = [
        ["ONNX file", _code(onnx_info.path)],
        ["ONNX size", f"{onnx_info.bytes:,} bytes"],
        ["ONNX sha256", _code(onnx_info.sha256)],
        ["Opset / IR version", f"{onnx_info.opset} / {onnx_info.ir_version}"],
        ["Exporter", f"{_text(onnx_info.exporter)} ({_text(onnx_info.export_path)})"],
    ]
    if onnx_info.fallback_reason:
        rows.append(["Fallback reason", _text(onnx_info.fallback_reason)])
    if len(onnx_info.files) > 1:
        rows.append(["Files", ", ".join(_code(f) for f in onnx_info.files)])
    rows.append(["Inputs", _tensors(onnx_info.inputs)])
    rows.append(["Outputs", _tensors(onnx_info.outputs)])
    return rows


def _tensors(tensors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{_code(t['name'])} {_shape(t['shape'])} {_text(t['dtype'])}" for t in tensors)


def _attempt_lines(report: Report, max_rows: int) -> list[str]:
    """Every export attempt, when there was more than one."""
    if len(report.export_attempts) <= 1:
        return []
    rows = [
        [
            _code(a.route),
            _text(a.outcome),
            "-" if a.opset is None else str(a.opset),
            _text(a.reason) or "-",
            f"{a.seconds:.1f} s",
        ]
        for a in report.export_attempts
    ]
    return ["### Export routes tried", "", *table(["Route", "Outcome", "Opset", "Reason", "Time"], rows, max_rows), ""]


def _comparison_lines(val: Validation, max_rows: int) -> list[str]:
    lines = [
        "### Comparison",
        "",
        f"Tolerance: an element fails when |onnx − original| > atol + rtol·|original|, "
        f"with atol {val.atol:g}, rtol {val.rtol:g}. Inputs: {_text(val.input_source)}.",
        "",
    ]
    header = [
        "Batch",
        "Output",
        "",
        "Shape / labels",
        "Max abs diff",
        "Mean abs diff",
        "p99 abs diff",
        "Max rel diff",
        "Failing elements",
    ]
    lines += table(header, _comparison_rows(val), max_rows)
    lines.append("")
    return lines + _non_finite_lines(val, max_rows)


def _generated_lines(inputs: list[dict[str, Any]]) -> list[str]:
    """One line per generated input: its role and range (input_roles.InputPlan.to_dict)."""
    if not inputs:
        return []
    lines = ["Generated inputs:", ""]
    for spec in inputs:
        what = spec["role"].replace("_", " ")
        if "padding" in spec:
            what += f", {spec['padding']}"
        if "range" in spec:
            low, high = spec["range"]
            what += f" in [{low}, {high}) ({spec['bound']})"
        lines.append(f"- {_code(spec['name'])} {_text(spec['dtype'])}: {_text(what)}")
    return [*lines, ""]


def _comparison_rows(val: Validation) -> list[list[str]]:
    rows = []
    for batch in val.batches:
        if batch.problem:
            rows.append([str(batch.batch_size), "—", "❌", _text(batch.problem), "", "", "", "", ""])
        for out in batch.outputs:
            agreement = "" if out.label_agreement is None else f"{out.label_agreement:.2%} labels agree"
            rows.append(
                [
                    str(batch.batch_size),
                    _code(out.name),
                    "✅" if out.passed else "❌",
                    _text(out.problem) or agreement or _shape(out.shape),
                    _num(out.max_abs_diff),
                    _num(out.mean_abs_diff),
                    _num(out.p99_abs_diff),
                    _num(out.max_rel_diff),
                    f"{out.failing:,} / {out.elements:,}",
                ]
            )
    return rows


def _timing_rows(report: Report) -> list[list[str]]:
    rows = [[stage.replace("_", " "), f"{seconds:.3f} s"] for stage, seconds in report.timings.items()]
    lat = report.latency
    if lat:
        runs = f"{lat['batch_size']} rows, median of {lat['runs']}"
        rows.append([f"latency, original ({runs})", f"{lat['reference_ms']:.3f} ms"])
        rows.append([f"latency, onnxruntime ({runs})", f"{lat['onnxruntime_ms']:.3f} ms"])
    return rows


def _non_finite_lines(val: Validation, max_rows: int) -> list[str]:
    """Where outputs held NaN or Inf: equal ones count as equal, so the table alone would not show them."""
    found = [
        f"{_code(out.name)} at batch {batch.batch_size}: {out.non_finite_text()}"
        for batch in val.batches
        for out in batch.outputs
        if out.non_finite_text()
    ]
    if not found:
        return []
    more = f"; {len(found) - max_rows} more in the JSON report" if len(found) > max_rows else ""
    return [
        "**Non-finite values** (NaN on both sides, or the same infinity, count as equal): "
        + "; ".join(found[:max_rows])
        + more
        + ".",
        "",
    ]


def _shape(shape: list[Any]) -> str:
    return _text(shape_text(shape))


def render_variants(report: Report, max_rows: int) -> list[str]:
    """The variants table: the fp32 file, then each variant against the original model."""
    variants = report.variants
    assert variants is not None
    sizes = " and ".join(str(b) for b in report.validation.batch_sizes) if report.validation else "-"
    best = "the fp32 file" if variants.best == FP32 else _code(_file_name(variants.best_path))
    lines = [
        "### Variants",
        "",
        f"Each variant is validated against the original model (batch {sizes}), not against the fp32 file, "
        f"and kept only when it passes. Latency: onnxruntime CPU, batch {variants.latency_batch_size}, median "
        "of runs alternating with the fp32 file in this process."
        + (f" Best ({variants.pick}): {best}." if variants.best else ""),
        "",
    ]
    fp32_row = ["fp32", _code(_file_name(report.onnx.path)), f"{report.onnx.bytes:,} bytes"] if report.onnx else []
    rows = [[*fp32_row, "1.00x", "1.00x", "-", "-", "✅ validated above"]] if fp32_row else []
    rows += [_variant_row(result) for result in variants.results]
    header = ["Variant", "File", "Size", "Size vs fp32", "Latency vs fp32", "Max abs diff", "Label agreement", "Result"]
    lines += [*table(header, rows, max_rows), ""]
    for result in variants.results:
        tolerance = result.tolerance
        lines.append(
            f"- {_code(result.name)}: {_text(result.method or 'not made')}. Tolerance: rtol {tolerance.get('rtol', 0):g}, "
            f"atol {tolerance.get('atol', 0):g}, label agreement ≥ {tolerance.get('label_agreement', 0):.0%}."
        )
    return [*lines, ""]


def _variant_row(result: VariantResult) -> list[str]:
    verdict = {"passed": "✅ passed", "failed": "❌ failed", "skipped": "⏭️ skipped"}[result.status]
    if result.status == "skipped":
        return [_text(result.name), "-", "-", "-", "-", "-", "-", f"{verdict}: {_text(result.reason)}"]
    return [
        _text(result.name),
        _code(_file_name(result.path)) if result.path else "— (deleted)",
        f"{result.bytes:,} bytes",
        f"{result.size_ratio:.2f}x" if result.size_ratio is not None else "-",
        f"{result.latency_ratio:.2f}x" if result.latency_ratio is not None else "-",
        _num(result.max_abs_diff),
        f"{result.label_agreement:.2%}" if result.label_agreement is not None else "-",
        f"{verdict}: {_text(result.reason)}" if result.reason else verdict,
    ]


def _file_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]
