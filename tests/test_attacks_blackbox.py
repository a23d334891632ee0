"""Query-based attacks (NES, HopSkipJump, RayS, Square): the per-point budget is honoured to
the row, the queries reported are those forwarded up to the first adversarial within eps, a
broken point stops querying, and the attacks work through the model's scores or labels alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor, nn

from robustkit.attacks import attack_class, create_attack
from robustkit.attacks.base import perturbation_norm
from robustkit.attacks.queries import Oracle, QueryBudgetError
from robustkit.attacks.runs import Points
from robustkit.data import load_dataset
from robustkit.errors import RobustkitError
from robustkit.models import load_model
from robustkit.models.access import LabelsOnly, ScoresOnly

ORACLE = ["nes-linf", "nes-l2", "hsj-l2", "hsj-linf", "rays-linf"]
QUERY = [*ORACLE, "square", "square-l2"]
# per norm, a budget where the tiny model's points break within a few hundred queries
EPS = {"linf": 0.1, "l2": 0.6}
BUDGET = 120


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models: extra intra-op threads only contend on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Recorder(nn.Module):
    """A model that records every forward: the rows, and whether autograd was on."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.calls: list[Tensor] = []
        self.grad_modes: list[bool] = []

    @property
    def rows(self) -> int:
        return sum(len(call) for call in self.calls)

    def forward(self, x: Tensor) -> Tensor:
        self.calls.append(x.detach().clone())
        self.grad_modes.append(torch.is_grad_enabled() or x.requires_grad)
        return self.net(x)


@pytest.fixture(scope="module")
def tiny() -> tuple[nn.Module, Tensor, Tensor]:
    """A random linear classifier of 3 x 8 x 8 images into 5 classes, with 12 inputs labelled
    as it classifies them."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5)).requires_grad_(False)
    x = torch.rand(12, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = net(x).argmax(dim=1)
    return net, x, y


@pytest.fixture(scope="module")
def mnist() -> tuple[nn.Module, Tensor, Tensor]:
    """zoo:mnist-cnn and 8 bundled MNIST test images it classifies correctly."""
    model = load_model("zoo:mnist-cnn", device="cpu")
    dataset = load_dataset("mnist-sample").dataset
    x = torch.stack([dataset[i][0] for i in range(16)])
    y = torch.tensor([int(dataset[i][1]) for i in range(16)])
    with torch.no_grad():
        correct = model(x).argmax(dim=1) == y
    return model, x[correct][:8], y[correct][:8]


def make(name: str, budget: int) -> object:
    budget_field = "queries" if name.startswith("square") else "max_queries"
    return create_attack(name, **{budget_field: budget})


def within(x_adv: Tensor, x: Tensor, norm: str, eps: float) -> Tensor:
    return perturbation_norm(x_adv - x, norm) <= eps * (1 + 1e-5) + 1e-6


@pytest.mark.parametrize("name", QUERY)
def test_queries_add_up_to_the_rows_forwarded_and_never_pass_the_budget(tiny, name):
    net, x, y = tiny
    model = Recorder(net)
    attack = make(name, BUDGET)
    eps = EPS[attack.norm]
    torch.manual_seed(0)
    result = attack(model, x, y, eps=eps)
    assert result.queries is not None and result.queries.dtype == torch.long
    assert int(result.queries.sum()) == model.rows  # no forward uncounted, none beyond
    assert int(result.queries.max()) <= BUDGET
    assert bool(result.success.any())
    broken = result.success
    with torch.no_grad():  # really misclassified, really within eps
        assert bool((net(result.x_adv[broken]).argmax(dim=1) != y[broken]).all())
    assert bool(within(result.x_adv, x, attack.norm, eps).all())


@pytest.mark.parametrize("name", ORACLE)
def test_a_point_spends_every_query_then_stops(tiny, name):
    net, x, y = tiny
    model = Recorder(net)
    torch.manual_seed(0)
    result = make(name, 50)(model, x, y, eps=1e-4)  # too small a ball: nothing breaks
    assert not bool(result.success.any())
    assert int(result.queries.sum()) == model.rows
    # every point gets near its budget (a round may need more than the last few queries)
    assert bool((result.queries <= 50).all()) and bool((result.queries >= 40).all())


def first_hit(calls: list[Tensor], net: nn.Module, x0: Tensor, y: Tensor, norm: str, eps: float):
    """Rows forwarded up to and including the first call holding an adversarial within eps
    (one point attacked), or None."""
    rows = 0
    for call in calls:
        rows += len(call)
        with torch.no_grad():
            fooled = net(call).argmax(dim=1) != y
        if bool((fooled & within(call, x0.expand_as(call), norm, eps)).any()):
            return rows
    return None


@pytest.mark.parametrize("name", QUERY)
def test_queries_stop_at_the_first_adversarial_within_eps(tiny, name):
    net, x, y = tiny
    broken = 0
    for i in range(4):  # one point at a time: every row forwarded is that point's
        model = Recorder(net)
        attack = make(name, 300)
        eps = EPS[attack.norm]
        torch.manual_seed(i)
        result = attack(model, x[i : i + 1], y[i : i + 1], eps=eps)
        expected = first_hit(model.calls, net, x[i : i + 1], y[i : i + 1], attack.norm, eps)
        if expected is None:
            assert not bool(result.success[0]) and int(result.queries[0]) == model.rows
            continue
        broken += 1
        assert bool(result.success[0])
        assert int(result.queries[0]) == expected == model.rows  # and nothing after it
    assert broken >= 2


@pytest.mark.parametrize("name", QUERY)
def test_a_misclassified_point_costs_one_query(tiny, name):
    net, x, y = tiny
    wrong = y.clone()
    wrong[0] = (y[0] + 1) % 5  # the model already disagrees with this label
    model = Recorder(net)
    torch.manual_seed(0)
    attack = make(name, BUDGET)
    result = attack(model, x, wrong, eps=EPS[attack.norm])
    assert bool(result.success[0]) and int(result.queries[0]) == 1
    assert int(result.queries.sum()) == model.rows


@pytest.mark.parametrize("name", ["nes-linf", "nes-l2", "square", "square-l2"])
def test_score_attacks_need_only_detached_scores(tiny, name):
    net, x, y = tiny
    model = Recorder(ScoresOnly(net.requires_grad_(True)))
    try:
        torch.manual_seed(0)
        attack = make(name, BUDGET)
        with torch.no_grad():  # no autograd anywhere: a gradient attack would fail here
            result = attack(model, x, y, eps=EPS[attack.norm])
    finally:
        net.requires_grad_(False)
    assert bool(result.success.any())
    assert not any(model.grad_modes)


@pytest.mark.parametrize("name", ["hsj-l2", "hsj-linf", "rays-linf"])
def test_label_attacks_break_mnist_through_one_hot_labels(mnist, name):
    model, x, y = mnist
    eps = 0.3 if name.endswith("linf") else 3.0
    torch.manual_seed(0)
    attack = create_attack(name, max_queries=1000)
    with torch.no_grad():
        result = attack(LabelsOnly(model), x, y, eps=eps)
    assert int(result.success.sum()) >= 2
    with torch.no_grad():  # the real model agrees: misclassified, and within eps
        assert bool((model(result.x_adv[result.success]).argmax(dim=1) != y[result.success]).all())
    assert bool(within(result.x_adv, x, attack.norm, eps).all())
    assert bool((result.queries <= 1000).all())


def test_targeted_attacks_reach_their_target(tiny):
    net, x, y = tiny
    targets = (y + 1) % 5
    for name in ("nes-linf", "rays-linf"):
        torch.manual_seed(0)
        result = make(name, 300)(net, x, y, eps=0.2, targets=targets)
        assert bool(result.success.any())
        with torch.no_grad():
            pred = net(result.x_adv).argmax(dim=1)
        assert torch.equal(result.success, pred == targets)


def test_the_oracle_refuses_to_pass_a_budget(tiny):
    net, x, y = tiny
    oracle = Oracle(net, Points(x0=x[:2], labels=y[:2]), eps=0.1, norm="linf", budget=3)
    oracle.clean_check()
    oracle.ask(torch.tensor([0, 0, 1]), x[[0, 0, 1]])
    assert oracle.spent.tolist() == [3, 2]
    with pytest.raises(QueryBudgetError):
        oracle.ask(torch.tensor([0]), x[:1])
    assert oracle.spent.tolist() == [3, 2]  # a refused request forwards nothing


@pytest.mark.parametrize("name", ORACLE)
def test_bad_hyper_parameters_are_refused(name):
    with pytest.raises(RobustkitError, match="max_queries"):
        create_attack(name, max_queries=0)
    cls = attack_class(name)
    assert cls.gradient_free and cls.access in ("scores", "labels")
