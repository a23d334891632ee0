"""The names of a classifier's outputs, as the data side needs them to label image folders
(ImageNet wnids such as n01440764, and the synonyms of each class's name)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelClasses:
    """One entry per model output: the synonyms of its name (the first one is shown) and, where
    known, its id (an ImageNet wnid or the label name its library gives)."""

    synonyms: tuple[tuple[str, ...], ...]
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.ids and len(self.ids) != len(self.synonyms):
            raise ValueError(f"{len(self.ids)} ids for {len(self.synonyms)} classes")

    def __len__(self) -> int:
        return len(self.synonyms)

    @property
    def names(self) -> list[str]:
        """The name shown for each class."""
        return [synonyms[0] for synonyms in self.synonyms]

    @classmethod
    def from_descriptions(
        cls, descriptions: Sequence[str], ids: Sequence[str] = ()
    ) -> ModelClasses:
        """From descriptions like 'tench, Tinca tinca' (comma-separated synonyms)."""
        synonyms = tuple(_split(description) for description in descriptions)
        return cls(synonyms=synonyms, ids=tuple(ids))


def _split(description: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in description.split(",") if part.strip())
    return parts or (description,)
