"""The suite's cascade over nested budgets: each attack only on the points still robust, budgets
from the largest down, points that held in a larger ball taken to hold in the smaller ones (a few
re-attacked to check), and an adversarial within a smaller eps counted at every larger one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from robustkit.attacks.base import Attack, AttackResult
from robustkit.attacks.runs import Points
from robustkit.auditing import engine, suites
from robustkit.auditing.batch import EPS_PROBE_SIZE
from robustkit.auditing.checks import sanity_flags
from robustkit.auditing.results import WORST_CASE

BUDGETS = [0.1, 0.2, 0.3]
N = 200
INF = float("inf")


class Identity(nn.Module):
    """Predicts the class written in the first pixel (0, 1 or 2), so every label is right; a
    small input-dependent term keeps its gradients alive (the model probe checks them)."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        cls = (x[:, 0, 0, 0] * 4).long().clamp(0, 2)
        tilt = x.flatten(1).sum(dim=1, keepdim=True) * torch.tensor([[0.01, 0.02, 0.03]])
        return nn.functional.one_hot(cls, 3).float() * 5 + tilt


def threshold(index: Tensor) -> Tensor:
    """Per point, the smallest eps at which the fake attack breaks it (inf: never)."""
    return torch.tensor([0.1, 0.2, 0.3, INF])[index % 4]


@dataclass(frozen=True, kw_only=True)
class ThresholdAttack(Attack):
    """Breaks a point iff eps reaches its threshold (read from the point's second pixel, which
    holds its index); ``weaker_above`` points (index % 8 == 7) also break at eps <= 0.2 but
    never above, as an attack weaker in a larger ball would. Records every call."""

    norm: ClassVar[str] = "linf"
    name: ClassVar[str] = "threshold"
    weaker_above: bool = False
    calls: list[tuple[float, list[int]]] = field(default_factory=list, compare=False)

    def _run(self, model: nn.Module, points: Points, eps: float) -> AttackResult:
        inputs, labels = points.x0, points.labels
        index = (inputs[:, 0, 0, 1] * N).round().long()
        self.calls.append((eps, sorted(index.tolist())))
        success = threshold(index) <= eps + 1e-9
        if self.weaker_above:
            success |= (index % 8 == 7) & (eps <= 0.2 + 1e-9)
        x_adv = inputs.clone()
        x_adv[:, 0, 1, 1] += torch.where(success, eps, 0.0)  # a perturbation of size eps
        adv_pred = torch.where(success, (labels + 1) % 3, labels)
        return AttackResult(x_adv=x_adv, success=success, adv_pred=adv_pred)


@dataclass(frozen=True)
class FakeSuite(suites.Suite):
    """A suite of the given attack instances (L-inf only)."""

    instances: tuple[Attack, ...] = ()

    def attacks(self, norms: list[str]) -> list[Attack]:  # type: ignore[override]
        return list(self.instances)


def run(monkeypatch: pytest.MonkeyPatch, attack: ThresholdAttack, batch_size: int = N):
    """An audit of N points with the one-attack suite at BUDGETS."""
    suite = FakeSuite("fake", (), (), "one fake attack", instances=(attack,))
    monkeypatch.setitem(suites.SUITES, "fake", suite)
    x = torch.zeros(N, 1, 2, 2)
    x[:, 0, 0, 0] = (torch.arange(N) % 3).float() / 4 + 0.05  # the class
    x[:, 0, 0, 1] = torch.arange(N).float() / N  # the index
    y = torch.arange(N) % 3
    return engine.audit(
        Identity(), (x, y), attacks=[], suite="fake", eps=BUDGETS, batch_size=batch_size,
        noise_probes=False, num_samples=0,  # all N points, not the default 100
    )  # fmt: skip


def test_larger_budgets_first_and_held_points_only_probed_below(monkeypatch):
    attack = ThresholdAttack()
    result = run(monkeypatch, attack)
    index = torch.arange(N)
    t = threshold(index)
    held_at = {eps: set(index[t > eps].tolist()) for eps in BUDGETS}
    assert [eps for eps, _ in attack.calls] == [0.3, 0.2, 0.1]
    assert attack.calls[0][1] == list(range(N))  # every point at the largest eps
    for (larger, _), (_, attacked) in zip(attack.calls, attack.calls[1:], strict=False):
        inferred = held_at[larger]
        probed = set(attacked) & inferred
        assert len(probed) == EPS_PROBE_SIZE  # a few held points are checked ...
        # ... the others are not attacked again; every point broken at the larger eps is
        assert set(attacked) - probed == set(range(N)) - inferred
    accuracy = result.robust_accuracy(WORST_CASE)
    for eps in BUDGETS:
        assert accuracy.loc[("linf", eps)] == pytest.approx(float((t > eps).float().mean()))
    probes = result.config["eps_probes"]
    checked = {(p["eps_from"], p["eps_to"], p["failed"]) for p in probes}
    assert checked == {(0.3, 0.2, 0), (0.2, 0.1, 0)}
    assert sanity_flags(result) == []


def test_a_failed_check_attacks_every_held_point_and_corrects_the_larger_eps(monkeypatch):
    attack = ThresholdAttack(weaker_above=True)
    result = run(monkeypatch, attack)
    index = torch.arange(N)
    odd = index % 8 == 7  # held at 0.3, broken at 0.2 and 0.1
    truth = {0.1: (threshold(index) > 0.1) & ~odd, 0.2: (threshold(index) > 0.2) & ~odd}
    truth[0.3] = (threshold(index) > 0.3) & ~odd  # an adversarial at 0.2 is one at 0.3
    accuracy = result.robust_accuracy(WORST_CASE)
    for eps in BUDGETS:
        assert accuracy.loc[("linf", eps)] == pytest.approx(float(truth[eps].float().mean()))
    attacked_at_02 = {i for eps, seen in attack.calls if eps == 0.2 for i in seen}
    assert set(index[odd].tolist()) <= attacked_at_02  # not just the probed ones
    rows = result.frame[(result.frame["eps"] == 0.3) & (result.frame["attack"] == "threshold")]
    assert (rows.loc[odd.numpy(), "robust_correct"] == 0).all()
    assert [f.code for f in sanity_flags(result)] == ["accuracy-rises-with-eps"]
    assert "weaker in the larger ball" in sanity_flags(result)[0].message


def test_batch_size_changes_no_verdict(monkeypatch):
    whole = run(monkeypatch, ThresholdAttack()).robust_accuracy(WORST_CASE)
    split = run(monkeypatch, ThresholdAttack(), batch_size=64).robust_accuracy(WORST_CASE)
    assert whole.equals(split)
