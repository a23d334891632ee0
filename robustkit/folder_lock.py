"""One audit at a time per results folder: a lock file naming the PID, host and start time of the
audit that writes there.

The lock is an ``flock`` on ``OUT/robustkit.lock``, which the kernel releases when its process
ends, however it ends (``kill -9`` included): a lock file that nobody holds was left by an audit
that is gone, and the next one takes it over, saying whose it was. A filesystem without file
locks (some network mounts) gets a warning and no lock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from robustkit.errors import RobustkitError
from robustkit.files import refused_writes

log = logging.getLogger(__name__)

LOCK_NAME = "robustkit.lock"
NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL})  # flock not supported


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a folder's lock."""

    pid: int
    host: str
    started: str
    command: str

    def describe(self) -> str:
        return f"PID {self.pid} on {self.host}, started {self.started}"


@contextmanager
def lock_folder(folder: Path, command: str) -> Iterator[Holder | None]:
    """Hold ``folder``'s lock while the block runs (``command`` recorded in it); yields the
    holder of a stale lock taken over, None when the folder was free. A live holder raises
    one line naming it."""
    path = folder / LOCK_NAME
    fd, stale = _acquire(path, command)
    try:
        yield stale
    finally:
        if fd is not None:
            path.unlink(missing_ok=True)  # before the unlock: nobody locks a file on its way out
            os.close(fd)


def running_holder(folder: Path) -> Holder | None:
    """The audit holding ``folder``'s lock now, None when none does."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(fd)
    except OSError as err:
        if err.errno not in NO_LOCKS:
            raise
        return None
    finally:
        os.close(fd)
    return None


def _acquire(path: Path, command: str) -> tuple[int | None, Holder | None]:
    """Lock ``path`` and write this process into it: the file descriptor that holds the lock
    (None without file locks) and the stale holder it replaced."""
    while True:
        with refused_writes(path, 0):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            who = f" ({holder.describe()})" if holder else ""
            raise RobustkitError(
                f"another audit is running in {path.parent}{who}: wait for it to finish or stop "
                "it, or give another --out"
            ) from None
        except OSError as err:
            os.close(fd)
            if err.errno not in NO_LOCKS:
                raise
            log.warning(
                "cannot lock %s (this filesystem has no file locks): make sure no other audit "
                "writes there",
                path.parent,
            )
            return None, None
        if _still_there(fd, path):
            break
        os.close(fd)  # removed by its holder between our open and lock: lock the new one
    stale = _holder(fd)
    me = Holder(
        pid=os.getpid(),
        host=socket.gethostname(),
        started=datetime.now().astimezone().isoformat(timespec="seconds"),
        command=command,
    )
    data = json.dumps(asdict(me)).encode()
    with refused_writes(path, len(data)):
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    return fd, stale


def _still_there(fd: int, path: Path) -> bool:
    """Whether the locked file is still the one at ``path``."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _holder(fd: int) -> Holder | None:
    """The holder recorded in the lock file, None when it is empty or unreadable."""
    try:
        return Holder(**json.loads(os.pread(fd, 4096, 0)))
    except (ValueError, TypeError):
        return None
