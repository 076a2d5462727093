"""The variants section (issue 20): the fp32 file, then each variant validated against the original model.

One of the report's EXTRA_SECTIONS (converter/markdown/report.py): after the verdict, before the
folded details.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from converter.escape import markdown_code, markdown_text
from converter.markdown.numbers import sig, size, unbroken
from converter.markdown.table import table
from converter.variants.result import FP32, VariantResult

if TYPE_CHECKING:
    from converter.report import Report

HEADER = ["Variant", "File", "Size", "Size vs fp32", "Latency vs fp32", "Max abs diff", "Label agreement", "Result"]
ALIGN = "---|---|---:|---:|---:|---:|---:|---"


def variants_section(report: Report, max_rows: int) -> list[str]:
    """The variants table, or nothing when the run made none."""
    variants = report.variants
    if variants is None:
        return []
    sizes = " and ".join(str(b) for b in report.validation.batch_sizes) if report.validation else "-"
    best = "the fp32 file" if variants.best == FP32 else markdown_code(_file_name(variants.best_path))
    lines = [
        "### Variants",
        "",
        f"Each variant is validated against the original model (batch {sizes}), not against the fp32 file, "
        f"and kept only when it passes. Latency: onnxruntime CPU, batch {variants.latency_batch_size}, median "
        "of runs alternating with the fp32 file in this process."
        + (f" Best ({variants.pick}): {best}." if variants.best else ""),
        "",
    ]
    rows = []
    if report.onnx:
        fp32 = markdown_code(_file_name(report.onnx.path))
        rows.append(["fp32", fp32, size(report.onnx.bytes), "1.00×", "1.00×", "—", "—", "✅ validated above"])
    rows += [_variant_row(result) for result in variants.results]
    lines += [*table(HEADER, rows, max_rows, "rows", ALIGN), ""]
    for result in variants.results:
        tolerance = result.tolerance
        lines.append(
            f"- {markdown_code(result.name)}: {markdown_text(result.method or 'not made')}. Tolerance: rtol "
            f"{tolerance.get('rtol', 0):g}, atol {tolerance.get('atol', 0):g}, label agreement ≥ "
            f"{tolerance.get('label_agreement', 0):.0%}."
        )
    return [*lines, ""]


def _variant_row(result: VariantResult) -> list[str]:
    verdict = {"passed": "✅ passed", "failed": "❌ failed", "skipped": "⏭️ skipped"}[result.status]
    if result.status == "skipped":
        return [markdown_text(result.name), "—", "—", "—", "—", "—", "—", f"{verdict}: {markdown_text(result.reason)}"]
    return [
        markdown_text(result.name),
        markdown_code(_file_name(result.path)) if result.path else "— (deleted)",
        size(result.bytes),
        f"{result.size_ratio:.2f}×" if result.size_ratio is not None else "—",
        f"{result.latency_ratio:.2f}×" if result.latency_ratio is not None else "—",
        unbroken(sig(result.max_abs_diff)),
        f"{result.label_agreement:.2%}" if result.label_agreement is not None else "—",
        f"{verdict}: {markdown_text(result.reason)}" if result.reason else verdict,
    ]


def _file_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]
