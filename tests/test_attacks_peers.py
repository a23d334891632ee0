"""Peer attacks: foolbox: and art: names in the registry, run through robustkit's evaluator."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from robustkit.attacks import attack_class, create_attack
from robustkit.cli import app
from robustkit.errors import RobustkitError

runner = CliRunner()
PEERS = [
    ("foolbox:LinfPGD", {"steps": 5}, 0.1),
    ("foolbox:L2PGD", {"steps": 5}, 1.0),
    ("foolbox:FGSM", {}, 0.1),
    ("art:FastGradientMethod", {}, 0.1),
    ("art:FastGradientMethod", {"norm": 2}, 1.0),
    ("art:ProjectedGradientDescent", {"max_iter": 5, "eps_step": 0.05}, 0.1),
]


@pytest.fixture
def tiny() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5)).eval()
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return model, x, y


@pytest.mark.parametrize(("name", "kwargs", "eps"), PEERS)
def test_peer_attacks_keep_the_contract(tiny, name, kwargs, eps):
    model, x, y = tiny
    attack = create_attack(name, **kwargs)
    result = attack(model, x, y, eps=eps)
    assert result.x_adv.shape == x.shape and result.x_adv.dtype == x.dtype
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    delta = (result.x_adv - x).flatten(1)
    if attack.norm == "linf":
        assert delta.abs().max() <= eps + 1e-6
    else:
        assert attack.norm == "l2"
        assert delta.norm(dim=1).max() <= eps + 1e-5
    with torch.no_grad():
        pred = model(result.x_adv).argmax(dim=1)
    assert torch.equal(pred, result.adv_pred)
    assert torch.equal(result.success, pred != y)
    assert result.success.any()


def test_peer_classes_expose_the_peer_hyper_parameters():
    cls = attack_class("foolbox:LinfPGD")
    assert cls is attack_class("foolbox:LinfPGD")  # built once per name
    names = {f.name for f in dataclasses.fields(cls)}
    assert {"steps", "rel_stepsize", "random_start", "norm"} <= names
    assert create_attack("foolbox:LinfPGD", steps=3).norm == "linf"
    assert create_attack("foolbox:L2CarliniWagnerAttack").norm == "l2"
    art_fields = {f.name for f in dataclasses.fields(attack_class("art:ProjectedGradientDescent"))}
    assert "max_iter" in art_fields
    assert not {"estimator", "eps", "targeted"} & art_fields  # robustkit supplies these
    assert create_attack("art:ProjectedGradientDescent", norm="l2").norm == "l2"


def test_peer_targeted_mode(tiny):
    model, x, y = tiny
    targets = (y + 1) % 5
    attack = create_attack("foolbox:LinfPGD", steps=50, abs_stepsize=0.05)
    result = attack(model, x, y, eps=1.0, targets=targets)
    assert torch.equal(result.success, result.adv_pred == targets)
    assert result.success.float().mean() > 0.8


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("foolbox:LinfPDG", {}, "did you mean foolbox:LinfPGD"),
        ("art:FastGradMethod", {}, "did you mean art:FastGradientMethod"),
        ("foolbox:LinfPGD", {"stepz": 3}, "bad parameters for attack 'foolbox:LinfPGD'"),
        ("foolbox:SpatialAttack", {}, "pass norm='linf' or 'l2'"),
    ],
)
def test_peer_errors_name_the_fix(name, kwargs, message):
    with pytest.raises(RobustkitError, match=message):
        create_attack(name, **kwargs)


def test_foolbox_and_art_attacks_run_end_to_end_through_audit(tmp_path):
    result = runner.invoke(
        app,
        [
            "audit",
            "--attacks",
            "foolbox:LinfPGD,art:FastGradientMethod,pgd-linf",
            "--num-samples",
            "20",
            "--steps",
            "5",
            "--eps",
            "0.3",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "summary.csv").set_index("attack")
    assert {"foolbox:LinfPGD", "art:FastGradientMethod", "worst-case"} <= set(summary.index)
    assert (summary["n"] == 20).all()
    assert summary.loc["art:FastGradientMethod", "robust_accuracy"] < 0.8  # eps 0.3 breaks MNIST
