"""Files a bot reads (child bots, CSV files): inside the folders the run allows, regular files
only, and never more than a size limit — counted while reading, not asked of the file system.

The folder of the top-level bot is always allowed; the person running the bot may allow more
(``adobot run --allow-dir DIR``). A path is resolved first, symbolic links included, so neither
``../`` nor a link leads out.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

from adobot.errors import InvalidInput


def confine(path: str | os.PathLike[str], base: Path, allowed: Iterable[Path],
            field: str = "path") -> Path:
    """``path`` (relative to ``base``) resolved, if it lies inside one of ``allowed``."""
    given = Path(path)
    try:
        resolved = (given if given.is_absolute() else base / given).resolve()
    except (UnicodeEncodeError, ValueError):  # a lone surrogate ("\ud800" in YAML), a NUL
        raise InvalidInput(f"{field}: {str(path).encode('utf-8', 'backslashreplace').decode()!r}"
                           " is not a file name this system can open",
                           "Write the path in plain characters.", field=field) from None
    folders = [Path(folder).resolve() for folder in allowed]
    if not any(resolved == folder or folder in resolved.parents for folder in folders):
        raise InvalidInput(
            f"{field}: {str(path)!r} is outside the bot's folder ({folders[0] if folders else base})"
            f"{' and the folders allowed' if len(folders) > 1 else ''}; it resolves to "
            f"{resolved}", "A bot reads files in its own folder only. The person running it "
            "may allow another folder: `adobot run BOT --allow-dir DIR`.", field=field)
    return resolved


def read_regular(path: Path, limit: int, what: str, field: str = "path") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes: a device, a FIFO or a folder is
    refused before reading, and reading stops at the limit, whatever the file claims to be."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise  # the caller says what is missing, in its own words
        raise InvalidInput(f"{field}: {what} {str(path)!r} cannot be read: {exc.strerror}",
                           field=field) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidInput(f"{field}: {what} {str(path)!r} is not a regular file",
                           "Give a file, not a device, a pipe or a folder.", field=field)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(f"{field}: {what} {str(path)!r} is larger than "
                           f"{_size(limit)}", "Split it, or trim it.", field=field)
    return data


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit // 2**10} KiB"
