"""The artifact's zip is the same bytes for the same files, whenever and in whatever order they were written."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from converter.errors import UserError
from converter.github.artifacts import ArtifactClient, RuntimeContext
from tests.fixtures.artifact_server import FakeResultsServer


def upload(server: FakeResultsServer, name: str, files: list[Path], root: Path) -> bytes:
    context = RuntimeContext.from_env(server.env())
    assert context is not None
    ArtifactClient(context).upload(name, files, root=root)
    data = server.artifacts[name].committed
    assert data is not None
    return data


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, list[Path]]:
    root = tmp_path / "onnx-models"
    (root / "knn").mkdir(parents=True)
    files = [root / "knn" / "knn.onnx", root / "knn" / "knn.report.json", root / "index.md"]
    for number, path in enumerate(files):
        path.write_bytes(os.urandom(1000) + b"x" * 5000 * number)
    return root, files


def test_the_same_files_zip_to_the_same_bytes_at_other_times_modes_and_orders(
    server, folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    root, files = folder
    first = upload(server, "first", files, root)
    for number, path in enumerate(files):  # written again later, with other permissions
        os.utime(path, (1_700_000_000 + number, 1_700_000_000 + number))
        path.chmod(0o600 if number else 0o755)

    second = upload(server, "second", list(reversed(files)), root)

    assert first == second
    infos = zipfile.ZipFile(io.BytesIO(first)).infolist()
    assert [i.filename for i in infos] == ["index.md", "knn/knn.onnx", "knn/knn.report.json"]
    assert {(i.date_time, i.external_attr >> 16, i.create_system) for i in infos} == {
        ((1980, 1, 1, 0, 0, 0), 0o100644, 3)
    }


def test_source_date_epoch_sets_the_members_time(server, folder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # 2023-11-14 22:13:20 UTC

    data = upload(server, "dated", folder[1], folder[0])

    assert {i.date_time for i in zipfile.ZipFile(io.BytesIO(data)).infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_a_source_date_epoch_that_is_not_a_number_is_refused(server, folder, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")

    with pytest.raises(UserError) as refused:
        upload(server, "dated", folder[1], folder[0])

    assert refused.value.one_line() == (
        'SOURCE_DATE_EPOCH "yesterday": not a number of seconds since 1970; set it to an integer such as the last '
        "commit's time ($(git log -1 --format=%ct)), or unset it"
    )
