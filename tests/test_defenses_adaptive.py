"""Adaptive-attack wrappers (robustkit/defenses/adaptive.py)."""

from __future__ import annotations

import pytest
import torch

from robustkit.defenses.adaptive import EOT
from robustkit.errors import RobustkitError


def test_eot_averages_stochastic_passes(classifier: torch.nn.Module) -> None:
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(EOT(classifier, samples=4)(x), classifier(x), atol=1e-5)
    with pytest.raises(RobustkitError, match="samples >= 1"):
        EOT(classifier, samples=0)
