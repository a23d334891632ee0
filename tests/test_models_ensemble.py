"""Ensembles of models (robustkit/models/ensemble.py), a transfer source."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from robustkit.errors import RobustkitError
from robustkit.models.ensemble import Ensemble


def test_ensemble_outputs():
    torch.manual_seed(0)
    members = [nn.Sequential(nn.Flatten(), nn.Linear(16, 5)) for _ in range(3)]
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 5, (8,))
    member_ce = torch.stack([F.cross_entropy(m(x), y, reduction="none") for m in members])
    out = Ensemble(members, mode="loss")(x)
    # the label's loss is exactly the mean member cross-entropy ...
    nll = -out.gather(1, y[:, None]).squeeze(1)
    assert torch.allclose(nll, member_ce.mean(dim=0), atol=1e-6)
    # ... and cross-entropy renormalises it by logsumexp(out) <= 0 (0 when the members agree)
    ce = F.cross_entropy(out, y, reduction="none")
    assert torch.allclose(ce, member_ce.mean(dim=0) + out.logsumexp(dim=1), atol=1e-6)
    assert (out.logsumexp(dim=1) <= 1e-6).all()
    same = Ensemble([members[0], members[0]], mode="loss")(x)
    assert torch.allclose(F.cross_entropy(same, y), F.cross_entropy(members[0](x), y), atol=1e-6)
    logits = Ensemble(members, mode="logits")(x)
    assert torch.allclose(logits, torch.stack([m(x) for m in members]).mean(dim=0))
    with pytest.raises(RobustkitError, match="'loss' or 'logits'"):
        Ensemble(members, mode="probs")
