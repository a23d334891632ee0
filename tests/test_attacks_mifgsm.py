"""MI-FGSM (robustkit/attacks/mifgsm.py), the momentum attack for transfer."""

from __future__ import annotations

import torch

from robustkit.attacks import FGSM, MIFGSM, PGDLinf
from robustkit.data import load_dataset
from robustkit.models import load_zoo_model
from robustkit.transfer.matrix import data_tensors


def test_mi_fgsm_without_momentum_is_iterative_fgsm_and_its_first_step_is_fgsm():
    model = load_zoo_model("mnist-cnn", device="cpu")
    x, y = data_tensors(load_dataset("mnist-sample", num_samples=16, seed=0))
    basic = PGDLinf(steps=10, rel_stepsize=0.1, random_start=False, early_stop=False)
    no_momentum = MIFGSM(decay=0.0)(model, x, y, eps=0.1)
    assert torch.allclose(no_momentum.x_adv, basic(model, x, y, eps=0.1).x_adv)
    one_step = MIFGSM(steps=1, rel_stepsize=1.0)(model, x, y, eps=0.1)
    assert torch.allclose(one_step.x_adv, FGSM()(model, x, y, eps=0.1).x_adv)
    with_momentum = MIFGSM()(model, x, y, eps=0.1)
    assert not torch.allclose(with_momentum.x_adv, no_momentum.x_adv)
