"""A model's named classes: what timm and torchvision know about a classifier's outputs
(ImageNet wnids such as n01440764, and the synonyms of each class's name)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from robustkit.data.classes import ModelClasses

IMAGENET_1K = "imagenet-1k"


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
