"""The audit engine: a plan of attacks run over a dataset, batch by batch, for every threat.

Independent attacks run alone on every correctly classified point; a suite runs as a cascade on
the points still robust (AutoAttack's ``robust_flags``); budgets are nested (a point broken at eps
is broken at every larger eps and never attacked again). One tidy row per sample x attack x eps.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from torch import Tensor, nn
from torch.utils.data import Dataset

import robustkit
from robustkit.attacks import Attack, pgd_from_noise, pure_noise_probe
from robustkit.attacks.base import perturbation_norm
from robustkit.auditing.checks import Flag
from robustkit.auditing.distributed import barrier, my_batches
from robustkit.auditing.examples import pick_examples
from robustkit.auditing.inputs import Batches, describe_model, resolve_data, resolve_model
from robustkit.auditing.outcome import Outcome
from robustkit.auditing.plan import DEFAULT_BUDGETS, Plan, plan_audit
from robustkit.auditing.probes import probe_model
from robustkit.auditing.progress import (
    BatchRecord,
    EngineRun,
    ProgressStore,
    dataset_digest,
    module_digest,
    open_progress,
)
from robustkit.auditing.results import AuditResult
from robustkit.auditing.suites import get_suite
from robustkit.data import DatasetInfo
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel, check_classifier
from robustkit.models.wrapper import device_of

log = logging.getLogger(__name__)

EPS_PROBE_SIZE = 16  # points per batch re-attacked at the next eps to catch a failing attack
RADIUS_SLACK = 1e-6  # float tolerance when a minimum-norm radius is compared with a budget


@dataclass(frozen=True)
class Threat:
    """How one family of attacks reaches the model: the module the attacks run on (``craft``) and
    the one whose prediction decides success (``score``). A plain audit has one threat with both
    the model itself; a defense audit adds oblivious, BPDA and EOT threats."""

    prefix: str | None
    craft: nn.Module
    score: nn.Module
    model_name: str
    adapt: Callable[[Attack], Attack | None] = lambda attack: attack  # None: not in this family

    def label(self, attack: Attack) -> str:
        return f"{self.prefix}:{attack.name}" if self.prefix else attack.name

    def attacks(self, attacks: Iterable[Attack], norm: str) -> list[Attack]:
        """The attacks of ``norm`` this family runs, as it runs them."""
        adapted = (self.adapt(a) for a in attacks if a.norm == norm)
        return [a for a in adapted if a is not None]


def audit(
    model: str | nn.Module = "zoo:mnist-cnn",
    data: str | DatasetInfo | Dataset | tuple[Tensor, Tensor] = "mnist-sample",
    *,
    attacks: Iterable[str | Attack] | None = None,
    suite: str | None = None,
    eps: Sequence[float] = DEFAULT_BUDGETS["linf"],
    eps_l2: Sequence[float] | None = None,
    sigmas: Sequence[float] | None = None,
    steps: int | None = None,
    restarts: int | None = None,
    num_samples: int | None = None,
    batch_size: int = 500,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = False,
    examples_per_attack: int = 4,
    noise_probes: bool = True,
    progress_dir: str | Path | None = None,
    resume: bool = False,
) -> AuditResult:
    """Attack ``model`` on the correctly classified samples of ``data`` at every budget.

    With neither ``attacks`` nor ``suite``, the ``standard`` suite (AutoAttack's order) runs as a
    cascade for the worst case, after the diagnostics FGSM, PGD and Gaussian noise, each run
    alone. ``attacks`` alone runs just those attacks, each alone; ``suite`` adds that suite's
    cascade. The suite covers L-inf, and L2 when ``eps_l2`` is given; ``eps_l2`` and ``sigmas``
    default to :data:`DEFAULT_BUDGETS` for the attacks of their norm. A point broken at one eps
    counts as broken at every larger eps of the same norm and is not attacked again. Memory is
    bounded by ``batch_size``; the first batch also yields a few example adversarials; with
    ``noise_probes`` the model also classifies pure noise.

    Each finished batch goes to ``progress_dir`` (a temporary folder when None); with ``resume``
    the batches found there are not attacked again and the result is the one an uninterrupted
    run gives. Under an initialized torch.distributed process group each process attacks its
    share of the batches (``progress_dir`` must be a folder all of them see) and returns the
    whole result.
    """
    started = time.perf_counter()
    torch.manual_seed(seed)
    robust_model = resolve_model(model, device)
    info = resolve_data(data, num_samples, seed, model=robust_model)
    plan = plan_audit(
        attacks, suite, steps=steps, restarts=restarts, eps=eps, eps_l2=eps_l2, sigmas=sigmas
    )
    batches = Batches(info.dataset, batch_size)
    first_x, first_y = batches.first()
    num_classes = check_classifier(robust_model, first_x[:2].to(robust_model.device))
    model_flags = probe_model(robust_model, first_x.to(robust_model.device), first_y)
    threat = Threat(None, robust_model, robust_model, robust_model.name)
    manifest = {
        "model": robust_model.name,
        "weights": module_digest(robust_model),
        "execution": dataclasses.asdict(robust_model.execution),
        "dataset": info.name,
        "samples": dataset_digest(info.dataset),
        **engine_manifest(plan, batch_size, seed),
        "examples_per_attack": examples_per_attack,
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
        )
    config = _config(robust_model, info, plan, run, model_flags, batch_size=batch_size, seed=seed)
    audit_result = AuditResult(frame=run.frame, config=config, examples=run.examples)
    if noise_probes:
        torch.manual_seed(seed)  # the same noise however the batches ran, and wherever
        audit_result.noise_grid = pure_noise_probe(
            robust_model, info.input_shape, class_names=info.classes or None
        )
        audit_result.noise_targets = pgd_from_noise(robust_model, info.input_shape, num_classes)
    config["wall_time_s"] = round(time.perf_counter() - started, 3)
    return audit_result


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
        "suite": plan.suite,
        "evaluation": plan.suite is None or get_suite(plan.suite).evaluation,
        "attacks": plan.describe(),
        "budgets": plan.budgets,
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
    return {
        "suite": plan.suite,
        "attacks": plan.describe(),
        "budgets": plan.budgets,
        "batch_size": batch_size,
        "seed": seed,
    }


def batch_seed(seed: int, index: int) -> int:
    """The seed of batch ``index``: a function of (seed, index) alone, so that a batch draws the
    same random numbers whichever process attacks it and however many batches ran before."""
    state = np.random.SeedSequence([seed % 2**64, index]).generate_state(1, dtype=np.uint64)
    return int(state[0])


def run_engine(
    plan: Plan,
    threats: Sequence[Threat],
    batches: Batches,
    store: ProgressStore,
    *,
    seed: int,
    progress: bool = False,
    examples_per_attack: int = 4,
) -> EngineRun:
    """Run the plan for every threat on the batches this process owns (all of them without a
    process group) that ``store`` does not hold yet, saving each one as it finishes; then put
    every batch together."""
    device = device_of(threats[0].score)
    done = store.finished()
    todo = [index for index in my_batches(len(batches)) if index not in done]
    with progress_bar(progress) as bar:
        task = bar.add_task("attacking", total=plan.jobs() * len(threats) * len(todo))
        runner = _Runner(plan, threats, seed, bar, task, examples_per_attack, limit=batches.size)
        for index, (x, y) in zip(todo, batches.load(todo), strict=True):
            record = runner.batch(index, batches.start(index), x.to(device), y.to(device))
            store.write(index, record)
    barrier()  # every process has saved its share
    return store.assemble(len(batches))


@dataclass
class _Runner:
    """Attacks one batch at a time in chunks that fit in memory: on CUDA out-of-memory the chunk
    is halved (down to one image) and the batch starts again from its own seed, so the rows are
    the ones an unsplit batch gives whenever the attacks draw no random numbers."""

    plan: Plan
    threats: Sequence[Threat]
    seed: int
    bar: Progress
    task: TaskID
    examples_per_attack: int
    limit: int  # the largest chunk known to fit
    halved: bool = False

    def batch(self, index: int, offset: int, x: Tensor, y: Tensor) -> BatchRecord:
        """Batch ``index`` (first sample ``offset``) through the plan for every threat."""
        completed = next(t.completed for t in self.bar.tasks if t.id == self.task)
        while True:
            torch.manual_seed(batch_seed(self.seed, index))
            self.bar.update(self.task, completed=completed)
            try:
                return self._chunks(offset, x, y)
            except torch.cuda.OutOfMemoryError:
                if min(self.limit, len(y)) == 1:
                    raise RobustkitError(
                        "CUDA ran out of memory on a single image: free the GPU, or audit on "
                        "another device (--device)"
                    ) from None
            self._halve(len(y))

    def _chunks(self, offset: int, x: Tensor, y: Tensor) -> BatchRecord:
        record = BatchRecord(size=len(y))
        for start in range(0, len(y), self.limit):
            end = min(start + self.limit, len(y))
            chunk = _Batch(
                x[start:end],
                y[start:end],
                offset + start,
                record,
                self.bar,
                self.task,
                self.examples_per_attack,
                share=(end - start) / len(y),
            )
            for threat in self.threats:
                chunk.attack(self.plan, threat)
        return record

    def _halve(self, size: int) -> None:
        self.limit = (min(self.limit, size) + 1) // 2
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if not self.halved:
            log.warning(
                "CUDA ran out of memory on a batch of %d images: going on in chunks of at most "
                "%d (a smaller --batch-size avoids the retry)",
                size,
                self.limit,
            )
            self.halved = True


@dataclass(frozen=True)
class _Found:
    """An attack's verdict on the points it ran on, scored on the threat's scoring model."""

    success: Tensor
    adv_pred: Tensor
    delta: Tensor
    radius: Tensor | None


@dataclass
class _Batch:
    """One batch of inputs going through the plan."""

    x: Tensor
    y: Tensor
    offset: int
    record: BatchRecord
    bar: Progress
    task: TaskID
    examples_per_attack: int
    share: float  # of its whole batch, for the progress bar

    def attack(self, plan: Plan, threat: Threat) -> None:
        clean_pred = _predict(threat.score, self.x)
        correct = clean_pred == self.y
        for norm, budgets in plan.budgets.items():
            found: dict[float, Outcome] = {eps: Outcome.unattacked(clean_pred) for eps in budgets}
            for attack in threat.attacks(plan.independent, norm):
                for eps, outcome in self._sweep(threat, attack, budgets, clean_pred, correct):
                    self._emit(threat, threat.label(attack), norm, eps, clean_pred, outcome)
                    found[eps].absorb(outcome)
            cascade = threat.attacks(plan.cascade, norm)
            if cascade:
                self._cascade(threat, cascade, norm, budgets, clean_pred, correct, found)

    def _sweep(
        self,
        threat: Threat,
        attack: Attack,
        budgets: list[float],
        clean_pred: Tensor,
        correct: Tensor,
    ) -> Iterator[tuple[float, Outcome]]:
        """One attack alone over ascending budgets: a point broken at one eps stays broken at the
        larger ones (its adversarial lies in their balls) and is not attacked again."""
        if attack.minimum_norm:
            yield from self._minimum_norm(threat, attack, budgets, clean_pred, correct)
            return
        outcome = Outcome.unattacked(clean_pred)
        previous: float | None = None
        for eps in budgets:
            if previous is not None and attack.norm != "gaussian":
                self._probe_larger_eps(threat, attack, outcome, previous, eps)
            self._run(threat, attack, eps, correct & ~outcome.broken, outcome, threat.label(attack))
            previous = eps
            yield eps, outcome.copy()

    def _minimum_norm(
        self,
        threat: Threat,
        attack: Attack,
        budgets: list[float],
        clean_pred: Tensor,
        correct: Tensor,
    ) -> Iterator[tuple[float, Outcome]]:
        """A minimum-norm attack runs once, capped at the largest budget; each sample's radius
        (its smallest adversarial's norm) decides every smaller budget."""
        label = threat.label(attack)
        indices = correct.nonzero().squeeze(1)
        radius = torch.where(correct, float("inf"), 0.0).to(self.x)
        found = None
        if indices.numel():
            found = self._attack(threat, attack, budgets[-1], indices, label)
            sizes = perturbation_norm(found.delta, attack.norm)
            radius[indices] = torch.where(found.success, sizes, float("inf"))
        for eps in budgets:
            outcome = Outcome.unattacked(clean_pred)
            if found is not None:
                within = radius[indices] <= eps + RADIUS_SLACK
                outcome.record(
                    indices, within, found.adv_pred, found.delta, attack=label, norm=attack.norm
                )
            outcome.radius = radius
            self.bar.advance(self.task, self.share)
            yield eps, outcome

    def _cascade(
        self,
        threat: Threat,
        cascade: list[Attack],
        norm: str,
        budgets: list[float],
        clean_pred: Tensor,
        correct: Tensor,
        found: dict[float, Outcome],
    ) -> None:
        """The suite in order, each attack only on the points still robust after the attacks
        before it, at this eps and every smaller one; the rows are cumulative."""
        state = Outcome.unattacked(clean_pred)
        for eps in budgets:
            state.absorb(found[eps])
            for attack in cascade:
                self._run(threat, attack, eps, correct & ~state.broken, state, threat.label(attack))
                self._emit(threat, threat.label(attack), norm, eps, clean_pred, state)

    def _run(
        self,
        threat: Threat,
        attack: Attack,
        eps: float,
        todo: Tensor,
        outcome: Outcome,
        label: str,
    ) -> None:
        """Run ``attack`` on the ``todo`` points and record the ones it breaks in ``outcome``."""
        indices = todo.nonzero().squeeze(1)
        if indices.numel():
            found = self._attack(threat, attack, eps, indices, label)
            outcome.record(
                indices, found.success, found.adv_pred, found.delta, attack=label, norm=attack.norm
            )
        self.bar.advance(self.task, self.share)

    def _attack(
        self, threat: Threat, attack: Attack, eps: float, indices: Tensor, label: str
    ) -> _Found:
        """The attack on the points ``indices``, scored on the threat's scoring model (the first
        batch keeps a few examples of what it broke)."""
        self.bar.update(self.task, description=f"{label} eps={eps:g}")
        x, y = self.x[indices], self.y[indices]
        result = attack(threat.craft, x, y, eps=eps)
        adv_pred = result.adv_pred
        if threat.score is not threat.craft:
            adv_pred = _predict(threat.score, result.x_adv)
        found = _Found(
            success=adv_pred != y,
            adv_pred=adv_pred,
            delta=result.x_adv - x,
            radius=result.radius,
        )
        if self.offset == 0 and self.examples_per_attack > 0 and threat.prefix in (None, "bpda"):
            self.record.examples.append(
                pick_examples(
                    threat.score,
                    label,
                    eps,
                    indices + self.offset,
                    x,
                    y,
                    result.x_adv,
                    found.adv_pred,
                    found.success,
                    self.examples_per_attack,
                )
            )
        return found

    def _probe_larger_eps(
        self, threat: Threat, attack: Attack, outcome: Outcome, smaller: float, larger: float
    ) -> None:
        """Re-attack a few points broken at ``smaller`` at ``larger``: a working attack breaks
        them again. Failures mean its accuracy would rise with eps (a failing attack)."""
        broken = (outcome.broken & (outcome.perturbation <= smaller + 1e-6)).nonzero().squeeze(1)
        probe = broken[:EPS_PROBE_SIZE]
        if probe.numel() == 0:
            return
        result = attack(threat.craft, self.x[probe], self.y[probe], eps=larger)
        pred = result.adv_pred
        if threat.score is not threat.craft:
            pred = _predict(threat.score, result.x_adv)
        self.record.eps_probes.append(
            {
                "model": threat.model_name,
                "attack": threat.label(attack),
                "norm": attack.norm,
                "eps_from": smaller,
                "eps_to": larger,
                "probed": int(probe.numel()),
                "failed": int((pred == self.y[probe]).sum()),
            }
        )

    def _emit(
        self,
        threat: Threat,
        label: str,
        norm: str,
        eps: float,
        clean_pred: Tensor,
        outcome: Outcome,
    ) -> None:
        self.record.rows.add(
            model=threat.model_name,
            attack=label,
            norm=norm,
            eps=eps,
            first_sample=self.offset,
            labels=self.y,
            clean_pred=clean_pred,
            outcome=outcome,
        )


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor) -> Tensor:
    """One forward pass's predicted classes."""
    return model(x).argmax(dim=1)


def progress_bar(enabled: bool) -> Progress:
    """A Rich progress bar on stderr, shown only when asked and stderr is a terminal."""
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=True,
    )
