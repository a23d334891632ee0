"""Sanity checks on audit results, after Carlini et al.'s evaluation checklist (2019).

Each check reads only the tidy frame and run.json of an :class:`AuditResult` and returns
:class:`Flag` objects; a sound evaluation returns none. The rules:

- ``accuracy-rises-with-eps``: an attack's robust accuracy grows with its budget (by more than
  ``TOLERANCE``). A larger ball contains the smaller one, so a working attack never does worse.
  Also raised when a suite breaks, at a smaller eps, points it could not break at a larger one
  (the nested cascade checks a few per budget; see :mod:`robustkit.auditing.batch`).
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
  ``latent:``: the families of :mod:`robustkit.auditing.threats`) was evaluated only with attacks
  oblivious to the defense.
- ``gradient-free-beats-gradient``: gradient-free attacks (Square) break points (more than
  ``TOLERANCE`` of them) that every gradient attack left robust: the gradients mislead.
- ``ce-dlr-disagree``: attacks on the scale-invariant DLR loss break more than ``DISAGREEMENT`` of
  the points that cross-entropy attacks left robust: CE is saturated or its logits are scaled.
- ``randomized-without-eot`` and ``zero-gradients``: probes of the model itself
  (:mod:`robustkit.auditing.probes`), recorded in run.json.
- ``robust-above-leaderboard`` and ``clean-off-leaderboard``: a RobustBench zoo model whose
  leaderboard AutoAttack accuracy lies below our robust accuracy's 95% interval (our attacks are
  weaker than AutoAttack there), or whose leaderboard clean accuracy lies outside our clean
  accuracy's (other weights, data or preprocessing); see :mod:`robustkit.auditing.leaderboard`.

A black-box audit (``--access scores`` or ``labels``) runs no check that needs what its access
withholds: no input-gradient probe, and no ``gradient-free-beats-gradient`` (no gradient attack
reaches the model); run.json's ``access.skipped_checks`` lists them, with why.

Which attacks are one-step, gradient-free, or on the CE or DLR loss, each attack declares itself
(class attributes ``steps``, ``gradient_free``, ``loss``: :class:`robustkit.attacks.Attack`); a
hyper-parameter run.json recorded for the attack (its ``steps`` or ``loss``) takes precedence.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import pandas as pd

from robustkit.auditing.families import FAMILIES, LATENT, OBLIVIOUS
from robustkit.auditing.results import WORST_CASE, AuditResult
from robustkit.errors import RobustkitError

Severity = Literal["warning", "error"]
TOLERANCE = 0.01  # accuracy differences up to 1 point are sampling noise, not a flag
NOISE_NORM = "gaussian"
DEFENSE_PREFIXES = (*FAMILIES, LATENT)
GREY_RADIUS = 0.5  # half the pixel range: the ball around any input reaches the mid-grey image
DISAGREEMENT = 0.03  # share of points DLR attacks break after CE attacks failed that raises a flag
EPS_PROBE_FAILURES = 0.1  # share of re-attacked points an attack loses at a larger eps

CHECKS: dict[str, str] = {
    "accuracy-rises-with-eps": "robust accuracy falls (never rises) as eps grows",
    "accuracy-rises-with-steps": "robust accuracy falls (never rises) with more attack steps",
    "single-step-beats-iterative": "iterative attacks beat the single-step attack at equal eps",
    "above-chance-at-large-eps": "accuracy reaches chance once the ball holds a common image",
    "noise-beats-gradient": "gradient attacks beat Gaussian noise of comparable size",
    "oblivious-only": "defenses are evaluated with adaptive (BPDA/EOT) attacks",
    "gradient-free-beats-gradient": "Square breaks no point that every gradient attack missed",
    "ce-dlr-disagree": "CE and scale-invariant DLR attacks agree",
    "randomized-without-eot": "a randomized model is attacked with EOT",
    "zero-gradients": "the model's input gradients are non-zero and finite",
    "robust-above-leaderboard": "a RobustBench model is no more robust than its leaderboard says",
    "clean-off-leaderboard": "a RobustBench model's clean accuracy matches its leaderboard",
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


def attack_trait(name: str, trait: str, config: dict[str, Any]) -> Any:
    """What the attack ``name`` (a defense prefix aside) has as ``trait`` (``"steps"``,
    ``"loss"``, ``"gradient_free"``): the hyper-parameter run.json recorded for it, else what its
    class declares; None for an attack no registry knows."""
    base = split_defense(name)[1]
    for recorded in config.get("attacks", []):
        if recorded.get("name") == base and trait in recorded:
            return recorded[trait]
    return getattr(_attack_class(base), trait, None)


@cache
def _attack_class(name: str) -> type | None:
    """The attack class registered as ``name`` (looked up on demand: the checks read saved
    results, and importing them must not load the attacks), None if unknown."""
    from robustkit.attacks import attack_class

    try:
        return attack_class(name)
    except RobustkitError:  # not registered here, or a peer library not installed
        return None


def _attacks_where(result: AuditResult, trait: str, value: Any) -> frozenset[str]:
    """The attack names in the frame (run or breaking a point) whose ``trait`` is ``value``."""
    frame = result.frame
    names = (set(frame["attack"].astype(str)) | set(frame["broken_by"].astype(str))) - {""}
    return frozenset(n for n in names if attack_trait(n, trait, result.config) == value)


def sanity_flags(result: AuditResult) -> list[Flag]:
    """Every flag raised by the checks that need one audit only (on the attacks: accuracy may
    well rise with a corruption's severity)."""
    result = result.without_corruptions()
    summary = result.summary()
    attacks = summary[summary["attack"] != WORST_CASE]
    return [
        *_recorded(result.config),
        *_rises_with_eps(attacks),
        *_failing_at_larger_eps(result.config),
        *(_gradient_free_beats_gradient(result) if not restricted(result.config) else ()),
        *_ce_dlr_disagree(result),
        *_single_step_beats_iterative(attacks, result.config),
        *_above_chance(result),
        *_noise_beats_gradient(result),
        *_oblivious_only(attacks),
        *_leaderboard(result.config),
    ]


def restricted(config: dict[str, Any]) -> bool:
    """Whether run.json records a black-box audit (access scores or labels)."""
    return (config.get("access") or {}).get("level", "gradients") != "gradients"


def skipped_checks(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The checks a black-box audit did not run, and why (none under gradient access)."""
    skipped = (config.get("access") or {}).get("skipped_checks", [])
    return [(str(entry["check"]), str(entry["reason"])) for entry in skipped]


def _recorded(config: dict[str, Any]) -> Iterator[Flag]:
    """The flags the model probes recorded in run.json."""
    for flag in config.get("model_checks", []):
        yield Flag(flag["code"], flag["severity"], flag["message"])


def _leaderboard(config: dict[str, Any]) -> Iterator[Flag]:
    """The verdicts of the comparison with RobustBench's leaderboard, recorded in run.json."""
    record = config.get("leaderboard") or {}
    ours = record.get("ours") or {}
    name = f"{record.get('dataset')} {record.get('threat')} {record.get('name')}"
    if record.get("robust_above_leaderboard"):
        yield Flag(
            "robust-above-leaderboard",
            "error",
            f"robust accuracy {ours['robust_accuracy']:.1%} (95% CI {ours['ci_low']:.1%}-"
            f"{ours['ci_high']:.1%}) at eps {record.get('eps')} lies above RobustBench's "
            f"AutoAttack figure {record['robust_accuracy']:.2%} for {name}: our attacks are "
            "weaker than the leaderboard's here -- run --suite plus (or more --restarts) before "
            "quoting this number",
        )
    if record.get("clean_off_leaderboard"):
        yield Flag(
            "clean-off-leaderboard",
            "warning",
            f"clean accuracy {ours['clean_accuracy']:.1%} (95% CI {ours['clean_ci_low']:.1%}-"
            f"{ours['clean_ci_high']:.1%}) is far from RobustBench's {record['clean_accuracy']:.2%}"
            f" for {name}: other weights, data or preprocessing (zoo models take [0, 1] pixels "
            "and normalise inside) -- check the checkpoint, --dataset and --threat",
        )


def _failing_at_larger_eps(config: dict[str, Any]) -> Iterator[Flag]:
    """Points an attack broke at one eps and failed to break again at the next, larger one."""
    probes = pd.DataFrame(config.get("eps_probes", []))
    if probes.empty:
        return
    if "kind" not in probes:
        probes["kind"] = "broken"
    keys = ["kind", "model", "attack", "eps_from", "eps_to"]
    totals = probes.fillna({"kind": "broken"}).groupby(keys, sort=False)
    for row in totals[["probed", "failed"]].sum().reset_index().itertuples():
        if row.failed <= max(1, EPS_PROBE_FAILURES * row.probed):
            continue
        if row.kind == "held":
            message = (
                f"the attack suite on {row.model} broke, at eps={row.eps_to:g}, {row.failed} of "
                f"{row.probed} points it could not break at eps={row.eps_from:g}: its attacks "
                "are weaker in the larger ball (step size tied to eps? masked gradients?); those "
                "points count as broken at the larger eps and the smaller budget was attacked "
                "in full, but run the suite at each eps alone to see how far it is off"
            )
        else:
            message = (
                f"{row.attack} on {row.model} broke points at eps={row.eps_from:g} and failed "
                f"on {row.failed} of {row.probed} of them at eps={row.eps_to:g}: run alone, its "
                "accuracy would rise with eps -- the attack is failing (step size tied to eps? "
                "too few steps? masked gradients?); the nested results hide it, fix the attack"
            )
        yield Flag("accuracy-rises-with-eps", "warning", message)


def _breakers(result: AuditResult) -> pd.DataFrame:
    """Per model, norm, eps and clean-correct sample: which base attack names broke it."""
    rows = result.frame
    rows = rows[rows["clean_correct"] & ~rows["robust_correct"].astype(bool)]
    undefended = [split_defense(attack)[0] is None for attack in rows["attack"]]
    rows = rows[pd.Series(undefended, index=rows.index, dtype=bool)]
    return rows.assign(breaker=rows["broken_by"].astype(str))


def _share_only(result: AuditResult, only: frozenset[str], not_by: frozenset[str] | None) -> Any:
    """Per (model, norm, eps) where an attack of the other kind ran (one in ``not_by``, or any
    outside ``only`` when None): the share of clean-correct samples broken by an attack in
    ``only`` and by none of the other kind."""
    breakers = _breakers(result)
    if breakers.empty or not breakers["breaker"].isin(only).any():
        return {}

    def other_kind(names: pd.Series) -> pd.Series:
        return names.isin(not_by) if not_by is not None else ~names.isin(only)

    frame = result.frame
    ran = frame[other_kind(frame["attack"].astype(str))]
    compared = set(zip(ran["model"], ran["norm"], ran["eps"], strict=True))
    keys = ["model", "norm", "eps", "sample"]
    other = breakers.assign(other=other_kind(breakers["breaker"])).groupby(keys)["other"].any()
    mine = breakers.assign(mine=breakers["breaker"].isin(only)).groupby(keys)["mine"].any()
    solely = (mine & ~other.reindex(mine.index, fill_value=False)).groupby(level=[0, 1, 2]).sum()
    clean = frame[frame["clean_correct"]].drop_duplicates(["model", "sample"])
    per_model = clean.groupby("model")["sample"].size()
    return {
        key: count / per_model[key[0]] for key, count in solely.items() if count and key in compared
    }


def _gradient_free_beats_gradient(result: AuditResult) -> Iterator[Flag]:
    gradient_free = _attacks_where(result, "gradient_free", True)
    for (model, norm, eps), share in _share_only(result, gradient_free, None).items():
        if share > TOLERANCE:
            yield Flag(
                "gradient-free-beats-gradient",
                "error",
                f"gradient-free attacks (Square) broke {share:.1%} of {model}'s points at "
                f"{norm} eps={eps:g} that every gradient attack left robust: its gradients "
                "mislead (masking, saturation, non-differentiable steps) -- count only the "
                "worst case, and add gradient-free attacks (--suite plus) before trusting it",
            )


def _ce_dlr_disagree(result: AuditResult) -> Iterator[Flag]:
    dlr, ce = _attacks_where(result, "loss", "dlr"), _attacks_where(result, "loss", "ce")
    for (model, norm, eps), share in _share_only(result, dlr, ce).items():
        if share > DISAGREEMENT:
            yield Flag(
                "ce-dlr-disagree",
                "warning",
                f"attacks on the scale-invariant DLR loss broke {share:.1%} of {model}'s points "
                f"at {norm} eps={eps:g} that the cross-entropy attacks left robust: CE is "
                "saturated or the logits are scaled -- trust the DLR attacks (apgd-t, apgd-dlr) "
                "and never a CE-only evaluation of this model",
            )


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
    single = summary["attack"].map(lambda name: attack_trait(name, "steps", config) == 1)
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
    if norm == "l1" and pixels:
        return GREY_RADIUS * pixels
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
                f"image (chance: {chance:.1%}): the attacks are failing, not the model winning"
                + (" -- or their query budget is too small" if restricted(result.config) else ""),
            )


def _noise_scale(norm: str, pixels: int | None) -> float:
    """The size in ``norm`` of Gaussian noise of unit sigma: sqrt(pixels) in L2, the mean
    absolute value sqrt(2 / pi) per pixel in L1, 1 in L-inf (its RMS stands in)."""
    if not pixels:
        return 1.0
    if norm == "l2":
        return math.sqrt(pixels)
    if norm == "l1":
        return math.sqrt(2 / math.pi) * pixels
    return 1.0


def _noise_beats_gradient(result: AuditResult) -> Iterator[Flag]:
    rows = result.frame
    defended = rows["attack"].map(lambda name: split_defense(name)[0] is not None)
    noise = rows[rows["norm"] == NOISE_NORM]
    gradient = rows[rows["norm"].isin(["linf", "l2", "l1"]) & ~defended]
    if noise.empty or gradient.empty:
        return
    pixels = _num_pixels(result)
    worst = _worst_summary(AuditResult(frame=gradient))
    noise_accuracy = noise.groupby(["model", "eps"])["robust_correct"].mean()
    for (model, sigma), accuracy in noise_accuracy.items():
        for norm, group in worst[worst["model"] == model].groupby("norm"):
            scale = _noise_scale(str(norm), pixels)
            # The smallest eps allowing noise's size: the gradient's best chance to look weak.
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
