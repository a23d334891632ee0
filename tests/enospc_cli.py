"""``python tests/enospc_cli.py audit ...``: the robustkit command line on a disk that fills up.

``ROBUSTKIT_ENOSPC=PATTERN:K`` makes the K-th write of a file whose name matches the glob PATTERN
fail as a full disk does: half of its bytes reach the temporary file, then the write raises
OSError(ENOSPC). The patch sits under robustkit's write layer (``robustkit.files._write_file``,
the system calls of every write), so everything above it runs as it would on a real full disk.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import sys
from pathlib import Path

import robustkit.files
from robustkit.cli import main

pattern, _, nth = os.environ["ROBUSTKIT_ENOSPC"].rpartition(":")
real_write = robustkit.files._write_file
seen = 0


def full_disk(path: Path, data: bytes) -> None:
    global seen
    target = path.name.rsplit(".", 2)[0]  # NAME.PID.tmp
    if fnmatch.fnmatch(target, pattern):
        seen += 1
        if seen == int(nth):
            real_write(path, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    real_write(path, data)


robustkit.files._write_file = full_disk
sys.argv[0] = "robustkit"
main()
