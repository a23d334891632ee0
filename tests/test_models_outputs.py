"""Models whose forward returns a tuple, a dict, a Hugging Face-like ModelOutput, an object with
``.logits`` or one sigmoid logit: RobustModel reads the logits out of each (attacks and gradients
go through the selection), and anything it cannot read is one line naming --output-index or
--output-key, in Python and on the command line."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from imagefolders import write_image_folder
from torch import Tensor, nn
from torch.nn import functional as F
from typer.testing import CliRunner

from robustkit.attacks import FGSM, PGDLinf
from robustkit.auditing.inputs import describe_model
from robustkit.cli import app
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel, check_classifier, load_model

runner = CliRunner()
QUICK = ["--num-samples", "8", "--attacks", "fgsm", "--eps", "0.1", "--no-noise-probes"]


@dataclass
class ModelOutput(OrderedDict):
    """Hugging Face's ModelOutput in small: an ordered dict of its non-None fields that are
    also attributes."""

    loss: Tensor | None = None
    logits: Tensor | None = None
    hidden_states: Tensor | None = None

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None:
                self[field.name] = value


class Holder:
    """An object carrying logits as an attribute, beside a decoy."""

    def __init__(self, logits: Tensor, **others: Any) -> None:
        self.logits = logits
        self.__dict__.update(others)


class Packed(nn.Module):
    """A fixed linear classifier of (3, 4, 4) inputs whose logits ``pack`` wraps."""

    def __init__(self, pack: Callable[[Tensor], Any], classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 4 * 4, classes)
        self.pack = pack

    def forward(self, x: Tensor) -> Any:
        return self.pack(self.fc(x.flatten(1)))


def decoy(z: Tensor) -> Tensor:
    """Features of the right shape that are not the logits: picking them changes every result."""
    return z.flip(1) * 3 + 1


KINDS = [
    pytest.param(lambda z: (z, decoy(z)), {}, id="tuple"),
    pytest.param(lambda z: [decoy(z), z], {"output_index": 1}, id="list --output-index 1"),
    pytest.param(lambda z: (decoy(z), z), {"output_index": -1}, id="tuple --output-index -1"),
    pytest.param(lambda z: {"features": decoy(z), "logits": z}, {}, id="dict"),
    pytest.param(lambda z: {"a": decoy(z), "s": z}, {"output_key": "s"}, id="dict --output-key"),
    pytest.param(lambda z: {"a": decoy(z), "s": z}, {"output_index": 1}, id="dict --output-index"),
    pytest.param(lambda z: ModelOutput(logits=z, hidden_states=decoy(z)), {}, id="ModelOutput"),
    pytest.param(lambda z: Holder(z, features=decoy(z)), {}, id="object .logits"),
    pytest.param(
        lambda z: Holder(decoy(z), scores=z), {"output_key": "scores"}, id="object --output-key"
    ),
]


def inputs(n: int = 16) -> tuple[Tensor, Tensor]:
    """Seeded pixels and the plain linear model's own predictions as labels."""
    x = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = Packed(lambda z: z)(x).argmax(dim=1)
    return x, y


@pytest.mark.parametrize(("pack", "options"), KINDS)
def test_every_output_kind_gives_the_plain_models_logits(pack, options) -> None:
    x, _ = inputs()
    plain = RobustModel(Packed(lambda z: z), device="cpu")
    model = RobustModel(Packed(pack), device="cpu", **options)
    logits = model(x)
    assert type(logits) is Tensor and logits.dtype == torch.float32
    torch.testing.assert_close(logits, plain(x))
    assert check_classifier(model, x[:2]) == 3


@pytest.mark.parametrize(("pack", "options"), KINDS)
def test_attacks_and_gradients_go_through_the_selection(pack, options) -> None:
    x, y = inputs()
    plain = RobustModel(Packed(lambda z: z), device="cpu")
    model = RobustModel(Packed(pack), device="cpu", **options)
    result = FGSM()(model, x, y, eps=0.3)
    assert result.success.float().mean() >= 0.5  # the attack changes predictions
    torch.testing.assert_close(result.x_adv, FGSM()(plain, x, y, eps=0.3).x_adv)
    x_grad = x.clone().requires_grad_(True)
    F.cross_entropy(model(x_grad), y).backward()
    assert x_grad.grad is not None and x_grad.grad.abs().sum() > 0
    assert model.model.fc.weight.grad is not None


def test_one_logit_is_a_binary_classifier_whose_softmax_is_the_sigmoid() -> None:
    x, _ = inputs()
    for pack in (lambda z: z[:, 0], lambda z: z):  # shapes (N,) and (N, 1)
        model = RobustModel(Packed(pack, classes=1), device="cpu")
        z = model.model.fc(x.flatten(1))[:, 0]
        logits = model(x)
        assert logits.shape == (len(x), 2)
        torch.testing.assert_close(logits.softmax(dim=1)[:, 1], z.sigmoid())
        assert check_classifier(model, x[:2]) == 2


def test_pgd_flips_a_one_logit_model_as_it_flips_its_two_logit_twin() -> None:
    x, _ = inputs()
    single = RobustModel(Packed(lambda z: z, classes=1), device="cpu")
    twin = RobustModel(Packed(lambda z: z, classes=2), device="cpu")
    with torch.no_grad():  # logits [0, z]: the same classifier written out
        twin.model.fc.weight.copy_(F.pad(single.model.fc.weight, (0, 0, 1, 0)))
        twin.model.fc.bias.copy_(F.pad(single.model.fc.bias, (1, 0)))
        y = single(x).argmax(dim=1)
    assert set(y.tolist()) == {0, 1}
    attack = PGDLinf(steps=5, random_start=False)
    result = attack(single, x, y, eps=0.2)
    assert result.success.float().mean() >= 0.75
    torch.testing.assert_close(result.x_adv, attack(twin, x, y, eps=0.2).x_adv)


def test_a_logit_that_happens_to_fall_in_0_1_is_not_taken_for_a_probability() -> None:
    x, _ = inputs(1)
    model = RobustModel(Packed(lambda z: z, classes=1), device="cpu")
    with torch.no_grad():  # the sample's logit: 0.5
        model.model.fc.bias.sub_(model(x)[0, 1] - 0.5)
    torch.testing.assert_close(model(x)[:, 1], torch.tensor([0.5]))
    assert check_classifier(model, x) == 2


BAD = [
    (lambda z: z[:, :1].sigmoid(), {}, ["returns probabilities", "remove the sigmoid"]),
    (lambda z: {"logits": z.softmax(dim=1)}, {}, ["returns probabilities", "remove the softmax"]),
    (lambda z: "logits", {}, ["returns str, not logits"]),
    (lambda z: ((z, z),), {}, ["tuple[0] is a tuple, not a tensor", "--output-index"]),
    (lambda z: z[:, :, None], {}, ["shape (2, 3, 1) for a batch of 2", "(batch, classes)"]),
    (lambda z: (z[:, :, None], z), {}, ["tuple[0] has shape (2, 3, 1)", "--output-index"]),
    (lambda z: (z, z), {"output_index": 2}, ["--output-index 2 is out of range", "0 to 1"]),
    (lambda z: {"a": z, "b": z}, {}, ["without key 'logits' (keys: a, b)", "--output-key"]),
    (lambda z: ModelOutput(hidden_states=z), {"output_key": "x"}, ["keys: hidden_states"]),
    (lambda z: (z,), {"output_key": "x"}, ["tuple of 1", "--output-index"]),
    (lambda z: Holder(z), {"output_index": 0}, ["returns Holder", "--output-key"]),
    (lambda z: Holder(z), {"output_key": "x"}, ["no attribute 'x' (attributes: logits)"]),
    (lambda z: (), {}, ["returns an empty tuple"]),
]


@pytest.mark.parametrize(("pack", "options", "fragments"), BAD)
def test_an_unreadable_output_is_one_line_naming_the_fix(pack, options, fragments) -> None:
    x, _ = inputs(2)
    with pytest.raises(RobustkitError) as info:
        check_classifier(RobustModel(Packed(pack), device="cpu", **options), x)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_index_and_key_together_are_refused() -> None:
    with pytest.raises(RobustkitError, match="give --output-index or --output-key, not both"):
        RobustModel(Packed(lambda z: z), output_index=0, output_key="logits")


FACTORIES = """import torch
from collections import OrderedDict
from dataclasses import dataclass, fields
from torch import nn


@dataclass
class ModelOutput(OrderedDict):
    logits: torch.Tensor = None
    hidden_states: torch.Tensor = None

    def __post_init__(self):
        for field in fields(self):
            if getattr(self, field.name) is not None:
                self[field.name] = getattr(self, field.name)


class Packed(nn.Module):
    def __init__(self, pack, inputs=784, classes=10):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(inputs, classes)
        self.pack = pack

    def forward(self, x):
        return self.pack(self.fc(x.flatten(1)))


def plain():
    return Packed(lambda z: z)

def pair():
    return Packed(lambda z: (z, z[:, :, None]))

def second():
    return Packed(lambda z: (z[:, :, None], z))

def scores():
    return Packed(lambda z: {"features": z[:, :, None], "scores": z})

def hugging_face():
    return Packed(lambda z: ModelOutput(logits=z, hidden_states=z[:, :, None]))

def words():
    return Packed(lambda z: "logits")

def sigmoid():
    return Packed(lambda z: z.sigmoid(), classes=1)

def binary():
    return Packed(lambda z: z, inputs=3 * 32 * 32, classes=1)
"""


@pytest.fixture(scope="module")
def heads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The factories' file."""
    path = tmp_path_factory.mktemp("heads") / "heads.py"
    path.write_text(FACTORIES)
    return path


def audit(out: Path, *args: str):
    return runner.invoke(app, ["audit", *QUICK, "--out", str(out), *args])


def predictions(out: Path) -> pd.DataFrame:
    rows = pd.read_csv(out / "results.csv")
    return rows[["sample", "label", "clean_pred", "adv_pred"]]


@pytest.fixture(scope="module")
def plain(heads: Path) -> pd.DataFrame:
    """The predictions of an audit of the same classifier returning its logits as a tensor."""
    result = audit(heads.parent / "plain", "--model", f"{heads}:plain")
    assert result.exit_code == 0, result.output
    return predictions(heads.parent / "plain")


@pytest.mark.parametrize(
    ("factory", "options", "recorded"),
    [
        ("pair", [], (None, None)),
        ("second", ["--output-index", "1"], (1, None)),
        ("scores", ["--output-key", "scores"], (None, "scores")),
        ("hugging_face", [], (None, None)),
    ],
)
def test_audit_reads_the_logits_of_each_output_kind(
    heads, plain, tmp_path, factory, options, recorded
) -> None:
    result = audit(tmp_path, "--model", f"{heads}:{factory}", *options)
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(predictions(tmp_path), plain)
    info = json.loads((tmp_path / "run.json").read_text())["model_info"]
    assert (info["output_index"], info["output_key"]) == recorded


def test_audit_of_a_one_logit_model_on_two_class_images(heads, tmp_path) -> None:
    folder = write_image_folder(tmp_path / "images", ["negative", "positive"], per_class=4)
    args = ["--model", f"{heads}:binary", "--dataset", f"imagefolder:{folder}"]
    result = audit(tmp_path / "out", *args, "--image-size", "32")
    assert result.exit_code == 0, result.output
    rows = predictions(tmp_path / "out")
    assert len(rows) == 16 and set(rows["label"]) == {0, 1}  # fgsm and the worst case
    assert set(rows["clean_pred"]) | set(rows["adv_pred"]) <= {0, 1}
    assert (rows["clean_pred"] != rows["adv_pred"]).any()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["pair", "--output-index", "1", "--output-key", "x"], ["not both"]),
        (["pair", "--output-index", "5"], ["--output-index 5 is out of range"]),
        (["second"], ["tuple[0] has shape (2, 10, 1)", "--output-index"]),
        (["scores"], ["keys: features, scores", "--output-key NAME"]),
        (["words"], ["returns str, not logits"]),
        (["sigmoid"], ["returns probabilities", "remove the sigmoid"]),
    ],
)
def test_audit_refuses_an_unreadable_output_in_one_line(
    heads, tmp_path, one_line_error, args, fragments
) -> None:
    factory, *options = args
    one_line_error(audit(tmp_path, "--model", f"{heads}:{factory}", *options), *fragments)


def test_transfer_takes_the_output_options(heads, tmp_path, one_line_error) -> None:
    args = ["transfer", "--dataset", "mnist-sample", "--num-samples", "8", "--attack", "fgsm"]
    args += ["--out", str(tmp_path), "--models", f"{heads}:second"]
    one_line_error(runner.invoke(app, args), "tuple[0] has shape")
    result = runner.invoke(app, [*args, "--output-index", "1"])
    assert result.exit_code == 0, result.output


def test_load_model_keeps_a_factorys_selection_unless_told_otherwise(tmp_path: Path) -> None:
    (tmp_path / "wrapped.py").write_text(
        FACTORIES
        + "\nfrom robustkit.models import RobustModel\n"
        + "def wrapped():\n    return RobustModel(second(), output_index=1)\n"
    )
    spec = f"{tmp_path / 'wrapped.py'}:wrapped"
    assert describe_model(load_model(spec, device="cpu"))["output_index"] == 1
    with pytest.raises(RobustkitError, match="tuple\\[0\\] has shape"):
        check_classifier(load_model(spec, device="cpu", output_index=0), torch.rand(1, 1, 28, 28))
