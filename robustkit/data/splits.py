"""The images a universal perturbation is crafted on, kept apart from the images it is scored
on: the dataset's training split, or, for a dataset without one, its images left out of those
scored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from robustkit.data.datasets import DatasetInfo, has_train_split, load_dataset, select, subset
from robustkit.errors import RobustkitError


@dataclass(frozen=True)
class CraftingImages:
    """A seeded subset of crafting images and where it comes from, in words (for run.json and
    the report)."""

    info: DatasetInfo
    source: str


def crafting_images(
    whole: DatasetInfo,
    held_out: Tensor,
    *,
    num_samples: int,
    seed: int,
    root: str | Path | None = None,
) -> CraftingImages:
    """Up to ``num_samples`` images to craft on: a seeded subset of the training split of the
    dataset ``whole`` names, or, where it has none, of ``whole``'s images outside ``held_out``
    (the dataset indices scored), all of them if fewer remain."""
    if num_samples < 1:
        raise RobustkitError(f"--universal-samples must be >= 1, got {num_samples}")
    if has_train_split(whole.name):
        train = load_dataset(whole.name, root=root, train=True)
        count = min(num_samples, len(train.dataset))  # type: ignore[arg-type]
        return CraftingImages(subset(train, count, seed), f"{whole.name} training split")
    scored = set(held_out.tolist())
    rest = [i for i in range(len(whole.dataset)) if i not in scored]  # type: ignore[arg-type]
    if not rest:
        raise RobustkitError(
            f"{whole.name} has no training split and every image of it is scored: score fewer "
            "images (--num-samples) or use a dataset with one (mnist, fashion-mnist, cifar10)"
        )
    picked = select(whole, rest)
    count = min(num_samples, len(rest))
    return CraftingImages(
        subset(picked, count, seed),
        f"{whole.name} images outside the scored ones (it has no training split)",
    )
