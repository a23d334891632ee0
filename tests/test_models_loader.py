"""Tests for robustkit.models: load_model specs, checkpoints and check_classifier."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from robustkit.errors import RobustkitError
from robustkit.models import RobustModel, check_classifier, load_model
from robustkit.models.loader import apply_checkpoint, load_state_dict_file

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

TINY_SOURCE = textwrap.dedent(
    """
    from torch import nn

    def build(num_classes=3):
        return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, num_classes))

    def not_a_model():
        return 42
    """
)


def tiny() -> nn.Module:
    """The same architecture as ``build`` in TINY_SOURCE."""
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_net.py"
    path.write_text(TINY_SOURCE)
    return path


def pixels(*shape: int) -> Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0))


# --- library specs -------------------------------------------------------------------------


def test_timm_spec_builds_and_checks() -> None:
    model = load_model("timm:resnet18", num_classes=10, device="cpu")
    assert isinstance(model, RobustModel)
    assert model.name == "timm:resnet18"
    assert model.num_classes == 10
    assert model.input_shape == (3, 224, 224)
    assert model.mean is not None
    assert torch.allclose(model.mean.flatten(), torch.tensor(IMAGENET_MEAN))
    check_classifier(model, pixels(2, 3, 32, 32))


def test_torchvision_spec_gets_imagenet_normalisation() -> None:
    model = load_model("torchvision:resnet18", device="cpu")
    assert model.mean is not None and model.std is not None
    assert torch.allclose(model.mean.flatten(), torch.tensor(IMAGENET_MEAN))
    assert torch.allclose(model.std.flatten(), torch.tensor(IMAGENET_STD))
    assert model.input_shape == (3, 224, 224)
    assert model.num_classes == 1000
    assert model.device == torch.device("cpu")


def test_explicit_mean_std_override() -> None:
    model = load_model(
        "torchvision:resnet18", mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25], device="cpu"
    )
    assert model.mean is not None and model.std is not None
    assert torch.allclose(model.mean.flatten(), torch.full((3,), 0.5))
    assert torch.allclose(model.std.flatten(), torch.full((3,), 0.25))


def test_mean_with_wrong_channel_count_is_refused() -> None:
    with pytest.raises(RobustkitError, match="one value per channel"):
        load_model("torchvision:resnet18", mean=[0.5, 0.5], std=[0.2, 0.2], device="cpu")


def test_unknown_timm_name_suggests() -> None:
    with pytest.raises(RobustkitError, match=r"did you mean.*resnet18"):
        load_model("timm:resnet181x", device="cpu")


def test_unknown_torchvision_name_suggests() -> None:
    with pytest.raises(RobustkitError, match=r"did you mean.*resnet18"):
        load_model("torchvision:resnet1", device="cpu")


@pytest.mark.parametrize("spec", ["resnet18", "weird spec", "foo/bar:", ":build"])
def test_bad_spec_lists_accepted_forms(spec: str) -> None:
    with pytest.raises(RobustkitError, match=r"timm:NAME.*torchvision:NAME"):
        load_model(spec, device="cpu")


def test_zoo_spec() -> None:
    from robustkit.models import zoo

    model = load_model("zoo:mnist-cnn", device="cpu")  # a broken bundled file fails here
    assert model.name == "zoo:mnist-cnn"
    assert model.input_shape is not None
    check_classifier(model, pixels(2, *model.input_shape))
    with pytest.raises(RobustkitError):
        zoo.load_zoo_model("no-such-model")


# --- user factories --------------------------------------------------------------------------


def test_file_factory(tiny_file: Path) -> None:
    spec = f"{tiny_file}:build"
    model = load_model(spec, device="cpu")
    assert model.name == spec
    assert model.mean is None
    assert model(pixels(2, 1, 8, 8)).shape == (2, 3)


def test_file_factory_gets_num_classes(tiny_file: Path) -> None:
    model = load_model(f"{tiny_file}:build", num_classes=5, device="cpu")
    assert model(pixels(1, 1, 8, 8)).shape == (1, 5)
    assert model.num_classes == 5


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RobustkitError, match="not found"):
        load_model(f"{tmp_path / 'nope.py'}:build", device="cpu")


def test_missing_factory(tiny_file: Path) -> None:
    with pytest.raises(RobustkitError, match="has no 'make'"):
        load_model(f"{tiny_file}:make", device="cpu")


def test_factory_must_return_module(tiny_file: Path) -> None:
    with pytest.raises(RobustkitError, match=r"not an nn\.Module"):
        load_model(f"{tiny_file}:not_a_model", device="cpu")


def test_module_factory(tiny_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tiny_file.parent))
    model = load_model("tiny_net:build", device="cpu")
    assert model.name == "tiny_net:build"
    assert model(pixels(1, 1, 8, 8)).shape == (1, 3)


def test_missing_module() -> None:
    with pytest.raises(RobustkitError, match="cannot import module"):
        load_model("no_such_pkg_xyz.models:build", device="cpu")


# --- checkpoints -----------------------------------------------------------------------------


def _wrap_plain(sd: dict[str, Tensor]) -> object:
    return sd


def _wrap_state_dict(sd: dict[str, Tensor]) -> object:
    return {"state_dict": sd, "epoch": 3}


def _wrap_model(sd: dict[str, Tensor]) -> object:
    return {"model": sd}


def _wrap_module_prefix(sd: dict[str, Tensor]) -> object:
    return {f"module.{k}": v for k, v in sd.items()}


@pytest.mark.parametrize("wrap", [_wrap_plain, _wrap_state_dict, _wrap_model, _wrap_module_prefix])
def test_checkpoint_forms(tiny_file: Path, tmp_path: Path, wrap) -> None:
    source = tiny()
    ckpt = tmp_path / "ckpt.pt"
    torch.save(wrap(source.state_dict()), ckpt)
    model = load_model(f"{tiny_file}:build", checkpoint=ckpt, device="cpu")
    x = pixels(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), source(x))


def test_load_state_dict_file_strips_prefix(tmp_path: Path) -> None:
    ckpt = tmp_path / "dp.pt"
    torch.save({"model": {"module.w": torch.ones(2)}}, ckpt)
    assert list(load_state_dict_file(ckpt)) == ["w"]


def test_missing_checkpoint(tiny_file: Path, tmp_path: Path) -> None:
    with pytest.raises(RobustkitError, match="not found: check the path"):
        load_model(f"{tiny_file}:build", checkpoint=tmp_path / "nope.pt", device="cpu")


@pytest.mark.parametrize(
    "content", [*(random.Random(seed).randbytes(256) for seed in range(5)), b"", b"hello\n"]
)
def test_corrupt_checkpoint(tmp_path: Path, content: bytes) -> None:
    ckpt = tmp_path / "bad.pt"
    ckpt.write_bytes(content)
    with pytest.raises(RobustkitError, match=r"torch\.save\(model\.state_dict\(\), path\)"):
        load_state_dict_file(ckpt)


def test_non_state_dict_checkpoint(tmp_path: Path) -> None:
    ckpt = tmp_path / "list.pt"
    torch.save([torch.ones(1)], ckpt)
    with pytest.raises(RobustkitError, match="not a state dict"):
        load_state_dict_file(ckpt)


def test_pickled_module_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "full.pt"
    torch.save(tiny(), ckpt)
    with pytest.raises(RobustkitError, match="pickled") as info:
        load_state_dict_file(ckpt)
    assert "torch.save(model.state_dict(), path)" in str(info.value)


def test_key_mismatch_lists_keys(tmp_path: Path) -> None:
    ckpt = tmp_path / "other.pt"
    torch.save({"0.weight": torch.zeros(2, 1, 3, 3), "head.bias": torch.zeros(3)}, ckpt)
    with pytest.raises(RobustkitError) as info:
        apply_checkpoint(tiny(), ckpt)
    message = str(info.value)
    assert "missing keys: 0.bias, 2.weight, 2.bias" in message
    assert "unexpected keys: head.bias" in message


def test_shape_mismatch(tmp_path: Path) -> None:
    ckpt = tmp_path / "wide.pt"
    sd = tiny().state_dict()
    sd["2.weight"] = torch.zeros(7, 72)
    torch.save(sd, ckpt)
    with pytest.raises(RobustkitError, match=r"wrong shape.*2\.weight"):
        apply_checkpoint(tiny(), ckpt)


def test_saved_robust_model_state_dict_loads(tmp_path: Path) -> None:
    source = RobustModel(tiny(), mean=[0.5], std=[0.5], device="cpu")
    ckpt = tmp_path / "wrapped.pt"
    torch.save(source.state_dict(), ckpt)
    target = tiny()
    apply_checkpoint(target, ckpt)
    assert torch.equal(target[2].weight, source.model[2].weight)


# --- check_classifier ------------------------------------------------------------------------


class Lambda(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn
        self.layer = nn.Linear(3 * 4 * 4, 5)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(self.layer(x.flatten(1)))


def test_good_classifier_passes() -> None:
    check_classifier(Lambda(lambda z: z), pixels(4, 3, 4, 4))


def test_softmax_model_refused() -> None:
    with pytest.raises(RobustkitError, match="remove the softmax"):
        check_classifier(Lambda(lambda z: z.softmax(dim=1)), pixels(4, 3, 4, 4))


@pytest.mark.parametrize("fn", [lambda z: z[:, 0], lambda z: z.unsqueeze(1)])
def test_non_2d_output_refused(fn) -> None:
    with pytest.raises(RobustkitError, match=r"2-D logits \(batch, classes\), got shape"):
        check_classifier(Lambda(fn), pixels(4, 3, 4, 4))


def test_channel_mismatch_from_forward() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    with pytest.raises(RobustkitError, match=r"cannot take inputs of shape \(1, 8, 8\)") as info:
        check_classifier(model, pixels(2, 1, 8, 8))
    assert "channel or size mismatch" in str(info.value)
    assert "--image-size" in str(info.value)


def test_channel_mismatch_from_input_shape() -> None:
    model = load_model("torchvision:resnet18", device="cpu")
    with pytest.raises(RobustkitError, match="expects 3 channels, the data has 1"):
        check_classifier(model, pixels(2, 1, 28, 28))


def test_check_restores_training_mode() -> None:
    model = Lambda(lambda z: z)
    model.train()
    check_classifier(model, pixels(2, 3, 4, 4))
    assert model.training
