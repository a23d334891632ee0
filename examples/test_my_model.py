"""Robustness requirements for your model, as ordinary pytest tests.

Copy this file into your test suite and make ``my_model`` build your classifier (a module that
takes pixels in [0, 1], shape (N, C, H, W), and returns logits; put any normalisation inside it
or wrap it in ``robustkit.models.RobustModel(model, mean=..., std=...)``). As shipped, it checks
robustkit's bundled MNIST model on the bundled MNIST sample.

    pytest examples/test_my_model.py --robustkit-report robustness-report

A failing check names the measured robust accuracy with its 95% confidence interval, the required
accuracy, n, the attack parameters, the worst classes and the folder holding the adversarial
examples. With ``suite=`` the figure is the worst case over the suite's attacks (``standard`` is
AutoAttack's; ``quick`` is a smoke check for CI, not an evaluation). Sanity checks run on every
measurement: an error such as ``zero-gradients`` (a model that masks its gradients) fails the test
whatever the accuracy, unless you accept it knowingly with ``allow_flags=("zero-gradients",)``.
More options: ``pytest --help``, section "robustness checks (robustkit)".
"""

from __future__ import annotations

import pytest
from torch import nn
from torch.utils.data import Dataset

from robustkit.data import load_dataset
from robustkit.models import load_model
from robustkit.testing.session import Checker


def my_model() -> nn.Module:
    """Your classifier: replace with your own, e.g. ``load_model("timm:resnet18")``."""
    return load_model("zoo:mnist-cnn")


def my_test_set() -> Dataset:
    """Your held-out data as (image in [0, 1], label) pairs; kept small so CI stays quick."""
    return load_dataset("mnist-sample", num_samples=100).dataset


@pytest.mark.robustness(attack="pgd-linf", eps=0.05, min_accuracy=0.9, num_samples=100, steps=10)
def test_keeps_accuracy_under_pgd() -> nn.Module:
    """Marker form: return (or yield) the model; the plugin attacks it on the named dataset."""
    return my_model()


@pytest.mark.robustness(suite="quick", eps=0.05, min_accuracy=0.9, num_samples=50)
def test_keeps_accuracy_under_the_quick_suite() -> nn.Module:
    """The worst case over APGD-CE and APGD-T; use suite="standard" for a real evaluation."""
    return my_model()


@pytest.mark.robustness(attack="gaussian-noise", eps=0.3, min_accuracy=0.7, num_samples=100)
def test_keeps_accuracy_under_noise() -> nn.Module:
    """For gaussian-noise, eps is the noise sigma."""
    return my_model()


def test_keeps_accuracy_under_fgsm_on_my_data(robustkit_check: Checker) -> None:
    """Fixture form: your own data, and the measurement back for further assertions."""
    measurement = robustkit_check(
        my_model(), my_test_set(), attack="fgsm", eps=0.1, min_accuracy=0.8
    )
    assert measurement.clean_accuracy >= 0.95
