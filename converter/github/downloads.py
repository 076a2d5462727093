"""The reports taken out of a downloaded artifact zip, bounded: what merge reads from other jobs.

An artifact comes from a job of this run, and that job converted a model from the repository:
its zip is read as hostile. The zip is bounded as a model archive is (``archives.check_members``:
members, inflated size); only regular members named ``*.report.json`` are taken, at most
``MAX_REPORT_FILES`` of at most ``MAX_REPORT_BYTES`` each, read no further than that; each is
written under its base name (a path in a member's name, ``../`` included, is dropped) to a new
temporary file renamed into place, so a link already at that name is replaced, never followed.
"""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

from converter.archives import check_members
from converter.atomic import write_file
from converter.errors import ConversionError

REPORT_SUFFIX = ".report.json"
MAX_REPORT_FILES = 16  # a matrix job's artifact holds one model's report
MAX_REPORT_BYTES = 32 * 1024**2  # a report of 10,000 outputs at two batch sizes is about 10 MiB


def extract_reports(data: bytes, artifact: str, target: Path) -> list[Path]:
    """Write the reports in the zip ``data`` of ``artifact`` into the folder ``target``; their paths."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ConversionError(f'artifact "{artifact}" is not a zip archive') from None
    with archive:
        members = archive.infolist()
        check_members(members, len(data), f'artifact "{artifact}"', "its zip", hint="upload it again")
        reports = _report_members(members, artifact)
        if not reports:
            return []
        if target.is_symlink():
            raise ConversionError(f"{target} is a symbolic link; this tool never writes through a link")
        target.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        for member in reports:
            base = member.filename.rsplit("/", 1)[-1]
            if base not in written:
                written[base] = write_file(target / base, _read(archive, member, artifact))
    return list(written.values())


def _report_members(members: list[zipfile.ZipInfo], artifact: str) -> list[zipfile.ZipInfo]:
    """The regular members named *.report.json, the shallowest first; at most MAX_REPORT_FILES."""
    found = [m for m in members if m.filename.endswith(REPORT_SUFFIX) and _is_regular(m)]
    found.sort(key=lambda m: (m.filename.count("/"), m.filename))
    if len(found) > MAX_REPORT_FILES:
        raise ConversionError(
            f'artifact "{artifact}" holds {len(found):,} report files, more than the {MAX_REPORT_FILES} '
            "merge reads from one artifact"
        )
    for member in found:
        if member.file_size > MAX_REPORT_BYTES:
            raise ConversionError(
                f'artifact "{artifact}": {member.filename!r} would inflate to {member.file_size:,} bytes, more than '
                f"the {MAX_REPORT_BYTES // 1024**2} MiB a report may take"
            )
    return found


def _is_regular(member: zipfile.ZipInfo) -> bool:
    """Not a folder, and not a symbolic link (the mode a Unix zip keeps in the high bits)."""
    kind = stat.S_IFMT(member.external_attr >> 16)  # 0: no Unix mode recorded (zipfile's writestr, Windows)
    return not member.is_dir() and kind in (0, stat.S_IFREG)


def _read(archive: zipfile.ZipFile, member: zipfile.ZipInfo, artifact: str) -> bytes:
    try:
        with archive.open(member) as handle:
            data = handle.read(MAX_REPORT_BYTES + 1)  # zipfile stops at the declared size; this at ours
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ConversionError(f'artifact "{artifact}": {member.filename!r} cannot be read ({exc})') from None
    if len(data) > MAX_REPORT_BYTES:
        raise ConversionError(f'artifact "{artifact}": {member.filename!r} is over {MAX_REPORT_BYTES:,} bytes')
    return data
