"""Projection onto a generator's range (robustkit/generative/projection.py)."""

from __future__ import annotations

import itertools

import torch

from robustkit.generative.generators import Generator, sample_latents
from robustkit.generative.projection import ProjectionConfig, project


def test_projection_recovers_generator_samples(tiny_generator: Generator) -> None:
    z = sample_latents(4, 16, generator=torch.Generator().manual_seed(1)) * 0.9
    x = tiny_generator(z)
    result = project(tiny_generator, x, ProjectionConfig(steps=150, restarts=2, lr=0.1), seed=0)
    assert result.x_proj.shape == x.shape
    assert (result.error / x[0].numel()).max() < 1e-4
    assert result.z.abs().max() <= 1


def test_more_restarts_never_worse(tiny_generator: Generator) -> None:
    x = torch.rand(3, 1, 28, 28)
    errors = [
        project(tiny_generator, x, ProjectionConfig(steps=20, restarts=r), seed=3).error
        for r in (1, 2, 4)
    ]
    for fewer, more in itertools.pairwise(errors):
        assert (more <= fewer * (1 + 1e-5) + 1e-6).all()
