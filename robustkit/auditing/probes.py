"""Probes of the model itself, run once per audit on its first batch: is it randomized, and do
its input gradients carry information? Both decide whether gradient attacks can be trusted."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from robustkit.auditing.checks import Flag
from robustkit.models.checks import is_randomized

PROBE_SIZE = 64  # inputs the probes look at
DEAD_GRADIENT_SHARE = 0.1  # share of inputs without a usable gradient that raises the flag


def probe_model(
    model: nn.Module, x: Tensor, y: Tensor, *, eot: bool = False, randomized: bool | None = None
) -> list[Flag]:
    """Flags for a randomized model attacked without EOT (``eot`` False) and for inputs whose
    loss gradient is zero or not finite (``randomized``: the randomness probe's verdict, when
    the caller has run it already)."""
    x, y = x[:PROBE_SIZE], y[:PROBE_SIZE].to(x.device)
    name = getattr(model, "name", type(model).__name__)
    flags = []
    if randomized is None:
        randomized = not eot and is_randomized(model, x)
    if not eot and randomized:
        flags.append(
            Flag(
                "randomized-without-eot",
                "error",
                f"{name} gives different outputs for the same input on repeated passes, and no "
                "EOT was used: single-pass attacks chase noise and overstate robustness -- "
                "attack it with EOT (robustkit.defenses.adaptive.EOT, or --defense for the "
                "bundled defenses)",
            )
        )
    dead = dead_gradient_share(model, x, y)
    if dead > DEAD_GRADIENT_SHARE:
        flags.append(
            Flag(
                "zero-gradients",
                "error",
                f"{dead:.0%} of the probed inputs have a zero or non-finite loss gradient on "
                f"{name}: gradient attacks are blind there (masked gradients: a "
                "non-differentiable input transform, saturated or scaled logits) -- trust only "
                "gradient-free (square) and scale-invariant (apgd-t, apgd-dlr) attacks, e.g. "
                'the standard suite (--suite standard, suite="standard"), and use BPDA for a '
                "non-differentiable preprocessing step",
            )
        )
    return flags


def dead_gradient_share(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Share of inputs whose cross-entropy gradient with respect to the input is all zero or
    holds a non-finite value."""
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    if not loss.requires_grad:
        return 1.0
    (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    if grad is None:
        return 1.0
    flat = grad.flatten(1)
    dead = (flat == 0).all(dim=1) | ~torch.isfinite(flat).all(dim=1)
    return float(dead.float().mean())
