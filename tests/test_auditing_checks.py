"""Each sanity flag on hand-built results that trigger it, and none on a sound run."""

from __future__ import annotations

import pandas as pd
import pytest

from robustkit.auditing.checks import CHECKS, Flag, sanity_flags, steps_flags
from robustkit.auditing.results import ROW_COLUMNS, AuditResult

N = 100  # samples, labels cycling over 10 classes: chance is 10%
NORMS = {"gaussian-noise": "gaussian", "pgd-l2": "l2"}
STEPS = {"fgsm": 1, "pgd-linf": 10, "pgd-l2": 10}

# (attack, eps) -> robust accuracy of a sound evaluation on 28x28 grey-scale inputs.
SOUND = {
    ("fgsm", 0.1): 0.6,
    ("fgsm", 0.3): 0.3,
    ("pgd-linf", 0.1): 0.5,
    ("pgd-linf", 0.3): 0.1,
    ("pgd-l2", 1.0): 0.7,
    ("pgd-l2", 3.0): 0.4,
    ("gaussian-noise", 0.1): 0.95,
    ("gaussian-noise", 0.3): 0.8,
}


def build(
    accuracies: dict[tuple[str, float], float], model: str = "net", steps: dict | None = None
) -> AuditResult:
    """An AuditResult whose attack x eps robust accuracies are exactly ``accuracies``."""
    rows = []
    for (attack, eps), accuracy in accuracies.items():
        base = attack.partition(":")[2] or attack
        for sample in range(N):
            broken = sample < N * (1 - accuracy)
            rows.append(
                {
                    "model": model,
                    "attack": attack,
                    "norm": NORMS.get(base, "linf"),
                    "eps": eps,
                    "sample": sample,
                    "label": sample % 10,
                    "clean_pred": sample % 10,
                    "adv_pred": sample % 10 if sample >= N * (1 - accuracy) else (sample + 1) % 10,
                    "clean_correct": True,
                    "robust_correct": not broken,
                    "broken_by": attack if broken else "",
                    "perturbation": eps if broken else float("nan"),
                    "radius": float("nan"),
                }
            )
    steps = STEPS if steps is None else steps
    config = {
        "model": model,
        "dataset": "toy",
        "model_info": {"input_shape": [1, 28, 28]},
        "attacks": [{"name": name, "steps": n} for name, n in steps.items()],
    }
    return AuditResult(frame=pd.DataFrame(rows, columns=ROW_COLUMNS), config=config)


def codes(flags: list[Flag]) -> list[str]:
    return [flag.code for flag in flags]


def test_sound_run_has_no_flags() -> None:
    assert sanity_flags(build(SOUND)) == []


def test_accuracy_rising_with_eps_is_flagged() -> None:
    flags = sanity_flags(build(SOUND | {("pgd-linf", 0.3): 0.55}))
    assert "accuracy-rises-with-eps" in codes(flags)
    message = next(f.message for f in flags if f.code == "accuracy-rises-with-eps")
    assert "pgd-linf" in message and "eps=0.3" in message


def test_single_step_beating_iterative_is_flagged() -> None:
    flags = sanity_flags(build(SOUND | {("fgsm", 0.1): 0.2, ("fgsm", 0.3): 0.1}))
    assert codes(flags) == ["single-step-beats-iterative"]  # at eps 0.1; a tie at 0.3 is fine
    assert "eps=0.1" in flags[0].message


def test_a_latent_space_attack_is_not_held_to_the_single_step_check() -> None:
    latent = {("latent-overpowered", 0.1): 0.9, ("latent-overpowered", 0.3): 0.7}
    result = build(SOUND | latent)
    result.config["attacks"].append(
        {"name": "latent-overpowered", "steps": 40, "generator": "zoo:mnist-dcgan"}
    )
    assert sanity_flags(result) == []
    del result.config["attacks"][-1]["generator"]  # the same numbers from a pixel-space attack
    assert codes(sanity_flags(result)) == ["single-step-beats-iterative"] * 2


def test_accuracy_above_chance_where_the_ball_covers_grey_is_flagged() -> None:
    robust = SOUND | {("fgsm", 0.3): 0.5, ("pgd-linf", 0.3): 0.45}
    # Far above chance (10%) at eps 0.3 is a robust model, not a broken attack: no flag.
    assert sanity_flags(build(robust)) == []
    # At eps 0.5 every input can reach the mid-grey image: 40% is a failing attack.
    flags = sanity_flags(build(robust | {("fgsm", 0.5): 0.45, ("pgd-linf", 0.5): 0.4}))
    assert codes(flags) == ["above-chance-at-large-eps"]
    assert flags[0].severity == "error"


def test_noise_beating_gradient_is_flagged() -> None:
    noisy = {("gaussian-noise", 0.1): 0.3, ("gaussian-noise", 0.3): 0.2}
    flags = sanity_flags(build(SOUND | noisy))
    # sigma 0.1 is compared with L-inf eps 0.1 and L2 eps 3 (>= 0.1 x sqrt(784) = 2.8);
    # sigma 0.3 with L-inf eps 0.3 only, where the gradient attacks do better (10%).
    assert codes(flags) == ["noise-beats-gradient"] * 2
    messages = " ".join(flag.message for flag in flags)
    assert "sigma=0.1" in messages and "sigma=0.3" not in messages
    assert "linf eps=0.1" in messages and "l2 eps=3" in messages


def test_oblivious_only_defense_is_flagged_until_adaptive_attacks_run() -> None:
    oblivious = {("oblivious:pgd-linf", 0.1): 0.9, ("oblivious:pgd-linf", 0.3): 0.8}
    assert codes(sanity_flags(build(SOUND | oblivious))) == ["oblivious-only"]
    adaptive = {("bpda:pgd-linf", 0.1): 0.4, ("bpda:pgd-linf", 0.3): 0.05}
    assert sanity_flags(build(SOUND | oblivious | adaptive)) == []


@pytest.mark.parametrize(("more_steps_accuracy", "flagged"), [(0.3, True), (0.05, False)])
def test_accuracy_rising_with_steps_is_flagged(more_steps_accuracy: float, flagged: bool) -> None:
    few = build(SOUND)
    many = build(SOUND | {("pgd-linf", 0.3): more_steps_accuracy}, steps=STEPS | {"pgd-linf": 100})
    flags = steps_flags([many, few])
    assert codes(flags) == (["accuracy-rises-with-steps"] if flagged else [])


def test_square_breaking_points_every_gradient_attack_missed_is_flagged() -> None:
    # PGD leaves 10% robust at eps 0.3; Square breaks half of those: masked gradients.
    flags = sanity_flags(build(SOUND | {("square", 0.3): 0.05}))
    assert codes(flags) == ["gradient-free-beats-gradient"]
    assert "5.0%" in flags[0].message and "eps=0.3" in flags[0].message
    # Square breaking only points PGD broke too is no evidence; nor is Square run alone.
    assert sanity_flags(build(SOUND | {("square", 0.3): 0.2})) == []
    assert sanity_flags(build({("square", 0.3): 0.05}, steps={})) == []


def test_dlr_attacks_breaking_what_ce_missed_is_flagged() -> None:
    flags = sanity_flags(build(SOUND | {("apgd-t", 0.3): 0.02}))
    assert codes(flags) == ["ce-dlr-disagree"]
    assert "8.0%" in flags[0].message
    # A couple of points are within what a stronger attack adds to a sound evaluation.
    assert sanity_flags(build(SOUND | {("apgd-t", 0.3): 0.08})) == []
    assert sanity_flags(build({("apgd-t", 0.3): 0.02}, steps={})) == []  # no CE attack ran


def test_each_attack_declares_its_kind_for_the_checks() -> None:
    # mi-fgsm declares the CE loss (no list of names knows it): DLR breaking 8% more is flagged
    momentum = {("mi-fgsm", 0.3): 0.1, ("apgd-t", 0.3): 0.02}
    assert codes(sanity_flags(build(momentum, steps={"mi-fgsm": 10}))) == ["ce-dlr-disagree"]
    # fmn maximises a margin, neither CE nor DLR; an attack no registry knows is neither either
    assert sanity_flags(build({("fmn", 0.3): 0.1, ("apgd-t", 0.3): 0.02}, steps={})) == []
    assert sanity_flags(build({("mine", 0.3): 0.1, ("apgd-t", 0.3): 0.02}, steps={})) == []


def test_a_loss_recorded_in_run_json_overrides_the_declared_one() -> None:
    result = build({("fgsm", 0.3): 0.3, ("pgd-linf", 0.3): 0.1}, steps={"fgsm": 1})
    assert sanity_flags(result) == []  # PGD on CE breaking more than FGSM: sound
    result.config["attacks"].append({"name": "pgd-linf", "steps": 10, "loss": "dlr"})
    assert codes(sanity_flags(result)) == ["ce-dlr-disagree"]


def test_a_peer_attack_is_classified_by_what_its_library_declares() -> None:
    square = {("pgd-linf", 0.3): 0.1, ("art:SquareAttack", 0.3): 0.05}
    assert codes(sanity_flags(build(square, steps={}))) == ["gradient-free-beats-gradient"]


def test_model_probe_flags_recorded_in_run_json_are_reported() -> None:
    result = build(SOUND)
    result.config["model_checks"] = [
        {"code": "zero-gradients", "severity": "error", "message": "80% of inputs ..."}
    ]
    assert codes(sanity_flags(result)) == ["zero-gradients"]


@pytest.mark.parametrize(("failed", "flagged"), [(5, True), (1, False)])
def test_an_attack_failing_again_at_a_larger_eps_is_flagged(failed: int, flagged: bool) -> None:
    result = build(SOUND)
    probe = {"model": "net", "attack": "pgd-linf", "norm": "linf", "eps_from": 0.1, "eps_to": 0.3}
    result.config["eps_probes"] = [probe | {"probed": 16, "failed": failed}]
    assert codes(sanity_flags(result)) == (["accuracy-rises-with-eps"] if flagged else [])


def test_every_check_is_described() -> None:
    assert set(CHECKS) == {
        "accuracy-rises-with-eps",
        "accuracy-rises-with-steps",
        "single-step-beats-iterative",
        "above-chance-at-large-eps",
        "noise-beats-gradient",
        "oblivious-only",
        "gradient-free-beats-gradient",
        "ce-dlr-disagree",
        "randomized-without-eot",
        "zero-gradients",
        "robust-above-leaderboard",
        "clean-off-leaderboard",
    }
