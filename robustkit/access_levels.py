"""The access levels an audit grants its attacks, from the most to the least: ``gradients`` (the
model itself), ``scores`` (its outputs, no gradients) and ``labels`` (its top-1 class only).

No torch here: the audit's spec and the CLI check a level before anything heavy loads; the
wrappers that enforce a level are in :mod:`robustkit.models.access`.
"""

from __future__ import annotations

from robustkit.errors import RobustkitError

ACCESS_LEVELS = ("gradients", "scores", "labels")


def check_access(access: str) -> str:
    """``access`` if it names an access level, else a one-line refusal listing them."""
    if access not in ACCESS_LEVELS:
        raise RobustkitError(f"unknown access {access!r}: use {', '.join(ACCESS_LEVELS)}")
    return access


def grants(access: str, needed: str) -> bool:
    """Whether ``access`` gives an attack that needs ``needed`` what it asks for (gradients
    include scores, scores include labels)."""
    return ACCESS_LEVELS.index(check_access(needed)) >= ACCESS_LEVELS.index(check_access(access))
