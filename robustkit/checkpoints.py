"""Resume checkpoints of every training loop (classifiers and GANs): one file format.

A checkpoint is a dict of plain types and tensors tagged with the format version and the kind of
run that wrote it. It is written atomically through :mod:`robustkit.files` (a temporary file
beside it, then a rename: an interrupted write never leaves half a checkpoint) and read with
``torch.load(weights_only=True)`` (no pickled code runs).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from robustkit.errors import RobustkitError
from robustkit.files import write_bytes

FORMAT = 2  # 1: training checkpoints before GAN runs shared the format (no "kind")


def save_checkpoint(path: Path, state: dict[str, Any], *, kind: str) -> None:
    """Write ``state`` (plain types and tensors) for a ``kind`` run to ``path`` atomically; a
    full disk raises one line naming the file and the space it needs."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "kind": kind, **state}, buffer)
    write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path, *, kind: str) -> dict[str, Any]:
    """The state a ``kind`` run saved to ``path``, read without unpickling code; a missing,
    unreadable, foreign or other-version file raises one line naming the fix."""
    if not path.is_file():
        raise RobustkitError(f"checkpoint {path} not found: give the .ckpt.pt of the run to resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RobustkitError(
            f"cannot read checkpoint {path} ({type(exc).__name__}): {str(exc).splitlines()[0]}"
        ) from None
    if not isinstance(state, dict) or "format" not in state:
        raise RobustkitError(f"{path} is not a robustkit {kind} checkpoint")
    if state["format"] != FORMAT:
        raise RobustkitError(
            f"checkpoint {path} has format {state['format']}, this robustkit reads {FORMAT}: "
            "restart the run without --resume"
        )
    if state.get("kind") != kind:
        raise RobustkitError(
            f"{path} is a {state.get('kind')} checkpoint, not a {kind} one: give the .ckpt.pt "
            "of the run to resume"
        )
    return {key: value for key, value in state.items() if key not in ("format", "kind")}
