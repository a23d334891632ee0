"""DCGAN generator and discriminator, WGAN-GP critic, and generator checkpoints on disk.

Generators map latents z in [-1, 1]^d to 1 x 28 x 28 images with pixels in [0, 1]; the tanh
output is rescaled with (tanh + 1) / 2 so a generated image is a valid classifier input.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from robustkit.errors import RobustkitError

ARCHS = ("dcgan", "wgan-gp")
IMAGE_SHAPE = (1, 28, 28)
LEAK = 0.2


@dataclass(frozen=True)
class GeneratorConfig:
    """What a generator checkpoint needs to rebuild its module."""

    arch: str = "dcgan"
    latent_dim: int = 128
    width: int = 256  # channels after the dense layer (the DCGAN: 7 x 7 x 256)
    dataset: str = "mnist"

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise RobustkitError(f"unknown GAN architecture {self.arch!r}: use dcgan or wgan-gp")
        if self.latent_dim < 1 or self.width < 4 or self.width % 4:
            raise RobustkitError("latent size must be >= 1 and width a multiple of 4 (>= 4)")


class Generator(nn.Module):
    """Dense to 7 x 7 x width, then transposed convs width/2 -> width/4 -> 1 (BN, leaky ReLU)."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        self.output_shape: tuple[int, ...] = IMAGE_SHAPE
        self.name = f"{config.arch}({config.dataset})"  # where it came from, once loaded
        w = config.width
        self.dense = nn.Sequential(
            nn.Linear(config.latent_dim, 7 * 7 * w, bias=False),
            nn.BatchNorm1d(7 * 7 * w),
            nn.LeakyReLU(LEAK),
            nn.Unflatten(1, (w, 7, 7)),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(w, w // 2, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(w // 2),
            nn.LeakyReLU(LEAK),
            nn.ConvTranspose2d(w // 2, w // 4, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(w // 4),
            nn.LeakyReLU(LEAK),
            nn.ConvTranspose2d(w // 4, IMAGE_SHAPE[0], 4, stride=2, padding=1),
        )

    def forward(self, z: Tensor) -> Tensor:
        return (torch.tanh(self.deconv(self.dense(z))) + 1) / 2


class Discriminator(nn.Module):
    """Strided convs 32 / 64 / 128 with leaky ReLU and one logit; batch norm only for DCGAN
    (a WGAN-GP critic must not mix samples through batch statistics)."""

    def __init__(self, batch_norm: bool = True) -> None:
        super().__init__()

        def norm(channels: int) -> nn.Module:
            return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()

        self.net = nn.Sequential(
            nn.Conv2d(IMAGE_SHAPE[0], 32, 4, stride=2, padding=1),
            nn.LeakyReLU(LEAK),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            norm(64),
            nn.LeakyReLU(LEAK),
            nn.Conv2d(64, 128, 3, stride=2, padding=1),
            norm(128),
            nn.LeakyReLU(LEAK),
            nn.Flatten(),
            nn.Linear(128 * 4 * 4, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(2 * x - 1).squeeze(1)


def sample_latents(
    n: int, latent_dim: int, *, generator: torch.Generator | None = None, device: Any = None
) -> Tensor:
    """Latents from the prior the generators are trained on: uniform on [-1, 1]^d."""
    z = torch.rand(n, latent_dim, generator=generator, device=device)
    return 2 * z - 1


def save_generator(generator: Generator, path: str | Path, *, half: bool = False) -> None:
    """Write the generator as plain tensors and primitives (loadable with weights_only=True)."""
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in generator.state_dict().items()
    }
    torch.save({"config": asdict(generator.config), "state_dict": state}, path)


def load_generator(path: str | Path, *, device: str | torch.device | None = None) -> Generator:
    """Read a generator written by :func:`save_generator` (eval mode, gradients off)."""
    path = Path(path)
    if not path.is_file():
        raise RobustkitError(
            f"generator file {path} not found: train one with robustkit train-gan or use "
            "manifold:zoo:NAME"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise RobustkitError(
            f"generator file {path} is not a robustkit generator checkpoint ({type(exc).__name__})"
            ": write it with robustkit train-gan"
        ) from exc
    return build_generator(payload, path, device=device)


def build_generator(
    payload: Any, source: str | Path, *, device: str | torch.device | None = None
) -> Generator:
    """The generator held by ``payload`` (what :func:`save_generator` wrote, read from
    ``source``), in eval mode with gradients off."""
    if not isinstance(payload, dict) or not {"config", "state_dict"} <= payload.keys():
        raise RobustkitError(
            f"generator file {source} lacks 'config' and 'state_dict': write it with "
            "robustkit train-gan (a training .ckpt.pt is not a generator file)"
        )
    generator = Generator(GeneratorConfig(**payload["config"]))
    try:
        generator.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
        )
    except RuntimeError as exc:
        raise RobustkitError(
            f"generator file {source} does not match its own config: re-train it"
        ) from exc
    generator.requires_grad_(False)
    return generator.to(device or "cpu").eval()
