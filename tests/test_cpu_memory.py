"""The CPU allocator setting the CLI applies: freed tensor buffers are reused by the next batch
instead of being handed back to the kernel and faulted in again."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import resource, sys, torch
from robustkit.cpu_memory import keep_freed_memory
from robustkit.models.architectures import FastMnistCNN
if sys.argv[1] == "kept":
    assert keep_freed_memory()
torch.set_num_threads(1)
model, x = FastMnistCNN().eval(), torch.rand(450, 1, 28, 28)
with torch.no_grad():
    model(x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        model(x)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    """Minor page faults over 50 forward passes of a 450-image batch, in a fresh process."""
    run = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return int(run.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_tensor_memory_is_reused_instead_of_faulted_in_again():
    default, kept = page_faults("default"), page_faults("kept")
    assert kept * 10 < default, (kept, default)
