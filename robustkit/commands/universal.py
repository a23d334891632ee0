"""The --universal options of `robustkit audit` and `robustkit transfer`: the crafting images
asked for, checked before anything loads, then read from the training split (or, for a dataset
without one, from its images not scored)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from robustkit.auditing.spec import DEFAULTS
from robustkit.errors import RobustkitError

if TYPE_CHECKING:  # torch loads when the command runs: --help stays quick
    from torch import Tensor

    from robustkit.auditing.universal import UniversalJob
    from robustkit.data import DatasetInfo

SAMPLES_HELP = (
    "--universal: crafting images, a seeded subset of the training split (a dataset without "
    f"one: of its images not scored) [default: {DEFAULTS.universal_samples}]"
)


def check_universal_samples(universal: bool, samples: int | None) -> int | None:
    """The crafting images --universal asks for (None: no universal perturbation)."""
    from robustkit.attacks.universal import MIN_IMAGES

    if not universal:
        if samples is not None:
            raise RobustkitError("--universal-samples applies to --universal: add --universal")
        return None
    count = DEFAULTS.universal_samples if samples is None else samples
    if count < MIN_IMAGES:
        raise RobustkitError(
            f"--universal-samples {count} is too few to craft a universal perturbation on: "
            f"give at least {MIN_IMAGES} (e.g. {DEFAULTS.universal_samples})"
        )
    return count


def crafting_job(
    whole: DatasetInfo, scored: Tensor, samples: int, *, seed: int, root: Path | None
) -> UniversalJob:
    """The crafting images of ``whole`` (the dataset as named, before any subset), apart from
    the dataset indices ``scored``."""
    from robustkit.auditing.universal import UniversalJob
    from robustkit.data import crafting_images, dataset_tensors

    crafting = crafting_images(whole, scored, num_samples=samples, seed=seed, root=root)
    images, _ = dataset_tensors(crafting.info)
    return UniversalJob(images, f"{len(images)} images: {crafting.source}")
