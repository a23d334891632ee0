"""Query budgets: the per-point cap given to every query-based attack, and robust accuracy as a
function of the queries an attacker may spend (the query curve).

Each row of an audit records ``queries``: the model queries its breaking attack spent on the
point up to its first success within eps (an unbroken point: those the row's attack spent on it
in all; empty for an attack that counts none, a gradient attack). A point counts as broken at
budget ``q`` when some attack broke it with at most ``q`` queries: the worst case over the
attacks, each held to ``q`` queries per point (a cascade's later attack ran only on the points
the earlier ones left after their whole budget, so whatever it broke within ``q`` it breaks when
run alone with ``q``). A break that counted no query (NaN) counts at every budget.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from robustkit.attacks import Attack
from robustkit.attacks.queries import QueryAttack
from robustkit.auditing.plan import Plan
from robustkit.auditing.results import CORRUPTION, WORST_CASE
from robustkit.auditing.spec import DEFAULTS
from robustkit.errors import RobustkitError

CURVE_COLUMNS = ["model", "norm", "eps", "queries", "n", "robust_accuracy"]


def _fields(attack: Attack) -> set[str]:
    return {field.name for field in dataclasses.fields(attack)}


def counts_queries(attack: Attack) -> bool:
    """Whether ``attack`` is query-based: a per-point ``max_queries`` budget, or a query attack
    budgeted per run (Square's ``queries``)."""
    return "max_queries" in _fields(attack) or isinstance(attack, QueryAttack)


def capped(attack: Attack, max_queries: int) -> Attack:
    """``attack`` held to ``max_queries`` per point: its ``max_queries``, or (Square) its
    queries per run with its restarts sharing the budget."""
    if "max_queries" in _fields(attack):
        return dataclasses.replace(attack, max_queries=max_queries)  # type: ignore[call-arg]
    if isinstance(attack, QueryAttack) and "queries" in _fields(attack):
        per_run = max(1, max_queries // int(getattr(attack, "restarts", 1)))
        return dataclasses.replace(attack, queries=per_run)  # type: ignore[call-arg]
    return attack


def with_query_budget(plan: Plan, max_queries: int | None) -> Plan:
    """The plan with every query-based attack held to ``max_queries`` per point (None: their own
    budgets); refused when the plan holds no query-based attack to cap."""
    if max_queries is None:
        return plan
    attacks = [*plan.independent, *plan.cascade]
    if not any(counts_queries(a) for a in attacks):
        names = ", ".join(a.name for a in attacks) or "none"
        raise RobustkitError(
            f"--max-queries caps query-based attacks and this audit runs none (its attacks: "
            f"{names}): drop --max-queries, or run one (--access scores or labels, or square)"
        )
    return dataclasses.replace(
        plan,
        independent=[capped(a, max_queries) for a in plan.independent],
        cascade=[capped(a, max_queries) for a in plan.cascade],
    )


def curve_budgets(limit: int) -> list[int]:
    """The budgets the curve reads: 100, 1,000, 10,000 up to ``limit``, then ``limit``."""
    return sorted({q for q in DEFAULTS.query_budgets if q <= limit} | {limit})


def query_curve(frame: pd.DataFrame, limit: int | None = None) -> pd.DataFrame:
    """Robust accuracy per model, norm and eps at each budget of :func:`curve_budgets` (up to
    ``limit``, by default the most queries any row records): the share of the audited points
    no attack broke with that many queries or fewer. Empty when no row counts queries."""
    if "queries" not in frame or frame["queries"].isna().all():  # none counted (or no rows yet)
        return pd.DataFrame(columns=CURVE_COLUMNS)
    rows = frame[(frame["norm"] != CORRUPTION) & (frame["attack"] != WORST_CASE)]
    top = int(rows["queries"].max()) if limit is None else limit
    keys = ["model", "norm", "eps", "sample"]
    broken = rows["clean_correct"].astype(bool) & ~rows["robust_correct"].astype(bool)
    cost = rows["queries"].where(broken).fillna(0).where(broken)  # NaN: not broken here
    points = rows.assign(cost=cost, correct=rows["clean_correct"].astype(bool))
    first = points.groupby(keys, sort=False).agg(cost=("cost", "min"), correct=("correct", "any"))
    records: list[dict[str, Any]] = []
    for (model, norm, eps), group in first.groupby(level=[0, 1, 2], sort=False):
        for q in curve_budgets(top):
            robust = group["correct"] & ~(group["cost"] <= q)
            records.append(
                {
                    "model": model,
                    "norm": norm,
                    "eps": float(eps),
                    "queries": q,
                    "n": len(group),
                    "robust_accuracy": float(robust.mean()),
                }
            )
    return pd.DataFrame(records, columns=CURVE_COLUMNS)
