"""Turning a user's device name into a torch device this machine has."""

from __future__ import annotations

import torch

from robustkit.errors import RobustkitError


def default_device() -> torch.device:
    """CUDA when there is one, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(value: str | torch.device | None) -> torch.device:
    """``value`` as a torch device, checked against this machine (None: the default device)."""
    if value is None:
        return default_device()
    try:
        parsed = torch.device(value)
    except (RuntimeError, TypeError):
        raise RobustkitError(f"unknown device {str(value)!r}: use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise RobustkitError(f"device {value!s}: this machine has no CUDA device, use cpu")
        if (parsed.index or 0) >= count:
            raise RobustkitError(
                f"device {value!s}: this machine has {count} CUDA device(s), "
                f"use cuda:0 to cuda:{count - 1}"
            )
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise RobustkitError(f"device {value!s}: MPS is not available here, use cpu")
    elif parsed.type not in ("cpu", "mps"):
        raise RobustkitError(f"device {value!s} is not supported: use cpu, cuda or cuda:N")
    return parsed
