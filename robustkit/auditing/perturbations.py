"""Universal perturbations on disk, beside results.csv: ``universal-<norm>-<eps>.pt`` (one
(C, H, W) tensor, loadable with ``weights_only=True``) and ``.png`` (the perturbation amplified
around mid-grey, for the eye)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from robustkit.errors import RobustkitError
from robustkit.files import torch_bytes, write_bytes


def perturbation_stem(norm: str, eps: float) -> str:
    """The file name, without suffix, of the universal perturbation of ``norm`` at ``eps``."""
    return f"universal-{norm}-{eps:g}"


def amplify(delta: Tensor) -> tuple[Tensor, float]:
    """A perturbation mapped to [0, 1] around mid-grey, its largest pixel to black or white, and
    the factor it was scaled by."""
    gain = 0.5 / max(float(delta.abs().max()), 1e-12)
    return (0.5 + gain * delta).clamp(0, 1), gain


def picture(image: Tensor) -> Image.Image:
    """(C, H, W) in [0, 1] as a PIL image (grey for one channel)."""
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(array.squeeze(2) if array.shape[2] == 1 else array))


def save_perturbations(out: Path, perturbations: dict[str, Tensor]) -> None:
    """Each perturbation as ``STEM.pt`` and ``STEM.png`` in ``out`` (keys are the stems)."""
    for stem, delta in perturbations.items():
        write_bytes(out / f"{stem}.pt", torch_bytes(delta.detach().cpu().clone()))
        png = io.BytesIO()
        picture(amplify(delta)[0]).save(png, format="PNG")
        write_bytes(out / f"{stem}.png", png.getvalue())


def load_perturbations(folder: Path, config: dict[str, Any]) -> dict[str, Tensor] | None:
    """The perturbations run.json lists, read back with ``weights_only=True`` (None: none)."""
    record = config.get("universal")
    if not record:
        return None
    loaded = {}
    for entry in record["perturbations"]:
        path = folder / entry["file"]
        if not path.is_file():
            raise RobustkitError(
                f"{path} is missing (run.json lists it): re-run `robustkit audit --universal "
                f"--out {folder}`"
            )
        delta = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(delta, Tensor) or delta.dim() != 3:
            raise RobustkitError(
                f"{path} holds no (C, H, W) perturbation: re-run `robustkit audit --universal "
                f"--out {folder}`"
            )
        loaded[path.stem] = delta
    return loaded
