"""The known gap on MNIST: an undefended classifier, the manifold defense under an oblivious
attack, and the same defense under BPDA and BPDA + EOT (Athalye et al. 2018) and under the
overpowered latent-space attack (Jalal et al. 2019).

    python benchmarks/defense_gap.py --num-samples 50 --proj-steps 30 --proj-restarts 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark_options import add_defense_audit, add_threads, apply_threads

from robustkit.attacks import LatentOverpowered, PGDLinf
from robustkit.data import load_dataset
from robustkit.defenses.evaluation import audit_defense
from robustkit.defenses.manifold import load_defense
from robustkit.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default="zoo:mnist-cnn")
    parser.add_argument("--defense", default="manifold:zoo:mnist-dcgan")
    parser.add_argument("--dataset", default="mnist-sample", help="or mnist (test set)")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--num-samples", type=int, default=50)
    add_defense_audit(parser)
    parser.add_argument("--batch-size", type=int, default=50)
    add_threads(parser)
    parser.add_argument("--out", type=Path, default=Path("defense-gap"))
    args = parser.parse_args()
    apply_threads(args)
    classifier = load_model(args.classifier, device="cpu")
    defense = load_defense(
        args.defense,
        classifier,
        steps=args.proj_steps,
        restarts=args.proj_restarts,
        lr=args.proj_lr,
    )
    data = load_dataset(args.dataset, root=args.data_root, num_samples=args.num_samples, seed=0)
    result = audit_defense(
        classifier,
        defense,
        data,
        attacks=[
            PGDLinf(steps=args.attack_steps, rel_stepsize=2.5 / args.attack_steps),
            LatentOverpowered(steps=args.latent_steps),
        ],
        eps=[args.eps],
        eot_samples=args.eot_samples,
        num_samples=0,  # every image of ``data``
        batch_size=args.batch_size,
    )
    result.config["script"] = vars(args) | {"out": str(args.out), "data_root": str(args.data_root)}
    result.save(args.out)
    summary = result.summary()
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wall time {result.config['wall_time_s']:.0f} s; results in {args.out}/")


if __name__ == "__main__":
    main()
