"""Query counting for peer decision-based attacks (ART's and foolbox's HopSkipJump), so that
their robust accuracy at a query budget is measured as ours is.

Neither peer takes a query budget or an eps: both minimise the distance for a number of
iterations. :class:`Ledger` wraps the model they query: it counts every input row forwarded per
point, records the first row that is adversarial within eps (a point's ``first``, 1-based,
the clean check included), and stops the peer (raising :class:`Stop`) once the point is broken
or its budget spent. Counting to the row is slightly generous to the peers: ours counts a whole
forward, so a point broken by the 3rd of 50 probes forwarded together is charged all 50.

ART attacks one point after another (``art_hop_skip_jump``: one ``generate`` call per point);
foolbox runs the batch in lockstep, every call one row per point in order
(``foolbox_hop_skip_jump``), so every point spends the same queries until the last is done.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import Tensor, nn

from robustkit.attacks.geometry import geometry


class Stop(Exception):
    """Every point being attacked is broken or out of queries: stop the peer."""


class Ledger(nn.Module):
    """``model`` as the peer sees it, counting queries per point (see the module docstring)."""

    def __init__(self, model: nn.Module, norm: str, eps: float, budget: int) -> None:
        super().__init__()
        self.model, self.geometry, self.eps, self.budget = model, geometry(norm), eps, budget
        self.x0 = torch.empty(0)
        self.labels = torch.empty(0, dtype=torch.long)
        self.spent = torch.empty(0, dtype=torch.long)
        self.first = torch.empty(0)
        self.rows = 0  # every row forwarded, done points' included

    def begin(self, x0: Tensor, labels: Tensor) -> None:
        """Attack these points next (one, or a lockstep batch)."""
        self.x0, self.labels = x0, labels
        self.spent = torch.zeros(len(x0), dtype=torch.long)
        self.first = torch.full((len(x0),), math.inf)

    @property
    def done(self) -> Tensor:
        return (self.first < math.inf) | (self.spent >= self.budget)

    def forward(self, x: Tensor) -> Tensor:
        x = x.to(self.x0.dtype)  # ART interpolates in float64
        with torch.no_grad():
            logits = self.model(x)
        self.rows += len(x)
        owner = torch.zeros(len(x), dtype=torch.long)  # one point at a time
        if len(self.x0) > 1:  # lockstep: row i of every call is point i
            if len(x) != len(self.x0):
                raise RuntimeError(f"lockstep call of {len(x)} rows for {len(self.x0)} points")
            owner = torch.arange(len(x))
        hit = (logits.argmax(dim=1) != self.labels[owner]) & (
            self.geometry.distance(x.detach() - self.x0[owner]) <= self.eps
        )
        for row in range(len(x)):
            point = int(owner[row])
            if bool(self.done[point]):
                continue
            self.spent[point] += 1
            if bool(hit[row]):
                self.first[point] = float(self.spent[point])
        if bool(self.done.all()):
            raise Stop
        return logits


def art_hop_skip_jump(
    model: nn.Module, x: Tensor, y: Tensor, *, norm: str, eps: float, budget: int, seed: int = 0
) -> tuple[Tensor, int]:
    """ART's HopSkipJumpAttack (its defaults; iterations unbounded, the budget binds) on each
    point in turn: per point its ``first`` query adversarial within eps (inf: none), and every
    row forwarded."""
    from art.attacks.evasion import HopSkipJump as ARTHopSkipJump
    from art.estimators.classification import PyTorchClassifier

    ledger = Ledger(model, norm, eps, budget)
    classifier = PyTorchClassifier(
        model=ledger,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    attack = ARTHopSkipJump(
        classifier, norm=np.inf if norm == "linf" else 2, max_iter=10**6, verbose=False
    )
    np.random.seed(seed)  # its probes; its start draws from an unseeded RandomState
    first = torch.full((len(x),), math.inf)
    for i in range(len(x)):
        ledger.begin(x[i : i + 1], y[i : i + 1])
        with contextlib.suppress(Stop):
            attack.generate(x=x[i : i + 1].numpy(), y=y[i : i + 1].numpy())
        first[i] = ledger.first[0]
    return first, ledger.rows


def foolbox_hop_skip_jump(
    model: nn.Module, x: Tensor, y: Tensor, *, norm: str, eps: float, budget: int, seed: int = 0
) -> tuple[Tensor, int]:
    """foolbox's HopSkipJumpAttack (its defaults; steps unbounded, the budget binds) on the
    batch in lockstep: per point its ``first`` query adversarial within eps (inf: none), and
    every row forwarded."""
    import foolbox as fb

    ledger = Ledger(model, norm, eps, budget)
    ledger.begin(x, y)
    attack = fb.attacks.HopSkipJumpAttack(steps=10**6, constraint=norm)
    torch.manual_seed(seed)
    fmodel = fb.PyTorchModel(ledger.eval(), bounds=(0, 1))
    with contextlib.suppress(Stop):
        attack.run(fmodel, x, fb.criteria.Misclassification(y))
    return ledger.first.clone(), ledger.rows
