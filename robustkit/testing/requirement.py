"""A robustness requirement (an attack or a suite, a budget, a minimum accuracy), measured by the
evaluator: the worst case over every attack run, with its confidence interval and sanity flags."""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, cast

import pandas as pd
from torch import Tensor, nn
from torch.utils.data import Dataset

from robustkit.attacks import Attack
from robustkit.auditing.checks import CHECKS, Flag, sanity_flags
from robustkit.auditing.engine import execution_of, run_audit
from robustkit.auditing.inputs import build_attack, resolve_data, resolve_model
from robustkit.auditing.results import WORST_CASE, AuditResult
from robustkit.auditing.spec import DEFAULTS, NORMS, AuditSpec, Budgets
from robustkit.auditing.suites import SUITES, Suite, get_suite
from robustkit.auditing.threats import Threats
from robustkit.data import DatasetInfo
from robustkit.errors import RobustkitError
from robustkit.testing import wording

SUITE_NORMS = ("linf", "l2", "l1")
WORST_CLASSES = 3

Data = str | DatasetInfo | Dataset | tuple[Tensor, Tensor]
AttackSpec = str | Attack


@dataclass(frozen=True, kw_only=True)
class Requirement:
    """Robust accuracy of at least ``min_accuracy`` at budget ``eps`` under ``attack`` (one, or a
    sequence of attacks of one norm), under the attacks of ``suite``, or under both: the worst
    case over all of them is what counts.

    ``eps`` is measured in the attacks' norm (L-inf, L2, L1, or the noise sigma); with a suite
    alone, in ``norm`` (``"linf"``, the default, ``"l2"`` or ``"l1"``). Without a suite the
    attack defaults to ``pgd-linf``; ``num_samples``, ``steps`` and ``restarts`` None take the
    audit's defaults (:data:`~robustkit.auditing.spec.DEFAULTS`, each attack's own).
    ``allow_flags`` names sanity-check codes accepted knowingly: any other check of severity
    error fails the requirement whatever the accuracy. Invalid values raise RobustkitError at
    construction, so a bad marker fails at collection.
    """

    eps: float
    min_accuracy: float
    attack: AttackSpec | Sequence[AttackSpec] | None = None  # a sequence is stored as a tuple
    suite: str | None = None
    norm: str | None = None
    num_samples: int | None = None
    steps: int | None = None
    restarts: int | None = None
    allow_flags: Sequence[str] = ()  # stored as a tuple

    def __post_init__(self) -> None:
        if not _is_number(self.eps) or not math.isfinite(self.eps) or self.eps < 0:
            raise RobustkitError(f"eps must be a number >= 0, got {self.eps!r}")
        if not _is_number(self.min_accuracy) or not 0 <= self.min_accuracy <= 1:
            raise RobustkitError(
                f"min_accuracy must be a fraction in [0, 1], got {self.min_accuracy!r} "
                "(write 0.8 for 80%)"
            )
        for name in ("num_samples", "steps", "restarts"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise RobustkitError(f"{name} must be an integer >= 1, got {value!r}")
        if self.attack is None and self.suite is None:
            object.__setattr__(self, "attack", DEFAULTS.check_attack)
        object.__setattr__(self, "attack", _attack_specs(self.attack))
        objects = [a for a in self.attacks if isinstance(a, Attack)]
        if objects and (self.steps, self.restarts) != (None, None):
            raise RobustkitError(
                "steps and restarts go on the attack object when you pass one, "
                f"e.g. {type(objects[0]).__name__}(steps=10)"
            )
        attacks = self.build_attacks()  # unknown names fail here, with close matches
        object.__setattr__(self, "allow_flags", _flag_codes(self.allow_flags))
        if self.norm is not None and self.norm not in SUITE_NORMS:
            raise RobustkitError(
                f"norm must be one of {', '.join(SUITE_NORMS)} (the suite's threat), "
                f"got {self.norm!r}"
            )
        _check_norms(attacks, self.norm)
        if self.suite is not None:
            self._check_suite(attacks)

    def _check_suite(self, attacks: list[Attack]) -> None:
        if not isinstance(self.suite, str):
            raise RobustkitError(f"suite must be one of {', '.join(SUITES)}, got {self.suite!r}")
        suite = get_suite(self.suite)  # an unknown name fails here, with close matches
        norm = self.threat_norm
        if norm not in SUITE_NORMS:
            raise RobustkitError(
                f"suite {suite.name!r} holds L-inf, L2 and L1 attacks, not {norm} ones: check "
                f"{self.attack_label} in a requirement of its own"
            )
        names = [a.name for a in suite.attacks([norm])]
        if not names:
            raise RobustkitError(f"suite {suite.name!r} has no {norm} attacks")
        if not attacks and (self.steps, self.restarts) != (None, None):
            raise RobustkitError(
                f"steps and restarts apply to attack=, and suite {suite.name!r} runs its attacks "
                "at its own settings: drop them, or pick a stronger suite (standard, plus)"
            )
        for attack in attacks:
            if attack.name in names:
                raise RobustkitError(
                    f"attack {attack.name!r} is part of suite {suite.name!r} already: drop "
                    "attack=, or pick an attack outside the suite"
                )

    @property
    def attacks(self) -> tuple[AttackSpec, ...]:
        """The attacks named (none with a suite alone)."""
        return () if self.attack is None else cast(tuple[AttackSpec, ...], self.attack)

    @property
    def attack_label(self) -> str:
        """The attacks' names ('fgsm', 'fgsm,pgd-linf'), or '' with a suite alone."""
        return ",".join(a.name if isinstance(a, Attack) else a for a in self.attacks)

    @property
    def label(self) -> str:
        """What is run, for check keys: 'fgsm', 'suite=quick', 'fgsm suite=quick'."""
        parts = [self.attack_label] if self.attacks else []
        if self.suite is not None:
            parts.append(f"suite={self.suite}")
            if not self.attacks and self.threat_norm != "linf":
                parts.append(f"norm={self.threat_norm}")
        return " ".join(parts)

    @property
    def threat_norm(self) -> str:
        """The norm ``eps`` is measured in."""
        attacks = self.build_attacks()
        return attacks[0].norm if attacks else self.norm or SUITE_NORMS[0]

    def build_attacks(self) -> list[Attack]:
        """The attack objects, with this requirement's steps and restarts (none for a suite
        alone)."""
        return [build_attack(a, steps=self.steps, restarts=self.restarts) for a in self.attacks]

    def get_suite(self) -> Suite | None:
        return None if self.suite is None else get_suite(self.suite)


@dataclass(frozen=True)
class Measurement:
    """What the evaluator measured for one requirement: the worst case over every attack run at
    its budget (one attack's figure when only one ran), and the sanity flags of the run."""

    requirement: Requirement
    result: AuditResult

    @cached_property
    def worst_rows(self) -> pd.DataFrame:
        """One row per sample: robust only if it survived every attack."""
        return self.result.worst_case()

    @cached_property
    def _worst_summary(self) -> pd.Series:
        summary = self.result.summary()
        worst = summary[summary["attack"] == WORST_CASE]
        if len(worst) != 1:
            raise RobustkitError(
                f"expected one worst case (one model, norm and eps), the audit has {len(worst)}"
            )
        return worst.iloc[0]

    @property
    def n(self) -> int:
        """The number of samples (not of rows: several attacks give several rows a sample)."""
        return int(self._worst_summary["n"])

    @property
    def robust(self) -> int:
        return int(self.worst_rows["robust_correct"].sum())

    @property
    def accuracy(self) -> float:
        """The worst-case robust accuracy."""
        return float(self._worst_summary["robust_accuracy"])

    @property
    def ci_low(self) -> float:
        """Lower end of the 95% Clopper-Pearson interval of :attr:`accuracy`."""
        return float(self._worst_summary["ci_low"])

    @property
    def ci_high(self) -> float:
        return float(self._worst_summary["ci_high"])

    @property
    def clean_accuracy(self) -> float:
        return float(self._worst_summary["clean_accuracy"])

    @property
    def evaluation(self) -> bool:
        """False when the suite is only a smoke check."""
        suite = self.requirement.get_suite()
        return suite is None or suite.evaluation

    @cached_property
    def flags(self) -> list[Flag]:
        """Every sanity flag the run raised."""
        return sanity_flags(self.result)

    @property
    def blocking_flags(self) -> list[Flag]:
        """Errors not accepted by ``allow_flags``: the accuracy cannot be trusted."""
        allowed = self.requirement.allow_flags
        return [f for f in self.flags if f.severity == "error" and f.code not in allowed]

    @property
    def meets_accuracy(self) -> bool:
        return self.accuracy >= self.requirement.min_accuracy

    @property
    def passed(self) -> bool:
        """The accuracy clears the bar and no sanity check says it cannot be trusted."""
        return self.meets_accuracy and not self.blocking_flags

    def headline(self) -> str:
        """'robust accuracy 0.842 (95% CI 0.784-0.890), required >= 0.9, n=200'."""
        return wording.headline(
            self.accuracy,
            self.ci_low,
            self.ci_high,
            required=self.requirement.min_accuracy,
            n=self.n,
            suite=self.requirement.suite,
            evaluation=self.evaluation,
        )

    def problems(self) -> list[str]:
        """Why the requirement is not met: the accuracy, then each sanity-check error."""
        problems = []
        if not self.meets_accuracy:
            problems.append(
                f"below the required accuracy: {self.robust} of {self.n} samples robust"
            )
        return problems + [wording.untrusted_line(asdict(f)) for f in self.blocking_flags]

    def flag_records(self) -> list[dict[str, Any]]:
        """Every flag as plain values (code, severity, message), with ``blocking`` (it fails
        the test) and ``allowed`` (an error accepted by ``allow_flags``)."""
        blocking = self.blocking_flags
        return [
            {
                **asdict(flag),
                "blocking": flag in blocking,
                "allowed": flag.severity == "error" and flag not in blocking,
            }
            for flag in self.flags
        ]

    def flag_lines(self) -> list[str]:
        """One line per flag that does not fail the test (warnings, accepted errors)."""
        return [
            wording.flag_line(flag, allowed=flag["allowed"])
            for flag in self.flag_records()
            if not flag["blocking"]
        ]

    @property
    def attack_configs(self) -> list[dict[str, Any]]:
        """Every attack run (its name, hyper-parameters and role), as the audit recorded them."""
        return [dict(attack) for attack in self.result.config["attacks"]]

    @property
    def attack_config(self) -> dict[str, Any]:
        """The one attack of a requirement without a suite (name and hyper-parameters)."""
        configs = self.attack_configs
        if self.requirement.suite is not None or len(configs) != 1:
            raise RobustkitError("a suite or several attacks ran: read attack_configs")
        configs[0].pop("role", None)
        return configs[0]

    @property
    def one_attack(self) -> bool:
        """Whether one attack ran, with no suite."""
        return self.requirement.suite is None and len(self.requirement.attacks) == 1

    def settings(self) -> dict[str, Any]:
        """What a figure depends on besides the model: compared before a baseline is."""
        config = self.result.config
        settings: dict[str, Any] = {}
        if self.one_attack:
            settings["attack"] = self.attack_config
        else:
            if self.requirement.suite is not None:
                settings["suite"] = self.requirement.suite
            settings["attacks"] = self.attack_configs
            settings["norm"] = self.requirement.threat_norm
        return {
            **settings,
            "eps": self.requirement.eps,
            "n": self.n,
            "dataset": config["dataset"],
            "seed": config["seed"],
        }

    def describe(self) -> list[str]:
        """The lines a reviewer needs: attacks and their parameters, model and data, sanity
        flags that do not fail the test, worst classes."""
        config = self.result.config
        lines = [
            *self._attack_lines(),
            f"model: {config['model']} on {config['dataset']}, n={self.n}, "
            f"clean accuracy {self.clean_accuracy:.3f}, seed {config['seed']}, "
            f"device {config['device']}",
            *self.flag_lines(),
            "worst classes (robust accuracy, robust / n):",
        ]
        return lines + [f"  {line}" for line in worst_classes(self.result)]

    def _attack_lines(self) -> list[str]:
        norm, eps = self.requirement.threat_norm, self.requirement.eps
        if self.one_attack:
            attack = self.attack_config
            return [f"attack: {attack.pop('name')}, {norm} eps={eps:g} ({_params(attack)})"]
        suite = self.requirement.get_suite()
        named = self.requirement.attack_label
        if suite is None:
            head = f"over {named}, robust accuracy of each"
        else:
            also = f"{named} and " if named else ""
            head = (
                f"over {also}suite {suite.name} ({suite.description}), robust accuracy after each"
            )
        summary = self.result.summary().set_index("attack")["robust_accuracy"]
        lines = [f"attacks: worst case at {norm} eps={eps:g} {head}:"]
        for attack in self.attack_configs:
            name, role = attack.pop("name"), attack.pop("role", "")
            after = "alone" if role == "independent" else "in the cascade"
            lines.append(f"  {name} ({_params(attack)}): {float(summary[name]):.3f} {after}")
        return lines


def measure(
    requirement: Requirement,
    model: str | nn.Module,
    data: Data,
    *,
    device: str | None = None,
    seed: int = DEFAULTS.seed,
) -> Measurement:
    """Run the audit of the requirement's attacks and suite at its one budget (no noise probes:
    they do not enter the figure judged), built as an AuditSpec like every audit's."""
    robust_model = resolve_model(model, device)
    info = resolve_data(data, None, seed, model=robust_model)
    num_samples = requirement.num_samples
    if num_samples is not None and not isinstance(data, str):
        # a user's own data: num_samples caps it, however small it is
        num_samples = min(num_samples, len(info.dataset))  # type: ignore[arg-type]
    eps = {norm: () for norm in NORMS} | {requirement.threat_norm: (float(requirement.eps),)}
    spec = AuditSpec(
        model=robust_model.name,
        dataset=info.name,
        num_samples=num_samples,
        attacks=tuple(requirement.build_attacks()),
        suite=requirement.suite,
        budgets=Budgets(**eps),
        seed=seed,
        **execution_of(robust_model),
        noise_probes="off",
    )
    result = run_audit(spec, Threats(robust_model), info)
    if result.frame.empty:
        raise RobustkitError("the dataset is empty: nothing to measure")
    return Measurement(requirement, result)


def worst_classes(result: AuditResult, limit: int = WORST_CLASSES) -> list[str]:
    """One line per class, lowest worst-case robust accuracy first."""
    per_class = (
        result.worst_case()
        .groupby("label")["robust_correct"]
        .agg(["mean", "sum", "size"])
        .sort_values(["mean", "size"], ascending=[True, False], kind="stable")
        .head(limit)
    )
    names: list[str] = result.config["classes"] or []
    labels = [names[label] if label < len(names) else str(label) for label in per_class.index]
    width = max(len(label) for label in labels)
    return [
        f"{label:<{width}}  {row['mean']:.3f}  ({int(row['sum'])} / {int(row['size'])})"
        for label, (_, row) in zip(labels, per_class.iterrows(), strict=True)
    ]


def _attack_specs(value: object) -> tuple[AttackSpec, ...] | None:
    """``attack`` as a tuple of names and Attack objects (None: a suite alone)."""
    if value is None:
        return None
    specs = tuple(value) if isinstance(value, list | tuple) else (value,)
    if not specs or not all(isinstance(a, str | Attack) for a in specs):
        raise RobustkitError(
            "attack must be a registered name such as 'pgd-linf' or an Attack (or a sequence "
            f"of them), got {value!r}"
        )
    return specs


def _check_norms(attacks: list[Attack], norm: str | None) -> None:
    """The attacks of one requirement share the norm eps is measured in, and ``norm`` agrees."""
    for attack in attacks:
        if norm is not None and norm != attack.norm:
            raise RobustkitError(
                f"norm={norm!r} contradicts attack {attack.name!r}, which measures "
                f"{attack.norm}: drop norm=, the attack decides it"
            )
        if attack.norm != attacks[0].norm:
            raise RobustkitError(
                f"attacks {attacks[0].name!r} and {attack.name!r} measure eps in different norms "
                f"({attacks[0].norm}, {attack.norm}): give each norm a requirement of its own"
            )


def _flag_codes(value: object) -> tuple[str, ...]:
    """``allow_flags`` as a tuple of known check codes (a lone string is one code)."""
    codes = (value,) if isinstance(value, str) else value
    if not isinstance(codes, tuple | list) or not all(isinstance(c, str) for c in codes):
        raise RobustkitError(
            f"allow_flags must be a tuple of check codes, e.g. ('zero-gradients',), got {value!r}"
        )
    for code in codes:
        if code not in CHECKS:
            close = difflib.get_close_matches(code, CHECKS, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise RobustkitError(
                f"allow_flags: unknown check {code!r}: {hint}the checks are {', '.join(CHECKS)}"
            )
    return tuple(codes)


def _params(attack: dict[str, Any]) -> str:
    return ", ".join(f"{key}={_format(value)}" for key, value in attack.items())


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _format(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
