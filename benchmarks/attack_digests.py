"""Digests of every registered attack's output, to prove a refactor leaves the numbers unchanged.

Every registered attack runs, each case from its own fixed seed, on 32 images of ``mnist-sample``
against the bundled ``zoo:mnist-cnn`` and ``zoo:mnist-robust`` (untargeted, at a budget where some
points break and some hold, with two restarts where the attack has them), plus one targeted case,
one at eps 0 and, for the attacks that take EOT, one on a randomized model (the CNN with input
noise). Per case it records the sha256 of the adversarials, the success mask, the predictions,
the radius and correct-pass counts where the attack reports them, and of the global RNG state
after the call (so a refactor must also consume random numbers in the same order).

Bit-identical digests need the same machine, torch build and thread count (one thread here): the
file is a before/after check for one refactor, not a cross-platform contract.
``benchmarks/attack_digests.json`` holds the digests from before the attack base took over the
bookkeeping (2 CPU cores, torch as in the project's venv); after it every case matches except
``square-l2`` on ``zoo:mnist-robust``, whose own rounding rescale at the end gave way to the base's
budget check (2 points moved by at most 1.2e-7 per pixel, same successes and predictions).

Run: ``python benchmarks/attack_digests.py --write benchmarks/attack_digests.json`` before a
change, ``python benchmarks/attack_digests.py --check benchmarks/attack_digests.json`` after it
(exits 1 listing the cases that differ). ``--only NAME`` limits the attacks (repeatable).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from robustkit.attacks import AttackResult, attack_class, create_attack, list_attacks
from robustkit.data import load_dataset
from robustkit.generative.zoo import load_zoo_generator
from robustkit.models import load_model
from robustkit.models.masked import NoisyInput

IMAGES = 32
MODELS = ("zoo:mnist-cnn", "zoo:mnist-robust")
# Per model and norm, a budget where some points break and some hold.
EPS = {
    MODELS[0]: {"linf": 0.1, "l2": 1.0, "l1": 8.0, "gaussian": 0.3},
    MODELS[1]: {"linf": 0.3, "l2": 2.5, "l1": 15.0, "gaussian": 0.5},
}
# Short runs keep the whole file to a few minutes of CPU; the paths they take are the defaults'.
SHORT = {"steps": 15, "queries": 300, "repeats": 4, "projection_steps": 20}
RESTARTS = 2
# Peer attacks are built on demand, not registered: these stand for the foolbox and ART wrappers.
PEERS = {
    "foolbox:LinfPGD": {"steps": 15},
    "foolbox:L2PGD": {"steps": 15},
    "art:ProjectedGradientDescent": {"max_iter": 15, "num_random_init": 0},
}


@dataclass(frozen=True)
class Case:
    """One attack call: which attack (with which hyper-parameters), model and budget."""

    attack: str
    model: str
    eps: float
    targeted: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        aim = "targeted" if self.targeted else "untargeted"
        return f"{self.attack}|{self.model}|eps={self.eps:g}|{aim}|{extra}"


def _short_params(name: str) -> dict[str, Any]:
    """SHORT and RESTARTS, for the fields the attack has."""
    names = {f.name for f in fields(attack_class(name))}
    params = {k: v for k, v in SHORT.items() if k in names}
    if "restarts" in names:
        params["restarts"] = RESTARTS
    if name == "fgsm":
        params.pop("steps", None)
    return params


def cases(only: list[str] | None = None) -> Iterator[Case]:
    """Every case, in a fixed order."""
    for name, params in PEERS.items():
        if only and name not in only:
            continue
        for model in MODELS:
            yield Case(name, model, EPS[model][_norm(name, params)], params=params)
    for name in list_attacks():
        if only and name not in only:
            continue
        norm = attack_class(name).norm
        params = _short_params(name)
        cnn, robust = EPS[MODELS[0]][norm], EPS[MODELS[1]][norm]
        yield Case(name, MODELS[0], cnn, params=params)
        yield Case(name, MODELS[1], robust, params=params)
        yield Case(name, MODELS[1], robust, targeted=True, params=params)
        yield Case(name, MODELS[0], 0.0, params=params)
        if "eot_samples" in {f.name for f in fields(attack_class(name))}:
            passes = {**params, "eot_samples": 3, "eval_passes": 4}
            yield Case(name, "noisy:" + MODELS[0], cnn, params=passes)
        if name.startswith("fab-t"):
            escalate = {**params, "escalation_steps": 30, "escalation_probe": 4}
            yield Case(name, MODELS[1], robust, params=escalate)
        if name == "square":
            race = {**params, "race": ((0.3, 0.5),), "race_max_broken": 1.0}
            yield Case(name, MODELS[1], robust, params=race)


def _norm(name: str, params: dict[str, Any]) -> str:
    return str(create_attack(name, **params).norm)


def _model(spec: str, cache: dict[str, nn.Module]) -> nn.Module:
    if spec not in cache:
        if spec.startswith("noisy:"):
            cache[spec] = NoisyInput(_model(spec.removeprefix("noisy:"), cache))
        else:
            cache[spec] = load_model(spec, device="cpu")
    return cache[spec]


def _images() -> tuple[Tensor, Tensor]:
    dataset = load_dataset("mnist-sample").dataset
    x = torch.stack([dataset[i][0] for i in range(IMAGES)])
    return x, torch.tensor([int(dataset[i][1]) for i in range(IMAGES)])


def _sha(tensor: Tensor | None) -> str | None:
    if tensor is None:
        return None
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def digest(result: AttackResult) -> dict[str, Any]:
    """The sha256 (16 hex digits) of every field of a result, and the success count."""
    return {
        "x_adv": _sha(result.x_adv),
        "success": _sha(result.success),
        "adv_pred": _sha(result.adv_pred),
        "radius": _sha(result.radius),
        "correct_passes": _sha(result.correct_passes),
        "broken": int(result.success.sum()),
    }


def run_case(case: Case, x: Tensor, y: Tensor, cache: dict[str, nn.Module]) -> dict[str, Any]:
    """One case from seed 0; its digest and that of the RNG state it leaves."""
    params = dict(case.params)
    if attack_class(case.attack).needs_generator:
        params["generator"] = load_zoo_generator("mnist-dcgan", device="cpu")
    attack = create_attack(case.attack, **params)
    model = _model(case.model, cache)
    targets = (y + 1) % 10 if case.targeted else None
    torch.manual_seed(0)
    result = attack(model, x, y, eps=case.eps, targets=targets)
    return {**digest(result), "rng": _sha(torch.get_rng_state())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", type=Path, help="write the digests to this JSON file")
    action.add_argument("--check", type=Path, help="compare with the digests in this JSON file")
    parser.add_argument("--only", action="append", help="attack names to run (repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x, y = _images()
    cache: dict[str, nn.Module] = {}
    found = {}
    for case in cases(args.only):
        found[case.key] = run_case(case, x, y, cache)
        print(case.key, found[case.key]["broken"], flush=True)
    if args.write:
        args.write.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
        return 0
    stored = json.loads(args.check.read_text())
    differ = [key for key, value in found.items() if stored.get(key) != value]
    missing = [key for key in stored if key not in found and not args.only]
    for key in differ:
        print(f"DIFFERS {key}\n  stored {stored.get(key)}\n  now    {found[key]}")
    for key in missing:
        print(f"MISSING {key}")
    print(f"{len(found) - len(differ)} of {len(found)} cases identical")
    return 1 if differ or missing else 0


if __name__ == "__main__":
    sys.exit(main())
