"""The bookkeeping every attack shares: the points a run attacks, what a run returns, the best
outcome kept per point across runs, and the rows of a run's state still searching.

One call of an attack is a series of runs (restarts, and for targeted variants one series per
aim), each on the points no run has broken yet. A run returns, per point, its adversarial,
whether it met the goal and how promising it is (``objective``, higher is better; ``share``, for
a randomized model, of the judging passes fooled). :class:`Kept` holds per point the best outcome
so far: the most passes fooled, then the highest objective; a run without an objective replaces
what it attacked (nothing ranks its draws).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import Tensor

S = TypeVar("S")


def per_sample(values: Tensor, like: Tensor) -> Tensor:
    """Reshape a per-sample vector to broadcast against a batch like ``like``."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def select_rows(state: S, rows: Tensor) -> S:
    """A copy of the dataclass ``state`` with every tensor field (and every nested dataclass's)
    cut to ``rows`` (a mask or indices): the points that stay in a run."""
    sliced: dict[str, Any] = {}
    for item in dataclasses.fields(state):  # type: ignore[arg-type]
        value = getattr(state, item.name)
        if isinstance(value, Tensor):
            sliced[item.name] = value[rows]
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            sliced[item.name] = select_rows(value, rows)
        elif isinstance(value, dict):
            sliced[item.name] = {key: tensor[rows] for key, tensor in value.items()}
    return dataclasses.replace(state, **sliced)  # type: ignore[type-var]


@dataclass(frozen=True)
class Points:
    """The points a run attacks: inputs, labels, the caller's targets (success is reaching them)
    and the aim (the class a run's loss pulls towards, where it differs from the targets)."""

    x0: Tensor
    labels: Tensor
    targets: Tensor | None = None
    aim: Tensor | None = None

    def select(self, rows: Tensor) -> Points:
        return select_rows(self, rows)


@dataclass
class RunOutcome:
    """Per point of one run: the adversarial it returns, whether it met the goal, its objective
    (None: the run ranks nothing) and share of judging passes fooled (None: ``success``);
    ``extra`` holds tensors an attack keeps alongside (e.g. the class a run aimed at);
    ``queries`` (query-based attacks) the model queries the run spent on each point."""

    x_adv: Tensor
    success: Tensor
    objective: Tensor | None = None
    share: Tensor | None = None
    extra: dict[str, Tensor] = field(default_factory=dict)
    queries: Tensor | None = None

    @classmethod
    def blank(cls, x0: Tensor) -> RunOutcome:
        """A run's outcome before any point leaves it: the inputs, nothing met, objectives to
        be written."""
        n = len(x0)
        return cls(
            x_adv=x0.clone(),
            success=torch.zeros(n, dtype=torch.bool, device=x0.device),
            objective=torch.empty(n, device=x0.device),
        )

    def record(self, rows: Tensor, x: Tensor, success: Tensor | bool, objective: Tensor) -> None:
        """Write out the points at ``rows`` (indices into the run) as they leave it."""
        self.x_adv[rows] = x
        self.success[rows] = success
        if self.objective is not None:
            self.objective[rows] = objective


@dataclass
class Kept:
    """Per point of a call, the best outcome of its runs so far (the input while none), and the
    model queries all its runs spent on it (summed, whichever run is kept)."""

    x_adv: Tensor
    success: Tensor
    objective: Tensor
    share: Tensor
    extra: dict[str, Tensor] = field(default_factory=dict)
    queries: Tensor | None = None

    @classmethod
    def start(cls, inputs: Tensor, success: Tensor | None = None, **extra: Tensor) -> Kept:
        """Before any run: the inputs, ``success`` where already met (default: nowhere)."""
        n = len(inputs)
        if success is None:
            success = torch.zeros(n, dtype=torch.bool, device=inputs.device)
        return cls(
            x_adv=inputs.clone(),
            success=success,
            objective=torch.full((n,), float("-inf"), device=inputs.device),
            share=success.float(),
            extra=extra,
        )

    @classmethod
    def unperturbed(cls, inputs: Tensor, broken: Tensor) -> Kept:
        """A minimum-norm call's start: the inputs already adversarial (``broken``) at radius 0.
        Minimum-norm runs rank by minus the norm found, so that is their objective."""
        kept = cls.start(inputs, broken)
        kept.objective[broken] = -0.0
        return kept

    def open(self, among: Tensor | None = None) -> Tensor:
        """The indices of the points not yet broken (of the mask ``among``, if given)."""
        todo = ~self.success if among is None else ~self.success & among
        return todo.nonzero().squeeze(1)

    def update(self, todo: Tensor, run: RunOutcome) -> None:
        """Keep the run's outcome on the points (``todo``, indices) where it beats the kept one."""
        share = run.success.float() if run.share is None else run.share
        if run.objective is None:
            better = torch.ones_like(run.success)
        else:
            kept_share = self.share[todo]
            ahead = share == kept_share
            better = (share > kept_share) | (ahead & (run.objective > self.objective[todo]))
            self.objective[todo[better]] = run.objective[better]
        chosen = todo[better]
        self.x_adv[chosen] = run.x_adv[better]
        self.success[chosen] = run.success[better]
        self.share[chosen] = share[better]
        for key, value in run.extra.items():
            self.extra[key][chosen] = value[better]
        if run.queries is not None:
            if self.queries is None:
                self.queries = torch.zeros_like(self.success, dtype=torch.long)
            self.queries[todo] += run.queries
