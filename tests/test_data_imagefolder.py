"""Image folders labelled in the model's class indices (robustkit.data.folders and .labels): by
ImageNet wnid or class name, by a --labels CSV, or in folder order; empty folders and unreadable
images are one clear error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from imagefolders import truncate, write_image_folder
from torch import nn

from robustkit.data import load_dataset
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel, load_model


@pytest.fixture(scope="module")
def resnet() -> RobustModel:
    """A timm ImageNet architecture (random weights): 1,000 classes named by timm."""
    return load_model("timm:resnet10t", device="cpu")


def unnamed(num_classes: int) -> RobustModel:
    """A model whose classes have no names."""
    return RobustModel(nn.Flatten(), num_classes=num_classes, device="cpu")


def folder_of(path: str) -> str:
    return Path(path).parent.name


def labels_by_folder(info) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for index, (path, _) in enumerate(info.dataset.samples):
        found.setdefault(folder_of(path), set()).add(int(info.dataset[index][1]))
    return found


def test_wnid_and_name_folders_get_the_models_class_indices(tmp_path, resnet) -> None:
    folders = ["n01530575", "Goldfish", "great_white_shark", "Hammerhead"]
    write_image_folder(tmp_path, folders)
    info = load_dataset(f"imagefolder:{tmp_path}", image_size=32, model=resnet)
    assert labels_by_folder(info) == {
        "n01530575": {10},  # brambling
        "Goldfish": {1},
        "great_white_shark": {2},
        "Hammerhead": {4},
    }
    assert len(info.classes) == 1000 and info.classes[10] == "brambling"
    assert info.input_shape == (3, 32, 32)


def test_unmatched_folders_are_listed_in_one_error(tmp_path, resnet) -> None:
    write_image_folder(tmp_path, ["cat", "dog", "tench"], per_class=1)
    with pytest.raises(RobustkitError) as caught:
        load_dataset(f"imagefolder:{tmp_path}", model=resnet)
    message = str(caught.value)
    assert "2 of 3 folder(s) name no class of the model: cat, dog:" in message
    assert "n01440764" in message and "--labels FILE.csv" in message


def test_a_name_two_classes_share_asks_for_the_wnid(tmp_path, resnet) -> None:
    write_image_folder(tmp_path, ["crane"], per_class=1)  # the bird and the machine
    with pytest.raises(RobustkitError, match=r"'crane' names 2 classes .*n02012849, n03126707"):
        load_dataset(f"imagefolder:{tmp_path}", model=resnet)


def test_a_labels_file_maps_folders_for_a_model_without_names(tmp_path) -> None:
    write_image_folder(tmp_path / "images", ["a", "b", "c"], per_class=1)
    labels = tmp_path / "labels.csv"
    labels.write_text("folder,index\na,7\n\nb, 3\nc,7\nunused,9\n")
    info = load_dataset(f"imagefolder:{tmp_path / 'images'}", model=unnamed(10), labels=labels)
    assert labels_by_folder(info) == {"a": {7}, "b": {3}, "c": {7}}
    assert info.classes[3] == "b" and info.classes[7] in ("a", "c") and info.classes[0] == "0"


def test_a_labels_file_overrides_the_models_names(tmp_path, resnet) -> None:
    write_image_folder(tmp_path / "images", ["cat"], per_class=1)
    labels = tmp_path / "labels.csv"
    labels.write_text("cat,281\n")  # tabby
    info = load_dataset(f"imagefolder:{tmp_path / 'images'}", model=resnet, labels=labels)
    assert labels_by_folder(info) == {"cat": {281}}
    assert info.classes[281] == "tabby"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,0\n", r"maps no index for 1 folder\(s\): b: add a folder,index line"),
        ("a,0\nb,10\n", r"past the model's 10 classes \(b=10\): use indices 0 to 9"),
        ("a,0\nb,two\n", r"line 2: class index 'two' is not a whole number"),
        ("a,0\nb,1,extra\n", r"line 2 is .*: write one folder,index pair a line"),
        ("a,0\na,1\nb,1\n", r"line 2: folder 'a' is mapped twice"),
    ],
)
def test_a_bad_labels_file_is_one_clear_error(tmp_path, content: str, message: str) -> None:
    write_image_folder(tmp_path / "images", ["a", "b"], per_class=1)
    labels = tmp_path / "labels.csv"
    labels.write_text(content)
    with pytest.raises(RobustkitError, match=message):
        load_dataset(f"imagefolder:{tmp_path / 'images'}", model=unnamed(10), labels=labels)


def test_a_missing_labels_file(tmp_path) -> None:
    write_image_folder(tmp_path / "images", ["a"], per_class=1)
    with pytest.raises(RobustkitError, match=r"labels file .*nope\.csv not found"):
        load_dataset(f"imagefolder:{tmp_path / 'images'}", labels=tmp_path / "nope.csv")


def test_unnamed_classes_keep_the_folder_order_within_the_models_outputs(tmp_path) -> None:
    write_image_folder(tmp_path, ["x", "y", "z"], per_class=1)
    info = load_dataset(f"imagefolder:{tmp_path}", image_size=32, model=unnamed(10))
    assert labels_by_folder(info) == {"x": {0}, "y": {1}, "z": {2}}
    assert info.classes == ["x", "y", "z"]
    with pytest.raises(RobustkitError, match="3 class folders but the model only 2 outputs"):
        load_dataset(f"imagefolder:{tmp_path}", model=unnamed(2))


def test_labels_need_an_image_folder(tmp_path) -> None:
    with pytest.raises(RobustkitError, match="'mnist-sample' is not one: drop --labels"):
        load_dataset("mnist-sample", labels=tmp_path / "labels.csv")


@pytest.mark.parametrize("layout", ["no class folders", "class folders without images"])
def test_a_folder_without_images_is_one_clear_error(tmp_path, layout: str) -> None:
    if layout == "class folders without images":
        (tmp_path / "cat").mkdir()
        (tmp_path / "cat" / "notes.txt").write_text("not an image")
    with pytest.raises(RobustkitError, match=r"no images found in .*one subfolder per class"):
        load_dataset(f"imagefolder:{tmp_path}")


@pytest.mark.parametrize("damage", ["truncated", "not an image"])
def test_an_unreadable_jpeg_names_the_file(tmp_path, damage: str) -> None:
    write_image_folder(tmp_path, ["cat", "dog"], suffix=".jpg")
    broken = tmp_path / "dog" / "1.jpg"
    if damage == "truncated":
        truncate(broken)
    else:
        broken.write_bytes(b"GIF89a? no")
    info = load_dataset(f"imagefolder:{tmp_path}", image_size=32)
    assert info.dataset[0][0].shape == (3, 32, 32)  # the good files still load
    with pytest.raises(
        RobustkitError, match=rf"cannot read image {re.escape(str(broken))} .*replace or remove it"
    ):
        info.dataset[3]
