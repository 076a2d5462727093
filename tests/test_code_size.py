"""Every function in converter/ fits on a screen: at most 60 lines and 5 parameters.

Lines are counted from the function's first decorator (or its ``def``) to its last line, both
included, as ``ast`` reports them: docstring, comments and blank lines inside count, nested
functions count towards the function that holds them (and are checked on their own too).
Parameters are every named parameter, positional, keyword-only, ``*args`` and ``**kwargs``, except
``self``, ``cls`` and names that start with ``_``: those a function must accept but does not use (an
override of a library's method, as github/retry.py's ``Retry.increment``), which ruff's PLR0913
does not count either (its dummy-variable names). ruff checks the same parameter rule as you type.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CONVERTER = Path(__file__).resolve().parent.parent / "converter"
MAX_LINES = 60
MAX_PARAMETERS = 5

Function = ast.FunctionDef | ast.AsyncFunctionDef


def functions(path: Path) -> list[Function]:
    return [n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, Function)]


def lines_of(node: Function) -> int:
    first = min([d.lineno for d in node.decorator_list] + [node.lineno])
    assert node.end_lineno is not None
    return node.end_lineno - first + 1


def parameters_of(node: Function) -> list[str]:
    args = node.args
    names = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return [name for name in names if name not in ("self", "cls") and not name.startswith("_")]


def oversized(path: Path) -> list[str]:
    found = []
    for node in functions(path):
        lines, parameters = lines_of(node), len(parameters_of(node))
        if lines > MAX_LINES or parameters > MAX_PARAMETERS:
            where = path.relative_to(CONVERTER.parent)
            found.append(f"{where}:{node.lineno} {node.name}: {lines} lines, {parameters} parameters")
    return found


def test_no_function_in_converter_is_over_60_lines_or_5_parameters() -> None:
    found = [problem for path in sorted(CONVERTER.rglob("*.py")) for problem in oversized(path)]
    assert found == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(a, b, c, d, e):\n    pass\n", []),
        ("def f(a, b, c, d, e, g):\n    pass\n", ["f: 2 lines, 6 parameters"]),
        ("class A:\n    def m(self, a, b, c, d, e):\n        pass\n", []),
        ("def f(*args, **kwargs):\n    pass\n", []),
        ("def f(a, *, b, c, d, e, g):\n    pass\n", ["f: 2 lines, 6 parameters"]),
        ("def f(a, b, c, d, e, _unused):\n    pass\n", []),
        ("@decorator\ndef f():\n" + "    x = 1\n" * 59, ["f: 61 lines, 0 parameters"]),
        ("def f():\n" + "    x = 1\n" * 59, []),
    ],
    ids=[
        "five",
        "six",
        "self-not-counted",
        "star-args",
        "keyword-only",
        "underscore-not-counted",
        "61-lines-with-decorator",
        "60-lines",
    ],
)
def test_the_rule_counts_what_it_says(tmp_path: Path, source: str, expected: list[str]) -> None:
    path = tmp_path / "module.py"
    path.write_text(source, encoding="utf-8")
    found = [
        f"{node.name}: {lines_of(node)} lines, {len(parameters_of(node))} parameters"
        for node in functions(path)
        if lines_of(node) > MAX_LINES or len(parameters_of(node)) > MAX_PARAMETERS
    ]
    assert found == expected
