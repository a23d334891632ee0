"""One audit over several processes with torch.distributed: the process group torchrun asks for,
this process's rank and its share of the batches.

Under an initialized process group an audit takes the batches whose index is its rank modulo the
world size (each batch is seeded from its own index, so the split changes no number), writes them
to the shared progress folder and waits for the others before the results are assembled.
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist

from robustkit.errors import RobustkitError


def join_torchrun(device: str | None) -> str | None:
    """Under torchrun (WORLD_SIZE > 1), join its process group and return this rank's device:
    cuda:LOCAL_RANK with NCCL when CUDA is there and ``device`` is unset or ``cuda``, else the
    CPU with gloo. Without torchrun, ``device`` unchanged."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device not in (None, "cpu", "cuda"):
        raise RobustkitError(
            f"under torchrun every process takes the GPU of its local rank, so --device {device} "
            "cannot be honoured: give --device cuda or --device cpu"
        )
    if device != "cpu" and torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        device = f"cuda:{local_rank}"
    else:
        dist.init_process_group("gloo")
        device = "cpu"
    atexit.register(dist.destroy_process_group)
    return device


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    """How many processes share the audit (1 without a process group)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Whether this process writes the results (rank 0)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process of the group (nothing to wait for alone)."""
    if dist.is_initialized():
        dist.barrier()


def my_batches(count: int) -> list[int]:
    """The indices of the batches this process attacks: every world-size-th from its rank."""
    return list(range(rank(), count, world_size()))
