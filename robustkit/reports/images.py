"""Example adversarials as base64 PNG triplets (clean | adversarial | amplified perturbation),
and the universal perturbations of an audit, amplified."""

from __future__ import annotations

import base64
import io
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from robustkit.auditing.perturbations import amplify, perturbation_stem
from robustkit.auditing.results import AuditResult, Examples
from robustkit.reports.views import budget_label, class_name

MAX_SIDE = 128  # larger images are shrunk so that a report stays a few MB at most


def amplified(clean: Tensor, adversarial: Tensor) -> tuple[Tensor, float]:
    """The perturbation mapped to [0, 1] around mid-grey, and the factor it was scaled by."""
    return amplify(adversarial - clean)


def png_data_uri(images: Tensor) -> str:
    """(C, H, W) in [0, 1] as a ``data:image/png;base64,...`` URI."""
    array = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(array.squeeze(2) if array.shape[2] == 1 else array)
    if picture.height > MAX_SIDE:
        picture.thumbnail((picture.width, MAX_SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def triplets(
    examples: Examples, config: dict[str, Any], norms: dict[str, str], per_attack: int = 4
) -> list[dict[str, Any]]:
    """Up to ``per_attack`` examples per attack (``norms``: attack -> norm), at the smallest
    eps that broke any point."""
    from torchvision.utils import make_grid  # lazy: torchvision is slow to import

    frame = examples.frame
    shown: list[dict[str, Any]] = []
    for attack, rows in frame.groupby("attack", sort=False):
        rows = rows[rows["eps"] == rows["eps"].min()].head(per_attack)
        for k, row in rows.iterrows():
            clean, adversarial = examples.clean[k], examples.adversarial[k]
            perturbation, gain = amplified(clean, adversarial)
            grid = make_grid([clean, adversarial, perturbation], nrow=3, padding=1, pad_value=1)
            shown.append(
                {
                    "attack": str(attack),
                    "sample": int(row["sample"]),  # the image's index in the dataset
                    "budget": budget_label(norms.get(str(attack), "?"), float(row["eps"])),
                    "src": png_data_uri(grid),
                    "label": class_name(config, int(row["label"])),
                    "clean_pred": class_name(config, int(row["clean_pred"])),
                    "clean_confidence": float(row["clean_confidence"]),
                    "adv_pred": class_name(config, int(row["adv_pred"])),
                    "adv_confidence": float(row["adv_confidence"]),
                    "gain": gain,
                }
            )
    return shown


def universal(result: AuditResult) -> list[dict[str, Any]]:
    """Each universal perturbation of the audit, amplified, with what run.json says of it (none
    when the audit crafted none, or its folder lost them)."""
    record = result.config.get("universal")
    if not record or not result.universal:
        return []
    shown = []
    for entry in record["perturbations"]:
        delta = result.universal.get(perturbation_stem(entry["norm"], entry["eps"]))
        if delta is None:
            continue
        picture, gain = amplify(delta)
        shown.append(
            {
                **entry,
                "budget": budget_label(entry["norm"], float(entry["eps"])),
                "src": png_data_uri(picture),
                "gain": gain,
            }
        )
    return shown
