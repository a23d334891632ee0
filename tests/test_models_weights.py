"""The bundled trained weights: they load, match the metadata training wrote, and are robust."""

from __future__ import annotations

import itertools
import json

import pytest

from robustkit.auditing.engine import audit
from robustkit.models.zoo import WEIGHTS_DIR, ZOO, load_zoo_model


@pytest.mark.parametrize("name", ["mnist-robust", "fashion-cnn", "fashion-robust"])
def test_bundled_trained_models_load_and_match_their_metadata(name):
    model = load_zoo_model(name)  # checks the sha256
    entry = ZOO[name]
    meta = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())
    assert meta["sha256"] == entry.sha256
    assert (meta["dataset"], meta["arch"]) == (entry.dataset, type(model.model).__name__)
    assert tuple(meta["mean"]) == entry.mean and tuple(meta["std"]) == entry.std
    assert (WEIGHTS_DIR / entry.weights).stat().st_size < 2 * 2**20


@pytest.mark.slow
def test_bundled_robust_mnist_model_loses_accuracy_monotonically_with_eps():
    """A robust model's accuracy falls with eps and is near zero at 0.5: anything else signals a
    broken evaluation (masked gradients), not a good model."""
    result = audit(
        "zoo:mnist-robust",
        "mnist-sample",
        attacks=["pgd-linf"],
        eps=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
        steps=40,
        num_samples=300,
    )
    acc = result.robust_accuracy("pgd-linf").tolist()
    assert all(a >= b for a, b in itertools.pairwise(acc)), acc
    assert acc[3] >= 0.8, acc
    assert acc[-1] <= 0.05, acc
