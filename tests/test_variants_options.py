"""The variant options: every bad value is one error line and exit 2, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from converter.request import ConversionRequest
from converter.variants.options import Tolerance

BAD_VALUES = [
    (
        ["--variants", "fp8"],
        '--variants "fp8": "fp8" is not a variant; use optimized, fp16, int8-dynamic or int8-static, '
        "separated by commas",
    ),
    (
        ["--variants", "fp16,int8-static"],
        '--variants "fp16,int8-static": int8-static is calibrated on real inputs and --sample-data is not set '
        "(generated inputs would give it wrong scales); give --sample-data with rows of real inputs, or use "
        "int8-dynamic",
    ),
    (
        ["--variants", "fp16", "--variant-tolerance", "rtol=1e-2"],
        '--variant-tolerance "rtol=1e-2": "rtol=1e-2" names no variant; write variant:key=value,... such as '
        "fp16:rtol=1e-2",
    ),
    (
        ["--variants", "fp16", "--variant-tolerance", "fp32:rtol=1e-2"],
        '--variant-tolerance "fp32:rtol=1e-2": "fp32" is not a variant; use optimized, fp16, int8-dynamic or '
        "int8-static",
    ),
    (
        ["--variants", "fp16", "--variant-tolerance", "int8-dynamic:atol=0.1"],
        '--variant-tolerance "int8-dynamic:atol=0.1": int8-dynamic is not in --variants; add it to --variants '
        "or drop its tolerance",
    ),
    (
        ["--variants", "fp16", "--variant-tolerance", "fp16:rtl=1e-2"],
        '--variant-tolerance "fp16:rtl=1e-2": fp16: "rtl" is not a key; use rtol, atol or label-agreement',
    ),
    (
        ["--variants", "fp16", "--variant-tolerance", "fp16:rtol"],
        '--variant-tolerance "fp16:rtol": fp16: rtol has no value; write rtol=<number>',
    ),
    (
        ["--variants", "fp16", "--variant-tolerance", "fp16:rtol=abc"],
        '--variant-tolerance "fp16:rtol=abc": fp16: rtol "abc" is not a number; use a number such as 1e-2',
    ),
    (
        ["--variants", "fp16", "--variant-tolerance", "fp16:atol=nan"],
        '--variant-tolerance "fp16:atol=nan": fp16: atol "nan" is not a number; use a number such as 1e-2',
    ),
    (
        ["--variants", "fp16", "--variant-tolerance", "fp16:atol=1e999"],
        '--variant-tolerance "fp16:atol=1e999": fp16: atol 1e999 is too large; use a number such as 1e-2',
    ),
    (
        ["--variants", "fp16", "--variant-tolerance", "fp16:rtol=-1e-2"],
        '--variant-tolerance "fp16:rtol=-1e-2": fp16: rtol -1e-2 is negative; use a number from 0 up, such as 1e-2',
    ),
    (
        ["--variants", "fp16", "--variant-tolerance", "fp16:label-agreement=99"],
        '--variant-tolerance "fp16:label-agreement=99": fp16: label-agreement 99 is above 1; give a fraction '
        "from 0 to 1, such as 0.99",
    ),
    (
        ["--variants", "fp16", "--variant-tolerance", "fp16:rtol=1e-2;fp16:atol=1e-2"],
        '--variant-tolerance "fp16:rtol=1e-2;fp16:atol=1e-2": fp16 is given twice; give each variant once, '
        "with all its keys",
    ),
    (
        ["--variants", "fp16", "--variant-tolerance", "fp16:rtol=1e-2,rtol=1e-3"],
        '--variant-tolerance "fp16:rtol=1e-2,rtol=1e-3": fp16: rtol is given twice; give each key once',
    ),
    (["--variants", "fp16", "--pick", "cheapest"], '--pick "cheapest": unknown value; use smallest or fastest'),
    (
        ["--variants", "int8-dynamic", "--require-variants", "fp16"],
        '--require-variants "fp16": fp16 is not in --variants; add it to --variants',
    ),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_a_bad_variant_option_is_one_error_line_and_exit_2_with_nothing_written(
    arguments: list[str], message: str, tmp_path: Path, run_cli
) -> None:
    model = tmp_path / "model.skops"
    model.write_bytes(b"not read: the options are refused first")
    result = run_cli("--model-path", str(model), *arguments)
    assert result.code == 2
    assert result.errors == f"error: {message}\n"
    assert "Traceback" not in result.stderr
    assert result.written() == []


def _settings(tmp_path: Path, **values: str) -> ConversionRequest:
    (tmp_path / "m.skops").write_bytes(b"")
    return ConversionRequest.from_mapping({"model-path": str(tmp_path / "m.skops"), **values})


def test_unset_tolerance_keys_keep_their_defaults_and_optimized_takes_the_fp32_tolerance(tmp_path: Path) -> None:
    request = _settings(
        tmp_path,
        **{
            "variants": "int8-dynamic, fp16,optimized,fp16",
            "variant-tolerance": "FP16:atol=0.5 ; int8-dynamic:label-agreement=0.9,rtol=.1",
            "rtol": "1e-4",
            "atol": "2e-4",
        },
    )
    settings = request.variants
    assert settings.names == ("optimized", "fp16", "int8-dynamic")  # each once, in a fixed order
    assert settings.tolerance("fp16", request.rtol, request.atol) == Tolerance(
        rtol=1e-2, atol=0.5, label_agreement=0.99
    )
    assert settings.tolerance("int8-dynamic", request.rtol, request.atol) == Tolerance(
        rtol=0.1, atol=0.1, label_agreement=0.9
    )
    assert settings.tolerance("optimized", request.rtol, request.atol) == Tolerance(
        rtol=1e-4, atol=2e-4, label_agreement=1.0
    )
    assert settings.pick == "smallest"
    assert "--variants 'int8-dynamic, fp16,optimized,fp16'" in request.command_line()


def test_no_variants_by_default(tmp_path: Path) -> None:
    assert _settings(tmp_path).variants.names == ()
