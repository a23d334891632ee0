"""The up-front estimate of a defense audit's projections and time."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from robustkit.attacks import create_attack
from robustkit.defenses.estimate import (
    CPU_FRIENDLY,
    attack_iterations,
    estimate_defense_cost,
    time_projection,
)

LINF = {"linf": [0.3]}


def test_attack_iterations_count_steps_restarts_targets_and_queries():
    assert attack_iterations(create_attack("pgd-linf", steps=40, restarts=2)) == 80
    assert attack_iterations(create_attack("apgd-t", steps=10, num_targets=3)) == 30
    assert attack_iterations(create_attack("square", queries=500)) == 500
    assert attack_iterations(create_attack("fgsm")) == 1


def test_cost_grows_with_samples_steps_and_eot():
    pgd = create_attack("pgd-linf", steps=10)
    base = estimate_defense_cost(
        [pgd], budgets=LINF, num_samples=4, eot_samples=2, seconds_per_projection=0.5
    )
    assert base.projections == 4 * (1 + 10 + 10 * 2 + 2)
    three = estimate_defense_cost(
        [pgd],
        budgets={"linf": [0.1, 0.2, 0.3]},
        num_samples=4,
        eot_samples=2,
        seconds_per_projection=0.5,
    )
    assert three.projections == 3 * base.projections
    assert base.seconds == pytest.approx(base.projections * 0.5)
    more_eot = estimate_defense_cost(
        [pgd], budgets=LINF, num_samples=4, eot_samples=8, seconds_per_projection=1
    )
    assert more_eot.projections > base.projections


def test_latent_attacks_cost_a_projection_per_step_and_one_to_score():
    latent = create_attack("latent-overpowered", steps=40)
    cost = estimate_defense_cost(
        [latent], budgets=LINF, num_samples=10, eot_samples=8, seconds_per_projection=1
    )
    assert cost.projections == 10 * 41  # EOT does not apply to the latent family


def test_description_gives_time_and_the_cpu_friendly_settings():
    pgd = create_attack("pgd-linf", steps=200)
    line = estimate_defense_cost(
        [pgd], budgets=LINF, num_samples=64, eot_samples=8, seconds_per_projection=0.8
    ).describe()
    assert "h here" in line and CPU_FRIENDLY in line and "projections" in line


def test_projection_time_is_measured_per_image():
    class Slow(nn.Module):
        def forward(self, x):
            time.sleep(0.01 * len(x))
            return x

    assert 0.009 < time_projection(Slow(), torch.zeros(4, 1, 2, 2)) < 0.05
