"""check_classifier: fail early, with the fix, when a model cannot be attacked as given."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from robustkit.errors import RobustkitError
from robustkit.models.wrapper import device_of

_PROB_TOL = 1e-3
RANDOM_TOL = 1e-4  # relative change of logits between two passes that makes a model randomized


def check_classifier(model: nn.Module, sample: Tensor) -> int:
    """Run ``model`` on a small batch of [0, 1] pixels (N, C, H, W) and check it returns logits,
    not probabilities (a softmax, or a binary model's sigmoid).

    Returns the number of classes.
    """
    name = getattr(model, "name", None) or type(model).__name__
    if not isinstance(sample, Tensor) or sample.dim() != 4 or not sample.is_floating_point():
        got = tuple(sample.shape) if isinstance(sample, Tensor) else type(sample).__name__
        raise RobustkitError(
            f"check_classifier needs a float batch of pixels (N, C, H, W), got {got}: "
            "pass images scaled to [0, 1]"
        )
    shape = tuple(sample.shape[1:])
    input_shape = getattr(model, "input_shape", None)
    if input_shape is not None and int(input_shape[0]) != shape[0]:
        raise _mismatch(
            name, shape, f"it expects {input_shape[0]} channels, the data has {shape[0]}"
        )
    was_training = model.training
    model.eval()
    sample = sample.to(device_of(model))
    try:
        out = _forward(model, sample, name, shape)
        _check_logits(name, out, len(sample), getattr(model, "num_classes", None))
        if _one_output_in_unit_range(out):
            _check_sigmoid(name, model, sample)
    finally:
        model.train(was_training)
    return int(out.shape[1])


@torch.no_grad()
def is_randomized(model: nn.Module, x: Tensor) -> bool:
    """Two forward passes on the same inputs differ."""
    first, second = model(x), model(x)
    scale = first.abs().amax().clamp_min(1e-12)
    return bool(((first - second).abs().amax() / scale) > RANDOM_TOL)


def check_deterministic(model: nn.Module, sample: Tensor) -> None:
    """Refuse a model whose logits change between two calls on the same ``sample``."""
    if is_randomized(model, sample.to(device_of(model))):
        name = getattr(model, "name", None) or type(model).__name__
        raise RobustkitError(
            f"model {name} returns different logits for the same input on two calls: remove "
            "its randomness (dropout or batch statistics left on?), or pass --randomized to "
            "audit it as a randomized model"
        )


def _forward(model: nn.Module, sample: Tensor, name: str, shape: tuple[int, ...]) -> Any:
    """The model's output on ``sample``; a runtime error there is an input-shape mismatch."""
    try:
        with torch.no_grad():
            return model(sample)
    except torch.cuda.OutOfMemoryError:
        raise
    except RuntimeError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        raise _mismatch(name, shape, lines[0] if lines else type(exc).__name__) from exc


def _check_logits(name: str, out: object, batch: int, num_classes: int | None) -> None:
    if not isinstance(out, Tensor):
        raise RobustkitError(
            f"model must return 2-D logits (batch, classes), got {type(out).__name__}: "
            f"make {name} return a single tensor"
        )
    if out.dim() != 2 or out.shape[0] != batch:
        raise RobustkitError(
            f"model must return 2-D logits (batch, classes), got shape {tuple(out.shape)} "
            f"for a batch of {batch}: flatten or reshape the output of {name}"
        )
    if out.shape[1] < 2:
        raise RobustkitError(
            f"model must return 2-D logits (batch, classes) with at least 2 classes, got shape "
            f"{tuple(out.shape)}: return one logit per class"
        )
    if num_classes is not None and out.shape[1] != num_classes:
        raise RobustkitError(
            f"model {name} returns {out.shape[1]} logits but num_classes is {num_classes}: "
            "pass a matching --num-classes"
        )
    out = out.detach().float()
    if not torch.isfinite(out).all():
        raise RobustkitError(f"model {name} returns NaN/inf logits: check its weights")
    if (out >= 0).all() and ((out.sum(dim=1) - 1).abs() <= _PROB_TOL).all():
        raise RobustkitError(
            f"model {name} returns probabilities: attacks need logits, remove the softmax"
        )


def _one_output_in_unit_range(out: Tensor) -> bool:
    """Logits [0, z] (a binary model's one output, see OutputSelector) with every z in [0, 1]."""
    out = out.detach()
    return out.shape[1] == 2 and bool((out[:, 0] == 0).all()) and _in_unit_range(out[:, 1])


def _in_unit_range(values: Tensor) -> bool:
    return bool(((values >= 0) & (values <= 1)).all())


def _check_sigmoid(name: str, model: nn.Module, sample: Tensor) -> None:
    """Refuse a binary model whose one output stays in [0, 1] even on the two images its
    gradient pushes hardest up and down (each pixel at 0 or 1): a sigmoid probability, where a
    logit on one sample may fall in [0, 1] by chance but not on both extremes."""
    with torch.enable_grad():
        x = sample.detach().clone().requires_grad_(True)
        z = model(x)[:, 1].sum()
        grad = torch.autograd.grad(z, x)[0] if z.requires_grad else torch.zeros_like(x)
    with torch.no_grad():
        pushed = model(torch.cat([(grad > 0), (grad < 0)]).to(sample.dtype))
    if _in_unit_range(pushed[:, 1]):
        raise RobustkitError(
            f"model {name} returns probabilities (one output per sample, always in [0, 1]: a "
            "sigmoid?): attacks need logits, remove the sigmoid and return the logit"
        )


def _mismatch(name: str, shape: tuple[int, ...], detail: str) -> RobustkitError:
    return RobustkitError(
        f"model {name} cannot take inputs of shape {shape} from the dataset: {detail} "
        "(channel or size mismatch); pick a matching dataset/model or set --image-size"
    )
