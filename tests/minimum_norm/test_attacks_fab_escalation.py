"""FAB-T's fixed-budget options: leaving a run once within eps, and escalating to longer runs
only where a probe of the closest unbroken points shows that they pay."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from robustkit.attacks import create_attack
from robustkit.data import load_dataset
from robustkit.errors import RobustkitError
from robustkit.models import load_zoo_model
from robustkit.testing.counting import CountingModel


@pytest.fixture(scope="module")
def robust_batch() -> tuple[CountingModel, Tensor, Tensor]:
    """The adversarially trained MNIST model on 24 bundled images it classifies correctly."""
    model = CountingModel(load_zoo_model("mnist-robust", device="cpu")).eval()
    dataset = load_dataset("mnist-sample").dataset
    x = torch.stack([dataset[i][0] for i in range(28)])
    y = torch.tensor([int(dataset[i][1]) for i in range(28)])
    with torch.no_grad():
        keep = model(x).argmax(dim=1) == y
    return model, x[keep][:24], y[keep][:24]


def test_leaving_the_run_within_eps_breaks_the_same_points_with_fewer_passes(robust_batch):
    model, x, y = robust_batch
    verdicts, rows = [], []
    for stop in (False, True):
        model.images = 0
        result = create_attack("fab-t-l2", steps=100, stop_within_eps=stop)(model, x, y, eps=2.0)
        verdicts.append(result.success)
        rows.append(model.images)
        assert ((result.x_adv - x).flatten(1).norm(dim=1)[result.success] <= 2.0 + 1e-5).all()
    assert verdicts[0].sum() >= 12  # the budget breaks points, so stopping early has work to save
    assert torch.equal(verdicts[0], verdicts[1])
    assert rows[1] < 0.75 * rows[0]


def test_escalation_breaks_what_short_runs_leave_under_a_misleading_l2_gradient(robust_batch):
    """On this model FAB's first L2 adversarial lies far outside eps 2 (radius ~19): 10 steps
    of stepping back by beta never reach eps, 100 do."""
    model, x, y = robust_batch
    short = create_attack("fab-t-l2", steps=10, stop_within_eps=True)(model, x, y, eps=2.0)
    escalated = create_attack("fab-t-l2", steps=10, stop_within_eps=True, escalation_steps=100)(
        model, x, y, eps=2.0
    )
    assert short.success.sum() <= 2
    assert escalated.success.sum() >= 20


def test_escalation_costs_only_its_probe_where_the_probe_breaks_nothing(robust_batch):
    """Under L-inf eps 0.3 the same model holds: the probe (8 points, towards the target of
    their closest adversarial) breaks none, so the rest never get the long runs."""
    model, x, y = robust_batch
    rows = []
    for escalation in (0, 50):
        model.images = 0
        result = create_attack(
            "fab-t",
            steps=10,
            stop_within_eps=True,
            escalation_steps=escalation,
            escalation_probe=8,
        )(model, x, y, eps=0.3)
        assert not result.success.any()
        rows.append(model.images)
    # per step of a run: one forward with the gradient and one to score the new iterate
    assert rows[1] - rows[0] == 8 * 50 * 2


@pytest.mark.parametrize(
    "settings",
    [{"steps": 10, "escalation_steps": 10}, {"escalation_steps": 200, "escalation_probe": 0}],
)
def test_an_escalation_that_is_not_longer_is_refused(settings):
    with pytest.raises(RobustkitError, match="escalation_steps must exceed steps"):
        create_attack("fab-t", **settings)
