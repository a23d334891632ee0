"""Generators and their files (robustkit/generative/generators.py, zoo.py)."""

from __future__ import annotations

import pytest
import torch

from robustkit.generative.generators import (
    Generator,
    load_generator,
    sample_latents,
    save_generator,
)
from robustkit.generative.zoo import GENERATOR_ZOO, load_zoo_generator


def test_generator_checkpoints_load_with_weights_only(
    tiny_generator: Generator, tmp_path: pytest.TempPathFactory
) -> None:
    path = tmp_path / "gen.pt"  # type: ignore[operator]
    save_generator(tiny_generator, path, half=True)
    payload = torch.load(path, weights_only=True)
    assert payload["config"]["latent_dim"] == 16
    loaded = load_generator(path)
    z = sample_latents(2, 16)
    with torch.no_grad():
        assert torch.allclose(loaded(z), tiny_generator(z), atol=1e-2)


@pytest.mark.parametrize("name", list(GENERATOR_ZOO))
def test_bundled_generators_load_and_make_images(name: str) -> None:
    generator = load_zoo_generator(name)
    with torch.no_grad():
        images = generator(sample_latents(4, generator.latent_dim))
    assert images.shape == (4, 1, 28, 28)
    assert images.min() >= 0 and images.max() <= 1
