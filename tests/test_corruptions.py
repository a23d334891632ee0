"""The common corruptions as functions: shapes, ranges, seeds, closed forms, and bad input."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from kornia.color import hsv_to_rgb, rgb_to_hsv
from PIL import Image

from robustkit.corruptions import corrupt, list_corruptions, parse_corruptions
from robustkit.corruptions.base import ORDER
from robustkit.corruptions.digital import box_matrix
from robustkit.errors import RobustkitError

NAMES = list_corruptions()
RANDOM = {
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "glass_blur",
    "motion_blur",
    "snow",
    "frost",
    "fog",
    "elastic_transform",
}


def _images(channels: int, size: int = 28, n: int = 6) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(1))


def test_the_fifteen_corruptions_in_the_benchmark_order() -> None:
    assert list(ORDER) == NAMES and len(NAMES) == 15
    assert parse_corruptions("all") == NAMES
    assert parse_corruptions(" fog,snow,fog ") == ["fog", "snow"]


@pytest.mark.parametrize("table", ["cifar10", "imagenet"])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_corruption_and_severity_keeps_shape_range_and_changes_the_image(
    channels: int, table: str
) -> None:
    x = _images(channels)
    for name in NAMES:
        for severity in (1, 3, 5):
            y = corrupt(x, name, severity, torch.Generator().manual_seed(0), table=table)
            assert y.shape == x.shape and y.dtype == x.dtype, name
            assert float(y.min()) >= 0 and float(y.max()) <= 1, name
            assert not torch.equal(y, x), (name, severity)


def test_the_same_seed_gives_the_same_images_and_another_seed_others() -> None:
    x = _images(3, 32)
    for name in NAMES:
        first = corrupt(x, name, 3, torch.Generator().manual_seed(7))
        again = corrupt(x, name, 3, torch.Generator().manual_seed(7))
        other = corrupt(x, name, 3, torch.Generator().manual_seed(8))
        assert torch.equal(first, again), name
        assert torch.equal(first, other) is (name not in RANDOM), name


def test_stronger_severities_move_the_image_further_on_average() -> None:
    x = _images(3, 32, n=16)
    # CIFAR-10-C's elastic transform trades affine jitter (largest at severity 1) for elasticity
    for name in [n for n in NAMES if n != "elastic_transform"]:
        gaps = [
            float((corrupt(x, name, s, torch.Generator().manual_seed(0)) - x).abs().mean())
            for s in (1, 5)
        ]
        assert gaps[1] > gaps[0], (name, gaps)


def test_closed_forms_of_the_simple_corruptions() -> None:
    grey = torch.full((2000, 1, 4, 4), 0.5)
    noisy = corrupt(grey, "gaussian_noise", 1)  # CIFAR-10-C sigma 0.04
    assert float(noisy.std()) == pytest.approx(0.04, rel=0.05)
    impulse = corrupt(grey, "impulse_noise", 5)  # 7% of values set to 0 or 1
    assert float((impulse != 0.5).float().mean()) == pytest.approx(0.07, abs=0.005)
    x = _images(3, 32)
    contrasted = corrupt(x, "contrast", 5)
    assert torch.allclose(contrasted.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=1e-6)
    assert torch.allclose(
        contrasted - contrasted.mean(dim=(2, 3), keepdim=True),
        0.15 * (x - x.mean(dim=(2, 3), keepdim=True)),
        atol=1e-6,
    )
    assert torch.allclose(corrupt(x[:, :1], "brightness", 5), (x[:, :1] + 0.3).clamp(0, 1))
    hsv = rgb_to_hsv(torch.cat([x, torch.zeros(1, 3, 32, 32)]))  # black pixels included
    hsv[:, 2:] = (hsv[:, 2:] + 0.3).clamp(0, 1)
    expected = hsv_to_rgb(hsv)
    assert torch.allclose(
        corrupt(torch.cat([x, torch.zeros(1, 3, 32, 32)]), "brightness", 5), expected, atol=1e-5
    )


@pytest.mark.parametrize(("size_in", "size_out"), [(32, 30), (28, 18), (18, 28), (32, 7)])
def test_pixelate_resamples_exactly_as_pil_box(size_in: int, size_out: int) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (size_in, size_in), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(pixels).resize((size_out, size_out), Image.BOX))
    matrix = box_matrix(size_in, size_out, torch.device("cpu")).double()
    ours = matrix @ torch.from_numpy(pixels).double() @ matrix.T
    assert np.abs(ours.round().numpy() - expected).max() <= 1


def test_unknown_name_and_bad_severity_name_the_fix() -> None:
    with pytest.raises(RobustkitError, match="did you mean gaussian_noise"):
        corrupt(_images(1), "gausian_noise", 1)
    with pytest.raises(RobustkitError, match="from 1 to 5"):
        corrupt(_images(1), "fog", 6)
    with pytest.raises(RobustkitError, match=r"\(N, 1 or 3, H, W\)"):
        corrupt(torch.rand(2, 2, 8, 8), "fog", 1)
    with pytest.raises(RobustkitError, match="did you mean cifar10"):
        corrupt(_images(1), "fog", 1, table="cifar100")


def test_frost_without_its_textures_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from robustkit.corruptions import textures

    real = importlib.util.find_spec
    monkeypatch.setattr(
        textures.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "imagecorruptions" else real(name, *a),
    )
    textures._original.cache_clear()
    with pytest.raises(RobustkitError, match=r"pip install 'robustkit\[corruptions\]'"):
        corrupt(_images(3, 32), "frost", 1)
    textures._original.cache_clear()
