"""Attack registry after timm: ``register_attack``, ``create_attack``, ``list_attacks``."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

from robustkit.attacks.base import Attack
from robustkit.errors import RobustkitError

_REGISTRY: dict[str, type[Attack]] = {}

A = TypeVar("A", bound=type[Attack])


def register_attack(name: str) -> Callable[[A], A]:
    """Class decorator adding an attack to the registry under ``name``."""

    def decorate(cls: A) -> A:
        if name in _REGISTRY:
            raise ValueError(f"attack {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def attack_class(name: str) -> type[Attack]:
    """The class registered as ``name``; unknown names get a did-you-mean error.

    ``foolbox:CLASS`` and ``art:CLASS`` name peer libraries' attacks (robustkit.attacks.peers).
    """
    if name.partition(":")[0] in ("foolbox", "art"):
        from robustkit.attacks.peers import peer_attack_class  # lazy: heavy optional imports

        return peer_attack_class(name)
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise RobustkitError(
            f"unknown attack {name!r}: {hint}available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def create_attack(name: str, **kwargs: Any) -> Attack:
    """Instantiate a registered attack with its hyper-parameters."""
    cls = attack_class(name)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise RobustkitError(f"bad parameters for attack {name!r}: {err}") from None


def list_attacks(pattern: str = "*") -> list[str]:
    """Registered attack names matching a shell-style wildcard pattern."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))
