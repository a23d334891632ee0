"""Square Attack (Andriushchenko, Croce, Flammarion and Hein, ECCV 2020), L-inf and L2 (L1 in
``robustkit.attacks.square_l1``).

A score-based black-box attack: a random search that changes one square window of the
perturbation at a time and keeps the change only if the loss improves. It never asks for a
gradient, so it is the check that a model's gradients are not lying (masked, shattered or
obfuscated gradients stop PGD, not this). The square covers a share ``p`` of the image that halves
on the paper's schedule (after 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of 10,000
queries), rescaled to the query budget as AutoAttack's SquareAttack does by default (AutoAttack's
standard evaluation switches the rescaling off and cuts the 10,000-query schedule at 5,000).

Cost: the attack spends up to ``queries`` forward passes per robust point, so each iteration
runs the model only on the points still unbroken, draws one window position for the whole batch
(each image still sees a uniformly random sequence of positions) and touches the window alone.
``race`` cuts that further, as successive halving does: at given shares of the budget only the
points whose best margin ranks highest keep searching. On the bundled robust MNIST model
(``benchmarks/square_race.py``, 907 points left by the gradient attacks, three seeds) every
point a full 5,000-query run broke after query 250 ranked in the top 14% at query 250 and in the
top 4% at query 1,000. That holds while breaks are rare, Square's usual role after the gradient
attacks; where it breaks points wholesale (the same model under an L2 budget of 2: 644 of the 877
points the gradient attacks left), the ranking no longer predicts which points will fall, so a
race stops narrowing once the search has broken ``race_max_broken`` of its points.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from robustkit.attacks.base import attack_objective, is_adversarial, require_counts
from robustkit.attacks.queries import QueryAttack
from robustkit.attacks.registry import register_attack
from robustkit.attacks.runs import Kept, Points, RunOutcome
from robustkit.errors import RobustkitError
from robustkit.models.wrapper import BOUNDS

# Iterations (out of 10,000) after which the square's share of the image halves (the paper's).
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
_SCHEDULE_LENGTH = 10_000


def square_share(p_init: float, iteration: int, queries: int) -> float:
    """The share of the image the square covers at ``iteration`` (0-based, after the initial
    query), the paper's schedule stretched or squeezed from 10,000 queries to ``queries``."""
    scaled = int(iteration / queries * _SCHEDULE_LENGTH)
    return p_init / 2 ** sum(scaled > bound for bound in _HALVINGS)


@dataclass(frozen=True)
class _Step:
    """One iteration's random draws, shared by the batch: square side and window corners."""

    side: int
    row: int
    col: int
    row2: int
    col2: int
    transpose: bool


def _window(row: int, col: int, side: int) -> tuple[slice, slice, slice, slice]:
    return (slice(None), slice(None), slice(row, row + side), slice(col, col + side))


class _Search(ABC):
    """One run's state over the points still unbroken: the best point so far and what the
    proposals need. ``propose`` builds a candidate batch, ``accept`` folds in the rows whose
    candidate won, ``keep`` drops the rows that left."""

    x_best: Tensor

    @abstractmethod
    def propose(self, step: _Step) -> Tensor:
        """The candidate batch for this iteration (x_best with one window changed)."""

    @abstractmethod
    def accept(self, accepted: Tensor) -> None:
        """Make the last candidate the best point where ``accepted``."""

    @abstractmethod
    def keep(self, rows: Tensor) -> None:
        """Restrict the state to the rows where ``rows`` is True."""


class _LinfSearch(_Search):
    """Vertices of the L-inf ball: every pixel sits at x0 +- eps (clipped to the bounds)."""

    def __init__(self, x0: Tensor, eps: float) -> None:
        low, high = BOUNDS
        n, c, _, w = x0.shape
        self.high = (x0 + eps).clamp_(low, high)
        self.low = (x0 - eps).clamp_(low, high)
        # the paper's start: vertical stripes, one random sign per column and channel
        stripes = torch.randint(0, 2, (n, c, 1, w), dtype=torch.bool, device=x0.device)
        self.x_best = torch.where(stripes, self.high, self.low)
        self._window = _window(0, 0, 0)
        self._candidate = self.x_best

    def propose(self, step: _Step) -> Tensor:
        window = _window(step.row, step.col, step.side)
        n, c = self.x_best.shape[:2]
        high, low = self.high[window], self.low[window]
        up = torch.randint(0, 2, (n, c, 1, 1), dtype=torch.bool, device=high.device)
        unchanged = (torch.where(up, high, low) == self.x_best[window]).flatten(1).all(dim=1)
        # a square that changes nothing wastes a query: draw again among the other sign patterns
        # (as the authors' code does; for one channel that is the opposite sign)
        up = up ^ _other_pattern(unchanged, c)
        self._window = window
        self._candidate = torch.where(up, high, low)
        x_new = self.x_best.clone()
        x_new[window] = self._candidate
        return x_new

    def accept(self, accepted: Tensor) -> None:
        current = self.x_best[self._window]
        current.copy_(torch.where(accepted.view(-1, 1, 1, 1), self._candidate, current))

    def keep(self, rows: Tensor) -> None:
        self.x_best, self.high, self.low = self.x_best[rows], self.high[rows], self.low[rows]


def _other_pattern(unchanged: Tensor, channels: int) -> Tensor:
    """Per row, a uniformly random non-empty set of channels to flip where ``unchanged``, else
    none, shaped (n, channels, 1, 1): XOR-ing it moves a square to a different sign pattern."""
    if channels == 1:
        return unchanged.view(-1, 1, 1, 1)
    bits = min(channels, 30)  # exact for up to 30 channels; beyond, the rest never flip
    code = torch.randint(1, 2**bits, (len(unchanged), 1), device=unchanged.device)
    powers = 2 ** torch.arange(bits, device=unchanged.device)
    flip = torch.zeros(len(unchanged), channels, dtype=torch.bool, device=unchanged.device)
    flip[:, :bits] = (code & powers) != 0
    return (flip & unchanged[:, None]).view(len(unchanged), channels, 1, 1)


class _L2Search(_Search):
    """L2 perturbations of norm eps made of pseudo-Gaussian squares. Each step moves the mass of
    two windows (plus any budget that clipping left unused) into the first, per channel, so the
    norm before clipping stays eps; ``sq`` tracks the per-channel squared norm of x_best - x0."""

    def __init__(self, x0: Tensor, eps: float) -> None:
        low, high = BOUNDS
        h, w = x0.shape[2:]
        self.x0 = x0
        self.eps = eps
        self._patterns: dict[int, tuple[Tensor, Tensor]] = {}  # side: (pair, transposed pair)
        # the paper's start: a grid of pseudo-Gaussian squares with random signs
        side = max(min(h, w) // 5, 1)
        rows, cols = h // side, w // side
        top, left = (h - rows * side) // 2, (w - cols * side) // 2
        delta = torch.zeros_like(x0)
        flips = torch.rand(rows * cols, device=x0.device).tolist()
        for i in range(rows):
            for j in range(cols):
                window = _window(top + i * side, left + j * side, side)
                delta[window] = self._signed(side, flips[i * cols + j] > 0.5)
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        self.x_best = (x0 + delta * (eps / norms).view(-1, 1, 1, 1)).clamp_(low, high)
        self.sq = (self.x_best - x0).square().sum(dim=(2, 3))
        self._windows = (_window(0, 0, 0), _window(0, 0, 0))
        self._candidate = self.x_best
        self._candidate_sq = self.sq

    def _signed(self, side: int, transpose: bool) -> Tensor:
        """The pseudo-Gaussian square (or its transpose) with a random sign per image and
        channel, shaped (n, c, side, side)."""
        if side not in self._patterns:
            pattern = pseudo_gaussian(side, self.x0.device, self.x0.dtype)
            pairs = (torch.stack([pattern, -pattern]), torch.stack([pattern.T, -pattern.T]))
            self._patterns[side] = pairs
        pair = self._patterns[side][int(transpose)]
        return pair[torch.randint(0, 2, self.x0.shape[:2], device=pair.device)]

    def propose(self, step: _Step) -> Tensor:
        low, high = BOUNDS
        s = step.side
        first, second = _window(step.row, step.col, s), _window(step.row2, step.col2, s)
        x_best, x0 = self.x_best, self.x0
        d1 = x_best[first] - x0[first]
        norm1 = torch.linalg.vector_norm(d1, dim=(2, 3))
        union = norm1.square() + (x_best[second] - x0[second]).square().sum(dim=(2, 3))
        top, bottom = max(step.row, step.row2), min(step.row, step.row2) + s
        left, right = max(step.col, step.col2), min(step.col, step.col2) + s
        if top < bottom and left < right:  # the windows overlap: count that mass once
            both = (slice(None), slice(None), slice(top, bottom), slice(left, right))
            union = union - (x_best[both] - x0[both]).square().sum(dim=(2, 3))
        # the new square: the pattern plus the old window's direction, given the windows' mass
        # and an equal share per channel of the budget that clipping left unused
        new = torch.addcdiv(
            self._signed(s, step.transpose), d1, norm1.clamp_min_(1e-12)[..., None, None]
        )
        mass = (self.unused + union).clamp_min_(0).sqrt_()
        new.mul_(
            (mass / torch.linalg.vector_norm(new, dim=(2, 3)).clamp_min_(1e-12))[..., None, None]
        )
        x_new = x_best.clone()
        x_new[second] = x0[second]
        x_new[first] = (x0[first] + new).clamp_(low, high)
        self._windows = (first, second)
        self._candidate = x_new
        self._candidate_sq = self.sq - union + (x_new[first] - x0[first]).square().sum(dim=(2, 3))
        return x_new

    @property
    def unused(self) -> Tensor:
        """Per image, an equal share per channel of the squared budget not spent, shaped (n, 1)."""
        budget = self.eps**2 - self.sq.sum(dim=1, keepdim=True)
        return budget.clamp_min_(0) / self.sq.shape[1]

    def accept(self, accepted: Tensor) -> None:
        rows = accepted.view(-1, 1, 1, 1)
        for window in reversed(self._windows):  # the second window first: the first wins overlaps
            current = self.x_best[window]
            current.copy_(torch.where(rows, self._candidate[window], current))
        self.sq = torch.where(accepted[:, None], self._candidate_sq, self.sq)

    def keep(self, rows: Tensor) -> None:
        self.x_best, self.x0, self.sq = self.x_best[rows], self.x0[rows], self.sq[rows]


def _rings(
    rows: int, cols: int, device: torch.device, dtype: torch.dtype, power: int = 2
) -> Tensor:
    """Concentric rectangles around the centre of a rows x cols block, ring k weighing the sum
    of 1 / (j + 1)^power over the rings j >= k: a peaked blob, unit L2 norm."""
    if rows == 0:
        return torch.zeros(0, cols, device=device, dtype=dtype)
    rings = max(rows, cols) // 2 + 1
    weights = 1.0 / torch.arange(1, rings + 1, device=device, dtype=dtype) ** power
    tails = weights.flip(0).cumsum(0).flip(0)  # tails[k] = sum of weights[k:]
    dr = (torch.arange(rows, device=device) - rows // 2).abs()
    dc = (torch.arange(cols, device=device) - cols // 2).abs()
    blob = tails[torch.maximum(dr[:, None], dc[None, :])]
    return blob / blob.norm()


def pseudo_gaussian(side: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """The paper's "meta pseudo-Gaussian" square: a positive blob over the top half and a
    negative one over the bottom half, unit L2 norm."""
    top = _rings(side // 2, side, device, dtype)
    bottom = -_rings(side - side // 2, side, device, dtype)
    square = torch.cat([top, bottom])
    return square / square.norm()


@dataclass(frozen=True, kw_only=True)
class SquareAttack(QueryAttack):
    """Random search over square-shaped perturbation updates (Andriushchenko et al. 2020).

    Up to ``queries`` forward passes per point and restart, counting the initial one; a broken
    point leaves the batch at once and restarts run only on points still unbroken. The result's
    ``queries`` are those spent per point (over all restarts, up to the one that broke it), and
    its predictions those the search saw: nothing is forwarded beyond the budget. ``loss`` is
    the objective the search improves: ``"margin"`` (the paper's choice, untargeted) or ``"ce"``;
    with ``targets`` it is the targeted version (the paper used targeted cross-entropy: pass
    ``loss="ce"``). ``p_init`` 0.8 is AutoAttack's setting for both norms. ``race`` holds
    ``(share of the queries, share of the points kept)`` pairs: after that many queries only that
    share of the run's points, those with the highest objective, keeps searching; the others
    leave with their best point (empty: every point gets every query, as in the paper). Once
    the run has broken more than ``race_max_broken`` of its points, no more cuts are made.
    """

    iterative: ClassVar[bool] = False  # an audit's steps must not overwrite the query budget
    gradient_free: ClassVar[bool] = True
    access: ClassVar[str] = "scores"
    queries: int = 5000
    p_init: float = 0.8
    restarts: int = 1
    loss: str = "margin"
    race: tuple[tuple[float, float], ...] = ()
    race_max_broken: float = 0.05

    def __post_init__(self) -> None:
        require_counts(self, "queries", "restarts")
        if not 0 < self.p_init <= 1:
            raise RobustkitError(
                f"p_init is a share of the image: use 0 < p_init <= 1, got {self.p_init:g}"
            )
        if self.loss not in ("margin", "ce"):
            raise RobustkitError(f"unknown loss {self.loss!r}: use 'margin' or 'ce'")
        if not 0 <= self.race_max_broken <= 1:
            raise RobustkitError(
                f"race_max_broken is a share of the points: use 0 to 1, got {self.race_max_broken}"
            )
        if any(not (0 < at < 1 and 0 < kept <= 1) for at, kept in self.race):
            raise RobustkitError(
                f"race holds (share of the queries, share of the points kept) pairs, each in "
                f"(0, 1): got {self.race}"
            )

    def _race_cuts(self, points: int) -> dict[int, int]:
        """Per iteration where the race narrows, how many of the run's ``points`` stay in it."""
        return {int(at * self.queries): math.ceil(kept * points) for at, kept in self.race}

    @abstractmethod
    def _first_search(self, x0: Tensor, eps: float) -> _Search:
        """A run's start state around x0."""

    @abstractmethod
    def _side(self, share: float, height: int, width: int) -> int:
        """The side of a square covering ``share`` of the image."""

    def _start(
        self, model: nn.Module, points: Points, eps: float
    ) -> tuple[Kept, list[Tensor | None]]:
        """No search at eps 0: the inputs are all the ball holds."""
        kept, aims = super()._start(model, points, eps)
        return kept, aims if eps > 0 else []

    def _plan(self, x0: Tensor) -> list[_Step]:
        """Every iteration's square side and window corners, drawn in one go."""
        h, w = x0.shape[2:]
        draws = torch.rand(max(self.queries - 1, 0), 5, device=x0.device).tolist()
        plan = []
        for i, (a, b, a2, b2, t) in enumerate(draws):
            side = self._side(square_share(self.p_init, i, self.queries), h, w)
            # as in the authors' code and AutoAttack, a window never starts on the last row or
            # column (on digits that skips a blank border; measurably stronger on MNIST)
            rows, cols = max(h - side, 1), max(w - side, 1)
            plan.append(
                _Step(
                    side=side,
                    row=int(a * rows),
                    col=int(b * cols),
                    row2=int(a2 * rows),
                    col2=int(b2 * cols),
                    transpose=t < 0.5,
                )
            )
        return plan

    @torch.no_grad()
    def _single_run(
        self, model: nn.Module, points: Points, *, eps: float, restart: int, **settings: Any
    ) -> RunOutcome:
        """One random search; per point the first adversarial found or else the best point,
        with whether it is adversarial and its objective."""
        plan = self._plan(points.x0)
        run = _Run(points, self._first_search(points.x0, eps))
        search, cuts, limit = run.search, self._race_cuts(len(points.x0)), self.race_max_broken
        for i in range(self.queries):
            candidate = search.x_best if i == 0 else search.propose(plan[i - 1])
            logits = model(candidate)
            run.asked += 1
            labels, targets = run.points.labels, run.points.targets
            objective = attack_objective(logits, labels, targets, self.loss)
            broken = is_adversarial(logits, labels, targets)
            pred = logits.argmax(dim=1)
            if i == 0:
                run.best, run.best_pred = objective, pred
            else:
                accepted = broken | (objective > run.best)  # broken points leave: best is moot
                run.best = torch.maximum(run.best, objective)
                run.best_pred = torch.where(accepted, pred, run.best_pred)
                search.accept(accepted)
            if bool(broken.any()):
                run.retire(broken, success=True)
                if run.alive.numel() == 0:
                    break
            if i in cuts and run.alive.numel() > cuts[i] and run.broken_share <= limit:
                behind = torch.ones_like(run.alive, dtype=torch.bool)
                behind[run.best.topk(cuts[i]).indices] = False
                run.retire(behind, success=False)
        run.retire(torch.ones_like(run.alive, dtype=torch.bool), success=False)
        return run.out


class _Run:
    """One search's bookkeeping: the points still searching (``alive``, indices into the run's
    points) with their best objective and its prediction, the queries each of them has spent
    (``asked``: all the same), and the output so far."""

    def __init__(self, points: Points, search: _Search) -> None:
        x0 = points.x0
        self.search, self.points = search, points
        self.alive = torch.arange(len(x0), device=x0.device)
        self.best = torch.empty(0, device=x0.device)
        self.best_pred = torch.empty(0, dtype=torch.long, device=x0.device)
        self.asked = 0
        self.out = RunOutcome.blank(x0)
        self.out.extra["pred"] = torch.full((len(x0),), -1, dtype=torch.long, device=x0.device)
        self.out.queries = torch.zeros(len(x0), dtype=torch.long, device=x0.device)

    @property
    def broken_share(self) -> float:
        """The share of the run's points broken so far."""
        return float(self.out.success.float().mean())

    def retire(self, leaving: Tensor, *, success: bool) -> None:
        """Write out the points where ``leaving`` (their best point, objective, prediction and
        queries) and stop searching them."""
        rows = self.alive[leaving]
        self.out.record(rows, self.search.x_best[leaving], success, self.best[leaving])
        self.out.extra["pred"][rows] = self.best_pred[leaving]
        self.out.queries[rows] = self.asked  # type: ignore[index]
        keep = ~leaving
        self.alive, self.points, self.best, self.best_pred = (
            self.alive[keep],
            self.points.select(keep),
            self.best[keep],
            self.best_pred[keep],
        )
        self.search.keep(keep)


@register_attack("square")
@dataclass(frozen=True, kw_only=True)
class SquareLinf(SquareAttack):
    """Square Attack under an L-inf budget: starts from vertical +-eps stripes, then sets one
    random square per iteration to +-eps per channel, so every point sits on a ball corner."""

    norm = "linf"

    def _first_search(self, x0: Tensor, eps: float) -> _Search:
        return _LinfSearch(x0, eps)

    def _side(self, share: float, height: int, width: int) -> int:
        return min(max(round(math.sqrt(share * height * width)), 1), height, width)


@register_attack("square-l2")
@dataclass(frozen=True, kw_only=True)
class SquareL2(SquareAttack):
    """Square Attack under an L2 budget: pseudo-Gaussian squares, each step moving the mass of a
    second window into the first so that the perturbation keeps norm eps (before clipping)."""

    norm = "l2"

    def _first_search(self, x0: Tensor, eps: float) -> _Search:
        return _L2Search(x0, eps)

    def _side(self, share: float, height: int, width: int) -> int:
        side = max(round(math.sqrt(share * height * width)), 3)
        side += 1 - side % 2  # odd, as the paper's squares have a centre pixel
        return max(min(side, height, width), 1)
