"""The audit engine: a plan of attacks run over a dataset, batch by batch, for every threat.

Independent attacks run alone on every correctly classified point; a suite runs as a cascade on
the points still robust (AutoAttack's ``robust_flags``); budgets are nested (a point broken at eps
is broken at every larger eps and never attacked again; the cascade runs from the largest eps
down and takes a point it could not break there to hold below, checking a few). One tidy row per
sample x attack x eps.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

import robustkit
from robustkit.attacks import Attack
from robustkit.attacks.noise import Advance
from robustkit.auditing.batch import BatchRunner
from robustkit.auditing.checks import Flag
from robustkit.auditing.distributed import barrier, my_batches
from robustkit.auditing.inputs import Batches, describe_model, resolve_data, resolve_model
from robustkit.auditing.noise_probes import choose_probes, run_probes
from robustkit.auditing.plan import DEFAULT_BUDGETS, Corruptions, Plan, plan_audit
from robustkit.auditing.probes import PROBE_SIZE, probe_model
from robustkit.auditing.progress import (
    EngineRun,
    ProgressStore,
    dataset_digest,
    module_digest,
    open_progress,
)
from robustkit.auditing.results import PASSES_RULE, AuditResult
from robustkit.auditing.suites import DEFAULT_SUITE, RANDOMIZED_SUITE, get_suite
from robustkit.auditing.threats import Threat
from robustkit.data import DatasetInfo, indices_record
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel, check_classifier, is_randomized
from robustkit.models.passes import EOT_SAMPLES, EVAL_PASSES, check_passes
from robustkit.models.wrapper import device_of
from robustkit.progress import progress_bar

log = logging.getLogger(__name__)

SAMPLE_MEANING = "dataset index"  # what the rows' sample column holds


def audit(
    model: str | nn.Module = "zoo:mnist-cnn",
    data: str | DatasetInfo | Dataset | tuple[Tensor, Tensor] = "mnist-sample",
    *,
    attacks: Iterable[str | Attack] | None = None,
    suite: str | None = None,
    eps: Sequence[float] = DEFAULT_BUDGETS["linf"],
    eps_l2: Sequence[float] | None = None,
    sigmas: Sequence[float] | None = None,
    eps_l1: Sequence[float] | None = None,
    steps: int | None = None,
    restarts: int | None = None,
    num_samples: int | None = None,
    indices: Sequence[int] | Tensor | None = None,
    batch_size: int = 500,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = False,
    examples_per_attack: int = 4,
    noise_probes: bool | str = "auto",
    progress_dir: str | Path | None = None,
    resume: bool = False,
    corruptions: Corruptions | None = None,
    eot_samples: int | None = None,
    eval_passes: int | None = None,
) -> AuditResult:
    """Attack ``model`` on the correctly classified samples of ``data`` at every budget.

    With neither ``attacks`` nor ``suite``, the ``standard`` suite (AutoAttack's order) runs as a
    cascade for the worst case, after the diagnostics FGSM, PGD and Gaussian noise, each run
    alone. ``attacks`` alone runs just those attacks, each alone; ``suite`` adds that suite's
    cascade. The suite covers L-inf, L2 when ``eps_l2`` is given and L1 when ``eps_l1`` is;
    ``eps_l2``, ``eps_l1`` and ``sigmas``
    default to :data:`DEFAULT_BUDGETS` for the attacks of their norm. A point broken at one eps
    counts as broken at every larger eps of the same norm and is not attacked again. Memory is
    bounded by ``batch_size``; the first batch also yields a few example adversarials; with
    ``noise_probes`` the model also classifies pure noise and PGD starts from noise: ``"auto"``
    (or True) sizes these probes to the audit (cut on large inputs, see
    :mod:`robustkit.auditing.noise_probes`), ``"full"`` runs them whole, ``"off"`` (or False)
    skips them.

    ``num_samples`` audits a subset drawn with ``seed``; ``indices`` (refused beside it) exactly
    the images at those dataset indices, in that order. Either way the frame's ``sample`` column
    is each image's index in ``data`` (run.json's ``indices`` lists them all).

    Each finished batch goes to ``progress_dir`` (a temporary folder when None); with ``resume``
    the batches found there are not attacked again and the result is the one an uninterrupted
    run gives. Under an initialized torch.distributed process group each process attacks its
    share of the batches (``progress_dir`` must be a folder all of them see) and returns the
    whole result.

    ``corruptions`` adds the common corruptions: each corruption x severity scored on every
    image, as rows of norm ``"corruption"`` (eps = severity), seeded per corruption, severity
    and batch.

    A model whose randomness probe finds it randomized gets the ``rand`` protocol: the ``rand``
    suite by default, EOT over ``eot_samples`` passes (20) in the attacks that take it, every
    point judged over ``eval_passes`` fresh passes (20), and its robust accuracy is its expected
    accuracy over such passes (:data:`~robustkit.auditing.results.PASSES_RULE`).
    """
    started = time.perf_counter()
    torch.manual_seed(seed)
    robust_model = resolve_model(model, device)
    info = resolve_data(data, num_samples, seed, model=robust_model, indices=indices)
    batches = Batches(info, batch_size)
    first_x, first_y = batches.first()
    num_classes = check_classifier(robust_model, first_x[:2].to(robust_model.device))
    probe_x = first_x[:PROBE_SIZE].to(robust_model.device)
    randomized = is_randomized(robust_model, probe_x)
    protocol = choose_protocol(
        randomized,
        attacks=attacks,
        suite=suite,
        eot_samples=eot_samples,
        eval_passes=eval_passes,
    )
    if randomized and corruptions is not None:
        raise RobustkitError(
            "--corruptions scores one pass per image, which does not judge a randomized model: "
            "audit its corruptions on a deterministic copy (e.g. its noise switched off)"
        )
    plan = plan_audit(
        attacks,
        protocol["suite"],
        steps=steps,
        restarts=restarts,
        eps=eps,
        eps_l2=eps_l2,
        sigmas=sigmas,
        eps_l1=eps_l1,
        corruptions=corruptions,
        eot_samples=protocol["eot_samples"],
        eval_passes=protocol["eval_passes"],
    )
    model_flags = probe_model(
        robust_model,
        first_x.to(robust_model.device),
        first_y,
        eot=uses_eot(plan),
        randomized=randomized,
    )
    probes = choose_probes(
        noise_probes,
        plan,
        num_samples=len(info.dataset),  # type: ignore[arg-type]
        input_shape=info.input_shape,
        num_classes=num_classes,
    )
    tables: list[pd.DataFrame] = []  # the noise grid and the PGD-from-noise targets

    def run_noise_probes(advance: Advance) -> None:
        torch.manual_seed(seed)  # the same noise however the batches ran, and wherever
        tables.extend(
            run_probes(
                robust_model,
                probes,
                info.input_shape,
                class_names=info.classes or None,
                advance=advance,
            )
        )

    threat = Threat(None, robust_model, robust_model, robust_model.name)
    manifest = {
        "model": robust_model.name,
        "weights": module_digest(robust_model),
        "execution": dataclasses.asdict(robust_model.execution),
        "outputs": dataclasses.asdict(robust_model.outputs),
        "dataset": info.name,
        "samples": dataset_digest(info.dataset),
        **engine_manifest(plan, batch_size, seed),
        "examples_per_attack": examples_per_attack,
        "eval_passes": plan.eval_passes,
    }
    with open_progress(progress_dir, manifest, resume=resume) as store:
        run = run_engine(
            plan,
            [threat],
            batches,
            store,
            seed=seed,
            progress=progress,
            examples_per_attack=examples_per_attack,
            then=None if probes.plan is None else run_noise_probes,
            then_share=probes.share,
        )
    config = _config(robust_model, info, plan, run, model_flags, batch_size=batch_size, seed=seed)
    config["protocol"] = protocol
    config["noise_probes"] = probes.record()
    audit_result = AuditResult(
        frame=run.frame, config=config, examples=run.examples, adversarials=run.adversarials
    )
    if tables:
        audit_result.noise_grid, audit_result.noise_targets = tables
    config["wall_time_s"] = round(time.perf_counter() - started, 3)
    return audit_result


def uses_eot(plan: Plan) -> bool:
    """Whether any attack of the plan averages its loss over several passes."""
    return any(getattr(a, "eot_samples", 1) > 1 for a in [*plan.independent, *plan.cascade])


def choose_protocol(
    randomized: bool,
    *,
    attacks: Iterable[str | Attack] | None,
    suite: str | None,
    eot_samples: int | None,
    eval_passes: int | None,
) -> dict[str, Any]:
    """The protocol an audit follows, and why: ``rand`` for a randomized model (EOT, fresh
    passes, the ``rand`` suite unless another is named), one pass per decision otherwise."""
    eot = eot_samples if eot_samples is not None else EOT_SAMPLES if randomized else 1
    passes = eval_passes if eval_passes is not None else EVAL_PASSES if randomized else 1
    check_passes(eot, passes)
    default = RANDOMIZED_SUITE if randomized else DEFAULT_SUITE
    chosen = suite or (default if attacks is None else None)
    if randomized:
        reason = (
            "the randomness probe found the model randomized (two passes on the same inputs "
            f"gave different logits): attacks average the loss over {eot} passes (EOT) and "
            f"every point is judged over {passes} fresh passes"
        )
    else:
        reason = "the randomness probe found the model deterministic: one pass decides"
    return {
        "name": RANDOMIZED_SUITE if randomized else "deterministic",
        "randomized": randomized,
        "suite": chosen,
        "eot_samples": eot,
        "eval_passes": passes,
        "reason": reason,
        **({"rule": PASSES_RULE.format(passes=passes)} if passes > 1 else {}),
    }


def _config(
    robust_model: RobustModel,
    info: DatasetInfo,
    plan: Plan,
    run: EngineRun,
    model_flags: list[Flag],
    *,
    batch_size: int,
    seed: int,
) -> dict[str, Any]:
    """What run.json records of a plain audit (the wall time comes on top)."""
    return {
        "model": robust_model.name,
        "model_info": describe_model(robust_model),
        "dataset": info.name,
        "classes": info.classes,
        "num_samples": run.num_samples,
        **indices_record(info),
        "suite": plan.suite,
        "evaluation": plan.suite is None or get_suite(plan.suite).evaluation,
        "attacks": plan.describe(),
        "budgets": plan.budgets,
        "corruptions": None if plan.corruptions is None else dataclasses.asdict(plan.corruptions),
        "batch_size": batch_size,
        "seed": seed,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": str(robust_model.device),
        "versions": {
            "robustkit": robustkit.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "model_checks": [dataclasses.asdict(flag) for flag in model_flags],
        "eps_probes": run.eps_probes,
    }


def engine_manifest(plan: Plan, batch_size: int, seed: int) -> dict[str, Any]:
    """The part of a resume manifest that the engine's own settings decide."""
    manifest = {
        "suite": plan.suite,
        "attacks": plan.describe(),
        "budgets": plan.budgets,
        "batch_size": batch_size,
        "seed": seed,
        "sample_column": SAMPLE_MEANING,  # older progress, whose rows counted positions, differs
    }
    if plan.corruptions is not None:
        manifest["corruptions"] = dataclasses.asdict(plan.corruptions)
    return manifest


def run_engine(
    plan: Plan,
    threats: Sequence[Threat],
    batches: Batches,
    store: ProgressStore,
    *,
    seed: int,
    progress: bool = False,
    examples_per_attack: int = 4,
    then: Callable[[Advance], None] | None = None,
    then_share: float = 0.0,
) -> EngineRun:
    """Run the plan for every threat on the batches this process owns (all of them without a
    process group) that ``store`` does not hold yet, saving each one as it finishes; then put
    every batch together. ``then`` runs after the batches under the same progress bar (the noise
    probes), told each part's share of it as it goes; ``then_share`` is its estimated cost as a
    share of all the batches', so the bar's estimate of the time left counts it."""
    device = device_of(threats[0].score)
    done = store.finished()
    todo = [index for index in my_batches(len(batches)) if index not in done]
    jobs = plan.jobs() * len(threats)
    then_units = then_share * jobs * len(batches) if then is not None else 0.0
    with progress_bar(enabled=progress) as bar:
        task = bar.add_task("attacking", total=jobs * len(todo) + then_units)
        runner = BatchRunner(
            plan, threats, seed, bar, task, examples_per_attack, limit=batches.size
        )
        for index, (x, y) in zip(todo, batches.load(todo), strict=True):
            samples = batches.samples(index)
            record = runner.batch(index, batches.start(index), samples, x.to(device), y.to(device))
            store.write(index, record)
        barrier()  # every process has saved its share
        if then is not None:
            bar.update(task, description="noise probes")
            then(lambda share: bar.advance(task, share * then_units))
    return store.assemble(len(batches))
