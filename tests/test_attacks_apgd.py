"""Auto-PGD: the DLR loss, the step-size schedule, early stop over restarts and target runs, and
cross-checks against PGD and torchattacks' APGD / APGDT on the bundled robust MNIST model.

The robust model at eps 0.3 keeps about 90% of the points: a test can tell a stronger attack
from a weaker one there, where a natural model loses every point to any attack.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import torch
import torchattacks
from torch import Tensor, nn

from robustkit.attacks import create_attack
from robustkit.attacks.apgd import StepSizeSchedule, checkpoints
from robustkit.attacks.base import attack_objective
from robustkit.data import load_dataset
from robustkit.errors import RobustkitError
from robustkit.models import load_zoo_model

EPS = 0.3
L2_EPS = 2.0
TOLERANCE = 0.01  # robust accuracy, as a fraction: the spread over seeds at 500 images


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: the model is small, and threads fighting over shared cores are slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    """The bundled PGD-trained MNIST model on the CPU."""
    return load_zoo_model("mnist-robust", device="cpu")


def sample(count: int) -> tuple[Tensor, Tensor]:
    """The first ``count`` images of the bundled MNIST sample."""
    dataset = load_dataset("mnist-sample").dataset
    x = torch.stack([dataset[i][0] for i in range(count)])
    y = torch.tensor([int(dataset[i][1]) for i in range(count)])
    return x, y


def robust_accuracy(model: nn.Module, x_adv: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return (model(x_adv).argmax(dim=1) == y).float().mean().item()


def ours(model: nn.Module, name: str, x: Tensor, y: Tensor, eps: float, **hyper: object) -> float:
    """robustkit's robust accuracy, checking its success flags against the model."""
    torch.manual_seed(0)
    result = create_attack(name, **hyper)(model, x, y, eps=eps)
    assert torch.equal(result.success, result.adv_pred != y)
    return 1.0 - result.success.float().mean().item()


class Scaled(nn.Module):
    """A model's logits times a constant: the same classifier, a saturated softmax."""

    def __init__(self, inner: nn.Module, factor: float) -> None:
        super().__init__()
        self.inner, self.factor = inner, factor

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x) * self.factor


class Recording(nn.Module):
    """A linear classifier that records the batch size of every forward pass."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, classes))
        self.sizes: list[int] = []

    def forward(self, x: Tensor) -> Tensor:
        self.sizes.append(len(x))
        return self.net(x)


def tiny_batch(model: nn.Module, count: int = 16) -> tuple[Tensor, Tensor]:
    x = torch.rand(count, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return x, model(x).argmax(dim=1)


# --- the DLR loss ---------------------------------------------------------------------------


def test_dlr_loss_matches_its_definition_and_ignores_shift_and_scale():
    logits = torch.tensor([[3.0, 1.0, 2.0, 0.0], [0.5, 4.0, 1.0, 3.0]])
    labels = torch.tensor([0, 3])
    # -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)
    expected = torch.tensor([-(3 - 2) / (3 - 1), -(3 - 4) / (4 - 1)])
    assert torch.allclose(attack_objective(logits, labels, None, "dlr"), expected)
    # targeted: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)
    targets = torch.tensor([3, 0])
    expected_t = torch.tensor([-(3 - 0) / (3 - 0.5), -(3 - 0.5) / (4 - 0.75)])
    assert torch.allclose(attack_objective(logits, labels, targets, "dlr"), expected_t)
    for aim in (None, targets):
        plain = attack_objective(logits, labels, aim, "dlr")
        moved = attack_objective(logits * 1000 + 7, labels, aim, "dlr")
        assert torch.allclose(plain, moved, atol=1e-5)


def test_dlr_with_too_few_classes_names_the_fix():
    with pytest.raises(RobustkitError, match="at least 3 classes"):
        attack_objective(torch.randn(4, 2), torch.zeros(4, dtype=torch.long), None, "dlr")
    model = Recording(classes=2)
    x, y = tiny_batch(model)
    with pytest.raises(RobustkitError, match=r"at least 3 classes.*use apgd-ce"):
        create_attack("apgd-dlr", steps=2)(model, x, y, eps=0.1)
    model = Recording(classes=3)
    x, y = tiny_batch(model)
    with pytest.raises(RobustkitError, match=r"at least 4 classes.*use apgd-ce"):
        create_attack("apgd-t", steps=2)(model, x, y, eps=0.1)


def test_apgd_dlr_breaks_the_same_points_when_the_logits_are_scaled(model):
    x, y = sample(100)
    torch.manual_seed(0)
    plain = create_attack("apgd-dlr", steps=20)(model, x, y, eps=EPS).success
    torch.manual_seed(0)
    scaled = create_attack("apgd-dlr", steps=20)(Scaled(model, 1000.0), x, y, eps=EPS).success
    assert 0 < int(plain.sum()) < len(x)  # the comparison means something
    assert torch.equal(plain, scaled)
    # CE is not scale-invariant: its saturated softmax hides the gradient, so APGD-CE
    # breaks fewer points on the scaled model -- the reason DLR exists
    ce_plain = 1 - ours(model, "apgd-ce", x, y, EPS, steps=20)
    ce_scaled = 1 - ours(Scaled(model, 1000.0), "apgd-ce", x, y, EPS, steps=20)
    assert ce_scaled < ce_plain


# --- the step-size schedule -----------------------------------------------------------------


def test_checkpoints_follow_the_papers_schedule():
    # p = 0, .22, .41, .57, .70, .80, .87, .93, .99: gaps shrink by .03 down to .06
    assert checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(10) == [0, 3, 5, 6, 7, 8, 9]  # ceil(p x 10), merged, last step dropped
    assert checkpoints(1) == [0]


def halvings(losses: Tensor, rho: float = 0.75) -> tuple[list[list[int]], Tensor]:
    """Feed a loss trajectory (steps + 1, samples) to the schedule: per sample, the iterations
    where it halved the step (and restarted), and the final step sizes."""
    steps = len(losses) - 1
    schedule = StepSizeSchedule.start(1.0, losses[0], steps, rho)
    where: list[list[int]] = [[] for _ in range(losses.shape[1])]
    for iteration in range(1, steps + 1):
        before = schedule.step_size
        schedule, _, restart = schedule.observe(iteration, losses[iteration])
        assert torch.equal(schedule.step_size != before, restart)
        for column in restart.nonzero().flatten().tolist():
            where[column].append(iteration)
    return where, schedule.step_size


def test_step_size_halves_at_the_checkpoints_when_the_loss_stops_rising():
    steps = torch.arange(101.0)
    losses = torch.stack(
        [
            steps,  # rises every step: never halved
            torch.zeros(101),  # flat: no step raises it, halved at every checkpoint
            steps % 2,  # up, down, up...: half the steps raise it (< rho), halved every time
            torch.where(steps == 0, 10.0, steps / 1000),  # rises, but below its start: stuck
        ],
        dim=1,
    )
    where, final = halvings(losses)
    marks = [22, 41, 57, 70, 80, 87, 93, 99]
    assert where[0] == []
    assert where[1] == marks
    assert where[2] == marks
    # stuck: halved when neither the step size nor the best loss changed since the last check,
    # so every other checkpoint (the halving itself counts as a change)
    assert where[3] == marks[0::2]
    assert final.tolist() == [1.0, 2.0**-8, 2.0**-8, 2.0**-4]


def test_rho_sets_the_share_of_rising_steps_below_which_the_step_halves():
    # the loss rises at every step but the first of each window, and its best keeps rising:
    # (w - 1) / w of a window's steps raise it, 0.955 for the first window, 0.833 for the last
    marks = checkpoints(100)
    losses = torch.arange(101.0)
    losses[[mark + 1 for mark in marks]] -= 1.5
    assert halvings(losses[:, None], rho=0.75)[0] == [[]]
    # 9 / 10 at 80 is not below 0.9; 6 / 7 at 87 and 5 / 6 at 93 and 99 are
    assert halvings(losses[:, None], rho=0.9)[0] == [[87, 93, 99]]


# --- early stop, restarts, target runs ------------------------------------------------------


def test_early_stop_changes_the_work_not_the_outcome(model):
    # per-sample state (step size, counters, best point, momentum) follows each point when
    # the broken ones leave the batch: the survivors' trajectories are exactly the same
    x, y = sample(100)
    for name, eps, hyper in (("apgd-ce", EPS, {}), ("apgd-t-l2", L2_EPS, {"num_targets": 2})):
        runs = []
        for early_stop in (True, False):
            torch.manual_seed(0)
            attack = create_attack(name, steps=10, early_stop=early_stop, **hyper)
            runs.append(attack(model, x, y, eps=eps))
        with_stop, without = runs
        assert 0 < int(with_stop.success.sum()) < len(x)
        assert torch.equal(with_stop.success, without.success)
        assert torch.allclose(with_stop.x_adv, without.x_adv, atol=1e-6)


def test_restarts_and_target_runs_see_only_unbroken_points():
    model = Recording()
    x, y = tiny_batch(model)
    for name, runs, hyper in (
        ("apgd-ce", 3, {"restarts": 3}),
        ("apgd-t", 3, {"num_targets": 3}),
        ("apgd-t", 4, {"num_targets": 2, "restarts": 2}),
    ):
        model.sizes = []
        torch.manual_seed(0)
        result = create_attack(name, steps=5, **hyper)(model, x, y, eps=0.03)
        unbroken = int((~result.success).sum())
        assert 0 < unbroken < len(x)
        sizes = model.sizes
        # a clean pass and a final scoring pass on the whole batch; in between, runs of
        # steps + 1 passes over ever fewer points: no run takes back a broken point
        assert sizes[0] == sizes[-1] == len(x)
        between = sizes[1:-1]
        assert all(a >= b for a, b in itertools.pairwise(between))
        assert len(between) == runs * 6
        assert between[-1] == unbroken


def test_apgd_t_reaches_given_targets(model):
    x, y = sample(32)
    targets = (y + 1) % 10
    torch.manual_seed(0)
    result = create_attack("apgd-t", steps=50)(model, x, y, eps=0.5, targets=targets)
    assert torch.equal(result.success, result.adv_pred == targets)
    assert result.success.float().mean() >= 0.9


def test_apgd_t_without_targets_counts_any_misclassification(model):
    x, y = sample(100)
    torch.manual_seed(0)
    result = create_attack("apgd-t", steps=10, num_targets=3)(model, x, y, eps=EPS)
    assert torch.equal(result.success, result.adv_pred != y)
    assert 0 < int(result.success.sum()) < len(x)


def test_bad_hyper_parameters_are_refused():
    with pytest.raises(RobustkitError, match="steps must be >= 1"):
        create_attack("apgd-ce", steps=0)
    with pytest.raises(RobustkitError, match="eval_passes must be >= 1"):
        create_attack("apgd-ce", eval_passes=0)
    with pytest.raises(RobustkitError, match="rho"):
        create_attack("apgd-dlr", rho=0.0)
    with pytest.raises(RobustkitError, match="num_targets"):
        create_attack("apgd-t", num_targets=0)


# --- strength: against PGD and torchattacks -------------------------------------------------


def test_apgd_ce_is_at_least_as_strong_as_pgd_at_equal_steps(model):
    x, y = sample(300)
    apgd = ours(model, "apgd-ce", x, y, EPS, steps=20)
    pgd = ours(model, "pgd-linf", x, y, EPS, steps=20)
    assert apgd <= pgd


def torchattacks_robust_accuracy(
    model: nn.Module, name: str, x: Tensor, y: Tensor, eps: float, steps: int, num_targets: int = 9
) -> float:
    """torchattacks' APGD / APGDT robust accuracy with the matching loss, norm and targets."""
    norm = "L2" if name.endswith("-l2") else "Linf"
    if name.startswith("apgd-t"):
        # n_classes - 1 target runs, over the classes ranked 2nd, 3rd... by clean logit
        attack = torchattacks.APGDT(
            model, norm=norm, eps=eps, steps=steps, n_classes=num_targets + 1
        )
    else:
        loss = "dlr" if name.startswith("apgd-dlr") else "ce"
        attack = torchattacks.APGD(model, norm=norm, eps=eps, steps=steps, loss=loss)
    return robust_accuracy(model, attack(x, y), y)


@pytest.mark.parametrize(
    ("name", "steps", "hyper"),
    [
        ("apgd-ce", 20, {}),
        ("apgd-dlr", 20, {}),
        ("apgd-ce-l2", 20, {}),
        ("apgd-t", 10, {"num_targets": 3}),
    ],
)
def test_no_weaker_than_torchattacks(model, name, steps, hyper):
    # 500 images: at 20 steps the robust accuracy of either varies by about a point over seeds
    x, y = sample(500)
    eps = L2_EPS if name.endswith("-l2") else EPS
    mine = ours(model, name, x, y, eps, steps=steps, **hyper)
    theirs = torchattacks_robust_accuracy(model, name, x, y, eps, steps, **hyper)
    assert mine < 0.95  # the attack breaks points: the comparison means something
    assert mine <= theirs + TOLERANCE


@pytest.mark.slow
def test_apgd_matches_torchattacks_at_full_budget(model):
    """AutoAttack's budget: 100 steps at eps 0.3, on 200 images."""
    x, y = sample(200)
    for name in ("apgd-ce", "apgd-dlr"):
        mine = ours(model, name, x, y, EPS, steps=100)
        theirs = torchattacks_robust_accuracy(model, name, x, y, EPS, 100)
        assert mine <= theirs + TOLERANCE, name
