"""Command-line front end: ``onnx-convert --model-path model.skops``.

The flags are generated from ``converter.request.OPTIONS``, the same table the action reads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from converter import __version__, isolated
from converter.batch import IndexRow, merge_reports
from converter.child_process import Options
from converter.errors import EXIT_OK, EXIT_USAGE, ConverterError, UserError, exit_code_for, exit_code_for_many
from converter.escape import inert, printable
from converter.github.matrix import plan
from converter.manifest import BATCH_OPTIONS, is_batch, load_entries
from converter.request import OPTIONS, ConversionRequest

Log = Callable[[str], None]
# Every line printed goes through printable(): names come from the repository, and under
# `docker run` in a workflow step the runner reads our output for workflow commands.

DEBUG_VARIABLE = "ONNX_CONVERT_DEBUG"


COMMANDS = ("convert", "plan", "merge")
EXIT_CODES = "Exit codes: 0 converted and within tolerance, 1 conversion or validation failed, 2 bad input."
Commands = argparse._SubParsersAction  # what add_subparsers returns (typeshed names it so)


def build_parser() -> argparse.ArgumentParser:
    """``onnx-convert`` and its commands, each with its own options; ``main`` makes convert the default."""
    parser = argparse.ArgumentParser(
        prog="onnx-convert",
        usage="onnx-convert [convert|plan|merge] --model-path PATH [options]",
        description=(
            "Convert a PyTorch, TensorFlow/Keras or scikit-learn model to ONNX and validate it in onnxruntime. "
            "Without a command, onnx-convert converts; onnx-convert COMMAND --help lists a command's options."
        ),
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"onnx-convert {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help=f"show tracebacks (also {DEBUG_VARIABLE}=1)")
    commands = parser.add_subparsers(dest="command", metavar="{convert,plan,merge}", prog="onnx-convert")
    _add_convert(commands, common)
    _add_plan(commands, common)
    _add_merge(commands, common)
    return parser


def _add_convert(commands: Commands, common: argparse.ArgumentParser) -> None:
    convert = commands.add_parser(
        "convert",
        parents=[common],
        help="convert and validate a model, or every model of a manifest or glob (the default command)",
        description=(
            "Convert a model to ONNX and validate it in onnxruntime. --model-path may name a manifest "
            "(onnx-models.yml/.json) or a glob to convert many models."
        ),
        epilog=EXIT_CODES,
    )
    for option in OPTIONS:
        default = f" (default: {option.default})" if option.default else ""
        convert.add_argument(f"--{option.name}", dest=option.name, metavar="VALUE", help=option.help + default)
    for option in BATCH_OPTIONS:
        convert.add_argument(f"--{option.name}", dest=option.name, metavar="VALUE", help=option.help)
    convert.add_argument("--quiet", action="store_true", help="print only the result lines")


def _add_plan(commands: Commands, common: argparse.ArgumentParser) -> None:
    plan_command = commands.add_parser(
        "plan",
        parents=[common],
        help="print a GitHub Actions matrix for a manifest: one job per model",
        description='Print a GitHub Actions matrix, {"include": [{"name": ..., "model": ...}, ...]}, for a manifest.',
        epilog=EXIT_CODES,
    )
    plan_command.add_argument(
        "--model-path", dest="model-path", metavar="VALUE", help="The manifest (onnx-models.yml/.json) or glob to plan."
    )


def _add_merge(commands: Commands, common: argparse.ArgumentParser) -> None:
    merge = commands.add_parser(
        "merge",
        parents=[common],
        help="write the index of the per-model reports found under --output-dir",
        description="Write index.md and index.json for the *.report.json files found under --output-dir.",
        epilog=EXIT_CODES,
    )
    merge.add_argument(
        "--output-dir",
        dest="output-dir",
        metavar="VALUE",
        help="Directory holding the per-model reports; the index is written there. (default: onnx-models)",
    )
    merge.add_argument("--quiet", action="store_true", help="print only the result lines")


def main(argv: Sequence[str] | None = None, own_process: bool | None = None) -> int:
    """Run the command ``argv`` (default: this process's command line); returns the exit code.

    The program (the console script, ``python -m converter``, the container) owns its process, so
    each conversion runs in a child process that a crash ends alone (converter/isolated.py), and
    every line the child writes is made inert for GitHub's runner. Called as a function
    (``main([...])``, as the tests do) it converts in this process: forking someone else's process
    (a notebook with threads) is not safe. ``own_process`` says which, when argv is given.
    """
    own_process = argv is None if own_process is None else own_process
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help", "--version"):
        argv.insert(0, "convert")  # the default command: onnx-convert --model-path model.skops
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    command = args.pop("command")
    debug = args.pop("debug") or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0", "false")
    child = Options(line_filter=inert, debug=debug) if own_process else None
    if command != "merge" and not args.get("model-path"):
        parser.print_usage(sys.stderr)
        print("error: --model-path is required; give the model file or directory to convert", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run(command, args, child)
    except ConverterError as exc:
        if debug:
            raise
        print(printable(f"error: {exc.one_line()}"), file=sys.stderr)
        return exc.exit_code


def _run(command: str, args: dict[str, Any], child: Options | None) -> int:
    if command == "plan":
        entries = load_entries({"model-path": args["model-path"]})
        # JSON escapes no "##[" (the runner's legacy command marker, anywhere in a line): a model path may hold it
        print(json.dumps(plan(entries, str(args["model-path"]))).replace("##[", "##\\u005b"))
        return EXIT_OK
    quiet = args.pop("quiet")
    if command == "merge":
        return _merge(Path(args["output-dir"] or "onnx-models"), quiet)
    select = args.pop("select") or ""
    log = (lambda _m: None) if quiet else _log
    if select or is_batch(args["model-path"]):
        return _convert_many(args, select, log, quiet, child)
    return _convert_one(args, log, quiet, child)


def _convert_one(args: dict[str, str | None], log: Log, quiet: bool, child: Options | None) -> int:
    request = ConversionRequest.from_mapping(args)
    report = isolated.convert(request, log, child)
    print(report.headline())
    if not quiet:
        print(printable(f"reports: {report.reports['markdown']}, {report.reports['json']}"))
        if not report.passed and not request.fail_on_mismatch and report.status == "failed":
            print("note: --fail-on-mismatch false, so this failure exits 0")
    return exit_code_for(report.status, request.fail_on_mismatch)


def _convert_many(args: dict[str, str | None], select: str, log: Log, quiet: bool, child: Options | None) -> int:
    entries = load_entries(args, select=select)  # every entry is checked before the first conversion
    index = isolated.run_many(entries, log, lambda row: print(_row_line(row), flush=True), child)
    output_dir = Path(args.get("output-dir") or "onnx-models")
    markdown, _ = index.write(output_dir)
    if not quiet:
        print(printable(f"index: {markdown} ({sum(r.passed for r in index.rows)} of {len(index.rows)} passed)"))
    return exit_code_for_many((r.status, e.request.fail_on_mismatch) for r, e in zip(index.rows, entries, strict=True))


def _merge(output_dir: Path, quiet: bool) -> int:
    reports = sorted(p for p in output_dir.rglob("*.report.json"))
    if not reports:
        raise UserError(f'--output-dir "{output_dir}" holds no *.report.json', "point it at the downloaded reports")
    index = merge_reports(reports)
    markdown, _ = index.write(output_dir)
    for row in index.rows:
        print(_row_line(row))
    if not quiet:
        print(printable(f"index: {markdown}"))
    return exit_code_for_many((row.status, True) for row in index.rows)


def _row_line(row: IndexRow) -> str:
    verdict = "PASS" if row.passed else "FAIL"
    detail = f"max abs diff {row.max_abs_diff:.3g}" if row.max_abs_diff is not None else ""
    if row.error:
        detail = f"{detail}; {row.error}" if detail else row.error
    return printable(f"{verdict} {row.name} ({row.framework or '?'}): {detail} [{row.seconds:.1f} s]")


def _log(message: str) -> None:
    print(printable(f"onnx-convert: {message}"), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
