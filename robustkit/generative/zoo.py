"""Bundled generators (``manifold:zoo:NAME``), shipped in fp16 and checked by sha256."""

from __future__ import annotations

from pathlib import Path

import torch

from robustkit.bundled import BundledEntry
from robustkit.generative.generators import Generator, build_generator, load_generator
from robustkit.registry import Registry

WEIGHTS_DIR = Path(__file__).parent / "weights"
ZOO_PREFIX = "zoo:"

GENERATOR_ZOO: Registry[BundledEntry] = Registry("zoo generator")
for _entry in [
    BundledEntry(
        name="mnist-dcgan",
        weights="mnist-dcgan.pt",
        sha256="1c3d8ba1d4ae687d52cc92abc9ce6865979d99425d826798090258a22e3ed612",
        dataset="mnist",
        description="DCGAN, latent 128, width 64, 1500 iterations at batch 64, fp16",
    ),
    BundledEntry(
        name="fashion-mnist-dcgan",
        weights="fashion-mnist-dcgan.pt",
        sha256="8db8334e93dc0182c1106da3c095cce5693a0dc93b67e0d6b6c4da4c8b11c661",
        dataset="fashion-mnist",
        description="DCGAN, latent 128, width 64, 1500 iterations at batch 64, fp16",
    ),
]:
    GENERATOR_ZOO.add(_entry.name, _entry)


def load_zoo_generator(name: str, device: str | torch.device | None = None) -> Generator:
    """A bundled generator, its file verified by sha256 and read with weights_only=True."""
    entry = GENERATOR_ZOO.get(name)
    return build_generator(entry.load(WEIGHTS_DIR), WEIGHTS_DIR / entry.weights, device=device)


def resolve_generator(spec: str, device: str | torch.device | None = None) -> Generator:
    """``zoo:NAME`` (a bundled generator) or the path of a generator file."""
    if spec.startswith(ZOO_PREFIX):
        generator = load_zoo_generator(spec[len(ZOO_PREFIX) :], device=device)
    else:
        generator = load_generator(spec, device=device)
    generator.name = spec
    return generator
