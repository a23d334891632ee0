"""Named registries after timm: one lookup, one wildcard listing, one did-you-mean wording.

Attacks, bundled models, bundled generators, datasets, suites and training methods are all looked
up by name; every unknown name gets the same one-line error:
``unknown attack 'pgd-lnf': did you mean pgd-linf? available: fgsm, pgd-linf, ...``.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from robustkit.errors import RobustkitError

T = TypeVar("T")
D = TypeVar("D")


def unknown_name_error(
    kind: str, name: str, choices: Iterable[str], *, extra: Iterable[str] = ()
) -> RobustkitError:
    """The error for an unknown ``name`` of ``kind``: close matches, then every valid choice.

    ``extra`` lists accepted forms that are not names (``imagefolder:PATH``); they are shown
    among the choices but never suggested.
    """
    names = list(choices)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return RobustkitError(
        f"unknown {kind} {name!r}: {hint}available: {', '.join([*names, *extra])}"
    )


class Registry(Generic[T]):
    """Items of one kind, registered under unique names, in registration order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Register ``item`` as ``name``; a second item under the same name is a bug."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[D], D]:
        """Decorator form of :meth:`add` for classes and functions."""

        def decorate(item: D) -> D:
            self.add(name, item)  # type: ignore[arg-type]
            return item

        return decorate

    def get(self, name: str) -> T:
        """The item called ``name``; an unknown name raises the shared did-you-mean error."""
        try:
            return self._items[name]
        except KeyError:
            raise unknown_name_error(self.kind, name, self._items) from None

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style wildcard, in registration order."""
        return [n for n in self._items if fnmatch.fnmatch(n, pattern)]

    def values(self) -> list[T]:
        """Every registered item, in registration order."""
        return list(self._items.values())

    def items(self) -> list[tuple[str, T]]:
        """(name, item) pairs, in registration order."""
        return list(self._items.items())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
