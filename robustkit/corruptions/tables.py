"""Per-severity parameters of the corruptions: CIFAR-10-C (Hendrycks & Dietterich 2019, 32 x 32
images) and ImageNet-C as the ``imagecorruptions`` package applies it to images of any size.

Each table maps a corruption to five entries (severity 1..5) plus the few choices of procedure in
which the two protocols differ (a :class:`Protocol`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Entry = Any  # one severity's parameters: a number or a tuple, as the corruption reads them


@dataclass(frozen=True)
class Protocol:
    """The procedural differences between the CIFAR-10-C code and imagecorruptions."""

    name: str
    zoom_trim_centre: bool  # clipped zoom keeps the centre (CIFAR-10-C) or the top-left corner
    frost_scale: float | None  # texture resize factor; None: just cover the image, x 1.1
    pixelate_up: str  # "box" (PIL BOX, CIFAR-10-C) or "nearest" (imagecorruptions)
    elastic_affine: bool  # a random affine warp before the displacement field (CIFAR-10-C)
    params: dict[str, list[Entry]]


def _arange(stop: float, step: float) -> tuple[float, ...]:
    """np.arange(1, stop, step) as the reference zoom factors (endpoint quirks included)."""
    return tuple(float(v) for v in np.arange(1, stop, step))


CIFAR10_C = Protocol(
    name="cifar10",
    zoom_trim_centre=True,
    frost_scale=0.2,
    pixelate_up="box",
    elastic_affine=True,
    params={
        "gaussian_noise": [0.04, 0.06, 0.08, 0.09, 0.10],
        "shot_noise": [500, 250, 100, 75, 50],
        "impulse_noise": [0.01, 0.02, 0.03, 0.05, 0.07],
        "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],
        "glass_blur": [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],
        "motion_blur": [(10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)],
        "zoom_blur": [
            _arange(1.06, 0.01),
            _arange(1.11, 0.01),
            _arange(1.16, 0.01),
            _arange(1.21, 0.01),
            _arange(1.26, 0.01),
        ],
        "snow": [
            (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
            (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
            (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
            (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
            (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
        ],
        "frost": [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],
        "fog": [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],
        "brightness": [0.05, 0.1, 0.15, 0.2, 0.3],
        "contrast": [0.75, 0.5, 0.4, 0.3, 0.15],
        # (alpha, sigma, affine jitter) as fractions of the image side
        "elastic_transform": [
            (0, 0, 0.08),
            (0.05, 0.2, 0.07),
            (0.08, 0.06, 0.06),
            (0.1, 0.04, 0.05),
            (0.1, 0.03, 0.03),
        ],
        "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],
        "jpeg_compression": [80, 65, 58, 50, 40],
    },
)

IMAGENET_C = Protocol(
    name="imagenet",
    zoom_trim_centre=False,
    frost_scale=None,
    pixelate_up="nearest",
    elastic_affine=False,
    params={
        "gaussian_noise": [0.08, 0.12, 0.18, 0.26, 0.38],
        "shot_noise": [60, 25, 12, 5, 3],
        "impulse_noise": [0.03, 0.06, 0.09, 0.17, 0.27],
        "defocus_blur": [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)],
        "glass_blur": [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)],
        "motion_blur": [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
        "zoom_blur": [
            _arange(1.11, 0.01),
            _arange(1.16, 0.01),
            _arange(1.21, 0.02),
            _arange(1.26, 0.02),
            _arange(1.31, 0.03),
        ],
        "snow": [
            (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
            (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
            (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
            (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
            (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
        ],
        "frost": [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)],
        "fog": [(1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)],
        "brightness": [0.1, 0.2, 0.3, 0.4, 0.5],
        "contrast": [0.4, 0.3, 0.2, 0.1, 0.05],
        # alpha; the field is U(-0.005 H, 0.005 H) smoothed with sigma 0.01 H, no affine
        "elastic_transform": [12.5, 16.25, 21.25, 25.0, 30.0],
        "pixelate": [0.6, 0.5, 0.4, 0.3, 0.25],
        "jpeg_compression": [25, 18, 15, 10, 7],
    },
)

PROTOCOLS = {p.name: p for p in (CIFAR10_C, IMAGENET_C)}
