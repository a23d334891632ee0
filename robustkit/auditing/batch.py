"""One batch through the plan: every threat, every norm, independent attacks and the cascade,
budgets nested, eps probes, rows and examples recorded; halved when memory runs out."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from rich.progress import Progress, TaskID
from torch import Tensor, nn

from robustkit.attacks import Attack
from robustkit.attacks.base import AttackResult, perturbation_norm
from robustkit.auditing.examples import Picked, pick_examples
from robustkit.auditing.failures import is_out_of_memory
from robustkit.auditing.outcome import UNBROKEN, Outcome
from robustkit.auditing.plan import Corruptions, Plan
from robustkit.auditing.results import CORRUPTION, adversarial_key
from robustkit.auditing.rows import RowStore
from robustkit.auditing.threats import Threat
from robustkit.corruptions import corrupt, list_corruptions
from robustkit.models.passes import Score, score

log = logging.getLogger(__name__)

EPS_PROBE_SIZE = 16  # points per batch re-attacked at the next eps to catch a failing attack
RADIUS_SLACK = 1e-6  # float tolerance when a minimum-norm radius is compared with a budget


def batch_seed(seed: int, index: int) -> int:
    """The seed of batch ``index``: a function of (seed, index) alone, so that a batch draws the
    same random numbers whichever process attacks it and however many batches ran before."""
    state = np.random.SeedSequence([seed % 2**64, index]).generate_state(1, dtype=np.uint64)
    return int(state[0])


def corruption_seed(seed: int, first_sample: int, name: str, severity: int) -> int:
    """The seed of one corruption at one severity on the chunk starting at ``first_sample``: the
    same whichever other corruptions the audit applies."""
    key = [seed % 2**64, first_sample, list_corruptions().index(name), severity]
    return int(np.random.SeedSequence(key).generate_state(1, dtype=np.uint64)[0])


@dataclass
class BatchRecord:
    """What one batch yields: its rows, the eps probes run on it and (first batch only) a few
    example adversarials."""

    size: int
    rows: RowStore = field(default_factory=RowStore)
    examples: list[Picked] = field(default_factory=list)
    eps_probes: list[dict[str, Any]] = field(default_factory=list)
    # randomized models: per row key (adversarial_key), the batch's kept adversarials
    adversarials: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class BatchRunner:
    """Attacks one batch at a time in chunks that fit in memory: out of memory (CUDA's or the
    CPU's), the chunk is halved (down to one image, where the error propagates) and the batch
    starts again from its own seed, so the rows are the ones an unsplit batch gives whenever the
    attacks draw no random numbers."""

    plan: Plan
    threats: Sequence[Threat]
    seed: int
    bar: Progress
    task: TaskID
    examples_per_attack: int
    limit: int  # the largest chunk known to fit
    halved: bool = False

    def batch(self, index: int, offset: int, samples: Tensor, x: Tensor, y: Tensor) -> BatchRecord:
        """Batch ``index`` (first item at position ``offset``, its items the images ``samples``
        of the dataset) through the plan for every threat."""
        completed = next(t.completed for t in self.bar.tasks if t.id == self.task)
        while True:
            torch.manual_seed(batch_seed(self.seed, index))
            self.bar.update(self.task, completed=completed)
            try:
                return self._chunks(offset, samples, x, y)
            except (torch.cuda.OutOfMemoryError, MemoryError, RuntimeError) as err:
                if not is_out_of_memory(err) or min(self.limit, len(y)) == 1:
                    raise
                where = "CUDA" if isinstance(err, torch.cuda.OutOfMemoryError) else "the CPU"
            self._halve(len(y), where)

    def _chunks(self, offset: int, samples: Tensor, x: Tensor, y: Tensor) -> BatchRecord:
        record = BatchRecord(size=len(y))
        for start in range(0, len(y), self.limit):
            end = min(start + self.limit, len(y))
            chunk = _Batch(
                x[start:end],
                y[start:end],
                offset + start,
                samples[start:end],
                record,
                self.bar,
                self.task,
                self.examples_per_attack,
                share=(end - start) / len(y),
                passes=self.plan.eval_passes,
            )
            for threat in self.threats:
                chunk.attack(self.plan, threat)
            if self.plan.corruptions is not None:
                chunk.corrupt(self.plan.corruptions, self.threats[0], self.seed)
        return record

    def _halve(self, size: int, where: str) -> None:
        self.limit = (min(self.limit, size) + 1) // 2
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if not self.halved:
            log.warning(
                "%s ran out of memory on a batch of %d images: going on in chunks of at most "
                "%d (a smaller --batch-size avoids the retry)",
                where,
                size,
                self.limit,
            )
            self.halved = True


@dataclass(frozen=True)
class _Found:
    """An attack's verdict on the points it ran on, scored on the threat's scoring model
    (randomized: over fresh passes, ``correct`` of which classify the adversarial correctly)."""

    success: Tensor
    adv_pred: Tensor
    delta: Tensor
    radius: Tensor | None
    x_adv: Tensor
    correct: Tensor | None = None
    queries: Tensor | None = None  # per point, the model queries spent (None: not counted)


@dataclass
class _Batch:
    """One batch of inputs going through the plan."""

    x: Tensor
    y: Tensor
    offset: int  # position of the first item among the audited ones
    samples: Tensor  # the items' dataset indices (CPU)
    record: BatchRecord
    bar: Progress
    task: TaskID
    examples_per_attack: int
    share: float  # of its whole batch, for the progress bar
    passes: int = 1  # fresh passes that judge a point (more than one: a randomized model)
    clean: Score | None = None  # randomized: the inputs scored over those passes

    def attack(self, plan: Plan, threat: Threat) -> None:
        if self.passes > 1:
            self.clean = score(threat.score, self.x, self.y, self.passes)
            clean_pred, correct = self.clean.pred, self.clean.correct > 0
        else:
            clean_pred = _predict(threat.score, self.x)
            correct = clean_pred == self.y
        for norm, budgets in plan.budgets.items():
            found = {eps: self._unattacked(clean_pred) for eps in budgets}
            for attack in threat.attacks(plan.independent, norm):
                for eps, outcome in self._sweep(threat, attack, budgets, clean_pred, correct):
                    self._emit(threat, threat.label(attack), norm, eps, clean_pred, outcome)
                    found[eps].absorb(outcome)
            cascade = threat.attacks(plan.cascade, norm)
            if cascade:
                self._cascade(threat, cascade, norm, budgets, clean_pred, correct, found)

    def corrupt(self, corruptions: Corruptions, threat: Threat, seed: int) -> None:
        """Every corruption at every severity on the whole chunk, one row per sample each. Every
        image counts, not only the clean-correct ones (RobustBench's corruption accuracy is the
        accuracy on corrupted images); a row is "broken" where a clean-correct image turns wrong."""
        clean_pred = _predict(threat.score, self.x)
        for name in corruptions.names:
            for severity in corruptions.severities:
                self.bar.update(self.task, description=f"{name} severity {severity}")
                generator = torch.Generator(device=self.x.device)
                generator.manual_seed(corruption_seed(seed, self.offset, name, severity))
                corrupted = corrupt(self.x, name, severity, generator, table=corruptions.table)
                outcome = Outcome.unattacked(clean_pred)
                outcome.adv_pred = _predict(threat.score, corrupted)
                outcome.broken = (outcome.adv_pred != self.y) & (clean_pred == self.y)
                outcome.broken_by = [name if b else UNBROKEN for b in outcome.broken.tolist()]
                self._emit(threat, name, CORRUPTION, float(severity), clean_pred, outcome)
                self.bar.advance(self.task, self.share)

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
        outcome = self._unattacked(clean_pred)
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
            outcome = self._unattacked(clean_pred)
            if found is not None:
                within = radius[indices] <= eps + RADIUS_SLACK
                outcome.record(
                    indices,
                    within,
                    found.adv_pred,
                    found.delta,
                    attack=label,
                    norm=attack.norm,
                    correct=None
                    if found.correct is None
                    else found.correct.masked_fill(~within, self.passes),
                    x_adv=found.x_adv,
                    queries=found.queries,
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
        before it; the rows are cumulative. Budgets run from the largest down: a point the whole
        suite could not break in a larger ball is taken to hold in the smaller ones (checked on
        a few such points per budget, and attacked in full where the check fails), and a point
        broken within a smaller eps counts as broken at every larger one. A randomized model's
        points are attacked in full at every budget (a point partly broken in the larger ball
        tells nothing of the smaller one)."""
        snapshots: dict[float, list[Outcome]] = {}
        held = torch.zeros_like(correct)  # the whole suite failed on these at the last budget
        larger: float | None = None
        for eps in sorted(budgets, reverse=True):
            state = self._unattacked(clean_pred)
            state.absorb(found[eps])
            for done in snapshots.values():
                state.absorb(done[-1], within=eps + RADIUS_SLACK)
            inferred = held & ~state.broken
            probe = inferred.nonzero().squeeze(1)[:EPS_PROBE_SIZE]
            inferred[probe] = False
            snapshots[eps] = self._pass(threat, cascade, eps, correct & ~inferred, state)
            if larger is not None and probe.numel():
                failed = int(snapshots[eps][-1].broken[probe].sum())
                self._record_held_probe(threat, norm, larger, eps, int(probe.numel()), failed)
                if failed and bool(inferred.any()):  # the inference failed here: attack them all
                    fresh = self._unattacked(clean_pred)
                    extra = self._pass(threat, cascade, eps, inferred, fresh, advance=False)
                    for mine, theirs in zip(snapshots[eps], extra, strict=True):
                        mine.absorb(theirs)
            if self.clean is None:
                held = correct & ~snapshots[eps][-1].broken
            larger = eps
        ascending = sorted(snapshots)
        for i, eps in enumerate(ascending):
            for smaller in ascending[:i]:  # an adversarial within a smaller eps is one here
                for mine, theirs in zip(snapshots[eps], snapshots[smaller], strict=True):
                    mine.absorb(theirs)
            for attack, state in zip(cascade, snapshots[eps], strict=True):
                self._emit(threat, threat.label(attack), norm, eps, clean_pred, state)

    def _pass(
        self,
        threat: Threat,
        cascade: list[Attack],
        eps: float,
        todo: Tensor,
        state: Outcome,
        *,
        advance: bool = True,
    ) -> list[Outcome]:
        """The suite once at ``eps`` over the ``todo`` points still unbroken in ``state``; the
        state after each attack."""
        after = []
        for attack in cascade:
            label = threat.label(attack)
            self._run(threat, attack, eps, todo & ~state.broken, state, label, advance=advance)
            after.append(state.copy())
        return after

    def _record_held_probe(
        self, threat: Threat, norm: str, larger: float, eps: float, probed: int, failed: int
    ) -> None:
        """How many of the points the suite could not break at ``larger`` it broke at ``eps``."""
        self.record.eps_probes.append(
            {
                "kind": "held",
                "model": threat.model_name,
                "attack": "suite",
                "norm": norm,
                "eps_from": larger,
                "eps_to": eps,
                "probed": probed,
                "failed": failed,
            }
        )

    def _run(
        self,
        threat: Threat,
        attack: Attack,
        eps: float,
        todo: Tensor,
        outcome: Outcome,
        label: str,
        *,
        advance: bool = True,
    ) -> None:
        """Run ``attack`` on the ``todo`` points and record the ones it breaks in ``outcome``."""
        indices = todo.nonzero().squeeze(1)
        if indices.numel():
            found = self._attack(threat, attack, eps, indices, label)
            outcome.record(
                indices,
                found.success,
                found.adv_pred,
                found.delta,
                attack=label,
                norm=attack.norm,
                correct=found.correct,
                x_adv=found.x_adv,
                queries=found.queries,
            )
        if advance:
            self.bar.advance(self.task, self.share)

    def _attack(
        self, threat: Threat, attack: Attack, eps: float, indices: Tensor, label: str
    ) -> _Found:
        """The attack on the points ``indices``, scored on the threat's scoring model (the first
        batch keeps a few examples of what it broke)."""
        self.bar.update(self.task, description=f"{label} eps={eps:g}")
        x, y = self.x[indices], self.y[indices]
        result = attack(threat.craft, x, y, eps=eps)
        adv_pred, correct = self._verdict(threat, result, y)
        found = _Found(
            success=adv_pred != y if correct is None else correct == 0,
            adv_pred=adv_pred,
            delta=result.x_adv - x,
            radius=result.radius,
            x_adv=result.x_adv,
            correct=correct,
            queries=_queries(threat, result, len(y)),
        )
        if self.offset == 0 and self.examples_per_attack > 0 and threat.prefix in (None, "bpda"):
            self.record.examples.append(
                pick_examples(
                    threat.score,
                    label,
                    eps,
                    self.samples[indices.cpu()],
                    x,
                    y,
                    result.x_adv,
                    found.adv_pred,
                    found.success if correct is None else 2 * correct < self.passes,
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
        pred, correct = self._verdict(threat, result, self.y[probe])
        failed = pred == self.y[probe] if correct is None else correct > 0
        self.record.eps_probes.append(
            {
                "model": threat.model_name,
                "attack": threat.label(attack),
                "norm": attack.norm,
                "eps_from": smaller,
                "eps_to": larger,
                "probed": int(probe.numel()),
                "failed": int(failed.sum()),
            }
        )

    def _unattacked(self, clean_pred: Tensor) -> Outcome:
        """The outcome before any attack (randomized: the inputs as the kept adversarials)."""
        if self.clean is None:
            return Outcome.unattacked(clean_pred)
        return Outcome.unattacked(clean_pred, x=self.x, correct=self.clean.correct)

    def _verdict(
        self, threat: Threat, result: AttackResult, y: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        """The predictions of the scoring model on an attack's adversarials (randomized: the
        commonest over fresh passes, with the count of correct passes)."""
        own = threat.score is threat.craft
        if self.passes == 1:
            return (result.adv_pred if own else _predict(threat.score, result.x_adv)), None
        if own and result.correct_passes is not None:
            return result.adv_pred, result.correct_passes
        scored = score(threat.score, result.x_adv, y, self.passes)
        return scored.pred, scored.correct

    def _emit(
        self,
        threat: Threat,
        label: str,
        norm: str,
        eps: float,
        clean_pred: Tensor,
        outcome: Outcome,
    ) -> None:
        final = None
        if self.clean is not None and outcome.x_adv is not None:
            # the number reported: the kept adversarials scored once more, on fresh passes that
            # took no part in choosing them
            final = score(threat.score, outcome.x_adv, self.y, self.passes).correct
            key = adversarial_key(threat.model_name, label, norm, eps)
            saved = self.record.adversarials  # chunks of one batch come in order
            kept = outcome.x_adv.cpu()
            saved[key] = torch.cat([saved[key], kept]) if key in saved else kept
        self.record.rows.add(
            model=threat.model_name,
            attack=label,
            norm=norm,
            eps=eps,
            samples=self.samples,
            labels=self.y,
            clean_pred=clean_pred,
            outcome=outcome,
            passes=self.passes,
            clean_correct=None if self.clean is None else self.clean.correct,
            final_correct=final,
        )


def _queries(threat: Threat, result: AttackResult, count: int) -> Tensor | None:
    """Per point, the queries the attack cost the threat's scoring model: one replay each for
    adversarials crafted elsewhere (a surrogate's), else what a query-based attack counted."""
    if threat.replayed:
        return torch.ones(count, device=result.x_adv.device)
    return result.queries


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor) -> Tensor:
    """One forward pass's predicted classes."""
    return model(x).argmax(dim=1)
