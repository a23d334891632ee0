"""The one write layer: every file robustkit saves is written whole or not at all, and a full
disk or a folder that cannot be written ends in one line saying what and how much.

A file goes to a temporary name beside it, is synced, then renamed over the target (a rename
within a folder is atomic: a reader, or a process killed mid-write, sees the old file or the new
one, never half of one). The few ``OSError``s that mean "this disk will not take it" (full, over
quota, read-only, forbidden) become :class:`UnwritableError`, a :class:`RobustkitError` naming
the file and the space it needs; every other error propagates unchanged.
"""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from robustkit.errors import RobustkitError
from robustkit.interrupts import uninterrupted

TEMP_SUFFIX = ".tmp"
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})  # more room would let the write through
FORBIDDEN = frozenset({errno.EROFS, errno.EACCES})  # the folder itself refuses writes


class UnwritableError(RobustkitError):
    """A write refused by the disk: full, over quota, read-only or forbidden."""

    def __init__(self, path: Path, size: int, reason: OSError) -> None:
        self.path = path
        self.size = size
        self.errno = reason.errno
        cause = reason.strerror or os.strerror(reason.errno or 0)
        if reason.errno in NO_SPACE:
            fix = f"it needs about {human_size(size)}: free that much space there"
        else:
            fix = f"make {path.parent} writable"
        super().__init__(f"could not write {path} ({cause}): {fix}")


def human_size(size: int) -> str:
    """``1234567`` as ``1.2 MB`` (decimal units, as ``df -H`` shows them)."""
    if size < 1000:
        return f"{size} B"
    value = size / 1000
    for unit in ("kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


@contextmanager
def refused_writes(path: Path, size: int) -> Iterator[None]:
    """Turn a full disk, an exceeded quota or a read-only or forbidden folder met while writing
    ``size`` bytes to ``path`` into :class:`UnwritableError`."""
    try:
        yield
    except OSError as err:
        if err.errno not in NO_SPACE | FORBIDDEN:
            raise
        raise UnwritableError(path, size, err) from None


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename); a first SIGINT or
    SIGTERM waits for the rename (:func:`~robustkit.interrupts.uninterrupted`)."""
    temp = path.with_name(f"{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    try:
        with uninterrupted(), refused_writes(path, len(data)):
            _write_file(temp, data)
            os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)  # only there when the write failed


def torch_bytes(content: Any) -> bytes:
    """What ``torch.save`` writes for ``content`` (tensors and plain types), in memory: the write
    layer then knows its size."""
    import torch

    buffer = io.BytesIO()
    torch.save(content, buffer)
    return buffer.getvalue()


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def _write_file(path: Path, data: bytes) -> None:
    """The system calls of a write: the bytes, flushed and synced to disk."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
