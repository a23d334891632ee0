"""Threats: how a family of attacks reaches the model (what the attack runs on, what scores it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:  # annotations only: the saved results' readers (checks, reports) import this
    from robustkit.attacks import Attack

OBLIVIOUS = "oblivious"
FAMILIES = (OBLIVIOUS, "bpda", "bpda-eot")  # how a defense audit reaches the defended model
LATENT = "latent"  # the family of attacks in a generator's latent space


@dataclass(frozen=True)
class Threat:
    """How one family of attacks reaches the model: the module the attacks run on (``craft``) and
    the one whose prediction decides success (``score``). A plain audit has one threat with both
    the model itself; a defense audit adds oblivious, BPDA and EOT threats."""

    prefix: str | None
    craft: nn.Module
    score: nn.Module
    model_name: str
    adapt: Callable[[Attack], Attack | None] = lambda attack: attack  # None: not in this family

    def label(self, attack: Attack) -> str:
        return f"{self.prefix}:{attack.name}" if self.prefix else attack.name

    def attacks(self, attacks: Iterable[Attack], norm: str) -> list[Attack]:
        """The attacks of ``norm`` this family runs, as it runs them."""
        adapted = (self.adapt(a) for a in attacks if a.norm == norm)
        return [a for a in adapted if a is not None]
