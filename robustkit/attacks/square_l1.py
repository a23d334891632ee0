"""Square Attack under an L1 budget, as AutoAttack runs it (Croce, Andriushchenko, Singh,
Flammarion & Hein, AAAI 2022, "Sparse-RS"; AutoAttack's L1 Square).

The squares are L1 analogues of the L2 pseudo-Gaussian ones (ring weights falling as 1 / k^4, so
the mass sits near the centre), and every candidate is projected exactly onto the L1 ball within
the pixel box (``robustkit.attacks.l1_ball``), which keeps the perturbation sparse.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from robustkit.attacks.l1_ball import l1_box_project
from robustkit.attacks.registry import register_attack
from robustkit.attacks.square import SquareL2, _rings, _Search, _Step, _window

MARGIN = 1e-6  # the search stays this share inside eps, as AutoAttack's does


def l1_square(side: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """A positive blob over the top half and a negative one over the bottom half, with ring
    weights falling as 1 / k^4; unit L1 norm."""
    top = _rings(side // 2, side, device, dtype, power=4)
    bottom = -_rings(side - side // 2, side, device, dtype, power=4)
    square = torch.cat([top, bottom])
    return square / square.abs().sum()


class _L1Search(_Search):
    """L1 perturbations of norm eps made of such squares. Each step moves the mass of two
    windows (plus an equal share per channel of the budget not yet spent) into a new square in
    the first, then projects onto the ball and the box."""

    def __init__(self, x0: Tensor, eps: float) -> None:
        h, w = x0.shape[2:]
        self.x0 = x0
        self.eps = eps * (1 - MARGIN)
        self._patterns: dict[int, tuple[Tensor, Tensor]] = {}  # side: (square, transposed)
        # the paper's start: a grid of squares with a random sign per image and channel
        side = max(min(h, w) // 5, 1)
        rows, cols = h // side, w // side
        top, left = (h - rows * side) // 2, (w - cols * side) // 2
        delta = torch.zeros_like(x0)
        for i in range(rows):
            for j in range(cols):
                window = _window(top + i * side, left + j * side, side)
                delta[window] = self._signed(side, transpose=False)
        self.x_best = l1_box_project(x0 + delta, x0, self.eps)
        self._candidate = self.x_best

    def _signed(self, side: int, *, transpose: bool) -> Tensor:
        """The square (or its transpose) with a random sign per image and channel, shaped
        (n, c, side, side)."""
        if side not in self._patterns:
            square = l1_square(side, self.x0.device, self.x0.dtype)
            self._patterns[side] = (square, square.T.contiguous())
        square = self._patterns[side][int(transpose)]
        n, c = self.x0.shape[:2]
        signs = torch.randint(0, 2, (n, c, 1, 1), device=square.device) * 2 - 1
        return square * signs

    def propose(self, step: _Step) -> Tensor:
        s = step.side
        first, second = _window(step.row, step.col, s), _window(step.row2, step.col2, s)
        delta = self.x_best - self.x0
        old = delta[first]
        old_mass = old.abs().sum(dim=(2, 3), keepdim=True)
        covered = torch.zeros_like(delta[:, :1])
        covered[first] = 1.0
        covered[second] = 1.0
        windows = (delta.abs() * covered).sum(dim=(2, 3), keepdim=True)  # per channel
        spent = delta.abs().flatten(1).sum(dim=1).view(-1, 1, 1, 1)
        unused = (self.eps - spent).clamp_min(0.0) / delta.shape[1]
        new = self._signed(s, transpose=step.transpose) + old / old_mass.clamp_min(1e-12)
        new = new / new.abs().sum(dim=(2, 3), keepdim=True).clamp_min(1e-12) * (unused + windows)
        delta[second] = 0.0
        delta[first] = new
        self._candidate = l1_box_project(self.x0 + delta, self.x0, self.eps)
        return self._candidate

    def accept(self, accepted: Tensor) -> None:
        self.x_best = torch.where(accepted.view(-1, 1, 1, 1), self._candidate, self.x_best)

    def keep(self, rows: Tensor) -> None:
        self.x_best, self.x0 = self.x_best[rows], self.x0[rows]
        self._candidate = self.x_best


@register_attack("square-l1")
@dataclass(frozen=True, kw_only=True)
class SquareL1(SquareL2):
    """Square Attack under an L1 budget: L1 squares, each step moving the mass of a second
    window into the first, every candidate projected onto ball and box; squares sized as the
    L2 attack's (odd sides of at least 3)."""

    norm = "l1"

    def _first_search(self, x0: Tensor, eps: float) -> _Search:
        return _L1Search(x0, eps)
