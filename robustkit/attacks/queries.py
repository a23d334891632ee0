"""Query-based (black-box) attacks: the model as an oracle that counts every input row forwarded
per point and never lets a point past its budget, and the base class whose result reports those
counts instead of spending more queries on a fresh scoring pass.

A query is one input row forwarded through the model. A point's ``queries`` are the rows
forwarded for it up to and including the forward in which one of its rows was first an
adversarial within eps (the attack stops there: a broken point spends nothing more), or, for a
point never broken, every row the attack forwarded for it. The clean check (the input itself,
one row) counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from robustkit.attacks.base import Attack, AttackResult, require_counts
from robustkit.attacks.geometry import geometry
from robustkit.attacks.runs import Kept, Points, RunOutcome

# One forward holds at most this many input elements (at least one row): it bounds the memory of
# an attack that asks many rows per point at once (HopSkipJump's gradient estimate) and, on the
# CPU, keeps batches cache-sized (zoo:mnist-cnn, one thread: 0.26 ms a row in batches of 64 to
# 256, 0.37 ms in batches of 4,096).
ROW_ELEMENTS = {"cpu": 2**18, "accelerator": 2**24}


def rows_per_forward(like: Tensor) -> int:
    """How many rows shaped like ``like``'s one forward holds on its device."""
    elements = ROW_ELEMENTS["cpu" if like.device.type == "cpu" else "accelerator"]
    return max(1, elements // max(like[0].numel(), 1))


class QueryBudgetError(RuntimeError):
    """An attack asked the model for more rows of a point than its budget: a bug in the attack
    (every built-in sizes its requests to what is left), never in the caller's inputs."""


def goal_met(pred: Tensor, labels: Tensor, targets: Tensor | None) -> Tensor:
    """Per row: the target class predicted (targeted) or the label not (untargeted)."""
    return pred == targets if targets is not None else pred != labels


class Oracle:
    """The model as a query-based attack sees it, over one run's points.

    ``ask`` forwards rows (each belonging to one point, ``idx``) in chunks, counts them per point,
    refuses a request that would take a point past ``budget`` (:class:`QueryBudgetError`) and
    records, per point, the first row that meets the goal within eps: that point is then
    ``done`` and the rows still asked for it are skipped. The attack reads only the predictions
    (labels access) or the outputs (scores access) of what it asked.
    """

    def __init__(
        self, model: nn.Module, points: Points, *, eps: float, norm: str, budget: int
    ) -> None:
        x0 = points.x0
        self.model, self.points, self.eps, self.budget = model, points, eps, budget
        self.geometry = geometry(norm)
        self.spent = torch.zeros(len(x0), dtype=torch.long, device=x0.device)
        self.done = torch.zeros(len(x0), dtype=torch.bool, device=x0.device)
        self.x_adv = x0.clone()
        self.pred = torch.full((len(x0),), -1, dtype=torch.long, device=x0.device)

    def left(self, idx: Tensor) -> Tensor:
        """The queries the points ``idx`` may still spend."""
        return self.budget - self.spent[idx]

    def open(self, idx: Tensor) -> Tensor:
        """Where the points ``idx`` are neither broken nor out of queries."""
        return ~self.done[idx] & (self.spent[idx] < self.budget)

    def clean_check(self) -> None:
        """Ask every point's input once: its prediction, and done where already adversarial."""
        idx = torch.arange(len(self.points.x0), device=self.points.x0.device)
        pred = self.ask(idx, self.points.x0).argmax(dim=1)
        self.pred = torch.where(self.done, self.pred, pred)

    def ask(self, idx: Tensor, x: Tensor) -> Tensor:
        """The model's outputs on the rows ``x`` (row r asked for point ``idx[r]``); rows skipped
        because their point was broken by an earlier chunk are NaN."""
        step = rows_per_forward(x) if len(x) else 1
        out: Tensor | None = None
        for start in range(0, len(x), step):
            rows = slice(start, start + step)
            part = idx[rows]
            keep = ~self.done[part]
            if not bool(keep.any()):
                continue
            logits = self._forward(part[keep], x[rows][keep])
            if out is None:
                out = logits.new_full((len(x), logits.shape[1]), float("nan"))
            out[rows][keep] = logits
        if out is None:
            return x.new_full((len(x), 1), float("nan"))
        return out

    def decide(self, idx: Tensor, x: Tensor) -> Tensor:
        """Per row of ``x``, whether the model's top-1 class meets the goal (labels access):
        False for rows skipped."""
        logits = self.ask(idx, x)
        met = goal_met(logits.argmax(dim=1), self.points.labels[idx], self._targets(idx))
        return met & ~logits.isnan().any(dim=1)

    def outcome(self) -> RunOutcome:
        """The run's outcome: per point the first adversarial within eps (else the input), with
        its prediction and the queries spent."""
        return RunOutcome(
            x_adv=self.x_adv,
            success=self.done.clone(),
            extra={"pred": self.pred},
            queries=self.spent,
        )

    def _targets(self, idx: Tensor) -> Tensor | None:
        targets = self.points.targets
        return None if targets is None else targets[idx]

    @torch.no_grad()
    def _forward(self, idx: Tensor, x: Tensor) -> Tensor:
        counts = torch.bincount(idx, minlength=len(self.spent))
        if bool((self.spent + counts > self.budget).any()):
            raise QueryBudgetError(
                f"an attack asked for more than {self.budget} queries of a point: a bug in the "
                "attack"
            )
        logits = self.model(x)
        self.spent += counts
        pred = logits.argmax(dim=1)
        met = goal_met(pred, self.points.labels[idx], self._targets(idx))
        within = self.geometry.distance(x - self.points.x0[idx]) <= self.eps
        hit = (met & within).nonzero().squeeze(1)
        if hit.numel():
            first = torch.full_like(self.spent, len(x))  # per point, its first hit row
            first.scatter_reduce_(0, idx[hit], hit, reduce="amin")
            points = (first < len(x)).nonzero().squeeze(1)
            rows = first[points]
            self.x_adv[points] = x[rows]
            self.pred[points] = pred[rows]
            self.done[points] = True
        return logits


@dataclass(frozen=True, kw_only=True)
class QueryAttack(Attack):
    """A query-based attack: each run returns, per point, the prediction of its adversarial as
    the model gave it when queried, and the queries spent; the result reports those, with no
    scoring pass beyond the budget (a point no run asked gets one query, its input)."""

    gradient_free: ClassVar[bool] = True
    randomized_ok: ClassVar[bool] = False
    minimum_norm: ClassVar[bool] = False

    def _start(
        self, model: nn.Module, points: Points, eps: float
    ) -> tuple[Kept, list[Tensor | None]]:
        """Nothing broken, one aim, and the predictions to be filled by the runs."""
        pred = torch.full((len(points.x0),), -1, dtype=torch.long, device=points.x0.device)
        return Kept.start(points.x0, pred=pred), [points.targets]

    def _result(self, model: nn.Module, points: Points, kept: Kept) -> AttackResult:
        pred = kept.extra["pred"].clone()
        queries = kept.queries if kept.queries is not None else torch.zeros_like(pred)
        unasked = pred < 0
        if bool(unasked.any()):
            with torch.no_grad():
                pred[unasked] = model(kept.x_adv[unasked]).argmax(dim=1)
            queries = queries + unasked.long()
        return AttackResult(
            x_adv=kept.x_adv,
            success=goal_met(pred, points.labels, points.targets),
            adv_pred=pred,
            queries=queries,
        )


@dataclass(frozen=True, kw_only=True)
class OracleAttack(QueryAttack):
    """A query-based attack written against an :class:`Oracle`: up to ``max_queries`` model
    queries per point (the clean check included); ``_seek`` spends them."""

    max_queries: int = 5000

    def __post_init__(self) -> None:
        require_counts(self, "max_queries")

    def _single_run(
        self, model: nn.Module, points: Points, *, eps: float, restart: int, **settings: Any
    ) -> RunOutcome:
        oracle = Oracle(model, points, eps=eps, norm=self.norm, budget=self.max_queries)
        oracle.clean_check()
        if eps > 0:
            with torch.no_grad():
                self._seek(oracle, eps)
        return oracle.outcome()

    def _seek(self, oracle: Oracle, eps: float) -> None:
        """Spend the points' queries looking for adversarials within eps."""
        raise NotImplementedError
