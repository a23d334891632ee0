"""Batched projection vs a per-image loop vs the bare generator forward+backward floor.

The issue's size is 256 images x R = 10 restarts x L = 200 steps (targets: >= 10x faster than
the loop, <= 1.15x the floor). The loop (one latent at a time: per image, per restart, as a
naive implementation does) is timed on --loop-images images and scaled to --images.

    python benchmarks/projection.py                       # full size
    python benchmarks/projection.py --images 64 --steps 50 --loop-images 8   # a busy CPU
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable

import torch
from benchmark_options import add_threads, apply_threads
from torch.utils.data import DataLoader

from robustkit.data import load_dataset
from robustkit.generative.generators import Generator
from robustkit.generative.projection import ProjectionConfig, project
from robustkit.generative.zoo import resolve_generator


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """Fastest wall time of ``repeats`` runs, in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def floor(generator: Generator, latents: int, steps: int) -> None:
    """L generator forward+backward passes over the same number of latents, nothing else."""
    z = torch.rand(latents, generator.latent_dim).requires_grad_(True)
    for _ in range(steps):
        torch.autograd.grad(generator(z).sum(), z)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="zoo:mnist-dcgan", help="zoo:NAME or a file")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--loop-images", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    add_threads(parser)
    args = parser.parse_args()
    apply_threads(args)
    torch.manual_seed(0)
    generator = resolve_generator(args.generator)
    data = load_dataset("mnist-sample", num_samples=args.images, seed=0)
    x = next(iter(DataLoader(data.dataset, batch_size=args.images)))[0]
    config = ProjectionConfig(steps=args.steps, restarts=args.restarts)

    batched, bare = float("inf"), float("inf")
    latents = args.images * args.restarts
    for repeat in range(args.repeats):  # interleaved, in alternating order: load hits both alike
        if repeat % 2:
            bare = min(bare, best_of(1, lambda: floor(generator, latents, args.steps)))
        batched = min(batched, best_of(1, lambda: project(generator, x, config, seed=0)))
        if not repeat % 2:
            bare = min(bare, best_of(1, lambda: floor(generator, latents, args.steps)))
    n_loop = min(args.loop_images, args.images)
    single = dataclasses.replace(config, restarts=1)

    def loop() -> None:
        for i in range(n_loop):
            for restart in range(args.restarts):
                project(generator, x[i : i + 1], single, seed=restart)

    looped = best_of(args.repeats, loop) * args.images / n_loop
    print(
        f"{args.images} images x R={args.restarts} x L={args.steps}, "
        f"{torch.get_num_threads()} threads, generator {args.generator}"
    )
    print(f"batched projection : {batched:8.2f} s")
    print(f"per-image loop     : {looped:8.2f} s  (per image x restart; {n_loop} images, scaled)")
    print(f"G fwd+bwd floor    : {bare:8.2f} s")
    print(f"speed-up over loop : {looped / batched:8.1f} x   (target >= 10)")
    print(f"ratio to the floor : {batched / bare:8.2f} x   (target <= 1.15)")


if __name__ == "__main__":
    main()
