"""Our suites against AutoAttack: the same model, the same MNIST test images, the same budget,
each tool run as a whole process; robust accuracy (ours must be no higher) and wall time.

    python benchmarks/vs_autoattack.py --data-root $ROBUSTKIT_DATA --num-samples 1000 \\
        --models zoo:mnist-robust,zoo:mnist-cnn,zoo:mnist-cnn@l2at.pt \\
        [--norm l2 --eps 2.0] [--suite plus] [--reference autoattack] [--same-allocator]

``--norm`` picks the threat (L-inf, the default, L2 or L1); ``--suite`` ours (``standard`` against
AutoAttack's ``standard`` version, ``plus`` against its ``plus``). ``--reference`` picks the
AutoAttack code: torchattacks' port (the default, from PyPI) or the original (fra31/auto-attack,
installed as the ``autoattack`` package from its repository; the only one with an L1 version).
``--version rand`` compares randomized models (e.g. ``--models
robustkit.models.randomized:resize_pad_mnist_cnn``): our audit under the rand protocol (``--suite
rand``, EOT 20, points judged over 20 fresh passes) against AutoAttack's ``rand`` version (APGD-CE
and APGD-DLR with EOT 20); both tools' adversarials are then scored here over the same number of
fresh, seeded passes (``--eval-passes``), and the expected accuracies compared.
``--same-allocator`` also times AutoAttack under the glibc malloc thresholds that the robustkit
command sets for itself (robustkit.cpu_memory), through the environment: how much of the gap is
the allocator and how much the attacks.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn
from whole_process import python_json, timed, worst_case

from robustkit.auditing.results import adversarial_key
from robustkit.cpu_memory import MMAP_THRESHOLD, TRIM_THRESHOLD
from robustkit.models import load_model
from robustkit.models.passes import score

AUTOATTACK = """
import json, sys, torch
from robustkit.data import load_dataset
from robustkit.models import load_model
spec, root, n, eps, norm, version, reference = sys.argv[1:8]
spec, _, checkpoint = spec.partition("@")
model = load_model(spec, checkpoint=checkpoint or None, device="cpu")
info = load_dataset("mnist", root=root, num_samples=int(n), seed=0)
loader = torch.utils.data.DataLoader(info.dataset, batch_size=500, shuffle=False)
if reference == "autoattack":
    from autoattack import AutoAttack
    adversary = AutoAttack(
        model, norm=norm, eps=float(eps), version=version, seed=0, verbose=False, device="cpu"
    )
    attack = lambda x, y: adversary.run_standard_evaluation(x, y, bs=len(y))
else:
    import torchattacks
    attack = torchattacks.AutoAttack(
        model, norm=norm, eps=float(eps), version=version, n_classes=10, seed=0
    )
robust = total = 0
for x, y in loader:
    adv = attack(x, y)
    with torch.no_grad():
        robust += int((model(adv).argmax(1) == y).sum())
    total += len(y)
print(json.dumps({"robust_accuracy": robust / total, "n": total}))
"""
AUTOATTACK_RAND = """
import json, sys, torch
from robustkit.data import load_dataset
from robustkit.models import load_model
spec, root, n, eps, norm, reference, out = sys.argv[1:8]
torch.manual_seed(0)
model = load_model(spec, device="cpu")
info = load_dataset("mnist", root=root, num_samples=int(n), seed=0)
x, y = (torch.stack(t) for t in zip(*[(a, torch.tensor(int(b))) for a, b in info.dataset]))
if reference == "autoattack":
    from autoattack import AutoAttack
    adversary = AutoAttack(model, norm=norm, eps=float(eps), version="rand", seed=0, verbose=False,
                           device="cpu")
    adv = torch.cat([adversary.run_standard_evaluation(x[i:i + 500], y[i:i + 500], bs=500)
                     for i in range(0, len(y), 500)])
else:
    import torchattacks
    attack = torchattacks.AutoAttack(
        model, norm=norm, eps=float(eps), version="rand", n_classes=10, seed=0
    )
    adv = torch.cat([attack(x[i:i + 500], y[i:i + 500]) for i in range(0, len(y), 500)])
torch.save({"x": x, "y": y, "adv": adv}, out)
print(json.dumps({"n": len(y)}))
"""
# our option, AutoAttack's name
NORMS = {"linf": ("--eps", "Linf"), "l2": ("--eps-l2", "L2"), "l1": ("--eps-l1", "L1")}


def model_options(model: str) -> list[str]:
    """``SPEC`` or ``SPEC@CHECKPOINT`` (e.g. a model trained with ``robustkit train``) as the
    audit's options."""
    spec, _, checkpoint = model.partition("@")
    return ["--model", spec, *(["--checkpoint", checkpoint] if checkpoint else [])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get("ROBUSTKIT_DATA"))
    parser.add_argument("--models", default="zoo:mnist-robust,zoo:mnist-cnn")
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--norm", choices=sorted(NORMS), default="linf")
    parser.add_argument("--suite", choices=["standard", "plus"], default="standard")
    parser.add_argument(
        "--reference", choices=["torchattacks", "autoattack"], default="torchattacks"
    )
    parser.add_argument("--same-allocator", action="store_true")
    parser.add_argument(
        "--version",
        choices=["rand"],
        default=None,
        help="rand: randomized models, rand protocol against AutoAttack's rand version",
    )
    parser.add_argument("--eval-passes", type=int, default=20, help="rand: scoring passes")
    args = parser.parse_args()
    if not args.data_root:
        parser.error("give --data-root or set ROBUSTKIT_DATA (MNIST raw files)")
    if args.norm == "l1" and args.reference != "autoattack":
        parser.error("torchattacks' AutoAttack has no L1 version: add --reference autoattack")
    if args.version == "rand":
        compare_rand(args)
        return
    print("| model | tool | robust accuracy | wall time (s) |")
    print("| --- | --- | --- | --- |")
    option, their_norm = NORMS[args.norm]
    budgets = [option, str(args.eps)] + (["--eps", "none"] if args.norm != "linf" else [])
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory() as out:
            ours_s, _ = timed(
                [
                    "robustkit", "audit", *model_options(model), "--dataset", "mnist",
                    "--data-root", args.data_root, "--num-samples", str(args.num_samples),
                    *budgets, "--suite", args.suite, "--attacks", "",
                    "--no-noise-probes", "--out", out,
                ]
            )  # fmt: skip
            ours = worst_case(Path(out), args.eps, args.norm)
        print(f"| {model} | robustkit {args.suite} | {ours:.1%} | {ours_s:.0f} |")
        allocators = {"": None}
        if args.same_allocator:
            allocators[", robustkit's malloc thresholds"] = os.environ | {
                "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
                "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
            }
        for allocator, env in allocators.items():
            theirs_s, theirs = python_json(
                AUTOATTACK,
                model,
                args.data_root,
                str(args.num_samples),
                str(args.eps),
                their_norm,
                args.suite,
                args.reference,
                env=env,
            )
            accuracy = theirs["robust_accuracy"]
            tool = f"{args.reference} AutoAttack {args.suite}{allocator}"
            print(f"| {model} | {tool} | {accuracy:.1%} | {theirs_s:.0f} |")
            print(
                f"| {model} | difference (ours - theirs{allocator}), time ratio | "
                f"{ours - accuracy:+.1%} | {ours_s / theirs_s:.2f}x |"
            )


def expected_accuracy(model: nn.Module, adv: Tensor, y: Tensor, passes: int, seed: int) -> float:
    """Mean over points of the share of ``passes`` fresh passes (seeded) classifying ``adv`` as
    its label."""
    torch.manual_seed(seed)
    correct = torch.cat(
        [
            score(model, adv[i : i + 100], y[i : i + 100], passes).correct
            for i in range(0, len(y), 100)
        ]
    )
    return float((correct / passes).mean())


def compare_rand(args: argparse.Namespace) -> None:
    """Our rand protocol against AutoAttack's rand version, both scored over the same passes."""
    option, their_norm = NORMS[args.norm]
    budgets = [option, str(args.eps)] + (["--eps", "none"] if args.norm != "linf" else [])
    print(f"scored over {args.eval_passes} fresh passes (seed 0) of each model")
    print("| model | tool | reported | expected accuracy (rescored) | wall time (s) |")
    print("| --- | --- | --- | --- | --- |")
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory() as out:
            ours_s, _ = timed(
                [
                    "robustkit", "audit", *model_options(model), "--dataset", "mnist",
                    "--data-root", args.data_root, "--num-samples", str(args.num_samples),
                    *budgets, "--suite", "rand", "--attacks", "", "--randomized",
                    "--eval-passes", str(args.eval_passes), "--no-noise-probes", "--out", out,
                ]
            )  # fmt: skip
            reported = worst_case(Path(out), args.eps, args.norm)
            run = json.loads((Path(out) / "run.json").read_text())
            last = [a["name"] for a in run["attacks"] if a["role"] == "cascade"][-1]
            saved = torch.load(Path(out) / "adversarials.pt", weights_only=True)
            ours_adv = saved[adversarial_key(run["model"], last, args.norm, args.eps)]
            theirs_file = Path(out) / "autoattack.pt"
            theirs_s, _ = python_json(
                AUTOATTACK_RAND, model, args.data_root, str(args.num_samples), str(args.eps),
                their_norm, args.reference, str(theirs_file),
            )  # fmt: skip
            theirs = torch.load(theirs_file, weights_only=True)
        scorer = load_model(model, device="cpu")
        y = theirs["y"]
        ours = expected_accuracy(scorer, ours_adv, y, args.eval_passes, seed=0)
        aa = expected_accuracy(scorer, theirs["adv"], y, args.eval_passes, seed=0)
        clean = expected_accuracy(scorer, theirs["x"], y, args.eval_passes, seed=0)
        print(f"| {model} | clean inputs | | {clean:.1%} | |")
        print(f"| {model} | robustkit rand | {reported:.1%} | {ours:.1%} | {ours_s:.0f} |")
        tool = f"{args.reference} AutoAttack rand"
        print(f"| {model} | {tool} | | {aa:.1%} | {theirs_s:.0f} |")
        print(
            f"| {model} | difference (ours - theirs), time ratio | | {ours - aa:+.1%} | "
            f"{ours_s / theirs_s:.2f}x |"
        )


if __name__ == "__main__":
    main()
