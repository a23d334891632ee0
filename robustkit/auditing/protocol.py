"""The protocol an audit follows: how many passes an attack averages its loss over (EOT) and how
many fresh passes judge a point, and why (the randomness probe's verdict)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from robustkit.attacks import Attack
from robustkit.auditing.plan import Plan
from robustkit.auditing.results import PASSES_RULE
from robustkit.auditing.spec import DEFAULTS


def uses_eot(plan: Plan) -> bool:
    """Whether any attack of the plan averages its loss over several passes."""
    return any(getattr(a, "eot_samples", 1) > 1 for a in [*plan.independent, *plan.cascade])


def choose_protocol(
    randomized: bool,
    *,
    attacks: Iterable[str | Attack] | None,
    suite: str | None,
    eot_samples: int | None,
    eval_passes: int | None,
) -> dict[str, Any]:
    """The protocol an audit follows, and why: ``rand`` for a randomized model (EOT, fresh
    passes, the ``rand`` suite unless another is named), one pass per decision otherwise."""
    eot = eot_samples if eot_samples is not None else DEFAULTS.eot_samples if randomized else 1
    passes = eval_passes if eval_passes is not None else DEFAULTS.eval_passes if randomized else 1
    default = DEFAULTS.randomized_suite if randomized else DEFAULTS.suite
    chosen = suite or (default if attacks is None else None)
    if randomized:
        reason = (
            "the randomness probe found the model randomized (two passes on the same inputs "
            f"gave different logits): attacks average the loss over {eot} passes (EOT) and "
            f"every point is judged over {passes} fresh passes"
        )
    else:
        reason = "the randomness probe found the model deterministic: one pass decides"
    return {
        "name": DEFAULTS.randomized_suite if randomized else "deterministic",
        "randomized": randomized,
        "suite": chosen,
        "eot_samples": eot,
        "eval_passes": passes,
        "reason": reason,
        **({"rule": PASSES_RULE.format(passes=passes)} if passes > 1 else {}),
    }
