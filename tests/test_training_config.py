"""TrainConfig: bad hyper-parameters fail before any data is read, naming the option to fix."""

from __future__ import annotations

import dataclasses

import pytest

from robustkit.errors import RobustkitError
from robustkit.training import TrainConfig


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"eps": -0.1}, "--eps must be >= 0"),
        ({"eps": 1.5}, "exceeds the pixel range"),
        ({"epochs": 0}, "--epochs"),
        ({"batch_size": 0}, "--batch-size"),
        ({"lr": 0}, "--lr must be > 0"),
        ({"check_every": 0}, "--check-every"),
    ],
)
def test_bad_config_names_the_fix(options, fragment):
    with pytest.raises(RobustkitError, match=fragment):
        TrainConfig(**options)


def test_an_l2_budget_may_exceed_one():
    assert TrainConfig(norm="l2", eps=1.5).eps == 1.5


def test_mismatches_name_each_differing_option_with_its_saved_value():
    config = TrainConfig(lr=1e-3, seed=3)
    saved = dataclasses.asdict(TrainConfig(lr=2e-3, seed=3, epochs=4))
    assert config.mismatches(saved) == ["epochs=4", "lr=0.002"]
    assert config.mismatches(dataclasses.asdict(config)) == []
