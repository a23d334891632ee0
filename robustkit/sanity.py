"""Sanity checks on audit results, after Carlini et al.'s evaluation checklist (2019).

Each check reads only the tidy frame and run.json of an :class:`AuditResult` and returns
:class:`Flag` objects; a sound evaluation returns none. The rules:

- ``accuracy-rises-with-eps``: an attack's robust accuracy grows with its budget (by more than
  ``TOLERANCE``). A larger ball contains the smaller one, so a working attack never does worse.
- ``accuracy-rises-with-steps`` (across runs): the same attack with more steps, on the same
  model, data and budget, leaves more points robust.
- ``single-step-beats-iterative``: FGSM (or any one-step attack) breaks more points than an
  iterative attack of the same norm at the same eps -- the iterative attack is under-powered.
- ``above-chance-at-large-eps``: at a budget whose ball holds the mid-grey image around every
  input (L-inf eps >= 0.5, L2 eps >= 0.5 * sqrt(pixels)), a perfect attack could send every input
  to that one image, so robust accuracy cannot exceed the largest class share. Flagged when it
  stays above twice that share (chance). Smaller budgets are not checked: a robust model may
  legitimately keep high accuracy there.
- ``noise-beats-gradient``: Gaussian noise at sigma leaves fewer points robust than the gradient
  attacks' worst case at an eps whose ball allows at least the same per-pixel RMS perturbation
  (L-inf eps >= sigma; L2 eps >= sigma * sqrt(pixels)). Noise is a blind search; beating the
  gradient means the gradient is masked or the attack is broken.
- ``oblivious-only``: a defended model (attack names ``oblivious:``, ``bpda:``, ``bpda-eot:``,
  ``latent:``) was evaluated only with attacks oblivious to the defense.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from robustkit.results import WORST_CASE, AuditResult

Severity = Literal["warning", "error"]
TOLERANCE = 0.01  # accuracy differences up to 1 point are sampling noise, not a flag
NOISE_NORM = "gaussian"
SINGLE_STEP_ATTACKS = frozenset({"fgsm"})
OBLIVIOUS = "oblivious"
DEFENSE_PREFIXES = (OBLIVIOUS, "bpda", "bpda-eot", "latent")
GREY_RADIUS = 0.5  # half the pixel range: the ball around any input reaches the mid-grey image

CHECKS: dict[str, str] = {
    "accuracy-rises-with-eps": "robust accuracy falls (never rises) as eps grows",
    "accuracy-rises-with-steps": "robust accuracy falls (never rises) with more attack steps",
    "single-step-beats-iterative": "iterative attacks beat the single-step attack at equal eps",
    "above-chance-at-large-eps": "accuracy reaches chance once the ball holds a common image",
    "noise-beats-gradient": "gradient attacks beat Gaussian noise of comparable size",
    "oblivious-only": "defenses are evaluated with adaptive (BPDA/EOT) attacks",
}


@dataclass(frozen=True)
class Flag:
    """One failed check: a stable code, a severity and a message naming what to do."""

    code: str
    severity: Severity
    message: str


def split_defense(attack: str) -> tuple[str | None, str]:
    """'bpda:pgd-linf' -> ('bpda', 'pgd-linf'); names without a defense prefix -> (None, name)."""
    prefix, sep, base = attack.partition(":")
    return (prefix, base) if sep and prefix in DEFENSE_PREFIXES else (None, attack)


def sanity_flags(result: AuditResult) -> list[Flag]:
    """Every flag raised by the checks that need one audit only."""
    summary = result.summary()
    attacks = summary[summary["attack"] != WORST_CASE]
    return [
        *_rises_with_eps(attacks),
        *_single_step_beats_iterative(attacks, result.config),
        *_above_chance(result),
        *_noise_beats_gradient(result),
        *_oblivious_only(attacks),
    ]


def steps_flags(results: Sequence[AuditResult]) -> list[Flag]:
    """Flags from comparing runs of the same attack, model and data at different step counts."""
    rows = []
    for result in results:
        steps = _steps_by_attack(result.config)
        summary = result.summary()
        for row in summary[summary["attack"].isin(list(steps))].itertuples():
            rows.append(
                {
                    "model": row.model,
                    "dataset": result.config.get("dataset"),
                    "n": row.n,
                    "attack": row.attack,
                    "norm": row.norm,
                    "eps": row.eps,
                    "steps": steps[str(row.attack)],
                    "accuracy": row.robust_accuracy,
                }
            )
    if not rows:
        return []
    frame = pd.DataFrame(rows)
    keys = ["model", "dataset", "n", "attack", "norm", "eps"]
    return [
        Flag(
            "accuracy-rises-with-steps",
            "warning",
            f"{attack} on {model} at {norm} eps={eps:g}: robust accuracy rises from {low:.1%} "
            f"({low_steps} steps) to {high:.1%} ({high_steps} steps); more steps must not help "
            "the model -- check the step size and for gradient masking",
        )
        for (model, _, _, attack, norm, eps), group in frame.groupby(keys, sort=False)
        for low_steps, low, high_steps, high in _rises(group, "steps", "accuracy")
    ]


def _rises(group: pd.DataFrame, by: str, value: str) -> Iterator[tuple[Any, float, Any, float]]:
    """Consecutive pairs (sorted by ``by``) where ``value`` rises by more than TOLERANCE."""
    ordered = group.sort_values(by)
    pairs = zip(ordered[by], ordered[value], ordered[by][1:], ordered[value][1:], strict=False)
    for x0, y0, x1, y1 in pairs:
        if y1 > y0 + TOLERANCE:
            yield x0, float(y0), x1, float(y1)


def _rises_with_eps(summary: pd.DataFrame) -> Iterator[Flag]:
    for (model, attack), group in summary.groupby(["model", "attack"], sort=False):
        for eps0, acc0, eps1, acc1 in _rises(group, "eps", "robust_accuracy"):
            yield Flag(
                "accuracy-rises-with-eps",
                "warning",
                f"{attack} on {model}: robust accuracy rises from {acc0:.1%} at eps={eps0:g} to "
                f"{acc1:.1%} at eps={eps1:g}; a larger budget must not help the model -- the "
                "attack is failing (step size tied to eps? too few steps? masked gradients?)",
            )


def _steps_by_attack(config: dict[str, Any]) -> dict[str, int]:
    """Steps per attack name from run.json (attacks without a ``steps`` field are left out)."""
    return {a["name"]: int(a["steps"]) for a in config.get("attacks", []) if "steps" in a}


def _range_attacks(config: dict[str, Any]) -> set[str]:
    """Attacks confined to a generator's range (a ``generator`` field in run.json): they search
    another space than a pixel step, so a single pixel step may well beat them."""
    return {a["name"] for a in config.get("attacks", []) if "generator" in a}


def _single_step_beats_iterative(summary: pd.DataFrame, config: dict[str, Any]) -> Iterator[Flag]:
    steps = _steps_by_attack(config)
    base = summary["attack"].map(lambda name: split_defense(name)[1])
    single = base.isin(SINGLE_STEP_ATTACKS) | summary["attack"].map(steps).eq(1)
    pixel_space = ~base.isin(_range_attacks(config))
    iterative = ~single & pixel_space & summary["attack"].map(steps).gt(1)
    keys = ["model", "norm", "eps"]
    pairs = summary[single].merge(summary[iterative], on=keys, suffixes=("_one", "_many"))
    for row in pairs.itertuples():
        if row.robust_accuracy_one < row.robust_accuracy_many - TOLERANCE:
            yield Flag(
                "single-step-beats-iterative",
                "warning",
                f"{row.attack_one} (single step) leaves {row.robust_accuracy_one:.1%} robust on "
                f"{row.model} at {row.norm} eps={row.eps:g}, {row.attack_many} (iterative) "
                f"{row.robust_accuracy_many:.1%}: the iterative attack is under-powered -- "
                "raise its steps or step size, or suspect gradient masking",
            )


def _worst_summary(result: AuditResult) -> pd.DataFrame:
    """The worst-case rows of the summary: one per model, norm and eps."""
    summary = result.summary()
    return summary[summary["attack"] == WORST_CASE]


def _num_pixels(result: AuditResult) -> int | None:
    """C x H x W of the inputs, from run.json or the stored examples."""
    shape = result.config.get("model_info", {}).get("input_shape")
    if not shape and result.examples is not None:
        shape = list(result.examples.clean.shape[1:])
    return math.prod(shape) if shape else None


def _covering_eps(norm: str, pixels: int | None) -> float | None:
    """The smallest eps whose ball around any input in [0, 1] holds the mid-grey image."""
    if norm == "linf":
        return GREY_RADIUS
    if norm == "l2" and pixels:
        return GREY_RADIUS * math.sqrt(pixels)
    return None


def _above_chance(result: AuditResult) -> Iterator[Flag]:
    pixels = _num_pixels(result)
    worst = _worst_summary(result)
    for (model, norm), group in worst.groupby(["model", "norm"], sort=False):
        covering = _covering_eps(str(norm), pixels)
        largest = group.loc[group["eps"].idxmax()]
        if covering is None or largest["eps"] < covering:
            continue
        samples = result.frame[result.frame["model"] == model].drop_duplicates("sample")
        chance = float(samples["label"].value_counts(normalize=True).max())
        if largest["robust_accuracy"] > 2 * chance:
            yield Flag(
                "above-chance-at-large-eps",
                "error",
                f"{model} keeps {largest['robust_accuracy']:.1%} robust accuracy at {norm} "
                f"eps={largest['eps']:g}, where every input is within reach of the mid-grey "
                f"image (chance: {chance:.1%}): the attacks are failing, not the model winning",
            )


def _noise_beats_gradient(result: AuditResult) -> Iterator[Flag]:
    rows = result.frame
    defended = rows["attack"].map(lambda name: split_defense(name)[0] is not None)
    noise = rows[rows["norm"] == NOISE_NORM]
    gradient = rows[rows["norm"].isin(["linf", "l2"]) & ~defended]
    if noise.empty or gradient.empty:
        return
    pixels = _num_pixels(result)
    worst = _worst_summary(AuditResult(frame=gradient))
    noise_accuracy = noise.groupby(["model", "eps"])["robust_correct"].mean()
    for (model, sigma), accuracy in noise_accuracy.items():
        for norm, group in worst[worst["model"] == model].groupby("norm"):
            scale = math.sqrt(pixels) if norm == "l2" and pixels else 1.0
            # The smallest eps allowing noise's RMS: the gradient's best chance to look weak.
            comparable = group[group["eps"] >= sigma * scale]
            if comparable.empty:
                continue
            row = comparable.loc[comparable["eps"].idxmin()]
            if accuracy < row["robust_accuracy"] - TOLERANCE:
                yield Flag(
                    "noise-beats-gradient",
                    "warning",
                    f"Gaussian noise (sigma={sigma:g}) leaves {accuracy:.1%} of {model} robust, "
                    f"the gradient attacks' worst case at {norm} eps={row['eps']:g} (a budget at "
                    f"least as large) {row['robust_accuracy']:.1%}: suspect masked gradients "
                    "or a broken attack",
                )


def _oblivious_only(summary: pd.DataFrame) -> Iterator[Flag]:
    for model, group in summary.groupby("model", sort=False):
        prefixes = {split_defense(name)[0] for name in group["attack"]}
        if OBLIVIOUS in prefixes and not prefixes & set(DEFENSE_PREFIXES) - {OBLIVIOUS}:
            yield Flag(
                "oblivious-only",
                "error",
                f"the defended model {model} was attacked only obliviously (attacks that ignore "
                "the defense); run the adaptive attacks (bpda:, bpda-eot:, latent:) -- their "
                "worst case is the number that counts",
            )
