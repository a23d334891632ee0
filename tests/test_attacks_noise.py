"""The pure-noise probes (robustkit.attacks.noise) on a model with more classes than the dataset
names: names fall back to indices, and PGD from noise targets 10 classes spread over 1,000."""

from __future__ import annotations

import torch
from torch import nn

from robustkit.attacks.noise import pgd_from_noise, pure_noise_probe
from robustkit.models import RobustModel


def thousand_classes(favourite: int) -> RobustModel:
    """A 1,000-class linear model whose bias makes ``favourite`` every input's top class."""
    torch.manual_seed(0)
    linear = nn.Linear(3 * 4 * 4, 1000)
    with torch.no_grad():
        linear.weight.mul_(0.01)
        linear.bias.zero_()
        linear.bias[favourite] = 10.0
    return RobustModel(nn.Sequential(nn.Flatten(), linear), device="cpu")


def test_a_class_past_the_datasets_names_is_named_by_its_index() -> None:
    grid = pure_noise_probe(
        thousand_classes(640), (3, 4, 4), means=[0.5], sigmas=[0.1], class_names=["a", "b", "c"]
    )
    assert grid["top1_class"].tolist() == [640] and grid["top1_name"].tolist() == ["640"]
    named = pure_noise_probe(
        thousand_classes(1), (3, 4, 4), means=[0.5], sigmas=[0.1], class_names=["a", "b", "c"]
    )
    assert named["top1_name"].tolist() == ["b"]


def test_pgd_from_noise_targets_ten_classes_spread_over_a_thousand() -> None:
    table = pgd_from_noise(thousand_classes(0), (3, 4, 4), 1000, steps=2, samples_per_class=2)
    assert table["target"].tolist() == [0, 111, 222, 333, 444, 555, 666, 777, 888, 999]
