"""A 5 x 5 transferability matrix on MNIST, and what it costs against its parts.

Targets: three small networks (the bundled ``zoo:mnist-cnn``, an MLP and a LeNet-style CNN,
the last two trained here for one epoch and cached under benchmarks/cache/), logistic
regression and kNN (scikit-learn, trained on 5,000 training images). Sources: the three
networks, logistic regression (gradients from ART) and the ensemble of the three networks
(loss mode); kNN has no gradients, so it is a target only, like the ensemble row of
Papernot et al.'s figure is a source only.

The whole ``transfer_matrix`` call is timed against the sum of its parts measured one by one:
crafting each source's adversarials once, and each target classifying the clean images plus
every source's adversarials once. The target is a ratio within 1.1x. Wall time and process CPU
time are both reported: on a shared machine the CPU-time ratio is the one to trust. The heatmap
and tables go to benchmarks/out/. Run: ``python benchmarks/transfer_matrix.py --data-root DIR``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from robustkit.attacks import Attack, create_attack
from robustkit.data import load_dataset
from robustkit.models import RobustModel, load_zoo_model
from robustkit.models.ensemble import Ensemble
from robustkit.transfer.matrix import data_tensors, transfer_matrix
from robustkit.transfer.sklearn_targets import train_sklearn_model

HERE = Path(__file__).resolve().parent
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=None, help="default: $ROBUSTKIT_DATA")
    parser.add_argument("--images", type=int, default=1000, help="MNIST test images")
    parser.add_argument("--train-images", type=int, default=5000, help="scikit-learn training")
    parser.add_argument("--attack", default="mi-fgsm")
    parser.add_argument("--eps", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    return parser.parse_args(argv)


def small_nets() -> dict[str, nn.Module]:
    """The two trained-here architectures, untrained."""
    return {
        "mlp": nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)),
        "lenet": nn.Sequential(
            nn.Conv2d(1, 8, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 4 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        ),
    }


def trained(name: str, net: nn.Module, x: Tensor, y: Tensor) -> RobustModel:
    """One epoch of Adam on the training images, cached by name."""
    model = RobustModel(
        net,
        mean=MNIST_MEAN,
        std=MNIST_STD,
        input_shape=(1, 28, 28),
        num_classes=10,
        name=name,
        device="cpu",
    )
    cache = HERE / "cache" / f"transfer_{name}_1ep_seed0.pt"
    if cache.is_file():
        net.load_state_dict(torch.load(cache, weights_only=True))
        return model.eval()
    torch.manual_seed(0)
    model.train()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    for idx in torch.randperm(len(x)).split(64):
        optimiser.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        optimiser.step()
    cache.parent.mkdir(exist_ok=True)
    torch.save(net.state_dict(), cache)
    return model.eval()


class Clock:
    """Wall and process CPU seconds since construction."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def parts(
    sources: dict[str, nn.Module],
    targets: dict[str, nn.Module],
    attack: Attack,
    x: Tensor,
    y: Tensor,
    eps: float,
    batch_size: int,
) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]]]:
    """(wall, CPU) seconds to craft each source's adversarials once and to evaluate each
    target once."""
    craft, evaluate, adversarials = {}, {}, []
    for name, model in sources.items():
        torch.manual_seed(0)
        clock = Clock()
        adversarials.append(
            torch.cat(
                [
                    attack(model, x[i : i + batch_size], y[i : i + batch_size], eps=eps).x_adv
                    for i in range(0, len(x), batch_size)
                ]
            )
        )
        craft[name] = clock.read()
    replay = torch.cat([x, *adversarials])
    for name, model in targets.items():
        clock = Clock()
        with torch.no_grad():
            for i in range(0, len(replay), batch_size):
                model(replay[i : i + batch_size]).argmax(dim=1)
        evaluate[name] = clock.read()
    return craft, evaluate


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    root = args.data_root
    train = data_tensors(load_dataset("mnist", root=root, train=True, num_samples=20000, seed=0))
    x, y = data_tensors(load_dataset("mnist", root=root, num_samples=args.images, seed=0))

    tick = time.perf_counter()
    nets: dict[str, nn.Module] = {"mnist-cnn": load_zoo_model("mnist-cnn", device="cpu")}
    nets |= {name: trained(name, net, *train) for name, net in small_nets().items()}
    fit_x, fit_y = train[0][: args.train_images], train[1][: args.train_images]
    logreg = train_sklearn_model("logreg", fit_x, fit_y, seed=0)
    knn = train_sklearn_model("knn", fit_x, fit_y, seed=0)
    setup_s = time.perf_counter() - tick

    sources = {**nets, "logreg": logreg, "ensemble": Ensemble(list(nets.values()))}
    targets = {**nets, "logreg": logreg, "knn": knn}
    attack = create_attack(args.attack)
    common = {"eps": args.eps, "batch_size": args.batch_size}

    transfer_matrix(sources, targets, (x[:20], y[:20]), attack=attack, **common)  # warm-up
    craft, evaluate = parts(sources, targets, attack, x, y, **common)
    clock = Clock()
    result = transfer_matrix(sources, targets, (x, y), attack=attack, **common)
    total = clock.read()
    reference = [sum(t[i] for t in [*craft.values(), *evaluate.values()]) for i in (0, 1)]

    result.save(args.out)
    figures = {
        "images": len(x),
        "attack": args.attack,
        "eps": args.eps,
        "setup_s (training, not timed below)": round(setup_s, 1),
        "craft_s (wall, cpu)": {k: rounded(v) for k, v in craft.items()},
        "evaluate_s (wall, cpu)": {k: rounded(v) for k, v in evaluate.items()},
        "sum_of_parts_s (wall, cpu)": rounded(reference),
        "transfer_matrix_s (wall, cpu)": rounded(total),
        "ratio (wall, cpu)": [round(t / r, 3) for t, r in zip(total, reference, strict=True)],
        "clean_accuracy": {k: round(v, 3) for k, v in result.config["clean_accuracy"].items()},
        "threads": torch.get_num_threads(),
        "machine": platform.platform(),
    }
    (args.out / "transfer_matrix.timing.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    print((result.pivot() * 100).round(1).to_string())


def rounded(values: tuple[float, ...] | list[float]) -> list[float]:
    return [round(v, 2) for v in values]


if __name__ == "__main__":
    main()
