"""The artifact's zip, byte for byte the same for the same files: release pipelines compare digests.

``ZipFile.write`` records each file's modification time and permission bits, and the zip lists
members in the order given. Here members are sorted by name, every one carries the same time
(1980-01-01 00:00, the earliest a zip can hold, or ``SOURCE_DATE_EPOCH`` when set:
https://reproducible-builds.org/specs/source-date-epoch/) and the mode of a plain file
(``-rw-r--r--``, made on Unix), and all are deflated at zlib's default level.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path

from converter.errors import UserError

EARLIEST = (1980, 1, 1, 0, 0, 0)  # DOS time starts in 1980
LATEST_EPOCH = 4354819199  # 2107-12-31 23:59:59 UTC, the last second DOS time holds
MODE = stat.S_IFREG | 0o644
UNIX = 3  # ZipInfo.create_system: what the mode bits mean


def write_zip(archive: Path, members: Mapping[str, Path]) -> list[str]:
    """Zip ``members`` (name in the zip -> file) into ``archive``; the names, in the zip's order."""
    stamp = zip_time(os.environ.get("SOURCE_DATE_EPOCH", ""))
    names = sorted(members)
    with zipfile.ZipFile(archive, "w") as zf:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = UNIX
            info.external_attr = MODE << 16
            info.file_size = members[name].stat().st_size  # so that zipfile picks ZIP64 for a big file itself
            with members[name].open("rb") as source, zf.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)
    return names


def zip_time(source_date_epoch: str) -> tuple[int, int, int, int, int, int]:
    """The time every member carries: SOURCE_DATE_EPOCH (UTC, not before 1980), else 1980-01-01."""
    if not source_date_epoch:
        return EARLIEST
    if not source_date_epoch.isascii() or not source_date_epoch.isdigit():
        raise UserError(
            f'SOURCE_DATE_EPOCH "{source_date_epoch}": not a number of seconds since 1970',
            "set it to an integer such as the last commit's time ($(git log -1 --format=%ct)), or unset it",
        )
    moment = time.gmtime(min(int(source_date_epoch), LATEST_EPOCH))
    stamp = (moment.tm_year, moment.tm_mon, moment.tm_mday, moment.tm_hour, moment.tm_min, moment.tm_sec)
    return max(EARLIEST, stamp)
