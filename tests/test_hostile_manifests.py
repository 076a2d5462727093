"""Manifests from the repository: whatever YAML they hold is one error line, never a traceback or a blow-up."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.fixtures.runner import read_as_runner


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("? [a, b]\n: 1\n", "error: m.yml:1: a key must be a name; write option: value\n"),
        ("models:\n  - ? {a: 1}\n    : x\n", "error: m.yml:2: a key must be a name; write option: value\n"),
        (
            "[" * 50_000 + "]" * 50_000,
            "error: m.yml nests lists or mappings too deeply to read; a manifest is two levels deep\n",
        ),
        (
            b"models:\n  - \xff: x\n",
            "error: m.yml is not UTF-8 text (invalid start byte at byte 12); save it as UTF-8\n",
        ),
    ],
    ids=["list-key", "mapping-key", "deep", "not-utf8"],
)
def test_a_manifest_yaml_cannot_read_is_one_error_line(run_cli, tmp_path: Path, text: str | bytes, error: str) -> None:
    manifest = tmp_path / "m.yml"
    manifest.write_bytes(text if isinstance(text, bytes) else text.encode())

    result = run_cli("plan", "--model-path", str(manifest))

    assert (result.code, result.errors) == (2, error)


def test_a_folder_named_like_a_manifest_is_one_error_line(run_cli, tmp_path: Path) -> None:
    (tmp_path / "models.yml").mkdir()

    result = run_cli("--model-path", str(tmp_path / "models.yml"))

    assert (result.code, result.errors) == (
        2,
        "error: models.yml is a folder, not a manifest; give a manifest file, or a model file\n",
    )


def test_a_manifest_too_big_to_be_one_is_refused_before_it_is_read(run_cli, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yml"
    with manifest.open("wb") as handle:
        handle.truncate(16 * 1024**2 + 1)  # sparse: its size is all that is read

    result = run_cli("plan", "--model-path", str(manifest))

    assert (result.code, result.errors) == (
        2,
        "error: m.yml is 16,777,217 bytes, more than the 16 MiB a manifest may take; list fewer models per manifest\n",
    )


def test_a_billion_laughs_is_never_expanded(run_cli, tmp_path: Path) -> None:
    # The manifest is composed, not constructed (PyYAML's SafeLoader would build 9**12 strings):
    # an alias is the node it names, and an option's value must be one scalar.
    lines = ["defaults:", "  rtol: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  seed{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 13)]
    (tmp_path / "m.yml").write_text("\n".join([*lines, "models: *a12", ""]))

    started = time.perf_counter()
    result = run_cli("plan", "--model-path", str(tmp_path / "m.yml"))

    assert time.perf_counter() - started < 10
    assert (result.code, result.errors) == (2, "error: m.yml:2: rtol must be a single value; write it as text\n")


def test_plan_prints_no_workflow_command_from_a_model_path(run_cli, tmp_path: Path) -> None:
    (tmp_path / "m ##[warning]x.skops").write_bytes(b"")
    (tmp_path / "m.yml").write_text("models:\n  - name: m\n    model-path: 'm ##[warning]x.skops'\n")

    result = run_cli("plan", "--model-path", str(tmp_path / "m.yml"))

    assert result.code == 0, result.errors
    assert read_as_runner(result.stdout).commands == []
    assert json.loads(result.stdout) == {"include": [{"name": "m", "model": "m ##[warning]x.skops"}]}


def test_a_select_that_names_no_model_lists_twenty_names_not_all(run_cli, tmp_path: Path) -> None:
    for number in range(30):
        (tmp_path / f"m{number:02}.skops").touch()

    result = run_cli("--model-path", f"{tmp_path}/*.skops", "--select", "nope")  # refused before converting

    names = ", ".join(f"m{number:02}" for number in range(20))
    assert (result.code, result.errors) == (
        2,
        f'error: --select "nope": no model has that name; use one of {names} ... (30 in all)\n',
    )
