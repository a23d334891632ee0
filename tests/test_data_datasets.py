"""Tests for robustkit.data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustkit.data import DatasetInfo, list_datasets, load_dataset
from robustkit.errors import RobustkitError


def _items(info: DatasetInfo, n: int) -> list[tuple[torch.Tensor, int]]:
    return [info.dataset[i] for i in range(n)]


def test_sample_loads_with_shape_dtype_and_range() -> None:
    info = load_dataset()
    assert info.name == "mnist-sample"
    assert len(info.dataset) == 1000
    assert info.input_shape == (1, 28, 28)
    assert info.classes[0] == "0 - zero" and len(info.classes) == 10
    x, y = info.dataset[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    xs = torch.stack([info.dataset[i][0] for i in range(len(info.dataset))])
    ys = torch.tensor([int(info.dataset[i][1]) for i in range(len(info.dataset))])
    assert xs.min() >= 0.0 and xs.max() <= 1.0 and xs.max() > 0.99
    assert set(ys.tolist()) == set(range(10))
    assert 0 <= int(y) < 10


def test_list_datasets_names_the_builtins() -> None:
    names = list_datasets()
    for name in ("mnist-sample", "mnist", "fashion-mnist", "cifar10"):
        assert name in names


def test_seeded_subset_is_reproducible_and_seed_dependent() -> None:
    a = load_dataset(num_samples=50, seed=1)
    b = load_dataset(num_samples=50, seed=1)
    c = load_dataset(num_samples=50, seed=2)
    assert len(a.dataset) == 50
    xa = torch.stack([x for x, _ in _items(a, 50)])
    xb = torch.stack([x for x, _ in _items(b, 50)])
    xc = torch.stack([x for x, _ in _items(c, 50)])
    assert torch.equal(xa, xb)
    assert not torch.equal(xa, xc)
    assert a.input_shape == (1, 28, 28) and a.classes == b.classes


@pytest.mark.parametrize("num_samples", [0, -3, 1001])
def test_num_samples_out_of_range(num_samples: int) -> None:
    with pytest.raises(RobustkitError, match="1000"):
        load_dataset(num_samples=num_samples)


def test_unknown_name_suggests_close_match() -> None:
    with pytest.raises(RobustkitError) as excinfo:
        load_dataset("mnits")
    message = str(excinfo.value)
    assert "did you mean mnist" in message
    assert "fashion-mnist" in message and "imagefolder:PATH" in message


@pytest.mark.parametrize(
    ("name", "first_class"), [("mnist", "0 - zero"), ("fashion-mnist", "T-shirt/top")]
)
def test_real_datasets_load_from_root(data_root: Path, name: str, first_class: str) -> None:
    info = load_dataset(name, root=data_root)
    assert len(info.dataset) == 10_000
    assert info.classes[0] == first_class
    x, y = info.dataset[0]
    assert x.shape == (1, 28, 28) and x.min() >= 0.0 and x.max() <= 1.0
    assert isinstance(y, int)
    train = load_dataset(name, root=data_root, train=True, num_samples=10)
    assert len(train.dataset) == 10


def test_real_dataset_found_through_env(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROBUSTKIT_DATA", str(data_root))
    info = load_dataset("mnist", num_samples=5)
    assert len(info.dataset) == 5


def test_sample_is_a_stratified_slice_of_real_mnist(data_root: Path) -> None:
    path = Path(__file__).parents[1] / "robustkit" / "data" / "files" / "mnist_test_1000.npz"
    with np.load(path, allow_pickle=False) as data:
        indices = data["indices"]
    assert np.bincount(data_labels(path), minlength=10).tolist() == [100] * 10
    real = load_dataset("mnist", root=data_root)
    sample = load_dataset()
    for k in (0, 500, 999):
        x, y = sample.dataset[k]
        x_real, y_real = real.dataset[int(indices[k])]
        assert torch.equal(x, x_real) and int(y) == y_real


def data_labels(path: Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as data:
        return data["labels"]


def test_explicit_root_without_data_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(RobustkitError, match=r"MNIST not found under .*--data-root.*download"):
        load_dataset("mnist", root=tmp_path)


def test_env_root_without_data_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROBUSTKIT_DATA", str(tmp_path))
    with pytest.raises(RobustkitError, match="unset ROBUSTKIT_DATA"):
        load_dataset("fashion-mnist")


def test_imagefolder_resizes_to_image_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(2):
            pixels = rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    info = load_dataset(f"imagefolder:{tmp_path}", image_size=32)
    assert info.classes == ["cat", "dog"]
    assert info.input_shape == (3, 32, 32)
    assert len(info.dataset) == 4
    x, y = info.dataset[3]
    assert x.shape == (3, 32, 32) and x.min() >= 0.0 and x.max() <= 1.0
    assert y == 1


def test_imagefolder_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(RobustkitError, match="not found"):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")


def test_failed_download_is_one_clear_error(monkeypatch, tmp_path) -> None:
    from urllib.error import URLError

    import torchvision.datasets

    import robustkit.data.datasets as datasets_module

    def offline(*args, **kwargs):
        raise URLError("no route to host")

    monkeypatch.delenv("ROBUSTKIT_DATA", raising=False)
    monkeypatch.setattr(datasets_module, "CACHE_ROOT", tmp_path)
    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(RobustkitError, match=r"could not download MNIST.*--data-root"):
        load_dataset("mnist")
