"""The corruption registry and :func:`corrupt`, the one entry point that checks its input."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from robustkit.corruptions.tables import PROTOCOLS, Entry, Protocol
from robustkit.errors import RobustkitError
from robustkit.registry import Registry, unknown_name_error

SEVERITIES = (1, 2, 3, 4, 5)
ORDER = (  # the benchmark's order: noise, blur, weather, digital
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
# A corruption: (images N,C,H,W in [0, 1], one severity's parameters, protocol, generator).
CorruptionFn = Callable[[Tensor, Entry, Protocol, torch.Generator], Tensor]
CORRUPTIONS: Registry[CorruptionFn] = Registry("corruption")
register_corruption = CORRUPTIONS.register


def list_corruptions(pattern: str = "*") -> list[str]:
    """The registered corruptions, in the benchmark's order (noise, blur, weather, digital)."""
    _load()
    names = CORRUPTIONS.names(pattern)
    return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))


def parse_corruptions(text: str) -> list[str]:
    """'all' or 'fog, snow' -> the corruption names, each checked (did-you-mean on a typo)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return list_corruptions()
    if not names:
        raise RobustkitError("--corruptions is empty: give 'all' or names such as fog,snow")
    known = list_corruptions()
    for name in names:
        if name not in known:
            raise unknown_name_error("corruption", name, known)
    return list(dict.fromkeys(names))


def check_severities(severities: Sequence[int]) -> list[int]:
    """Severities as a sorted list, each one of 1..5."""
    bad = [s for s in severities if s not in SEVERITIES]
    if bad or not severities:
        raise RobustkitError(
            f"severity {bad[0] if bad else 'list'} is out of range: give severities from 1 to 5, "
            "e.g. --severities 1,2,3,4,5"
        )
    return sorted(set(severities))


def protocol(name: str) -> Protocol:
    """A parameter table by name ('cifar10' or 'imagenet')."""
    if name not in PROTOCOLS:
        raise unknown_name_error("corruption table", name, PROTOCOLS)
    return PROTOCOLS[name]


def corrupt(
    images: Tensor,
    name: str,
    severity: int,
    generator: torch.Generator | None = None,
    *,
    table: str = "cifar10",
) -> Tensor:
    """``images`` (N, C, H, W) in [0, 1], C 1 or 3, corrupted by ``name`` at ``severity`` (1-5)
    with the parameters of ``table``, on the images' device; random draws come from
    ``generator`` (a fresh one seeded 0 when None), which must live on that device."""
    if name not in list_corruptions():
        raise unknown_name_error("corruption", name, list_corruptions())
    fn = CORRUPTIONS.get(name)
    check_severities([severity])
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise RobustkitError(
            f"corruptions take images of shape (N, 1 or 3, H, W), got {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise RobustkitError("corruptions take float images in [0, 1]: convert with x / 255")
    if generator is None:
        generator = torch.Generator(device=images.device).manual_seed(0)
    if generator.device.type != images.device.type:
        raise RobustkitError(
            f"the generator lives on {generator.device} and the images on {images.device}: "
            "create it with torch.Generator(device=images.device)"
        )
    table_ = protocol(table)
    with torch.no_grad():
        out = fn(images.float(), table_.params[name][severity - 1], table_, generator)
    return out.clamp(0.0, 1.0).to(images.dtype)


def _load() -> None:
    """Import the corruption modules, which register themselves."""
    from robustkit.corruptions import blur, digital, noise, weather  # noqa: F401
