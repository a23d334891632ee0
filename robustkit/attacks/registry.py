"""Attack registry after timm: ``register_attack``, ``create_attack``, ``list_attacks``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from robustkit.attacks.base import Attack
from robustkit.errors import RobustkitError
from robustkit.registry import Registry

_REGISTRY: Registry[type[Attack]] = Registry("attack")

A = TypeVar("A", bound=type[Attack])


def register_attack(name: str) -> Callable[[A], A]:
    """Class decorator adding an attack to the registry under ``name``."""

    def decorate(cls: A) -> A:
        cls.name = name
        _REGISTRY.add(name, cls)
        return cls

    return decorate


def attack_class(name: str) -> type[Attack]:
    """The class registered as ``name``; unknown names get a did-you-mean error.

    ``foolbox:CLASS`` and ``art:CLASS`` name peer libraries' attacks (robustkit.attacks.peers).
    """
    if name.partition(":")[0] in ("foolbox", "art"):
        from robustkit.attacks.peers import peer_attack_class  # lazy: heavy optional imports

        return peer_attack_class(name)
    return _REGISTRY.get(name)


def create_attack(name: str, **kwargs: Any) -> Attack:
    """Instantiate a registered attack with its hyper-parameters."""
    cls = attack_class(name)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise RobustkitError(f"bad parameters for attack {name!r}: {err}") from None


def list_attacks(pattern: str = "*") -> list[str]:
    """Registered attack names matching a shell-style wildcard pattern."""
    return sorted(_REGISTRY.names(pattern))
