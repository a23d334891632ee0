"""Attack base class: validate the inputs once, run the subclass's algorithm with the shared
bookkeeping (restarts, the best outcome per point, fresh scoring), check the budget of what it
returns."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from robustkit.attacks.geometry import GEOMETRIES, Geometry, geometry
from robustkit.attacks.runs import Kept, Points, RunOutcome, per_sample
from robustkit.errors import RobustkitError
from robustkit.models.passes import pass_logits
from robustkit.models.wrapper import BOUNDS, device_of

BUDGET_RTOL, BUDGET_ATOL = 1e-5, 1e-6  # rounding a returned adversarial may show, no more


@dataclass(frozen=True)
class AttackResult:
    """Adversarial inputs with, per sample, whether the attack met its goal."""

    x_adv: Tensor
    success: Tensor
    adv_pred: Tensor
    # Minimum-norm attacks: per sample, the norm of the smallest adversarial found (inf if none).
    radius: Tensor | None = None
    # Randomized models: per sample, how many of the attack's fresh scoring passes are correct.
    correct_passes: Tensor | None = None
    # Query-based attacks: per sample, the model queries (inputs forwarded) spent on it, up to
    # its first success or, unbroken, to the end of the attack.
    queries: Tensor | None = None


class BudgetError(RuntimeError):
    """An attack returned an adversarial outside its eps-ball or the pixel box: a bug in the
    attack (every built-in keeps the budget by construction), never in the caller's inputs."""


@dataclass(frozen=True, kw_only=True)
class Attack:
    """An evasion attack. Hyper-parameters are frozen fields; eps and the model come at call time.

    ``norm`` names the budget eps measures: ``"linf"``, ``"l2"``, ``"l1"`` or ``"gaussian"``
    (noise sigma); the ball's geometry (:mod:`robustkit.attacks.geometry`) follows from it.

    The base owns the bookkeeping. A call is a series of runs of ``_single_run`` (the one method
    most attacks write): per aim (``_start``; by default one, the caller's targets) up to
    ``restarts`` runs (the field, where the attack has one), each on the points still unbroken;
    per point the best outcome is kept (:class:`~robustkit.attacks.runs.Kept`). What is returned
    is scored afresh on the model (over ``_judging_passes`` passes) and, for any attack,
    checked against the budget. An attack that is no series of runs overrides ``_run``.

    Declared per attack, for the audit's checks: ``loss`` (the objective maximised: "ce",
    "dlr", "margin", or None; a class attribute or the default of a ``loss`` field, which every
    attack must state), and, where they differ from the defaults here, ``gradient_free``,
    ``minimum_norm`` (seeks the smallest adversarial and reports its radius) and
    ``randomized_ok`` (averages over passes of a randomized model: EOT). ``access`` says what
    the attack needs of the model: ``"gradients"``, ``"scores"`` (outputs, no gradients) or
    ``"labels"`` (the top-1 class only).
    """

    norm: ClassVar[str]
    name: ClassVar[str] = ""
    iterative: ClassVar[bool] = False  # takes an audit's steps and restarts
    needs_generator: ClassVar[bool] = False  # searches a generator's range (``generator=``)
    minimum_norm: ClassVar[bool] = False
    gradient_free: ClassVar[bool] = False
    randomized_ok: ClassVar[bool] = False
    access: ClassVar[str] = "gradients"

    def __call__(
        self,
        model: nn.Module,
        inputs: Tensor,
        labels: Tensor,
        *,
        eps: float,
        targets: Tensor | None = None,
    ) -> AttackResult:
        """Attack ``inputs`` (pixels in [0, 1]); with ``targets``, aim for those classes."""
        points = self._points(model, inputs, labels, targets, eps)
        result = self._run(model, points, float(eps))
        check_budget(self, result.x_adv, points.x0, float(eps))
        return result

    def _points(
        self, model: nn.Module, inputs: Tensor, labels: Tensor, targets: Tensor | None, eps: float
    ) -> Points:
        """A call's inputs, checked once and moved to the model's device, as the points to
        attack; ``eps`` checked against the norm."""
        inputs, labels, targets = validate_inputs(inputs, labels, targets, device_of(model))
        validate_eps(eps, self.norm)
        return Points(x0=inputs, labels=labels, targets=targets)

    def describe(self) -> dict[str, Any]:
        """The name and hyper-parameters, JSON-ready (a module field becomes its name)."""
        fields = {
            field.name: _describe_value(getattr(self, field.name))
            for field in dataclasses.fields(self)
        }
        return {"name": self.name, **fields}

    @property
    def geometry(self) -> Geometry:
        """The geometry of the ball eps measures (L-inf, L2 or L1)."""
        return geometry(self.norm)

    def _run(self, model: nn.Module, points: Points, eps: float) -> AttackResult:
        """The whole call, on checked points already on the model's device."""
        return self._result(model, points, self._search(model, points, eps))

    def _search(self, model: nn.Module, points: Points, eps: float) -> Kept:
        """Every run of the call; per point the best outcome."""
        kept, aims = self._start(model, points, eps)
        for aim in aims:
            self._restarts(model, dataclasses.replace(points, aim=aim), kept, eps=eps)
        return kept

    def _start(
        self, model: nn.Module, points: Points, eps: float
    ) -> tuple[Kept, list[Tensor | None]]:
        """The outcome before any run, and the aims that each get the restarts: here nothing
        broken and one aim, the caller's targets."""
        return Kept.start(points.x0), [points.targets]

    def _restarts(
        self,
        model: nn.Module,
        points: Points,
        kept: Kept,
        *,
        eps: float,
        among: Tensor | None = None,
        **settings: Any,
    ) -> None:
        """Up to ``restarts`` runs, each on the points (of the mask ``among``) still unbroken,
        each outcome kept where it beats the kept one; ``settings`` go to every run."""
        for restart in range(self._tries()):
            todo = kept.open(among)
            if todo.numel() == 0:
                return
            run = self._single_run(model, points.select(todo), eps=eps, restart=restart, **settings)
            kept.update(todo, run)

    def _tries(self) -> int:
        """Runs per aim: the ``restarts`` hyper-parameter where the attack has one."""
        return int(getattr(self, "restarts", 1))

    def _single_run(
        self, model: nn.Module, points: Points, *, eps: float, restart: int, **settings: Any
    ) -> RunOutcome:
        """One run on ``points`` (restart 0 first): per point its adversarial and outcome."""
        raise NotImplementedError(f"{type(self).__name__} must define _single_run or _run")

    def _judging_passes(self) -> int:
        """Fresh passes that judge what a call returns (more for a randomized model)."""
        return 1

    def _result(self, model: nn.Module, points: Points, kept: Kept) -> AttackResult:
        """The kept adversarials (a minimum-norm attack: only those within eps, else the input)
        scored afresh, so that success and adv_pred describe x_adv as the model sees it."""
        x_adv = kept.x_adv
        if self.minimum_norm:
            x_adv = torch.where(per_sample(kept.success, x_adv), x_adv, points.x0)
        passes = self._judging_passes()
        with torch.no_grad():
            preds = pass_logits(model, x_adv, passes).argmax(dim=2)
        goal = preds == points.targets if points.targets is not None else preds != points.labels
        success = goal.all(dim=0)
        radius = None
        if self.minimum_norm:  # a minimum-norm run's objective is minus the norm found
            success = success & kept.success
            radius = torch.where(success, -kept.objective, torch.inf)
        return AttackResult(
            x_adv=x_adv,
            success=success,
            adv_pred=preds.mode(dim=0).values,
            radius=radius,
            correct_passes=(preds == points.labels).sum(dim=0) if passes > 1 else None,
        )


def _describe_value(value: Any) -> Any:
    if isinstance(value, nn.Module):
        return getattr(value, "name", type(value).__name__)
    return value


def validate_inputs(
    inputs: Tensor, labels: Tensor, targets: Tensor | None, device: torch.device
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Check shapes, dtypes and bounds; move everything to ``device``."""
    if not isinstance(inputs, Tensor) or not inputs.is_floating_point():
        raise RobustkitError("inputs must be a floating-point tensor of pixels in [0, 1]")
    if inputs.dim() != 4:
        raise RobustkitError(
            f"inputs must have shape (batch, channels, height, width), got {tuple(inputs.shape)}: "
            "add a batch dimension with x.unsqueeze(0)"
        )
    low, high = BOUNDS
    if inputs.numel() and (inputs.min() < low or inputs.max() > high):
        raise RobustkitError(
            f"pixels outside [{low:g}, {high:g}] (found {inputs.min().item():.3g} to "
            f"{inputs.max().item():.3g}): pass raw pixels scaled to [0, 1] and put the "
            "normalisation inside the model (RobustModel(mean=..., std=...))"
        )
    for name, tensor in (("labels", labels), ("targets", targets)):
        if tensor is None:
            continue
        if tensor.dim() != 1 or len(tensor) != len(inputs) or tensor.is_floating_point():
            raise RobustkitError(
                f"{name} must be a 1-D integer tensor with one class index per input "
                f"({len(inputs)}), got shape {tuple(tensor.shape)} and dtype {tensor.dtype}"
            )
    return (
        inputs.detach().to(device),
        labels.to(device),
        None if targets is None else targets.to(device),
    )


def require_counts(settings: object, *names: str) -> None:
    """Refuse a count hyper-parameter of ``settings`` (an attack's steps, restarts, ...) below 1,
    naming it."""
    for name in names:
        value = getattr(settings, name)
        if value < 1:
            raise RobustkitError(f"{name} must be >= 1, got {value}")


def validate_eps(eps: float, norm: str) -> None:
    """A budget must be non-negative, and an L-inf budget cannot exceed the pixel range."""
    if eps < 0:
        raise RobustkitError(f"eps must be >= 0, got {eps:g}")
    if norm == "linf" and eps > BOUNDS[1] - BOUNDS[0]:
        raise RobustkitError(
            f"an L-inf eps of {eps:g} exceeds the pixel range [0, 1]: use eps <= 1 "
            "(e.g. 8/255 = 0.031 for CIFAR-10, 0.3 for MNIST)"
        )


def is_adversarial(logits: Tensor, labels: Tensor, targets: Tensor | None) -> Tensor:
    """Per sample: the target class is predicted (targeted) or the label is not (untargeted)."""
    pred = logits.argmax(dim=1)
    return pred == targets if targets is not None else pred != labels


def attack_objective(
    logits: Tensor, labels: Tensor, targets: Tensor | None, loss: str = "ce"
) -> Tensor:
    """Per-sample quantity the attacker maximises: CE, margin or DLR, away from the label or
    towards the target.

    DLR (difference of logits ratio, Croce & Hein 2020) is the margin divided by the spread of
    the top logits, so it is invariant to shifting and to positively scaling the logits: it needs
    at least 3 classes, and 4 towards a target.
    """
    if loss == "ce":
        if targets is not None:
            return -F.cross_entropy(logits, targets, reduction="none")
        return F.cross_entropy(logits, labels, reduction="none")
    if loss == "margin":
        cls = targets if targets is not None else labels
        own = logits.gather(1, cls[:, None]).squeeze(1)
        others = logits.scatter(1, cls[:, None], float("-inf")).amax(dim=1)
        return own - others if targets is not None else others - own
    if loss == "dlr":
        return _dlr(logits, labels, targets)
    raise RobustkitError(f"unknown loss {loss!r}: use 'ce', 'margin' or 'dlr'")


def _dlr(logits: Tensor, labels: Tensor, targets: Tensor | None) -> Tensor:
    """Untargeted: -(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3); targeted: -(z_y - z_t) /
    (z_pi1 - (z_pi3 + z_pi4) / 2), with z_pi the logits sorted in decreasing order."""
    needed = 3 if targets is None else 4
    if logits.shape[1] < needed:
        kind = "untargeted" if targets is None else "targeted"
        raise RobustkitError(
            f"the {kind} DLR loss needs at least {needed} classes, the model has "
            f"{logits.shape[1]}: use the CE or margin loss (e.g. apgd-ce) instead"
        )
    top = logits.topk(needed, dim=1).values
    own = logits.gather(1, labels[:, None]).squeeze(1)
    if targets is None:
        others = logits.scatter(1, labels[:, None], float("-inf")).amax(dim=1)
        return (others - own) / (top[:, 0] - top[:, 2] + 1e-12)
    aim = logits.gather(1, targets[:, None]).squeeze(1)
    return (aim - own) / (top[:, 0] - (top[:, 2] + top[:, 3]) / 2 + 1e-12)


def perturbation_norm(delta: Tensor, norm: str) -> Tensor:
    """Per-sample size of a batch of perturbations in ``norm`` (``"linf"``, ``"l2"`` or
    ``"l1"``; noise sigma is measured as the per-pixel RMS)."""
    if norm in GEOMETRIES:
        return GEOMETRIES[norm].distance(delta)
    return delta.flatten(1).pow(2).mean(dim=1).sqrt()


def check_budget(attack: Attack, x_adv: Tensor, inputs: Tensor, eps: float) -> None:
    """Raise :class:`BudgetError` if an adversarial leaves the pixel box or (a norm with a ball)
    the eps-ball around its input by more than rounding.

    A violation is a bug in the attack: projecting it away would hide the bug and return a
    point the attack never scored, so the call fails instead, naming the attack.
    """
    low, high = BOUNDS
    inside = (x_adv >= low - BUDGET_ATOL) & (x_adv <= high + BUDGET_ATOL)  # NaN: outside
    bad = ~inside.flatten(1).all(dim=1)
    size = None
    if attack.norm in GEOMETRIES:
        size = GEOMETRIES[attack.norm].distance(x_adv - inputs)
        bad |= ~(size <= eps * (1 + BUDGET_RTOL) + BUDGET_ATOL)
    if bool(bad.any()):
        largest = (
            f", largest {attack.norm} size {size.max().item():.6g}" if size is not None else ""
        )
        raise BudgetError(
            f"attack {attack.name or type(attack).__name__!r} returned {int(bad.sum())} of "
            f"{len(x_adv)} adversarials outside the pixel box [{low:g}, {high:g}] or its "
            f"{attack.norm} budget eps={eps:g}{largest}: a bug in the attack"
        )


def runner_up_classes(logits: Tensor, labels: Tensor, count: int) -> Tensor:
    """Per sample, the ``count`` classes with the highest logits other than the label, best
    first, shaped (N, count): the targets of AutoAttack's targeted attacks."""
    return logits.scatter(1, labels[:, None], float("-inf")).topk(count, dim=1).indices
