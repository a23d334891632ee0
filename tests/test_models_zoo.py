"""Tests for the bundled model zoo."""

from __future__ import annotations

import pytest
import torch

from robustkit.data import load_dataset
from robustkit.errors import RobustkitError
from robustkit.models import zoo
from robustkit.models.architectures import MadryMnistCNN, MnistCNN
from robustkit.models.wrapper import RobustModel
from robustkit.models.zoo import list_zoo_models, load_zoo_model


def test_zoo_lists_mnist_cnn() -> None:
    names = [entry.name for entry in list_zoo_models()]
    assert "mnist-cnn" in names
    entry = zoo.ZOO["mnist-cnn"]
    assert (zoo.WEIGHTS_DIR / entry.weights).is_file()
    assert entry.input_shape == (1, 28, 28) and entry.num_classes == 10


def test_bundled_model_loads_in_eval_mode_and_is_accurate() -> None:
    model = load_zoo_model("mnist-cnn", device="cpu")
    assert isinstance(model, RobustModel)
    assert not model.training and not model.model.training
    assert model.name == "mnist-cnn" and model.input_shape == (1, 28, 28)
    sample = load_dataset()
    xs = torch.stack([sample.dataset[i][0] for i in range(len(sample.dataset))])
    ys = torch.stack([torch.as_tensor(sample.dataset[i][1]) for i in range(len(sample.dataset))])
    with torch.no_grad():
        logits = model(xs)
    assert logits.shape == (1000, 10)
    accuracy = (logits.argmax(1) == ys).float().mean().item()
    assert accuracy >= 0.97


def test_unknown_model_suggests_close_match() -> None:
    with pytest.raises(RobustkitError, match="did you mean mnist-cnn"):
        load_zoo_model("mnist_cnn")


@pytest.mark.parametrize("cls", [MnistCNN, MadryMnistCNN])
def test_architectures_output_ten_logits(cls: type[torch.nn.Module]) -> None:
    out = cls()(torch.zeros(2, 1, 28, 28))
    assert out.shape == (2, 10)
