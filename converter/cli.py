"""Command-line front end: ``onnx-convert --model-path model.skops``.

The flags are generated from ``converter.request.OPTIONS``, the same table the action reads.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from converter import __version__
from converter.errors import ConverterError, exit_code_for
from converter.request import OPTIONS, ConversionRequest

DEBUG_VARIABLE = "ONNX_CONVERT_DEBUG"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onnx-convert",
        description="Convert a PyTorch, TensorFlow/Keras or scikit-learn model to ONNX and validate it in onnxruntime.",
        epilog="Exit codes: 0 converted and within tolerance, 1 conversion or validation failed, 2 bad input.",
    )
    for option in OPTIONS:
        default = f" (default: {option.default})" if option.default else ""
        parser.add_argument(f"--{option.name}", dest=option.name, metavar="VALUE", help=option.help + default)
    parser.add_argument("--debug", action="store_true", help=f"show tracebacks (also {DEBUG_VARIABLE}=1)")
    parser.add_argument("--quiet", action="store_true", help="print only the result line")
    parser.add_argument("--version", action="version", version=f"onnx-convert {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    debug = args.pop("debug") or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0", "false")
    quiet = args.pop("quiet")
    if not args.get("model-path"):
        parser.print_usage(sys.stderr)
        print("error: --model-path is required; give the model file or directory to convert", file=sys.stderr)
        return 2
    try:
        from converter.pipeline import convert

        request = ConversionRequest.from_mapping(args)
        report = convert(request, log=(lambda _m: None) if quiet else _log)
    except ConverterError as exc:
        if debug:
            raise
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    print(report.headline())
    if not quiet:
        print(f"reports: {report.reports['markdown']}, {report.reports['json']}")
        if not report.passed and not request.fail_on_mismatch and report.status == "failed":
            print("note: --fail-on-mismatch false, so this failure exits 0")
    return exit_code_for(report.passed, request.fail_on_mismatch) if report.status != "error" else 1


def _log(message: str) -> None:
    print(f"onnx-convert: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
