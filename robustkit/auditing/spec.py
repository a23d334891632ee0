"""AuditSpec: what decides an audit's numbers, built the same way by every front end.

The CLI (``robustkit audit``), the Python API (``robustkit.audit``), the defense audit
(``audit_defense``) and the pytest plugin each turn their arguments into one :class:`AuditSpec`
and hand it to :func:`robustkit.auditing.engine.run_audit`; what they leave out comes from the
one table of defaults, :data:`DEFAULTS`. The resume manifest and run.json record the spec (with
what was loaded: weights and data digests) under one versioned schema, :data:`SCHEMA`, which
:func:`check_run_record` checks when a saved result is read back.

No torch here: the CLI's option defaults read this module while ``robustkit --help`` loads
nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustkit.access_levels import check_access
from robustkit.auditing.probe_modes import check_mode
from robustkit.errors import RobustkitError

if TYPE_CHECKING:
    from robustkit.attacks import Attack

SCHEMA = 3  # the layout of manifest.json and run.json; older files are refused, never guessed
NORMS = ("linf", "l2", "l1", "gaussian")


@dataclass(frozen=True)
class Budgets:
    """Budgets per norm (any order; the plan sorts them): L-inf, L2 and L1 radii and Gaussian
    sigmas. None: the default budgets of that norm where an attack of that norm is named, none
    otherwise; an empty tuple: no attack of that norm."""

    linf: tuple[float, ...] | None = None
    l2: tuple[float, ...] | None = None
    l1: tuple[float, ...] | None = None
    gaussian: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Defaults:
    """The one table of defaults: the CLI's options, ``robustkit.audit``'s and ``audit_defense``'s
    keywords and the pytest plugin read it. Attack hyper-parameters (steps, restarts) are not
    here: an attack named without them keeps its registry default (PGD 40 steps, APGD 100)."""

    model: str = "zoo:mnist-cnn"
    dataset: str = "mnist-sample"
    num_samples: int = 100  # a seeded subset of this many images (a smaller dataset: all of it)
    eps: tuple[float, ...] = (0.1, 0.2, 0.3)  # L-inf budgets
    eps_l2: tuple[float, ...] = (1.0, 2.0, 3.0)  # ... where an L2 attack is named
    eps_l1: tuple[float, ...] = (5.0, 10.0, 15.0)  # ... an L1 attack
    sigmas: tuple[float, ...] = (0.1, 0.3, 0.5)  # ... Gaussian noise
    suite: str = "standard"  # run as a cascade when no attack is named
    diagnostics: tuple[str, ...] = ("fgsm", "pgd-linf", "pgd-l2", "gaussian-noise")  # beside it
    randomized_suite: str = "rand"  # the suite for a model the randomness probe finds randomized
    defense_attacks: tuple[str, ...] = ("latent-overpowered",)  # a defense audit adds these
    check_attack: str = "pgd-linf"  # a pytest robustness requirement without attack or suite
    batch_size: int = 500
    seed: int = 0
    precision: str = "fp32"
    eot_samples: int = 20  # passes EOT averages a randomized model's loss over (AutoAttack's)
    defense_eot_samples: int = 8  # ... and a defense's logits (each pass is a whole projection)
    eval_passes: int = 20  # fresh passes that judge each point of a randomized model
    noise_probes: str = "auto"
    corruption_table: str = "cifar10"
    examples_per_attack: int = 4
    access: str = "gradients"  # what the attacks may ask of the model (black-box: scores, labels)
    # run on a surrogate and replayed on the target, where the access is restricted (per norm)
    transfer_attacks: tuple[str, ...] = ("pgd-linf", "pgd-l2")
    query_budgets: tuple[int, ...] = (100, 1000, 10_000)  # the query curve's budgets
    universal_samples: int = 1000  # images a universal perturbation is crafted on (--universal)

    def budgets(self, norm: str) -> tuple[float, ...]:
        """The default budgets of ``norm``."""
        values = (self.eps, self.eps_l2, self.eps_l1, self.sigmas)
        return dict(zip(NORMS, values, strict=True))[norm]


DEFAULTS = Defaults()


@dataclass(frozen=True)
class Corruptions:
    """The common corruptions an audit applies: names, severities (1-5) and parameter table."""

    names: list[str]
    severities: list[int]
    table: str = DEFAULTS.corruption_table

    def jobs(self) -> int:
        return len(self.names) * len(self.severities)


@dataclass(frozen=True, kw_only=True)
class AuditSpec:
    """What decides an audit's numbers, whichever front end asked for it.

    ``model`` and ``dataset`` name what the front end loads; ``num_samples`` is a seeded subset
    (None: :attr:`Defaults.num_samples`, or every image of a dataset no larger; 0: every image)
    and ``indices`` exactly those dataset indices, in that order. ``attacks`` None runs the
    diagnostics beside the ``standard`` suite (the ``rand`` suite for a randomized model);
    ``steps`` and ``restarts`` None keep each named attack's own. ``eot_samples`` and
    ``eval_passes`` None follow the protocol (:attr:`Defaults.eot_samples` and
    :attr:`Defaults.eval_passes` for a randomized model, one pass otherwise). ``randomized``:
    None lets the randomness probe decide, False refuses a randomized model, True accepts one.
    ``access`` is what the attacks may ask of the model (``gradients``, ``scores`` or
    ``labels``: :mod:`robustkit.auditing.blackbox`); ``max_queries`` caps every query-based
    attack per point (None: each attack's own budget); ``surrogate`` names the model that
    attacks needing more than ``access`` run on, their adversarials replayed on the target
    (``robustkit.audit`` takes a spec string or a module).
    """

    model: str = DEFAULTS.model
    dataset: str = DEFAULTS.dataset
    num_samples: int | None = None
    indices: tuple[int, ...] | None = None
    attacks: tuple[str | Attack, ...] | None = None
    suite: str | None = None
    steps: int | None = None
    restarts: int | None = None
    budgets: Budgets = field(default_factory=lambda: Budgets(linf=DEFAULTS.eps))
    corruptions: Corruptions | None = None
    batch_size: int = DEFAULTS.batch_size
    seed: int = DEFAULTS.seed
    precision: str = DEFAULTS.precision
    channels_last: bool = False
    compile: bool = False
    eot_samples: int | None = None
    eval_passes: int | None = None
    randomized: bool | None = None
    noise_probes: str = DEFAULTS.noise_probes
    examples_per_attack: int = DEFAULTS.examples_per_attack
    access: str = DEFAULTS.access
    max_queries: int | None = None
    surrogate: str | None = None

    def __post_init__(self) -> None:
        if self.indices is not None and self.num_samples is not None:
            raise RobustkitError(
                "indices lists the images to audit and num_samples draws a seeded subset: give one"
            )
        names = ("steps", "restarts", "batch_size", "eot_samples", "eval_passes", "max_queries")
        for name in names:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise RobustkitError(f"{name} must be >= 1, got {value}")
        for name in ("num_samples", "examples_per_attack", "seed"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise RobustkitError(f"{name} must be >= 0, got {value}")
        object.__setattr__(self, "noise_probes", check_mode(self.noise_probes))
        check_access(self.access)
        if self.surrogate is not None and self.access == "gradients":
            raise RobustkitError(
                "a surrogate model serves a black-box audit: restrict the access to scores or "
                "labels, or drop the surrogate"
            )


# run.json and manifest.json hold these (schema 3); the manifest is what decides the numbers
MANIFEST_FIELDS = (
    "schema",
    "model",
    "weights",
    "execution",
    "outputs",
    "dataset",
    "samples",
    "suite",
    "attacks",
    "budgets",
    "corruptions",
    "batch_size",
    "seed",
    "eot_samples",
    "eval_passes",
    "examples_per_attack",
    "sample_column",
    "access",
)
# ... and run.json, beside it, what the run found and where it ran
RUN_FIELDS = (
    *MANIFEST_FIELDS,
    "model_info",
    "classes",
    "num_samples",
    "indices",
    "indices_sha256",
    "subset",
    "evaluation",
    "protocol",
    "noise_probes",
    "model_checks",
    "eps_probes",
    "query_curve",
    "date",
    "device",
    "versions",
    "command",
    "leaderboard",
    "wall_time_s",
)


def check_run_record(record: Mapping[str, Any], path: Path) -> None:
    """Refuse a run.json of another schema, or missing a field of this one, in one line."""
    found = record.get("schema")
    missing = [name for name in RUN_FIELDS if name not in record]
    if found == SCHEMA and not missing:
        return
    if found != SCHEMA:
        written = "no schema" if found is None else f"schema {found}"
        detail = f"{written}; this robustkit reads schema {SCHEMA}"
    else:
        detail = f"schema {SCHEMA} but no {', '.join(missing)}"
    raise RobustkitError(
        f"{path} was written by another robustkit version ({detail}): re-run the audit "
        f"(robustkit audit --out {path.parent}) to report it"
    )
