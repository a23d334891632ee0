"""The reference implementation, the ``imagecorruptions`` package, for cross-checks.

Its 1.1.2 release no longer imports on current libraries; :func:`load_reference` applies the
three shims it needs (``pkg_resources.resource_filename``, ``numpy.float_``, scikit-image's
``multichannel=True``) without changing what it computes.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from robustkit.corruptions.base import corrupt
from robustkit.errors import RobustkitError


@cache
def load_reference() -> Any:
    """The imagecorruptions module, importable on today's numpy, scikit-image and setuptools."""
    if importlib.util.find_spec("imagecorruptions") is None:
        raise RobustkitError(
            "the cross-check needs the imagecorruptions package: pip install 'robustkit[test]'"
        )
    shimmed = "pkg_resources" not in sys.modules
    shimmed = shimmed and importlib.util.find_spec("pkg_resources") is None
    if shimmed:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(package: str, name: str) -> str:
            spec = importlib.util.find_spec(package)
            assert spec is not None and spec.origin is not None
            return str(Path(spec.origin).parent / name)

        shim.resource_filename = resource_filename  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    if not hasattr(np, "float_"):
        np.float_ = np.float64  # type: ignore[attr-defined]
    module = importlib.import_module("imagecorruptions")
    corruptions = importlib.import_module("imagecorruptions.corruptions")
    if shimmed:  # imagecorruptions holds its own reference; others (pytest) must not see the shim
        del sys.modules["pkg_resources"]
    from skimage.filters import gaussian

    def gaussian_compat(image: Any, *args: Any, multichannel: bool | None = None, **kw: Any) -> Any:
        if multichannel:
            kw["channel_axis"] = -1
        return gaussian(image, *args, **kw)

    corruptions.gaussian = gaussian_compat  # type: ignore[attr-defined]
    return module


def reference_corrupt(images: Tensor, name: str, severity: int, seed: int = 0) -> Tensor:
    """``images`` (N, C, H, W) in [0, 1], at least 32 x 32, corrupted one by one by
    imagecorruptions (as uint8, numpy's global generator seeded ``seed``); same shape back."""
    module = load_reference()
    np.random.seed(seed)
    quantised = (images.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    pixels = quantised.permute(0, 2, 3, 1).numpy()
    out = [module.corrupt(image, severity, name) for image in pixels]
    result = torch.from_numpy(np.stack(out)).float().div(255).permute(0, 3, 1, 2)
    if images.shape[1] == 1:
        result = result[:, :1]
    return result.to(images.device)


REFERENCE_SIDE = 32  # imagecorruptions refuses images smaller than 32 x 32


def to_reference_frame(images: Tensor) -> Tensor:
    """Images as both implementations take them in a cross-check: RGB, zero-padded to at
    least 32 x 32 (MNIST's 28 x 28 digits gain a black 2-pixel frame)."""
    h, w = images.shape[-2:]
    pad_h, pad_w = max(0, REFERENCE_SIDE - h), max(0, REFERENCE_SIDE - w)
    padded = torch.nn.functional.pad(
        images, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
    )
    return padded.expand(-1, 3, -1, -1) if padded.shape[1] == 1 else padded


def from_reference_frame(corrupted: Tensor, channels: int, height: int, width: int) -> Tensor:
    """The inverse of :func:`to_reference_frame`: the centre crop, grey (luma) for 1 channel."""
    top = (corrupted.shape[-2] - height) // 2
    left = (corrupted.shape[-1] - width) // 2
    crop = corrupted[..., top : top + height, left : left + width]
    if channels == 1:
        weights = torch.tensor((0.299, 0.587, 0.114), device=crop.device).view(1, 3, 1, 1)
        return (crop * weights).sum(dim=1, keepdim=True)
    return crop


def compare(
    model: torch.nn.Module,
    images: Tensor,
    labels: Tensor,
    name: str,
    severity: int,
    *,
    draws: int = 3,
    seed: int = 0,
) -> dict[str, float]:
    """The accuracy of ``model`` on ``images`` corrupted by robustkit (ImageNet-C table, the
    mean over ``draws`` independent draws) and by imagecorruptions (one draw), both through
    :func:`to_reference_frame`; ``sigma`` is the standard deviation of their difference that
    sampling alone gives, from the per-image variance of robustkit's draws."""
    c, h, w = images.shape[1:]
    frame = to_reference_frame(images)
    hits = []
    with torch.no_grad():
        for k in range(draws):
            generator = torch.Generator(device=images.device).manual_seed(seed + 1000 * k)
            ours = corrupt(frame, name, severity, generator, table="imagenet")
            pred = model(from_reference_frame(ours, c, h, w)).argmax(dim=1)
            hits.append((pred == labels).double())
        theirs = reference_corrupt(frame, name, severity, seed=seed)
        reference = model(from_reference_frame(theirs, c, h, w)).argmax(dim=1) == labels
    per_image = torch.stack(hits)
    share = per_image.mean(dim=0)
    variance = share * (1 - share) * (draws / (draws - 1) if draws > 1 else 1.0)
    n = len(labels)
    sigma = float((variance.mean() / n * (1 + 1 / draws)).sqrt())
    return {
        "ours": float(share.mean()),
        "reference": float(reference.double().mean()),
        "sigma": sigma,
    }
