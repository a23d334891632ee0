"""The manifold-projection defense and its `manifold:` spec (robustkit/defenses/manifold.py)."""

from __future__ import annotations

import pytest
import torch

from robustkit.defenses.manifold import ManifoldProjectionDefense, load_defense
from robustkit.errors import RobustkitError
from robustkit.generative.generators import Generator


def test_defense_is_differentiable_through_bpda(
    tiny_generator: Generator, classifier: torch.nn.Module
) -> None:
    defense = ManifoldProjectionDefense(classifier, tiny_generator, steps=5, restarts=2)
    x = torch.rand(2, 1, 28, 28, requires_grad=True)
    logits = defense(x)
    (grad,) = torch.autograd.grad(logits[:, 0].sum(), x)
    assert grad.abs().sum() > 0
    assert defense.is_randomized


@pytest.mark.parametrize("shape", [(2, 3, 28, 28), (2, 1, 32, 32), (784,)])
def test_wrong_input_shape_is_one_clear_line(
    tiny_generator: Generator, classifier: torch.nn.Module, shape: tuple[int, ...]
) -> None:
    defense = ManifoldProjectionDefense(classifier, tiny_generator, steps=1, restarts=1)
    with pytest.raises(RobustkitError, match="generator makes images of shape") as err:
        defense(torch.rand(shape))
    assert "\n" not in str(err.value)


def test_missing_or_foreign_generator_file_is_one_clear_line(
    classifier: torch.nn.Module, tmp_path: pytest.TempPathFactory
) -> None:
    with pytest.raises(RobustkitError, match="not found") as err:
        load_defense("manifold:/no/such/gen.pt", classifier)
    assert "\n" not in str(err.value)
    foreign = tmp_path / "weights.pt"  # type: ignore[operator]
    torch.save(classifier.state_dict(), foreign)
    with pytest.raises(RobustkitError, match="lacks 'config'"):
        load_defense(f"manifold:{foreign}", classifier)
    with pytest.raises(RobustkitError, match="use manifold:"):
        load_defense("gan:x.pt", classifier)
    with pytest.raises(RobustkitError, match="unknown zoo generator"):
        load_defense("manifold:zoo:mnist-dcgn", classifier)
