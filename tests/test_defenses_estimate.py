"""The up-front estimate of a defense audit's projections and time."""

from __future__ import annotations

import pytest

from robustkit.attacks import create_attack
from robustkit.defenses.estimate import (
    CPU_FRIENDLY,
    attack_iterations,
    estimate_defense_cost,
)


def test_attack_iterations_count_steps_restarts_targets_and_queries():
    assert attack_iterations(create_attack("pgd-linf", steps=40, restarts=2)) == 80
    assert attack_iterations(create_attack("apgd-t", steps=10, num_targets=3)) == 30
    assert attack_iterations(create_attack("square", queries=500)) == 500
    assert attack_iterations(create_attack("fgsm")) == 1


def test_cost_grows_with_samples_steps_and_eot():
    pgd = create_attack("pgd-linf", steps=10)
    base = estimate_defense_cost([pgd], num_samples=4, eot_samples=2, seconds_per_projection=0.5)
    assert base.projections == 4 * (1 + 10 + 10 * 2 + 2)
    assert base.seconds == pytest.approx(base.projections * 0.5)
    more_eot = estimate_defense_cost([pgd], num_samples=4, eot_samples=8, seconds_per_projection=1)
    assert more_eot.projections > base.projections


def test_latent_attacks_cost_one_scoring_projection():
    latent = create_attack("latent-overpowered")
    cost = estimate_defense_cost([latent], num_samples=10, eot_samples=8, seconds_per_projection=1)
    assert cost.projections == 10


def test_description_gives_time_and_the_cpu_friendly_settings():
    pgd = create_attack("pgd-linf", steps=200)
    line = estimate_defense_cost(
        [pgd], num_samples=64, eot_samples=8, seconds_per_projection=0.8
    ).describe()
    assert "h here" in line and CPU_FRIENDLY in line and "projections" in line
