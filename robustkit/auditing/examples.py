"""Example adversarials: a few per attack and budget from the first batch, for the report."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from robustkit.auditing.results import EXAMPLE_COLUMNS, Examples

Picked = tuple[Tensor, Tensor, dict[str, list[Any]]]


def pick_examples(
    model: nn.Module,
    attack: str,
    eps: float,
    samples: Tensor,
    x: Tensor,
    y: Tensor,
    x_adv: Tensor,
    adv_pred: Tensor,
    success: Tensor,
    limit: int,
) -> Picked:
    """The first ``limit`` successful adversarials of one attack, with confidences and the
    dataset index of each (``samples``, on the CPU); a labels-only model has no confidence to
    give (NaN)."""
    chosen = success.nonzero().squeeze(1)[:limit]
    clean, adversarial = x[chosen], x_adv[chosen]
    clean_conf, adv_conf = _confidence(model, clean), _confidence(model, adversarial)
    n = len(chosen)
    meta: dict[str, list[Any]] = {
        "attack": [attack] * n,
        "eps": [eps] * n,
        "sample": samples[chosen.cpu()].tolist(),
        "label": y[chosen].tolist(),
        "clean_pred": y[chosen].tolist(),
        "adv_pred": adv_pred[chosen].tolist(),
        "clean_confidence": clean_conf.tolist(),
        "adv_confidence": adv_conf.tolist(),
    }
    return clean.cpu(), adversarial.cpu(), meta


@torch.no_grad()
def _confidence(model: nn.Module, x: Tensor) -> Tensor:
    """Per input, the top class's softmax probability (NaN from a labels-only model, whose
    one-hot answers carry none)."""
    if getattr(model, "access", None) == "labels":
        return torch.full((len(x),), float("nan"))
    return model(x).softmax(dim=1).amax(dim=1)


def stack_examples(picked: list[Picked]) -> Examples | None:
    if not picked or not any(len(clean) for clean, _, _ in picked):
        return None
    frame = pd.concat([pd.DataFrame(meta) for _, _, meta in picked], ignore_index=True)
    return Examples(
        clean=torch.cat([clean for clean, _, _ in picked]),
        adversarial=torch.cat([adv for _, adv, _ in picked]),
        frame=frame[EXAMPLE_COLUMNS],
    )
