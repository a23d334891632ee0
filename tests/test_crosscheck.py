"""Cross-check robustkit's attacks against foolbox and ART on the bundled model and sample.

Random starts are off everywhere, so every tool runs the same deterministic iteration and the
robust accuracies must agree to within one percentage point; FGSM must agree pixel for pixel.
"""

from __future__ import annotations

import itertools

import foolbox as fb
import numpy as np
import pytest
import torch
from art.attacks.evasion import ProjectedGradientDescent
from torch import Tensor, nn

from robustkit.attacks import create_attack
from robustkit.attacks.peers import art_classifier
from robustkit.data import load_dataset
from robustkit.models import load_zoo_model

NUM_IMAGES = 200
STEPS = 40
LINF_EPS = 0.1
LINF_STEP = 0.01
L2_EPS = 1.5
L2_STEP = 0.1
TOLERANCE = 0.01  # robust accuracy, as a fraction


@pytest.fixture(scope="module")
def model() -> nn.Module:
    """The bundled MNIST CNN on the CPU."""
    torch.manual_seed(0)
    return load_zoo_model("mnist-cnn", device="cpu")


@pytest.fixture(scope="module")
def batch(model: nn.Module) -> tuple[Tensor, Tensor]:
    """The first NUM_IMAGES images of the bundled sample that the model classifies correctly."""
    dataset = load_dataset("mnist-sample").dataset
    x = torch.stack([dataset[i][0] for i in range(len(dataset))])
    y = torch.tensor([int(dataset[i][1]) for i in range(len(dataset))])
    with torch.no_grad():
        correct = model(x).argmax(dim=1) == y
    assert int(correct.sum()) >= NUM_IMAGES
    return x[correct][:NUM_IMAGES].contiguous(), y[correct][:NUM_IMAGES].contiguous()


def still_correct(model: nn.Module, x_adv: Tensor | np.ndarray, y: Tensor) -> Tensor:
    """Per sample: the adversarial is still classified as its label."""
    x_adv = torch.as_tensor(x_adv, dtype=torch.float32)
    with torch.no_grad():
        return model(x_adv).argmax(dim=1) == y


def robust_accuracy(model: nn.Module, x_adv: Tensor | np.ndarray, y: Tensor) -> float:
    """Share of adversarials still classified as their label."""
    return still_correct(model, x_adv, y).float().mean().item()


def ours(model: nn.Module, x: Tensor, y: Tensor, name: str, eps: float, **hyper: object) -> float:
    """robustkit's robust accuracy (no random start), from the attack's own success flags."""
    result = create_attack(name, random_start=False, **hyper)(model, x, y, eps=eps)
    # the success flags must agree with what the model says about the returned adversarials
    assert torch.equal(~result.success, still_correct(model, result.x_adv, y))
    return 1.0 - result.success.float().mean().item()


def foolbox_pgd(model: nn.Module, x: Tensor, y: Tensor, norm: str, eps: float) -> float:
    """foolbox's PGD robust accuracy with an absolute step and no random start."""
    fmodel = fb.PyTorchModel(model, bounds=(0.0, 1.0))
    cls = fb.attacks.LinfPGD if norm == "linf" else fb.attacks.L2PGD
    step = LINF_STEP if norm == "linf" else L2_STEP
    attack = cls(abs_stepsize=step, steps=STEPS, random_start=False)
    _, clipped, success = attack(fmodel, x, y, epsilons=eps)
    assert torch.equal(~success, still_correct(model, clipped, y))
    return robust_accuracy(model, clipped, y)


def art_pgd(model: nn.Module, x: Tensor, y: Tensor, norm: str, eps: float) -> float:
    """ART's PGD robust accuracy (eps_step is an absolute step; no random init)."""
    classifier = art_classifier(model, x)
    attack = ProjectedGradientDescent(
        classifier,
        norm=np.inf if norm == "linf" else 2,
        eps=eps,
        eps_step=LINF_STEP if norm == "linf" else L2_STEP,
        max_iter=STEPS,
        num_random_init=0,
        batch_size=len(x),
        verbose=False,
    )
    return robust_accuracy(model, attack.generate(x=x.numpy(), y=y.numpy()), y)


def test_fgsm_matches_foolbox(model: nn.Module, batch: tuple[Tensor, Tensor]) -> None:
    x, y = batch
    for eps in (0.05, 0.2):
        result = create_attack("fgsm")(model, x, y, eps=eps)
        fmodel = fb.PyTorchModel(model, bounds=(0.0, 1.0))
        _, clipped, success = fb.attacks.FGSM()(fmodel, x, y, epsilons=eps)
        torch.testing.assert_close(result.x_adv, clipped, rtol=0.0, atol=1e-6)
        assert torch.equal(result.success, success)


@pytest.mark.parametrize(
    ("name", "norm", "eps", "step"),
    [("pgd-linf", "linf", LINF_EPS, LINF_STEP), ("pgd-l2", "l2", L2_EPS, L2_STEP)],
)
def test_pgd_robust_accuracy_matches_peers(
    model: nn.Module, batch: tuple[Tensor, Tensor], name: str, norm: str, eps: float, step: float
) -> None:
    x, y = batch
    theirs = {
        "foolbox": foolbox_pgd(model, x, y, norm, eps),
        "art": art_pgd(model, x, y, norm, eps),
    }
    for early_stop in (True, False):
        mine = ours(model, x, y, name, eps, steps=STEPS, abs_stepsize=step, early_stop=early_stop)
        # mid-range robust accuracy, so that a 1-point tolerance means something
        assert 0.2 <= mine <= 0.8, f"eps {eps} gives robust accuracy {mine:.3f}: retune it"
        for tool, acc in theirs.items():
            assert abs(mine - acc) <= TOLERANCE, (
                f"{name} (early_stop={early_stop}): robustkit {mine:.3f} vs {tool} {acc:.3f}"
            )


def test_robust_accuracy_monotone_in_eps(model: nn.Module, batch: tuple[Tensor, Tensor]) -> None:
    x, y = batch
    torch.manual_seed(0)
    epsilons = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
    accs = [ours(model, x, y, "pgd-linf", eps, steps=20, abs_stepsize=0.01) for eps in epsilons]
    assert all(b <= a for a, b in itertools.pairwise(accs)), dict(zip(epsilons, accs, strict=True))
    assert accs[0] > accs[-1]


def test_robust_accuracy_monotone_in_steps(model: nn.Module, batch: tuple[Tensor, Tensor]) -> None:
    x, y = batch
    torch.manual_seed(0)
    steps = (10, 20, 40)
    accs = [ours(model, x, y, "pgd-linf", 0.1, steps=n, rel_stepsize=1 / 30) for n in steps]
    assert all(b <= a for a, b in itertools.pairwise(accs)), dict(zip(steps, accs, strict=True))
    assert accs[0] > accs[-1]
