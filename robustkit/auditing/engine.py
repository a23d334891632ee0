"""The audit engine: an :class:`~robustkit.auditing.spec.AuditSpec` run over a dataset, batch by
batch, for every threat.

Independent attacks run alone on every correctly classified point; a suite runs as a cascade on
the points still robust (AutoAttack's ``robust_flags``); budgets are nested (a point broken at eps
is broken at every larger eps and never attacked again; the cascade runs from the largest eps
down and takes a point it could not break there to hold below, checking a few). One tidy row per
sample x attack x eps. :func:`audit` is the Python front end; the CLI, ``audit_defense`` and the
pytest plugin build their spec and call :func:`run_audit` the same way. Under an initialized
torch.distributed process group each process attacks its share of the batches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from robustkit.attacks import Attack
from robustkit.attacks.noise import Advance
from robustkit.auditing.batch import BatchRecord, BatchRunner
from robustkit.auditing.blackbox import model_threats
from robustkit.auditing.distributed import barrier, is_main, my_batches
from robustkit.auditing.failures import BatchFailed, LogitWatch, ProbesFailed, failure_of
from robustkit.auditing.inputs import Batches, choose_samples, resolve_data, resolve_model
from robustkit.auditing.noise_probes import ProbeChoice, choose_probes, run_probes
from robustkit.auditing.plan import Plan, plan_audit
from robustkit.auditing.probe_modes import check_mode
from robustkit.auditing.probes import PROBE_SIZE
from robustkit.auditing.progress import EngineRun, ProgressStore, open_progress
from robustkit.auditing.queries import with_query_budget
from robustkit.auditing.record import manifest, run_record
from robustkit.auditing.results import AuditResult
from robustkit.auditing.spec import DEFAULTS, AuditSpec, Budgets, Corruptions
from robustkit.auditing.threats import Threat, Threats
from robustkit.auditing.universal import UniversalJob, UniversalRun, check_universal, run_universal
from robustkit.data import DatasetInfo
from robustkit.errors import RobustkitError
from robustkit.models.wrapper import device_of
from robustkit.progress import progress_bar

log = logging.getLogger(__name__)


if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from Python 3.11


class RunOptions(TypedDict, total=False):
    """How an audit runs, apart from what decides its numbers: :func:`run_audit`'s keywords."""

    progress: bool
    progress_dir: str | Path | None
    resume: bool
    skip_bad: bool
    universal: UniversalJob | None


def audit(
    model: str | nn.Module = DEFAULTS.model,
    data: str | DatasetInfo | Dataset | tuple[Tensor, Tensor] = DEFAULTS.dataset,
    *,
    attacks: Iterable[str | Attack] | None = None,
    suite: str | None = None,
    eps: Sequence[float] = DEFAULTS.eps,
    eps_l2: Sequence[float] | None = None,
    sigmas: Sequence[float] | None = None,
    eps_l1: Sequence[float] | None = None,
    steps: int | None = None,
    restarts: int | None = None,
    num_samples: int | None = None,
    indices: Sequence[int] | Tensor | None = None,
    batch_size: int = DEFAULTS.batch_size,
    device: str | torch.device | None = None,
    seed: int = DEFAULTS.seed,
    examples_per_attack: int = DEFAULTS.examples_per_attack,
    noise_probes: bool | str = DEFAULTS.noise_probes,
    corruptions: Corruptions | None = None,
    eot_samples: int | None = None,
    eval_passes: int | None = None,
    access: str = DEFAULTS.access,
    max_queries: int | None = None,
    surrogate: str | nn.Module | None = None,
    **how: Unpack[RunOptions],
) -> AuditResult:
    """Attack ``model`` on ``data`` at every budget: the keywords make an AuditSpec, except
    ``how`` it runs (:class:`~robustkit.auditing.engine.RunOptions`, for :func:`run_audit`)."""
    robust_model = resolve_model(model, device)
    helper = None if surrogate is None else resolve_model(surrogate, robust_model.device)
    info = resolve_data(data, None, seed, model=robust_model)
    spec = AuditSpec(
        model=robust_model.name,
        dataset=info.name,
        num_samples=num_samples,
        indices=listed(indices),
        attacks=None if attacks is None else tuple(attacks),
        suite=suite,
        steps=steps,
        restarts=restarts,
        budgets=budgets(eps, eps_l2, eps_l1, sigmas),
        corruptions=corruptions,
        batch_size=batch_size,
        seed=seed,
        **execution_of(robust_model),
        eot_samples=eot_samples,
        eval_passes=eval_passes,
        noise_probes=check_mode(noise_probes),
        examples_per_attack=examples_per_attack,
        access=access,
        max_queries=max_queries,
        surrogate=None if helper is None else helper.name,
    )
    return run_audit(
        spec,
        model_threats(robust_model, access, helper),
        info,
        **how,
    )


def budgets(
    eps: Sequence[float] | None,
    eps_l2: Sequence[float] | None,
    eps_l1: Sequence[float] | None,
    sigmas: Sequence[float] | None,
) -> Budgets:
    """The budgets of each norm as the spec holds them (None: the defaults where they apply)."""
    values = (eps, eps_l2, eps_l1, sigmas)
    linf, l2, l1, gaussian = (None if v is None else tuple(map(float, v)) for v in values)
    return Budgets(linf=linf, l2=l2, l1=l1, gaussian=gaussian)


def execution_of(model: nn.Module) -> dict[str, Any]:
    """The spec's execution fields as ``model`` runs (a RobustModel's precision, memory format
    and compilation)."""
    execution = getattr(model, "execution", None)
    if execution is None:
        return {}
    return {
        "precision": execution.precision,
        "channels_last": execution.channels_last,
        "compile": execution.compile,
    }


def listed(indices: Sequence[int] | Tensor | None) -> tuple[Any, ...] | None:
    """Dataset indices as the spec holds them (checked when the audit picks the images)."""
    if indices is None:
        return None
    return tuple(indices.tolist() if isinstance(indices, Tensor) else indices)


def run_audit(
    spec: AuditSpec,
    threats: Threats,
    data: DatasetInfo,
    *,
    progress: bool = False,
    progress_dir: str | Path | None = None,
    resume: bool = False,
    skip_bad: bool = False,
    universal: UniversalJob | None = None,
) -> AuditResult:
    """Run ``spec`` through ``threats`` on ``data`` (the spec picks the images): the one audit
    every front end runs. Progress goes to ``progress_dir`` (``resume``), with the run record
    from the start (partial reports). A failing batch raises ``BatchFailed`` (``skip_bad``: its
    images become ``error`` rows); ``universal``: crafting images of universal perturbations."""
    started = time.perf_counter()
    torch.manual_seed(spec.seed)
    info = choose_samples(data, spec)
    batches = Batches(info, spec.batch_size)
    first_x, first_y = batches.first()
    num_classes = threats.check(first_x[:2])
    randomized = threats.is_randomized(first_x[:PROBE_SIZE], spec)
    protocol = threats.protocol(spec, randomized)
    plan = threats.prepare(_plan(spec, protocol, threats), protocol, info, first_x)
    if universal is not None:
        check_universal(plan, protocol, len(threats.threats(protocol)), threats.level)
    model_flags = threats.probe(plan, first_x, first_y, randomized)
    probes = _probes(spec, threats, plan, info, num_classes)
    tables: list[pd.DataFrame] = []  # the noise grid and the PGD-from-noise targets
    head = manifest(spec, plan, threats, info, protocol)
    record = partial(
        run_record,
        head,
        threats,
        plan,
        info,
        protocol=protocol,
        probes=probes.record(),
        model_flags=model_flags,
    )
    with open_progress(progress_dir, head, resume=resume, batches=len(batches)) as store:
        if is_main():
            total = len(info.dataset)  # type: ignore[arg-type]
            store.write_record(record(EngineRun(pd.DataFrame(), None, [], total)))
        run = run_engine(
            plan,
            threats.threats(protocol),
            batches,
            store,
            seed=spec.seed,
            progress=progress,
            examples_per_attack=spec.examples_per_attack,
            then=_noise_probes(spec, threats, probes, info, tables),
            then_share=probes.share,
            skip_bad=skip_bad,
        )
    crafted = _universal(universal, threats.threats(protocol)[0], plan, batches, spec, progress)
    return _result(run, record, tables, crafted, started)


def _universal(
    job: UniversalJob | None,
    threat: Threat,
    plan: Plan,
    batches: Batches,
    spec: AuditSpec,
    progress: bool,
) -> UniversalRun | None:
    """The universal perturbations of ``job``, crafted and scored on rank 0 (None: no job)."""
    if job is None or not is_main():
        return None
    return run_universal(job, threat, plan, batches, spec.seed, progress=progress)


def _result(
    run: EngineRun,
    record: Callable[[EngineRun], dict[str, Any]],
    tables: list[pd.DataFrame],
    crafted: UniversalRun | None,
    started: float,
) -> AuditResult:
    """The audit's result: the engine's rows and those of the universal perturbations, the run
    record, the noise tables, the wall time since ``started``."""
    if crafted is not None:
        run.frame = pd.concat([run.frame, crafted.frame], ignore_index=True)
    config = record(run)
    result = AuditResult(
        frame=run.frame, config=config, examples=run.examples, adversarials=run.adversarials
    )
    if crafted is not None:
        result.universal, config["universal"] = crafted.perturbations, crafted.record
    if tables:
        result.noise_grid, result.noise_targets = tables
    config["wall_time_s"] = round(time.perf_counter() - started, 3)
    return result


def _probes(
    spec: AuditSpec, threats: Threats, plan: Plan, info: DatasetInfo, num_classes: int
) -> ProbeChoice:
    """The noise probes the audit affords (none where the threats run none)."""
    return choose_probes(
        spec.noise_probes if threats.noise_probes else "off",
        plan,
        num_samples=len(info.dataset),  # type: ignore[arg-type]
        input_shape=info.input_shape,
        num_classes=num_classes,
    )


def _plan(spec: AuditSpec, protocol: dict[str, Any], threats: Threats) -> Plan:
    """The attacks and budgets of ``spec``, with the protocol's suite, the pass counts the
    attacks take under ``threats`` and the query budget of the query-based ones."""
    plan = plan_audit(
        threats.named_attacks(spec),
        protocol["suite"],
        steps=spec.steps,
        restarts=spec.restarts,
        eps=spec.budgets.linf,
        eps_l2=spec.budgets.l2,
        sigmas=spec.budgets.gaussian,
        eps_l1=spec.budgets.l1,
        corruptions=spec.corruptions,
        **threats.attack_passes(protocol),
    )
    return with_query_budget(plan, spec.max_queries)


def _noise_probes(
    spec: AuditSpec,
    threats: Threats,
    probes: ProbeChoice,
    info: DatasetInfo,
    tables: list[pd.DataFrame],
) -> Callable[[Advance], None] | None:
    """The noise probes, run after the batches under the same progress bar (None: off); their
    tables go to ``tables``."""
    if probes.plan is None:
        return None

    def run(advance: Advance) -> None:
        torch.manual_seed(spec.seed)  # the same noise however the batches ran, and wherever
        tables.extend(
            run_probes(
                threats.model,
                probes,
                info.input_shape,
                class_names=info.classes or None,
                advance=advance,
            )
        )

    return run


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
    skip_bad: bool = False,
) -> EngineRun:
    """Run the plan for every threat on the batches this process owns (all of them without a
    process group) that ``store`` does not hold yet (a batch that failed before is tried
    again), saving each one as it finishes; then put every batch together. A batch the model
    fails on raises :class:`BatchFailed`, or with ``skip_bad`` is saved as failed (its images
    become error rows). ``then`` runs after the batches under the same progress bar (the noise
    probes), told each part's share of it as it goes; ``then_share`` is its estimated cost as a
    share of all the batches', so the bar's estimate of the time left counts it."""
    done = store.finished()
    todo = [index for index in my_batches(len(batches)) if index not in done]
    jobs = plan.jobs() * len(threats)
    then_units = then_share * jobs * len(batches) if then is not None else 0.0
    with progress_bar(enabled=progress) as bar:
        task = bar.add_task("attacking", total=jobs * len(todo) + then_units)
        runner = BatchRunner(
            plan, threats, seed, bar, task, examples_per_attack, limit=batches.size
        )
        watch = LogitWatch(module for t in threats for module in (t.craft, t.score))
        try:
            for position, (index, (x, y)) in enumerate(zip(todo, batches.load(todo), strict=True)):
                samples = batches.samples(index)
                try:
                    record = _attempt(runner, watch, index, batches.start(index), samples, x, y)
                except BatchFailed as failed:
                    if not skip_bad:
                        raise
                    log.warning(
                        "%s: its images are recorded as errors (--skip-bad)",
                        failed.failure.describe(),
                    )
                    store.write_failed(index, failed.failure)
                    bar.update(task, completed=(position + 1) * jobs)
                    continue
                store.write(index, record)
        finally:
            watch.close()
        barrier()  # every process has saved its share
        if then is not None:
            bar.update(task, description="noise probes")
            _probe(then, lambda share: bar.advance(task, share * then_units))
    return store.assemble(range(len(batches)))


def _probe(probes: Callable[[Advance], None], advance: Advance) -> None:
    """Run the noise probes; a model that fails in them raises :class:`ProbesFailed` (one line,
    every batch already saved) rather than a traceback."""
    try:
        probes(advance)
    except RobustkitError:
        raise
    except Exception as err:  # the user's model may raise anything (signals are no Exception)
        raise ProbesFailed(err) from err


def _attempt(
    runner: BatchRunner,
    watch: LogitWatch,
    index: int,
    offset: int,
    samples: Tensor,
    x: Tensor,
    y: Tensor,
) -> BatchRecord:
    """Batch ``index`` through the runner; :class:`BatchFailed` when the model raises (a
    configuration error excepted), returns NaN or inf logits, or runs out of memory on one
    image."""
    device = device_of(runner.threats[0].score)
    watch.tripped()  # forget the forward passes before this batch
    try:
        record = runner.batch(index, offset, samples, x.to(device), y.to(device))
    except RobustkitError:
        raise
    except Exception as err:
        nonfinite = watch.tripped()
        raise BatchFailed(failure_of(index, samples, y, None if nonfinite else err)) from err
    if watch.tripped():
        raise BatchFailed(failure_of(index, samples, y, None))
    return record
