"""`robustkit audit`: attack a model (or a defense) and print, save and report the result.

The options (:class:`~robustkit.commands.audit_options.AuditOptions`) are checked and turned into
an :class:`~robustkit.auditing.spec.AuditSpec` here; torch, the attacks and the engine load when
the command runs (inside the functions), so that ``robustkit --help`` and ``--version`` answer at
once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from robustkit.auditing.spec import AuditSpec, Budgets
from robustkit.auditing.suites import get_suite
from robustkit.commands.audit_faults import guarded
from robustkit.commands.audit_options import AuditOptions
from robustkit.commands.console import logging_to, stderr
from robustkit.commands.options import parse_budgets, parse_floats, parse_names, require_positive
from robustkit.commands.records import takes_options
from robustkit.commands.universal import check_universal_samples, crafting_job
from robustkit.errors import RobustkitError

if TYPE_CHECKING:
    from torch import Tensor

    from robustkit.auditing.spec import Corruptions
    from robustkit.auditing.threats import Threats
    from robustkit.auditing.universal import UniversalJob
    from robustkit.data import DatasetInfo
    from robustkit.models import RobustModel


@takes_options(AuditOptions)
def audit_command(options: AuditOptions) -> None:
    """Attack a model at several budgets and report its robust accuracy.

    Under torchrun (torchrun --nproc-per-node N -m robustkit audit ...) the processes share the
    batches; rank 0 writes the results. One audit at a time per --out; Ctrl-C, SIGTERM, a full
    disk or a failing batch stop it with one line giving the command that resumes.
    """
    spec = audit_spec(options)
    out = _writable(options.out)
    with guarded(out):
        model = _load_model(spec, options)
        info = _load_data(spec, model, options)
        threats = _threats(spec, model, options)
        _run_and_publish(
            spec,
            threats,
            info,
            out,
            resume=options.resume,
            strict=options.strict,
            skip_bad=options.skip_bad,
            universal=_universal_job(spec, info, options),
        )


def audit_spec(options: AuditOptions) -> AuditSpec:
    """The audit ``options`` ask for, every value checked before anything loads."""
    o = options
    require_positive(
        steps=o.steps,
        restarts=o.restarts,
        batch_size=o.batch_size,
        image_size=o.image_size,
        projection_steps=o.projection_steps,
        projection_restarts=o.projection_restarts,
        eot_samples=o.eot_samples,
        eval_passes=o.eval_passes,
        max_queries=o.max_queries,
        universal_samples=o.universal_samples,
    )
    if check_universal_samples(o.universal, o.universal_samples) and o.defense is not None:
        raise RobustkitError("--universal audits a plain model: drop --defense or --universal")
    access = _access(o.access, o.surrogate, o.defense, universal=o.universal)
    attacks = _attack_names(o.attacks, o.suite, defended=o.defense is not None)
    _fit(attacks, o.suite, access, o.surrogate)
    return AuditSpec(
        model=o.model,
        dataset=o.dataset,
        num_samples=o.num_samples,
        indices=_listed(o.indices, o.num_samples),
        attacks=attacks,
        suite=o.suite,
        steps=o.steps,
        restarts=o.restarts,
        budgets=_budgets(o),
        corruptions=_corruptions(o),
        batch_size=o.batch_size,
        seed=o.seed,
        precision=o.precision,
        channels_last=o.channels_last,
        compile=o.compile_forward,
        eot_samples=o.eot_samples,
        eval_passes=o.eval_passes,
        randomized=o.randomized,
        noise_probes=_noise_probes(o.noise_probes, off=o.no_noise_probes),
        access=access,
        max_queries=o.max_queries,
        surrogate=o.surrogate,
    )


def _writable(out: Path) -> Path:
    """--out, created and checked writable before anything loads."""
    from robustkit.auditing.results import ensure_writable_dir

    return ensure_writable_dir(out)


def _run_and_publish(
    spec: AuditSpec,
    threats: Threats,
    info: DatasetInfo,
    out: Path,
    *,
    resume: bool,
    strict: bool,
    skip_bad: bool,
    universal: UniversalJob | None = None,
) -> None:
    """Run the audit (progress in OUT/progress) and, on rank 0 of a distributed audit, save,
    report and print it."""
    from robustkit.auditing.distributed import is_main
    from robustkit.auditing.engine import run_audit
    from robustkit.commands.audit_output import publish

    with logging_to(stderr):  # e.g. a defense's up-front estimate of its projections
        result = run_audit(
            spec,
            threats,
            info,
            progress=True,
            progress_dir=out / "progress",
            resume=resume,
            skip_bad=skip_bad,
            universal=universal,
        )
    if is_main():  # rank 0 writes the results of a distributed audit
        publish(result, out, strict=strict)


def _universal_job(
    spec: AuditSpec, info: DatasetInfo, options: AuditOptions
) -> UniversalJob | None:
    """The crafting images of --universal, apart from the images the audit scores (None:
    no universal perturbation)."""
    crafting = check_universal_samples(options.universal, options.universal_samples)
    if crafting is None:
        return None
    audited = _audited(spec, info)
    return crafting_job(info, audited, crafting, seed=spec.seed, root=options.data_root)


def _audited(spec: AuditSpec, info: DatasetInfo) -> Tensor:
    """The dataset indices of the images the audit scores (as the engine picks them)."""
    from robustkit.auditing.inputs import choose_samples

    return choose_samples(info, spec).sample_indices()


def _listed(indices: Path | None, num_samples: int | None) -> tuple[int, ...] | None:
    """The dataset indices of --indices, read before anything loads (None: a seeded subset)."""
    from robustkit.data import read_indices

    if indices is None:
        return None
    if num_samples is not None:
        raise RobustkitError(
            "--indices lists the images to audit and --num-samples draws a seeded subset: "
            "give one of them"
        )
    return tuple(read_indices(indices))


def _budgets(options: AuditOptions) -> Budgets:
    """The budgets given on the command line (None: the defaults where an attack needs them)."""
    eps_l2, eps_l1, sigmas = options.eps_l2, options.eps_l1, options.sigmas
    return Budgets(
        linf=tuple(parse_budgets(options.eps, "--eps")),
        l2=None if eps_l2 is None else tuple(parse_floats(eps_l2, "--eps-l2")),
        l1=None if eps_l1 is None else tuple(parse_budgets(eps_l1, "--eps-l1", minimum=0.0)),
        gaussian=None if sigmas is None else tuple(parse_floats(sigmas, "--sigmas")),
    )


def _corruptions(options: AuditOptions) -> Corruptions | None:
    """The corruptions and severities asked for, checked before anything loads."""
    from robustkit.auditing.spec import Corruptions
    from robustkit.corruptions import SEVERITIES, check_severities, parse_corruptions
    from robustkit.corruptions.base import protocol

    names, severities = options.corruptions, options.severities
    if names is None:
        if severities is not None:
            raise RobustkitError("--severities applies to --corruptions: add --corruptions all")
        return None
    if options.defense is not None:
        raise RobustkitError("--corruptions audits a plain model: drop --defense or --corruptions")
    levels = list(SEVERITIES)
    if severities is not None:
        values = parse_floats(severities, "--severities")
        if any(v != int(v) for v in values):
            raise RobustkitError(f"--severities takes whole numbers 1-5, got {severities!r}")
        levels = check_severities([int(v) for v in values])
    return Corruptions(parse_corruptions(names), levels, protocol(options.corruption_table).name)


def _noise_probes(mode: str, *, off: bool) -> str:
    """--noise-probes checked before anything loads; --no-noise-probes is its ``off``."""
    from robustkit.auditing.probe_modes import check_mode

    checked = check_mode(mode.strip().lower())
    if off and checked != "auto":
        raise RobustkitError(f"--no-noise-probes contradicts --noise-probes {mode}: keep one")
    return "off" if off else checked


def _access(access: str, surrogate: str | None, defense: str | None, *, universal: bool) -> str:
    """--access checked, with the options that need or exclude a restricted access."""
    from robustkit.access_levels import check_access

    level = check_access(access.strip().lower())
    if surrogate is not None and level == "gradients":
        raise RobustkitError(
            "--surrogate serves a black-box audit (the attacks needing more access run on it): "
            "add --access scores or --access labels, or drop --surrogate"
        )
    if defense is not None and level != "gradients":
        raise RobustkitError(
            "--defense is audited with gradients (BPDA, EOT): drop --access or --defense"
        )
    if universal and level != "gradients":
        raise RobustkitError(
            f"--universal crafts with the model's gradients, which --access {level} withholds: "
            "drop --universal or --access"
        )
    return level


def _fit(
    attacks: tuple[str, ...] | None, suite: str | None, access: str, surrogate: str | None
) -> None:
    """Under a restricted access, every attack named (or in --suite) fits it, or there is a
    surrogate to run it on; checked before anything loads."""
    from robustkit.auditing.blackbox import check_fit

    check_fit(attacks or (), suite, access, surrogate=surrogate is not None)


def _attack_names(
    attacks: str | None, suite: str | None, *, defended: bool
) -> tuple[str, ...] | None:
    """The attacks named on the command line, checked before anything loads (None: the
    diagnostics and the standard suite; ``none``: no attack)."""
    from robustkit.attacks import attack_class
    from robustkit.defenses.evaluation import defense_attacks

    names: tuple[str, ...] | None = None
    if attacks is not None and attacks.strip().lower() == "none":
        names = ()
    elif attacks is not None:
        names = tuple(parse_names(attacks))
    elif defended:
        names = tuple(str(name) for name in defense_attacks(None))
    for name in names or ():
        attack_class(name)
    if suite is not None:
        get_suite(suite)
    return names


def _load_model(spec: AuditSpec, options: AuditOptions) -> RobustModel:
    """The model ``spec`` names, as the spec runs it (precision, memory format, compile), on
    this process's device (``cuda:LOCAL_RANK`` under torchrun)."""
    from robustkit.auditing.distributed import join_torchrun
    from robustkit.models import load_model
    from robustkit.models.execution import Execution
    from robustkit.models.robustbench import dataset_of as zoo_dataset

    mean, std = options.mean, options.std
    return load_model(
        spec.model,
        checkpoint=options.checkpoint,
        pretrained=options.pretrained,
        mean=parse_floats(mean, "--mean") if mean else None,
        std=parse_floats(std, "--std") if std else None,
        device=join_torchrun(options.device),
        execution=Execution(spec.precision, spec.channels_last, spec.compile),
        output_index=options.output_index,
        output_key=options.output_key,
        dataset=zoo_dataset(spec.dataset),
        threat=options.threat,
        model_dir=options.model_dir,
    )


def _load_data(spec: AuditSpec, model: RobustModel, options: AuditOptions) -> DatasetInfo:
    """The whole dataset ``spec`` names (the audit picks its images); the --indices file is
    checked against it here, so that an error names the file."""
    from robustkit.data import load_dataset, select

    info = load_dataset(
        spec.dataset,
        root=options.data_root,
        seed=spec.seed,
        image_size=options.image_size or _image_size(model),
        model=model,
        labels=options.labels,
    )
    if spec.indices is not None:
        select(info, spec.indices, source=f"--indices file {options.indices}")
    return info


def _surrogate(spec: AuditSpec, model: RobustModel) -> RobustModel | None:
    """The --surrogate model, loaded on the model's device (None: none given)."""
    from robustkit.models import load_model
    from robustkit.models.robustbench import dataset_of as zoo_dataset

    if spec.surrogate is None:
        return None
    return load_model(spec.surrogate, device=model.device, dataset=zoo_dataset(spec.dataset))


def _threats(spec: AuditSpec, model: RobustModel, options: AuditOptions) -> Threats:
    """The model itself (behind its access wrapper, with the surrogate), or the defense
    ``--defense`` names around it."""
    from robustkit.auditing.blackbox import model_threats

    if options.defense is None:
        return model_threats(model, spec.access, _surrogate(spec, model))
    from robustkit.defenses.evaluation import DefenseThreats
    from robustkit.defenses.manifold import load_defense

    defended = load_defense(
        options.defense, model, steps=options.projection_steps, restarts=options.projection_restarts
    )
    return DefenseThreats(model, defended.to(model.device))


def _image_size(model: RobustModel) -> int | None:
    return model.input_shape[-1] if model.input_shape else None
