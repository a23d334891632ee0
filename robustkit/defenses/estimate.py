"""The up-front cost of a defense audit: every forward pass of the defense is a whole projection.

A user about to audit a projection defense on a CPU should learn before it starts that
``samples x attack iterations x EOT samples`` projections of ``steps x restarts`` generator passes
each lie ahead, how long that will take here, and which settings make it affordable.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robustkit.attacks import Attack
from robustkit.auditing.plan import attack_iterations

log = logging.getLogger(__name__)

CPU_FRIENDLY = (
    "--num-samples 16 --steps 10 --projection-steps 50 --projection-restarts 2 --eot-samples 2"
)


@dataclass(frozen=True)
class DefenseCost:
    """How many projections a defense audit may run and how long they may take here."""

    projections: int
    seconds_per_projection: float

    @property
    def seconds(self) -> float:
        return self.projections * self.seconds_per_projection

    def describe(self) -> str:
        """One line for the terminal, ending with the CPU-friendly settings."""
        return (
            f"defense audit: up to {self.projections:,} projections at about "
            f"{self.seconds_per_projection * 1000:.0f} ms each, so up to {_duration(self.seconds)} "
            f"here (attacks stop early on broken points); for a quick look: {CPU_FRIENDLY}"
        )


def estimate_defense_cost(
    attacks: Iterable[Attack],
    *,
    budgets: Mapping[str, Sequence[float]],
    num_samples: int,
    eot_samples: int,
    seconds_per_projection: float,
) -> DefenseCost:
    """Projections of an audit running ``attacks`` at each of their norm's ``budgets`` through
    BPDA, BPDA+EOT and obliviously."""
    per_sample = 0
    for attack in attacks:
        iterations = attack_iterations(attack)
        if attack.needs_generator:  # a latent search costs about a projection per step
            per_budget = iterations + 1
        else:  # oblivious scoring, BPDA, BPDA with EOT, and the scoring passes
            per_budget = 1 + iterations + iterations * eot_samples + 2
        per_sample += per_budget * len(budgets.get(attack.norm, ()))
    return DefenseCost(num_samples * per_sample, seconds_per_projection)


@torch.no_grad()
def time_projection(defense: nn.Module, x: Tensor) -> float:
    """Seconds one forward pass of ``defense`` (one projection) takes per image of batch ``x``."""
    started = time.perf_counter()
    defense(x)
    return (time.perf_counter() - started) / len(x)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{math.ceil(seconds)} s"
    if seconds < 5400:
        return f"{math.ceil(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
