"""CPU tensor memory: keep freed blocks in the process heap instead of handing them back to the
operating system on every free.

PyTorch's CPU allocator asks the C library for each activation and gradient buffer. glibc serves
blocks above its mmap threshold (128 KiB at first) with fresh ``mmap`` pages and unmaps them on
free, so every layer of every forward and backward pass pays page faults again. Raising the
thresholds keeps those pages mapped (Intel's PyTorch CPU guide gets the same effect by preloading
jemalloc or tcmalloc); what it saves is measured on the Benchmarks page of the documentation and
checked by ``tests/test_cpu_memory.py``. The cost is memory the process keeps after a free; it is
reused by the next batch, which has the same shapes.
"""

from __future__ import annotations

import ctypes
import platform

# mallopt(3) parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper limit for this parameter on 64-bit machines
TRIM_THRESHOLD = 256 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True when they were set (False
    on a C library without ``mallopt``, where nothing changes)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
