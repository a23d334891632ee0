"""A model's named classes (robustkit.models.classes): from timm's ImageNet info and pretrained
config, from torchvision weights' categories, and only when they fit the model's outputs."""

from __future__ import annotations

import pytest
from torch import nn

from robustkit.data.classes import ModelClasses
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel, load_model
from robustkit.models.classes import timm_classes


def test_timm_imagenet_model_names_its_classes_with_wnids() -> None:
    model = load_model("timm:resnet10t", device="cpu")
    assert model.classes is not None and model.num_classes == len(model.classes) == 1000
    assert model.classes.ids[0] == "n01440764"
    assert model.classes.synonyms[0] == ("tench", "Tinca tinca")
    assert model.classes.names[1] == "goldfish"


def test_torchvision_imagenet_weights_name_classes_and_carry_wnids() -> None:
    model = load_model("torchvision:resnet18", device="cpu")
    assert model.classes is not None and len(model.classes) == 1000
    assert model.classes.names[:2] == ["tench", "goldfish"]
    assert model.classes.ids[2] == "n01484850"  # great white shark, timm's ImageNet order


@pytest.mark.parametrize("spec", ["timm:resnet10t", "torchvision:resnet18"])
def test_a_model_with_other_outputs_has_no_names(spec: str) -> None:
    model = load_model(spec, device="cpu", num_classes=3)
    assert model.classes is None and model.num_classes == 3


def test_timm_label_names_in_the_pretrained_config_come_first() -> None:
    module = nn.Linear(4, 2)
    module.num_classes = 2  # type: ignore[assignment]
    module.pretrained_cfg = {  # type: ignore[assignment]
        "label_names": ["cat", "dog"],
        "label_descriptions": {"cat": "cat, kitty"},
    }
    classes = timm_classes(module)
    assert classes == ModelClasses(synonyms=(("cat", "kitty"), ("dog",)), ids=("cat", "dog"))


def test_names_that_do_not_fit_the_outputs_are_refused() -> None:
    classes = ModelClasses.from_descriptions(["a", "b", "c"])
    with pytest.raises(RobustkitError, match="names 3 classes but num_classes is 10"):
        RobustModel(nn.Flatten(), num_classes=10, classes=classes, device="cpu")
    assert RobustModel(nn.Flatten(), classes=classes, device="cpu").num_classes == 3
