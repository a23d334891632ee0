"""How the plugin words its figures, the same way in failures, the summary and the baseline:
every robust accuracy with its 95% Clopper-Pearson interval (light: no torch)."""

from __future__ import annotations

import math
from typing import Any

SMOKE_CHECK = "a smoke check, not an evaluation"


def accuracy_with_ci(accuracy: float, ci_low: object, ci_high: object) -> str:
    """'0.842 (95% CI 0.784-0.890)'; the bare figure when no interval is known (an old
    baseline entry)."""
    if not (_is_finite(ci_low) and _is_finite(ci_high)):
        return f"{accuracy:.3f}"
    return f"{accuracy:.3f} (95% CI {ci_low:.3f}-{ci_high:.3f})"


def headline(
    accuracy: float,
    ci_low: float,
    ci_high: float,
    *,
    required: float,
    n: int,
    suite: str | None = None,
    evaluation: bool = True,
) -> str:
    """'robust accuracy 0.842 (95% CI 0.784-0.890), required >= 0.9, n=200', naming the suite
    whose worst case it is, and saying so when that suite is only a smoke check."""
    line = (
        f"robust accuracy {accuracy_with_ci(accuracy, ci_low, ci_high)}, "
        f"required >= {required:g}, n={n}"
    )
    if suite is not None:
        line += f" -- worst case of suite {suite}"
        if not evaluation:
            line += f": {SMOKE_CHECK}"
    return line


def flag_line(flag: dict[str, Any], *, allowed: bool) -> str:
    """One sanity flag (code, severity, message) as a line of a failure or the summary."""
    note = " (accepted by allow_flags)" if allowed else ""
    return f"sanity {flag['severity']} {flag['code']}{note}: {flag['message']}"


def untrusted_line(flag: dict[str, Any]) -> str:
    """Why a sanity-check error fails the test whatever the accuracy, and the way out."""
    return (
        f"untrusted: sanity check {flag['code']} failed, the accuracy cannot be trusted: "
        f"{flag['message']} (if you accept it knowingly: allow_flags=({flag['code']!r},))"
    )


def _is_finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
