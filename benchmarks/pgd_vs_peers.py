"""PGD-40 L-inf wall time and robust accuracy: robustkit against a bare loop and its peers.

A Madry MNIST CNN (conv32-conv64-fc1024), trained for one epoch with Adam (cached under
benchmarks/cache/), is attacked on the first N MNIST test images with PGD-40, absolute step
0.01, no random start, at eps 0.1 and 0.3, by:

* ``floor``: a bare loop of forward + input-gradient + sign step + projection + clip;
* robustkit ``PGDLinf`` without and with early stop;
* torchattacks ``PGD``, foolbox ``LinfPGD`` and ART ``ProjectedGradientDescent``.

Every tool gets the same wrapped model (normalisation inside, parameters frozen so that tools
calling ``loss.backward()`` do not also pay for weight gradients), one warm-up call, and the
best of ``--repeats`` timed calls. Run: ``python benchmarks/pgd_vs_peers.py --data-root DIR``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from robustkit.attacks.peers import art_classifier
from robustkit.attacks.pgd import PGDLinf
from robustkit.models.architectures import MadryMnistCNN
from robustkit.models.wrapper import RobustModel

HERE = Path(__file__).resolve().parent
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)

AttackFn = Callable[[nn.Module, Tensor, Tensor, float], Tensor]


@dataclass(frozen=True)
class Config:
    """Shared attack settings."""

    steps: int
    stepsize: float


@dataclass(frozen=True)
class Row:
    """One tool at one eps: best wall time over the repeats and robust accuracy."""

    tool: str
    eps: float
    seconds: float
    robust_accuracy: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-root",
        default=os.environ.get("ROBUSTKIT_DATA"),
        help="folder holding MNIST/raw (default: $ROBUSTKIT_DATA)",
    )
    parser.add_argument("--num-images", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per tool (best kept)")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--stepsize", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=HERE / "cache")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "pgd_vs_peers.md")
    parser.add_argument(
        "--tools",
        nargs="+",
        default=None,
        choices=TOOLS,
        help="subset of tools to run (default: all)",
    )
    args = parser.parse_args(argv)
    if not args.data_root:
        parser.error("give --data-root or set ROBUSTKIT_DATA to a folder holding MNIST/raw")
    return args


def mnist_tensors(root: str, train: bool) -> tuple[Tensor, Tensor]:
    """All MNIST images of a split as (N, 1, 28, 28) floats in [0, 1] and int64 labels."""
    from torchvision.datasets import MNIST

    ds = MNIST(root, train=train, download=False)
    images = ds.data.float().div(255.0).unsqueeze(1)
    return images, ds.targets.long()


def train_model(root: str, seed: int, cache_dir: Path) -> RobustModel:
    """The Madry CNN after one epoch of Adam (lr 1e-3, batch 128); cached by seed."""
    cache = cache_dir / f"madry_mnist_cnn_adam1ep_seed{seed}.pt"
    torch.manual_seed(seed)
    net = MadryMnistCNN()
    if cache.is_file():
        net.load_state_dict(torch.load(cache, map_location="cpu", weights_only=True))
    else:
        print(f"training MadryMnistCNN for 1 epoch (seed {seed}); caching to {cache}")
        images, labels = mnist_tensors(root, train=True)
        model = RobustModel(net, mean=MNIST_MEAN, std=MNIST_STD, device="cpu")
        model.train()
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
        start = time.perf_counter()
        for i in range(0, len(images), 128):
            idx = order[i : i + 128]
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        print(f"trained in {time.perf_counter() - start:.0f} s")
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), cache)
    model = RobustModel(
        net,
        mean=MNIST_MEAN,
        std=MNIST_STD,
        input_shape=(1, 28, 28),
        num_classes=10,
        name="madry-mnist-cnn",
        device="cpu",
    )
    model.requires_grad_(False)
    return model.eval()


# --- the tools --------------------------------------------------------------------------------


def floor_attack(cfg: Config) -> AttackFn:
    """The bare loop every L-inf PGD has to run: no bookkeeping at all."""

    def run(model: nn.Module, x: Tensor, y: Tensor, eps: float) -> Tensor:
        x_adv = x.clone()
        for _ in range(cfg.steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
            with torch.no_grad():
                x_adv = x_adv + cfg.stepsize * grad.sign()
                x_adv = torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp(0.0, 1.0)
        return x_adv

    return run


def robustkit_attack(cfg: Config, early_stop: bool) -> AttackFn:
    """robustkit's PGDLinf with a fixed absolute step and no random start."""
    attack = PGDLinf(
        steps=cfg.steps, abs_stepsize=cfg.stepsize, random_start=False, early_stop=early_stop
    )

    def run(model: nn.Module, x: Tensor, y: Tensor, eps: float) -> Tensor:
        return attack(model, x, y, eps=eps).x_adv

    return run


def torchattacks_attack(cfg: Config) -> AttackFn:
    """torchattacks.PGD (a new attack object per eps, as its API requires)."""
    import torchattacks

    def run(model: nn.Module, x: Tensor, y: Tensor, eps: float) -> Tensor:
        atk = torchattacks.PGD(
            model, eps=eps, alpha=cfg.stepsize, steps=cfg.steps, random_start=False
        )
        return atk(x, y)

    return run


def foolbox_attack(cfg: Config) -> AttackFn:
    """foolbox LinfPGD with an absolute step size."""
    import foolbox as fb

    attack = fb.attacks.LinfPGD(abs_stepsize=cfg.stepsize, steps=cfg.steps, random_start=False)

    def run(model: nn.Module, x: Tensor, y: Tensor, eps: float) -> Tensor:
        fmodel = fb.PyTorchModel(model, bounds=(0.0, 1.0))
        _, clipped, _ = attack(fmodel, x, y, epsilons=eps)
        return clipped

    return run


def art_attack(cfg: Config, batch_size: int) -> AttackFn:
    """ART ProjectedGradientDescent (PyTorch implementation) on a PyTorchClassifier."""
    from art.attacks.evasion import ProjectedGradientDescent

    def run(model: nn.Module, x: Tensor, y: Tensor, eps: float) -> Tensor:
        classifier = art_classifier(model, x)
        attack = ProjectedGradientDescent(
            classifier,
            norm=np.inf,
            eps=eps,
            eps_step=cfg.stepsize,
            max_iter=cfg.steps,
            num_random_init=0,
            batch_size=batch_size,
            verbose=False,
        )
        return torch.from_numpy(attack.generate(x=x.numpy(), y=y.numpy()))

    return run


TOOLS = (
    "floor",
    "robustkit (no early stop)",
    "robustkit (early stop)",
    "torchattacks",
    "foolbox",
    "art",
)


def make_tools(cfg: Config, batch_size: int) -> dict[str, AttackFn]:
    """Each tool by its name in the table."""
    return {
        "floor": floor_attack(cfg),
        "robustkit (no early stop)": robustkit_attack(cfg, early_stop=False),
        "robustkit (early stop)": robustkit_attack(cfg, early_stop=True),
        "torchattacks": torchattacks_attack(cfg),
        "foolbox": foolbox_attack(cfg),
        "art": art_attack(cfg, batch_size),
    }


# --- measuring --------------------------------------------------------------------------------


def robust_accuracy(model: nn.Module, x_adv: Tensor, y: Tensor, x: Tensor, eps: float) -> float:
    """Share of points still classified correctly (after checking the budget was kept)."""
    x_adv = x_adv.detach().to(x.dtype)
    excess = (x_adv - x).abs().max().item() - eps
    if excess > 1e-5 or x_adv.min() < 0 or x_adv.max() > 1:
        raise AssertionError(f"adversarials leave the eps-ball or the bounds ({excess:.2g})")
    with torch.no_grad():
        return (model(x_adv).argmax(dim=1) == y).float().mean().item()


def measure_all(
    tools: dict[str, AttackFn], model: nn.Module, x: Tensor, y: Tensor, eps: float, repeats: int
) -> list[Row]:
    """Warm every tool up on a few images, then time full calls round-robin (so that load from
    elsewhere hits all tools alike) and keep each tool's best."""
    for fn in tools.values():
        fn(model, x[:32], y[:32], eps)
    best = dict.fromkeys(tools, float("inf"))
    accuracy = {}
    for _ in range(repeats):
        for name, fn in tools.items():
            start = time.perf_counter()
            x_adv = fn(model, x, y, eps)
            best[name] = min(best[name], time.perf_counter() - start)
            accuracy[name] = robust_accuracy(model, x_adv, y, x, eps)
            print(f"eps {eps:g}  {name:27s} {best[name]:7.2f} s  {accuracy[name]:.1%}", flush=True)
    return [Row(name, eps, best[name], accuracy[name]) for name in tools]


def ratio(rows: list[Row], num: str, den: str, eps: float) -> float:
    """Wall-time ratio of two tools at one eps."""
    times = {r.tool: r.seconds for r in rows if r.eps == eps}
    return times[num] / times[den]


def markdown(rows: list[Row], args: argparse.Namespace, clean_acc: float) -> str:
    """The results as a Markdown report."""
    lines = [
        "# PGD-40 L-inf: robustkit vs a bare loop and its peers",
        "",
        f"MadryMnistCNN (1 epoch Adam, seed {args.seed}; clean accuracy {clean_acc:.1%} on the "
        f"{args.num_images} images), first {args.num_images} MNIST test images in one batch, "
        f"{args.steps} steps of {args.stepsize:g}, no random start, "
        f"torch {torch.__version__} on {args.threads} CPU threads ({platform.processor() or '?'})"
        f", best of {args.repeats} after a warm-up.",
        "",
        "| tool | eps | wall time (s) | x floor | robust accuracy |",
        "|---|---:|---:|---:|---:|",
    ]
    floors = {r.eps: r.seconds for r in rows if r.tool == "floor"}
    for r in rows:
        vs_floor = f"{r.seconds / floors[r.eps]:.3f}" if r.eps in floors else "-"
        lines.append(
            f"| {r.tool} | {r.eps:g} | {r.seconds:.2f} | {vs_floor} | {r.robust_accuracy:.1%} |"
        )
    targets = [
        ("robustkit (no early stop)", "floor", None, 1.03),
        ("robustkit (early stop)", "torchattacks", 0.3, 0.35),
        ("robustkit (early stop)", "torchattacks", 0.1, 0.75),
    ]
    lines += ["", "| ratio | eps | value | target | met |", "|---|---:|---:|---:|---|"]
    tools = {r.tool for r in rows}
    for num, den, at, target in targets:
        if num not in tools or den not in tools:
            continue
        for eps in args.eps if at is None else [at]:
            if eps not in args.eps:
                continue
            value = ratio(rows, num, den, eps)
            met = "yes" if value <= target else "**no**"
            lines.append(f"| {num} / {den} | {eps:g} | {value:.3f} | <= {target:g} | {met} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Train or load the model, run every tool at every eps, print and save the table."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = train_model(args.data_root, args.seed, args.cache_dir)
    images, labels = mnist_tensors(args.data_root, train=False)
    x, y = images[: args.num_images].contiguous(), labels[: args.num_images].contiguous()
    with torch.no_grad():
        clean_acc = (model(x).argmax(dim=1) == y).float().mean().item()
    print(f"clean accuracy {clean_acc:.1%} on {len(x)} images")
    cfg = Config(steps=args.steps, stepsize=args.stepsize)
    every = make_tools(cfg, batch_size=args.num_images)
    tools = {name: every[name] for name in args.tools or TOOLS}
    rows = []
    for eps in args.eps:
        rows += measure_all(tools, model, x, y, eps, args.repeats)
    report = markdown(rows, args, clean_acc)
    print()
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
