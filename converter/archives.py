"""Bounds on what a zip archive from the user may inflate to, checked before anything reads it.

Model formats that are zip archives (.keras, .skops, .pt2, a TorchScript or torch.save zip) and
.npz sample data are read member by member by their frameworks, which trust the sizes in the zip's
central directory. A 1.5 MB file whose members claim 1.5 GB is a zip bomb: Keras would inflate
it in memory. The declared sizes are what every reader inflates to (Python's zipfile and
PyTorch's reader stop at the declared size), so checking them bounds what is read.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from converter.errors import UserError

# Weights barely compress (float noise): a real model file inflates to about its own size. Small
# members (JSON configs, pickled metadata) compress well, so the first MiBs are free.
MAX_INFLATE_RATIO = 100
FREE_INFLATED_BYTES = 64 * 1024**2
MAX_MEMBERS = 100_000


def inflated_limit(compressed_bytes: int) -> int:
    """The most bytes an archive of ``compressed_bytes`` may inflate to."""
    return FREE_INFLATED_BYTES + MAX_INFLATE_RATIO * compressed_bytes


def check_archive_bounds(path: Path, what: str) -> None:
    """Refuse (exit 2) an archive whose members would inflate beyond ``inflated_limit``.

    ``what`` names the role in the message, e.g. "--sample-data" or the model file's name.
    A file that is not a zip is left to its reader, which says what is wrong.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return
    check_members(members, path.stat().st_size, what, path.name)


def check_members(
    members: list[zipfile.ZipInfo], compressed: int, what: str, name: str, hint: str | None = None
) -> None:
    """Refuse (exit 2) the members of a zip of ``compressed`` bytes, on disk or in memory, that
    are too many or would inflate beyond ``inflated_limit``; ``hint`` replaces the model's fix."""
    if len(members) > MAX_MEMBERS:
        raise UserError(
            f"{what}: {name} is a zip archive of {len(members):,} members, more than the {MAX_MEMBERS:,} "
            "this tool reads",
            hint or "give the model as saved by its framework",
        )
    inflated = sum(member.file_size for member in members)
    limit = inflated_limit(compressed)
    if inflated > limit:
        largest = max(members, key=lambda m: m.file_size)
        raise UserError(
            f"{what}: {name} would inflate from {compressed:,} to {inflated:,} bytes "
            f"({largest.filename!r} alone to {largest.file_size:,}); this tool reads at most "
            f"{FREE_INFLATED_BYTES // 1024**2} MiB plus {MAX_INFLATE_RATIO}x the file's size from an archive, "
            "so it looks like a zip bomb",
            hint or "save the model again with its framework (weights do not compress that well)",
        )
