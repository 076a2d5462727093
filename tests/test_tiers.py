"""The fast tier stays fast: collecting imports no framework, and a test that imports one is in the slow tier.

Each check runs pytest in a child process, which starts with no framework imported.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.tiers import FRAMEWORKS

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

COLLECT = f"""
import json, sys
import pytest
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[1:]])
print(json.dumps({{"code": int(code), "imported": sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)}}))
"""


def _pytest(code: str, *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_collecting_every_test_imports_no_framework() -> None:
    done = _pytest(COLLECT, str(TESTS))

    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"code": 0, "imported": []}, done.stdout[-3000:]


def test_no_test_module_imports_another_test_module_or_the_conftest() -> None:
    offenders = []
    for module in sorted(TESTS.rglob("test_*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                last = name.rsplit(".", 1)[-1]
                if name.startswith("tests") and (last.startswith("test_") or last == "conftest"):
                    offenders.append(f"{module.relative_to(ROOT)} imports {name}")
    assert offenders == []


# A stand-in framework: importing it is as good as importing torch, for the check, and takes no time.
FAKE_FRAMEWORK = "xgboost"
TIER_TESTS = f"""
import pytest

from tests.fixtures.tiers import model_fixture


@model_fixture
def model():
    import {FAKE_FRAMEWORK}  # noqa: F401


def test_parses_an_option():
    assert int("3") == 3


def test_converts_without_saying_so():
    import {FAKE_FRAMEWORK}  # noqa: F401


@pytest.mark.converts
def test_converts_and_says_so():
    import {FAKE_FRAMEWORK}  # noqa: F401


def test_uses_a_model_fixture(model):
    pass
"""
RUN = "import sys, pytest; sys.exit(pytest.main(sys.argv[1:]))"


def _tier_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run TIER_TESTS with the repository's conftest, a stand-in framework on the path."""
    (tmp_path / "tier_tests").mkdir()
    (tmp_path / "tier_tests" / "conftest.py").write_text('pytest_plugins = ["tests.fixtures.tiers"]\n')
    (tmp_path / "tier_tests" / "test_tier_examples.py").write_text(TIER_TESTS)
    (tmp_path / f"{FAKE_FRAMEWORK}.py").write_text("")
    python_path = os.pathsep.join([str(tmp_path), str(ROOT)])
    return _pytest(
        RUN, "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestUnknownMarkWarning", "--rootdir", str(tmp_path),
        "tier_tests", *args, cwd=tmp_path, env={"PYTHONPATH": python_path},
    )  # fmt: skip


def test_a_test_that_imports_a_framework_unmarked_fails_in_the_fast_tier(tmp_path: Path) -> None:
    done = _tier_run(tmp_path, "-m", "not converts")

    assert done.returncode == 1, done.stdout
    # the unmarked test passes its call, then fails its teardown: pytest counts it in both
    assert "2 passed, 2 deselected, 1 error" in done.stdout
    assert (
        f"tier_tests/test_tier_examples.py::test_converts_without_saying_so imported {FAKE_FRAMEWORK} but is not "
        "marked converts: mark it (@pytest.mark.converts), or build its model with a model_fixture, so that make "
        "test-fast leaves it out"
    ) in done.stdout


def test_the_slow_tier_holds_the_marked_tests_and_those_using_a_model_fixture(tmp_path: Path) -> None:
    done = _tier_run(tmp_path, "-m", "converts", "-v")

    assert done.returncode == 0, done.stdout
    assert "test_converts_and_says_so PASSED" in done.stdout
    assert "test_uses_a_model_fixture PASSED" in done.stdout
    assert "2 passed, 2 deselected" in done.stdout
