"""Every corruption and severity against the reference implementation, imagecorruptions, on the
same images: the accuracy of zoo:mnist-cnn on our corrupted images against its accuracy on the
reference's (ImageNet-C table, MNIST digits padded to imagecorruptions' 32 x 32 minimum, RGB).

Tolerance, stated honestly: the six deterministic corruptions (no random draw) must agree within
2 points. The nine random ones draw independently in each implementation, so their accuracies
differ by sampling alone: sigma, estimated from the per-image variance over 2 draws of ours
(averaged) and one of the reference, reaches 3-5 points at 60-200 images on motion and glass
blur, so they must agree within max(2 points, 4 sigma) (4, not 3: at 3 sigma one of the 45
noisy comparisons would fail by chance in one run out of eight): a wrong parameter table or a
broken operation fails, a bias of a few points does not. ``benchmarks/corruptions.py``
reports the gaps on 500 images. CI time is dominated by imagecorruptions' own glass blur (a
Python loop per pixel) and frost (it reads and resizes its photograph for every image), which
therefore run on 60 and 80 images; 234 s measured under a load average of 9-12 on 2 cores.
"""

from __future__ import annotations

import pytest
import torch

from robustkit.corruptions import list_corruptions
from robustkit.data import load_dataset
from robustkit.models import load_model

DETERMINISTIC = {
    "defocus_blur",
    "zoom_blur",
    "brightness",
    "contrast",
    "pixelate",
    "jpeg_compression",
}
IMAGES = 200
# the reference's slowest (ms per image and severity, 32 x 32): glass 17, frost 7
FEWER = {"glass_blur": 60, "frost": 80}
TOLERANCE = 0.02
SIGMAS = 4  # 45 noisy comparisons all pass with 99.7% odds when the implementations agree


@pytest.fixture(scope="module")
def mnist() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    info = load_dataset("mnist-sample")
    images = torch.stack([info.dataset[i][0] for i in range(IMAGES)])
    labels = torch.tensor([int(info.dataset[i][1]) for i in range(IMAGES)])
    return load_model("zoo:mnist-cnn", device="cpu"), images, labels


@pytest.mark.slow
@pytest.mark.parametrize("name", list_corruptions())
def test_accuracy_on_our_corruptions_matches_imagecorruptions(name: str, mnist) -> None:
    from robustkit.corruptions.reference import compare

    model, images, labels = mnist
    n = FEWER.get(name, IMAGES)
    gaps = []
    for severity in range(1, 6):
        draws = 1 if name in DETERMINISTIC else 2
        found = compare(model, images[:n], labels[:n], name, severity, draws=draws, seed=severity)
        allowed = TOLERANCE if name in DETERMINISTIC else max(TOLERANCE, SIGMAS * found["sigma"])
        gap = found["ours"] - found["reference"]
        gaps.append(f"s{severity} {found['ours']:.1%} vs {found['reference']:.1%}")
        assert abs(gap) <= allowed + 1e-9, (name, severity, found, allowed)
    assert len(gaps) == 5
