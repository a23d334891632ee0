"""A model's named classes: what timm and torchvision know about a classifier's outputs
(ImageNet wnids such as n01440764, and the synonyms of each class's name)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

IMAGENET_1K = "imagenet-1k"


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


def timm_classes(module: nn.Module) -> ModelClasses | None:
    """The classes of a timm model: its pretrained config's label names, else the ImageNet subset
    its number of classes implies (timm's ImageNetInfo); None when neither applies."""
    from timm.data import ImageNetInfo, infer_imagenet_subset

    num_classes = getattr(module, "num_classes", None)
    cfg: Mapping[str, Any] = getattr(module, "pretrained_cfg", None) or {}
    names = cfg.get("label_names")
    if isinstance(names, Sequence) and not isinstance(names, str) and len(names) == num_classes:
        described: Mapping[str, str] = cfg.get("label_descriptions") or {}
        return ModelClasses.from_descriptions(
            [described.get(name, name) for name in names], ids=[str(name) for name in names]
        )
    subset = infer_imagenet_subset(module)
    if subset is None:
        return None
    info = ImageNetInfo(subset)
    descriptions = [info.label_name_to_description(wnid) for wnid in info.label_names()]
    return ModelClasses.from_descriptions(descriptions, ids=info.label_names())


def torchvision_classes(meta: Mapping[str, Any], num_classes: int | None) -> ModelClasses | None:
    """The classes named by torchvision weights' ``meta["categories"]``, with ImageNet wnids for
    weights measured on ImageNet-1K (same class order); None when they do not fit the model."""
    categories = meta.get("categories")
    if not categories or (num_classes is not None and len(categories) != num_classes):
        return None
    ids: Sequence[str] = ()
    if "ImageNet-1K" in meta.get("_metrics", {}):
        from timm.data import ImageNetInfo

        wnids = ImageNetInfo(IMAGENET_1K).label_names()
        ids = wnids if len(wnids) == len(categories) else ()
    return ModelClasses(synonyms=tuple((str(c),) for c in categories), ids=tuple(ids))


def _split(description: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in description.split(",") if part.strip())
    return parts or (description,)
