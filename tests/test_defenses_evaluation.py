"""audit_defense (robustkit/defenses/evaluation.py) on the bundled MNIST defense."""

from __future__ import annotations

import pytest
import torch

from robustkit.attacks import LatentOverpowered, PGDLinf
from robustkit.data import load_dataset
from robustkit.defenses.evaluation import audit_defense
from robustkit.defenses.manifold import load_defense


@pytest.mark.slow
def test_adaptive_attack_beats_oblivious_on_mnist(classifier: torch.nn.Module) -> None:
    """The known gap (Athalye et al. 2018): BPDA + EOT and the latent-space attack break what
    the oblivious attack cannot."""
    torch.manual_seed(0)
    defense = load_defense("manifold:zoo:mnist-dcgan", classifier, steps=30, restarts=2)
    data = load_dataset("mnist-sample", num_samples=24, seed=0)
    result = audit_defense(
        classifier,
        defense,
        data,
        attacks=[PGDLinf(steps=10, rel_stepsize=0.25), LatentOverpowered(steps=20)],
        eps=[0.3],
        eot_samples=2,
    )
    accuracy = result.summary().set_index(["model", "attack"])["robust_accuracy"]
    oblivious = accuracy[(defense.name, "oblivious:pgd-linf")]
    adaptive = accuracy[(defense.name, "bpda-eot:pgd-linf")]
    latent = accuracy[(defense.name, "latent:latent-overpowered")]
    assert accuracy[(classifier.name, "pgd-linf")] < 0.2
    assert adaptive < oblivious and latent < oblivious
    assert accuracy[(defense.name, "worst-case")] <= min(adaptive, latent)
