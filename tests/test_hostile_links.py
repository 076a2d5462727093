"""A symbolic link committed on the output path is never written through.

In the action nothing below the workspace on the output path may be a link (it is refused when
the folder is about to be written, not only when the input is parsed); in the CLI the user's own
--output-dir may be one, but not the per-model folders a manifest or glob names below it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from converter.errors import UserError
from converter.pipeline import convert
from converter.request import ConversionRequest
from tests.fixtures.tiers import model_fixture

MANIFEST = "models:\n  - name: knn\n    model-path: models/iris.skops\n"
FIX = "remove the link, or give an output directory that is a plain folder"


@model_fixture
def workspace(tmp_path: Path, iris_skops: Path) -> Path:
    ws = tmp_path / "workspace"
    (ws / "models").mkdir(parents=True)
    (ws / "models" / "iris.skops").write_bytes(iris_skops.read_bytes())
    return ws


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside-the-workspace"
    folder.mkdir()
    return folder


def test_a_link_at_a_models_folder_in_the_action_is_refused_naming_it(action, workspace: Path, outside: Path) -> None:
    (workspace / "onnx-models.yml").write_text(MANIFEST)
    (workspace / "onnx-models").mkdir()
    (workspace / "onnx-models" / "knn").symlink_to(outside)

    done = action(model_path="onnx-models.yml", upload_artifact="false")

    link = workspace / "onnx-models" / "knn"
    assert done.code == 2
    assert done.commands("error") == [
        f'::error title=onnx-convert::output-dir: "{link}": {link} is a symbolic link (to {outside}), and this tool '
        f"never writes through a link; {FIX}"
    ]
    assert list(outside.iterdir()) == []


def test_a_link_that_appears_after_the_inputs_were_read_is_refused_when_written(workspace: Path, outside: Path) -> None:
    request = ConversionRequest.from_mapping({"model-path": "models/iris.skops", "output-dir": "out"}, workspace)
    (workspace / "out").symlink_to(outside)  # after parsing, before the conversion writes

    with pytest.raises(UserError) as refused:
        convert(request)

    assert refused.value.one_line() == (
        f'--output-dir "{workspace}/out": {workspace}/out is a symbolic link (to {outside}), and this tool never '
        f"writes through a link; {FIX}"
    )
    assert list(outside.iterdir()) == []


def test_the_cli_refuses_a_link_at_a_models_folder_but_not_the_users_own_output_dir(
    run_cli, workspace: Path, outside: Path, tmp_path: Path
) -> None:
    (workspace / "onnx-models.yml").write_text(MANIFEST)
    mine = tmp_path / "my-output"  # the user's own link: followed
    mine.symlink_to(outside)
    assert run_cli("--model-path", str(workspace / "models" / "iris.skops"), "--output-dir", str(mine)).code == 0
    assert sorted(p.name for p in outside.iterdir()) == ["iris.onnx", "iris.report.json", "iris.report.md"]

    (workspace / "onnx-models").mkdir()
    (workspace / "onnx-models" / "knn").symlink_to(outside)
    result = run_cli("--model-path", str(workspace / "onnx-models.yml"), "--output-dir", str(workspace / "onnx-models"))

    link = workspace / "onnx-models" / "knn"
    assert result.code == 2
    assert result.errors == (
        f'error: --output-dir "{link}": {link} is a symbolic link (to {outside}), and this tool never writes through '
        f"a link; {FIX}\n"
    )
