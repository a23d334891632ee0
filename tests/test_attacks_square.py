"""Square Attack: gradient-free, early stop inside every iteration, the ball's geometry, the
paper's schedule and pseudo-Gaussian squares, and robust accuracy against torchattacks.Square."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator

import pytest
import torch
import torchattacks
from torch import Tensor, nn

from robustkit.attacks import SquareL2, SquareLinf, create_attack
from robustkit.attacks.square import pseudo_gaussian, square_share
from robustkit.data import load_dataset
from robustkit.errors import RobustkitError
from robustkit.models import load_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: these models are tiny, and on a shared machine extra threads only
    contend (tens of times slower here); the previous setting comes back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mnist() -> tuple[Tensor, Tensor]:
    """The 1000 bundled MNIST test images and labels."""
    dataset = load_dataset("mnist-sample").dataset
    x = torch.stack([dataset[i][0] for i in range(len(dataset))])
    y = torch.tensor([int(dataset[i][1]) for i in range(len(dataset))])
    return x, y


@pytest.fixture(scope="module")
def small(mnist: tuple[Tensor, Tensor]) -> tuple[nn.Module, Tensor, Tensor]:
    """A one-hidden-layer MLP trained for half a second on 800 bundled images (~90% accurate),
    with 128 held-out images it classifies correctly."""
    x, y = mnist
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    params = list(net.parameters())
    for _ in range(100):  # plain full-batch gradient descent (torch.optim's import is slow)
        loss = nn.functional.cross_entropy(net(x[:800]), y[:800])
        with torch.no_grad():
            for param, grad in zip(params, torch.autograd.grad(loss, params), strict=True):
                param -= 0.5 * grad
    net.eval().requires_grad_(False)
    with torch.no_grad():
        correct = net(x[800:]).argmax(dim=1) == y[800:]
    assert correct.float().mean() > 0.8
    return net, x[800:][correct][:128].contiguous(), y[800:][correct][:128].contiguous()


class Quantised(nn.Module):
    """The small model behind an 8-bit rounding of its input: torch.round has a zero
    derivative, so every input gradient is zero (masked gradients) while the logits are
    unchanged on the bundled 8-bit images."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(torch.round(x * 255) / 255)


class _NoBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx: object, logits: Tensor) -> Tensor:
        return logits.clone()

    @staticmethod
    def backward(ctx: object, grad: Tensor) -> Tensor:
        raise RuntimeError("the Square Attack must never ask for a gradient")


class Watched(nn.Module):
    """The small model behind a layer whose backward raises; records the grad mode of every
    forward and, per forward, the batch size and how many rows are not predicted as class 0."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.grad_modes: list[bool] = []
        self.calls: list[tuple[int, int]] = []

    def forward(self, x: Tensor) -> Tensor:
        self.grad_modes.append(torch.is_grad_enabled() or x.requires_grad)
        logits = _NoBackward.apply(self.net(x))
        self.calls.append((len(x), int((logits.argmax(dim=1) != 0).sum())))
        return logits


class Unfoolable(nn.Module):
    """Always predicts class 0, whatever the input: nothing can be broken."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the model a device
        self.seen = 0

    def forward(self, x: Tensor) -> Tensor:
        self.seen += len(x)
        logits = torch.zeros(len(x), 3)
        logits[:, 0] = 1.0
        return logits


class AlwaysZero(nn.Module):
    """Predicts class 0 by a wide margin whose size still depends on the input, so a search
    keeps finding improvements but never breaks a point; counts the improvements it sees."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.best: Tensor | None = None
        self.improvements = 0

    def forward(self, x: Tensor) -> Tensor:
        logits = self.net(x)
        margin = logits.amax(dim=1)
        if self.best is not None and len(margin) == len(self.best):
            self.improvements += int((margin > self.best).sum())
        self.best = margin if self.best is None else torch.maximum(self.best, margin)
        return torch.cat([torch.full_like(logits[:, :1], 1e4), logits], dim=1)


class Detached(nn.Module):
    """The small model, returning logits cut from the graph: no gradient can flow back."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).detach()


@pytest.mark.parametrize("wrapper", [Watched, Detached])
@pytest.mark.parametrize("name", ["square", "square-l2"])
def test_never_asks_for_a_gradient(small, name, wrapper):
    net, x, y = small
    # parameters that require grad, behind a backward that raises or a detached output
    model = wrapper(copy.deepcopy(net).requires_grad_(True))
    with pytest.raises(RuntimeError):  # the trap works: a gradient attack falls into it
        create_attack("pgd-linf", steps=1)(model, x[:4], y[:4], eps=0.1)
    model = wrapper(copy.deepcopy(net).requires_grad_(True))
    torch.manual_seed(0)
    eps = 0.15 if name == "square" else 2.0
    result = create_attack(name, queries=50)(model, x[:32], y[:32], eps=eps)
    assert result.success.any()
    assert not any(getattr(model, "grad_modes", []))  # every forward ran without autograd


@pytest.mark.parametrize("restarts", [1, 2])
def test_each_forward_runs_only_on_points_still_unbroken(small, restarts):
    net, x, y = small
    model = Watched(net)
    x0 = x[y == 0][:8]
    labels = torch.zeros(len(x0), dtype=torch.long)
    torch.manual_seed(0)
    result = SquareLinf(queries=60, restarts=restarts)(model, x0, labels, eps=0.25)
    search = model.calls  # no scoring forward after the search: its predictions are kept
    assert search[0][0] == len(x0)
    assert result.queries is not None and int(result.queries.sum()) == sum(n for n, _ in search)
    assert int(result.queries.max()) <= restarts * 60
    # a point broken by a forward is gone from the next one, across restarts too
    for (size, broken), (next_size, _) in itertools.pairwise(search):
        assert next_size == size - broken
    assert len(search) <= restarts * 60
    assert 0 < int(result.success.sum()) < len(x0)  # some broke mid-search, some never did


@pytest.mark.parametrize("loss", ["margin", "ce"])
def test_targeted_search_aims_at_the_target(small, loss):
    net, x, y = small
    targets = (y[:32] + 1) % 10
    torch.manual_seed(0)
    result = SquareLinf(queries=200, loss=loss)(net, x[:32], y[:32], eps=0.3, targets=targets)
    assert torch.equal(result.success, result.adv_pred == targets)
    assert result.success.float().mean() > 0.3


def test_hyper_parameters_are_checked():
    assert not SquareLinf.iterative  # an audit's --steps must not overwrite the query budget
    for bad in (
        {"queries": 0},
        {"restarts": 0},
        {"p_init": 0.0},
        {"p_init": 1.5},
        {"loss": "x"},
        {"race": ((0.5, 0.0),)},
        {"race_max_broken": 1.5},
    ):
        with pytest.raises(RobustkitError):
            SquareLinf(**bad)


@pytest.mark.parametrize("name", ["square", "square-l2"])
def test_spends_exactly_the_budget_on_unbreakable_points(name):
    model = Unfoolable()
    x = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(4, dtype=torch.long)
    result = create_attack(name, queries=30, restarts=3)(model, x, y, eps=0.5)
    assert not result.success.any()
    assert model.seen == 3 * 30 * len(x)  # every restart's queries, and no scoring pass after
    assert result.queries is not None and result.queries.tolist() == [3 * 30] * len(x)


class Brightness(nn.Module):
    """Predicts class 0 by a margin that never closes; the runner-up's logit is the image's mean
    pixel, so the brighter the image, the higher the attack's objective. Records the mean pixel
    of every image it is asked about, call by call."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))
        self.calls: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        mean = x.flatten(1).mean(dim=1)
        self.calls.append(mean)
        return torch.stack([torch.full_like(mean, 100.0), mean, torch.zeros_like(mean)], dim=1)


def test_race_keeps_searching_only_the_points_closest_to_breaking():
    model = Brightness()
    brightness = 0.05 + 0.1 * torch.arange(8.0)  # 0.1 apart: a 0.01 ball cannot reorder them
    x = brightness.view(8, 1, 1, 1).expand(8, 1, 6, 6).contiguous()
    y = torch.zeros(8, dtype=torch.long)
    attack = SquareLinf(queries=100, race=((0.1, 0.5), (0.5, 0.25)))
    torch.manual_seed(0)
    result = attack(model, x, y, eps=0.01)
    search = model.calls
    # queries 0-10 on all 8 points, 11-50 on the 4 brightest, 51-99 on the 2 brightest
    assert [len(call) for call in search] == [8] * 11 + [4] * 40 + [2] * 49
    assert torch.allclose(search[-1].sort().values, brightness[-2:], atol=0.011)
    assert torch.allclose(search[20].sort().values, brightness[-4:], atol=0.011)
    assert not result.success.any()
    assert result.queries is not None  # the points that left early spent only what they asked
    assert sorted(result.queries.tolist()) == [11] * 4 + [51] * 2 + [100] * 2
    assert (result.x_adv - x).abs().amax() <= 0.01 + 1e-6  # points that left keep their best
    with pytest.raises(RobustkitError, match="race"):
        SquareLinf(race=((1.0, 0.5),))


class BreaksOnCall(Brightness):
    """Brightness, except that the first image of call ``call`` is classified as class 1."""

    def __init__(self, call: int) -> None:
        super().__init__()
        self.call = call

    def forward(self, x: Tensor) -> Tensor:
        logits = super().forward(x)
        if len(self.calls) - 1 == self.call:
            logits[0, 1] = 1000.0
        return logits


@pytest.mark.parametrize("name", ["square", "square-l2"])
@pytest.mark.parametrize(("max_broken", "after"), [(0.2, 4), (0.1, 7)])
def test_race_cut_on_the_query_that_breaks_a_point(name, max_broken, after):
    model = BreaksOnCall(call=10)  # the query after which the race narrows
    x = (0.05 + 0.1 * torch.arange(8.0)).view(8, 1, 1, 1).expand(8, 1, 6, 6).contiguous()
    torch.manual_seed(0)
    race = ((1 / 3, 0.5),)
    attack = create_attack(name, queries=30, race=race, race_max_broken=max_broken)
    result = attack(model, x, torch.zeros(8, dtype=torch.long), eps=0.01)
    sizes = [len(call) for call in model.calls]  # no scoring pass after the search
    # one point of 8 broke on query 10; the race keeps 4 of the other 7, unless 1 in 8 broken
    # is already more than race_max_broken: then Square is breaking points, and none is cut
    assert sizes == [8] * 11 + [after] * 19
    # fooled on call 10 only: judged as the search saw it, at the query that broke it
    assert int(result.success.sum()) == 1
    assert result.success.sum() == (result.adv_pred != 0).sum()
    assert result.queries is not None and int(result.queries[result.success].item()) == 11


def test_linf_points_sit_on_the_ball_corners(small):
    net, x, y = small
    torch.manual_seed(0)
    eps = 0.08
    result = SquareLinf(queries=100)(net, x, y, eps=eps)
    high, low = (x + eps).clamp(0, 1), (x - eps).clamp(0, 1)
    assert ((result.x_adv == high) | (result.x_adv == low)).all()
    assert (result.x_adv - x).abs().max() <= eps + 1e-6
    assert result.success.any() and not result.success.all()


def test_l2_search_keeps_the_norm_at_eps_when_nothing_clips(small):
    net, _, _ = small
    x = 0.4 + 0.2 * torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(16, dtype=torch.long)
    model = AlwaysZero(net)
    torch.manual_seed(0)
    result = SquareL2(queries=300)(model, x, y, eps=0.5)
    assert model.improvements > 0  # the search moved, not just its start
    assert result.x_adv.min() > 0 and result.x_adv.max() < 1  # nothing was clipped
    norms = (result.x_adv - x).flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.full_like(norms, 0.5), rtol=0, atol=1e-5)


def test_l2_stays_within_eps_on_clipped_images(small):
    net, x, y = small
    torch.manual_seed(0)
    eps = 2.0
    result = SquareL2(queries=100)(net, x, y, eps=eps)
    norms = (result.x_adv - x).flatten(1).norm(dim=1)
    assert norms.max() <= eps + 1e-5
    assert norms.min() > 0.6 * eps  # clipping on the black background loses part of the budget
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    assert result.success.any() and not result.success.all()


def test_breaks_a_model_whose_gradients_are_masked(small):
    net, x, y = small
    model = Quantised(net)
    x, y = x[:64], y[:64]
    torch.manual_seed(0)
    pgd = create_attack("pgd-linf", steps=20)(model, x, y, eps=0.15)
    torch.manual_seed(0)
    square = SquareLinf(queries=200)(model, x, y, eps=0.15)
    torch.manual_seed(0)
    unmasked = create_attack("pgd-linf", steps=20)(net, x, y, eps=0.15)
    assert unmasked.success.float().mean() > 0.9  # the points are not robust...
    assert pgd.success.float().mean() < 0.1  # ...but zero gradients leave PGD at its start
    assert square.success.float().mean() > 0.4
    with torch.no_grad():
        assert torch.equal(model(square.x_adv).argmax(dim=1), square.adv_pred)


def test_schedule_matches_torchattacks(small):
    net, _, _ = small
    for queries in (100, 1000, 5000, 10_000):
        reference = torchattacks.Square(net, n_queries=queries, p_init=0.8)
        for iteration in range(queries):
            assert square_share(0.8, iteration, queries) == reference.p_selection(iteration)


def test_pseudo_gaussian_matches_torchattacks(small):
    net, _, _ = small
    reference = torchattacks.Square(net, norm="L2")
    reference.device = CPU
    for side in (1, 2, 3, 5, 8, 25):
        expected = reference.eta(side)  # transposed at random: compare with either orientation
        ours = pseudo_gaussian(side, CPU, torch.float32)
        assert torch.allclose(ours, expected, atol=1e-6) or torch.allclose(
            ours.T, expected, atol=1e-6
        )
        assert ours.norm() == pytest.approx(1.0)
        if side > 1:  # a positive blob over a negative one
            assert ours[: side // 2].min() > 0 and ours[side // 2 :].max() < 0


def torchattacks_robust_accuracy(
    model: nn.Module, x: Tensor, y: Tensor, norm: str, eps: float, queries: int, seed: int = 0
) -> float:
    """torchattacks.Square's robust accuracy (it reseeds the global RNG with ``seed``)."""
    attack = torchattacks.Square(
        model, norm="Linf" if norm == "linf" else "L2", eps=eps, n_queries=queries, seed=seed
    )
    adv = attack(x, y)
    with torch.no_grad():
        return (model(adv).argmax(dim=1) == y).float().mean().item()


@pytest.mark.parametrize(
    ("name", "norm", "eps", "tolerance"),
    [("square", "linf", 0.12, 0.01), ("square-l2", "l2", 2.0, 0.03)],
)
def test_robust_accuracy_no_higher_than_torchattacks(small, name, norm, eps, tolerance):
    """Same model, images, budget and 200 queries, three seeds each (384 attacked points).

    L-inf: our search draws again when a square would change nothing (the authors' code
    does; torchattacks spends the query), which makes it about 3 points stronger here, so we
    allow only 1 point. L2 is the same algorithm: over 20 seeds the two agree to 0.4 points,
    and the difference of two three-seed means has a standard deviation of about 1.3 points;
    we allow 3 (the seeds are fixed, so the test is deterministic)."""
    net, x, y = small
    ours, theirs = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        result = create_attack(name, queries=200)(net, x, y, eps=eps)
        ours.append(1 - result.success.float().mean().item())
        theirs.append(torchattacks_robust_accuracy(net, x, y, norm, eps, 200, seed))
    assert 0.3 < sum(theirs) / 3 < 0.9  # a budget where the comparison means something
    assert sum(ours) / 3 <= sum(theirs) / 3 + tolerance


@pytest.mark.slow
def test_robust_model_matches_torchattacks(mnist):
    """End to end on the PGD-trained bundled model at its training budget (eps 0.3)."""
    model = load_model("zoo:mnist-robust", device="cpu")
    x, y = mnist[0][:100], mnist[1][:100]
    torch.manual_seed(0)
    result = create_attack("square", queries=300)(model, x, y, eps=0.3)
    ours = 1 - result.success.float().mean().item()
    theirs = torchattacks_robust_accuracy(model, x, y, "linf", 0.3, 300)
    assert ours > 0.5  # the model is robust: random search alone cannot break most points
    assert ours <= theirs + 0.03  # 100 images: 3 points of seed-to-seed noise
