"""APGD-CE's images/s on an ImageNet-size model against the bare forward+backward floor, per
precision: how much of an attack's time is the model and how much is the attack's own work.

Both sides run the same batches through the same RobustModel (its precision, channels_last and
compile) and the same passes: APGD-CE without early stop makes ``steps`` forward+backward passes
(gradient with respect to the input) and 3 forward-only passes per batch (clean logits, the last
iterate's loss, the returned prediction); the floor makes exactly those passes and nothing else.
Random images labelled with the model's own predictions, so every image is attacked. Defaults
are sized for one H200 (about a minute per precision); on CPU, a smoke check:

    python benchmarks/gpu.py                                   # cuda: resnet50, 224 px, fp32 + bf16
    python benchmarks/gpu.py --device cpu --images 8 --steps 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from robustkit.attacks import create_attack
from robustkit.models import RobustModel, load_model
from robustkit.models.execution import Execution

EPS = 4 / 255  # the usual ImageNet L-inf budget
FORWARD_ONLY_PASSES = 3  # APGD per batch: clean logits, last iterate's loss, returned prediction


@dataclass(frozen=True)
class Throughput:
    """Images per second of the attack and of its floor, and their ratio."""

    precision: str
    attack: float
    floor: float

    @property
    def share(self) -> float:
        """The attack's speed as a share of the floor's (1.0: no overhead at all)."""
        return self.attack / self.floor


def measure(
    model: RobustModel, *, images: int, batch_size: int, steps: int, seed: int = 0
) -> Throughput:
    """Time APGD-CE and its floor on ``images`` random images (whole batches of at most
    ``batch_size``), on CUDA or compiled each after one untimed warm-up batch (cudnn autotuning,
    compilation)."""
    batch = min(batch_size, images)
    batches = max(1, images // batch)
    shape = (batch, *(model.input_shape or (3, 224, 224)))
    generator = torch.Generator(device=model.device).manual_seed(seed)
    x = torch.rand(shape, generator=generator, device=model.device)
    with torch.no_grad():
        labels = model(x).argmax(dim=1)
    attack = create_attack("apgd-ce", steps=steps, early_stop=False)

    def attack_batch() -> None:
        attack(model, x, labels, eps=EPS)

    def floor_batch() -> None:
        floor_passes(model, x, labels, steps)

    warm_up = model.device.type == "cuda" or model.execution.compile
    rates = []
    for work in (attack_batch, floor_batch):
        if warm_up:
            work()
        rates.append(batch * batches / seconds(lambda w=work: _repeat(w, batches), model.device))
    return Throughput(model.execution.precision, attack=rates[0], floor=rates[1])


def floor_passes(model: RobustModel, x: Tensor, labels: Tensor, steps: int) -> None:
    """The model passes APGD-CE makes on one batch, with none of its arithmetic."""
    for _ in range(steps):
        inputs = x.detach().requires_grad_(True)
        loss = F.cross_entropy(model(inputs), labels, reduction="sum")
        torch.autograd.grad(loss, inputs)
    with torch.no_grad():
        for _ in range(FORWARD_ONLY_PASSES):
            model(x)


def seconds(work: Callable[[], None], device: torch.device) -> float:
    """Wall time of ``work``, with the device's queue drained before and after."""
    _synchronize(device)
    start = time.perf_counter()
    work()
    _synchronize(device)
    return time.perf_counter() - start


def _repeat(work: Callable[[], None], times: int) -> None:
    for _ in range(times):
        work()


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default="timm:resnet50", help="built with pretrained=False")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=2048, help="timed images per side")
    parser.add_argument("--steps", type=int, default=10, help="APGD iterations")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="default: on for CUDA",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the forward")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[Throughput]:
    args = _arguments(argv)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    channels_last = device.type == "cuda" if args.channels_last is None else args.channels_last
    print(
        f"apgd-ce on {args.model} at {args.image_size} px, {args.steps} steps, batch "
        f"{min(args.batch_size, args.images)}, device {_device_name(device)}, channels_last "
        f"{channels_last}, compile {args.compile}\n"
    )
    print("| precision | apgd-ce images/s | forward+backward floor images/s | attack / floor |")
    print("| --- | --- | --- | --- |")
    results = []
    for precision in args.precisions.split(","):
        model = load_model(
            args.model,
            device=device,
            execution=Execution(precision.strip(), channels_last, args.compile),
        )
        model.input_shape = (3, args.image_size, args.image_size)
        result = measure(model, images=args.images, batch_size=args.batch_size, steps=args.steps)
        print(f"| {precision} | {result.attack:.1f} | {result.floor:.1f} | {result.share:.0%} |")
        results.append(result)
    return results


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)


if __name__ == "__main__":
    main()
