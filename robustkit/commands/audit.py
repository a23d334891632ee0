"""`robustkit audit`: attack a model (or a defense) and print, save and report the result.

The options and their checks live here; torch, the attacks and the engine load when the command
runs (inside the functions), so that ``robustkit --help`` and ``--version`` answer at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from robustkit.auditing.spec import DEFAULTS, AuditSpec, Budgets
from robustkit.auditing.suites import SUITES, get_suite
from robustkit.commands.console import logging_to, stderr
from robustkit.commands.options import (
    BatchSize,
    ChannelsLast,
    Compile,
    DataRoot,
    Device,
    Labels,
    OutputIndex,
    OutputKey,
    Precision,
    Seed,
    parse_budgets,
    parse_floats,
    parse_names,
    require_positive,
)
from robustkit.errors import RobustkitError

if TYPE_CHECKING:
    from robustkit.auditing.spec import Corruptions
    from robustkit.auditing.threats import Threats
    from robustkit.data import DatasetInfo
    from robustkit.models import RobustModel


def _listing(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in values)


def audit_command(
    model: Annotated[
        str,
        typer.Option(
            help="zoo:NAME, timm:NAME, torchvision:NAME, robustbench:NAME, file.py:factory or "
            "package.module:factory"
        ),
    ] = DEFAULTS.model,
    checkpoint: Annotated[
        Path | None, typer.Option(help="state dict to load into the model")
    ] = None,
    pretrained: Annotated[
        bool, typer.Option(help="load timm/torchvision pretrained weights")
    ] = False,
    threat: Annotated[
        str | None,
        typer.Option(
            help="robustbench: models: the zoo's threat model, Linf, L2 or corruptions "
            "[default: Linf]",
            show_default=False,
        ),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            help="robustbench: models: the folder of robustbench's checkpoints "
            "(DIR/DATASET/THREAT/NAME.pt; never downloaded) [default: ./models]",
            show_default=False,
        ),
    ] = None,
    mean: Annotated[str | None, typer.Option(help="normalisation mean, e.g. 0.1307")] = None,
    std: Annotated[str | None, typer.Option(help="normalisation std, e.g. 0.3081")] = None,
    output_index: OutputIndex = None,
    output_key: OutputKey = None,
    dataset: Annotated[
        str,
        typer.Option(
            help="mnist-sample, mnist, fashion-mnist, cifar10, imagefolder:PATH or "
            "cifar10-c:DIR:CORRUPTION:SEVERITY (a CIFAR-10-C-layout folder of .npy files)"
        ),
    ] = DEFAULTS.dataset,
    data_root: DataRoot = None,
    labels: Labels = None,
    attacks: Annotated[
        str | None,
        typer.Option(
            help="comma-separated attack names, each run alone, or none (e.g. corruptions only) "
            f"[default: the diagnostics {','.join(DEFAULTS.diagnostics)} plus --suite "
            f"{DEFAULTS.suite}; with --defense also {','.join(DEFAULTS.defense_attacks)}]",
            show_default=False,
        ),
    ] = None,
    suite: Annotated[
        str | None,
        typer.Option(
            help="attack suite run as a cascade for the worst case: "
            + "; ".join(f"{s.name}: {s.description}" for s in SUITES.values())
            + f" [default: {DEFAULTS.suite} when --attacks is not given]",
            show_default=False,
        ),
    ] = None,
    access: Annotated[
        str,
        typer.Option(
            help="what the attacks may ask of the model: gradients (white-box), scores (its "
            "outputs: --suite scores, Square then NES) or labels (its top-1 class: --suite "
            "labels, RayS then HopSkipJump); scores and labels are black-box audits that count "
            "queries"
        ),
    ] = DEFAULTS.access,
    max_queries: Annotated[
        int | None,
        typer.Option(
            help="model queries per point for every query-based attack (Square, NES, RayS, "
            "HopSkipJump); the summary gives robust accuracy at 100, 1,000, 10,000 queries up "
            "to it [default: each attack's own]",
            show_default=False,
        ),
    ] = None,
    surrogate: Annotated[
        str | None,
        typer.Option(
            help="with --access scores or labels: a model (any --model spec) that the attacks "
            "needing more access run on (default PGD), their adversarials replayed on the model "
            "at one query per point"
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="exit 1 when a check flags the evaluation (gradient masking...)")
    ] = False,
    eps: Annotated[
        str, typer.Option(help="L-inf budgets (none: no L-inf attack, e.g. an L2-only audit)")
    ] = _listing(DEFAULTS.eps),
    eps_l2: Annotated[
        str | None,
        typer.Option(
            help="L2 budgets; the suite covers L2 only when they are given [default: "
            f"{_listing(DEFAULTS.eps_l2)} for L2 attacks named in --attacks]",
            show_default=False,
        ),
    ] = None,
    eps_l1: Annotated[
        str | None,
        typer.Option(
            help="L1 budgets; the suite covers L1 only when they are given [default: "
            f"{_listing(DEFAULTS.eps_l1)} for L1 attacks named in --attacks]",
            show_default=False,
        ),
    ] = None,
    sigmas: Annotated[
        str | None,
        typer.Option(help=f"Gaussian-noise sigmas [default: {_listing(DEFAULTS.sigmas)}]"),
    ] = None,
    corruptions: Annotated[
        str | None,
        typer.Option(
            help="common corruptions (Hendrycks & Dietterich): all, or names such as "
            "gaussian_noise,fog; each corruption x severity is scored on every image"
        ),
    ] = None,
    severities: Annotated[
        str | None,
        typer.Option(help="corruption severities, 1-5 (default: all five)", show_default=False),
    ] = None,
    corruption_table: Annotated[
        str,
        typer.Option(help="corruption parameters: cifar10 (CIFAR-10-C) or imagenet (ImageNet-C)"),
    ] = DEFAULTS.corruption_table,
    steps: Annotated[
        int | None,
        typer.Option(
            help="iterations of the iterative attacks named in --attacks [default: each "
            "attack's own, e.g. 40 for pgd-linf, 100 for apgd-ce]",
            show_default=False,
        ),
    ] = None,
    restarts: Annotated[
        int | None,
        typer.Option(
            help="random restarts of the attacks named in --attacks [default: each attack's own]",
            show_default=False,
        ),
    ] = None,
    num_samples: Annotated[
        int | None,
        typer.Option(
            help="seeded subset size; the standard suite costs about half a second per robust "
            "image on 2 CPU cores, and the 95% CI shows what a sample size buys "
            f"[default: {DEFAULTS.num_samples}; 0 for the whole dataset]",
            show_default=False,
        ),
    ] = None,
    indices: Annotated[
        Path | None,
        typer.Option(
            help="audit exactly these images, in this order: a file of dataset indices (one per "
            "line or comma-separated, # comments; or a JSON list, or a one-column CSV); "
            "instead of --num-samples",
        ),
    ] = None,
    batch_size: BatchSize = DEFAULTS.batch_size,
    device: Device = None,
    precision: Precision = DEFAULTS.precision,
    channels_last: ChannelsLast = False,
    compile_forward: Compile = False,
    seed: Seed = DEFAULTS.seed,
    image_size: Annotated[
        int | None, typer.Option(help="resize imagefolder images (default: the model's size)")
    ] = None,
    noise_probes: Annotated[
        str,
        typer.Option(
            help="pure-noise probes (mean x sigma grid, PGD from noise): auto sizes them to the "
            "audit (cut on large inputs, said on the terminal), full, or off"
        ),
    ] = DEFAULTS.noise_probes,
    no_noise_probes: Annotated[
        bool, typer.Option("--no-noise-probes", help="the same as --noise-probes off")
    ] = False,
    defense: Annotated[
        str | None,
        typer.Option(
            help="manifold:GEN.pt or manifold:zoo:mnist-dcgan; audited with oblivious, BPDA "
            "and BPDA+EOT attacks, the worst case counting"
        ),
    ] = None,
    projection_steps: Annotated[int, typer.Option(help="defense: latent steps")] = 200,
    projection_restarts: Annotated[int, typer.Option(help="defense: latent restarts")] = 10,
    eot_samples: Annotated[
        int | None,
        typer.Option(
            help="passes EOT averages each loss and gradient over [default: "
            f"{DEFAULTS.eot_samples} for a randomized model, {DEFAULTS.defense_eot_samples} for "
            "--defense]",
            show_default=False,
        ),
    ] = None,
    eval_passes: Annotated[
        int | None,
        typer.Option(
            help="fresh passes that judge each point of a randomized model (early stop, best "
            f"adversarial, cascade, score) [default: {DEFAULTS.eval_passes}]",
            show_default=False,
        ),
    ] = None,
    randomized: Annotated[
        bool,
        typer.Option(
            help="accept a model whose logits change between calls: it gets the rand protocol "
            "(the rand suite, EOT, points judged over --eval-passes fresh passes)"
        ),
    ] = False,
    out: Annotated[Path, typer.Option(help="folder for results.csv, summary.csv, run.json")] = Path(
        "robustkit-results"
    ),
    resume: Annotated[
        bool,
        typer.Option(
            help="skip the batches an interrupted audit with the same options saved in OUT/progress"
        ),
    ] = False,
) -> None:
    """Attack a model at several budgets and report its robust accuracy.

    Under torchrun (torchrun --nproc-per-node N -m robustkit audit ...) the processes share the
    batches; rank 0 writes the results.
    """
    require_positive(
        steps=steps,
        restarts=restarts,
        batch_size=batch_size,
        image_size=image_size,
        projection_steps=projection_steps,
        projection_restarts=projection_restarts,
        eot_samples=eot_samples,
        eval_passes=eval_passes,
        max_queries=max_queries,
    )
    access = _access(access, surrogate, defense)
    spec = AuditSpec(
        model=model,
        dataset=dataset,
        num_samples=num_samples,
        indices=_listed(indices, num_samples),
        attacks=_attack_names(
            attacks, suite, defended=defense is not None, access=access, surrogate=surrogate
        ),
        suite=suite,
        steps=steps,
        restarts=restarts,
        budgets=_budgets(eps, eps_l2, eps_l1, sigmas),
        corruptions=_corruptions(corruptions, severities, corruption_table, defense),
        batch_size=batch_size,
        seed=seed,
        precision=precision,
        channels_last=channels_last,
        compile=compile_forward,
        eot_samples=eot_samples,
        eval_passes=eval_passes,
        randomized=randomized,
        noise_probes=_noise_probes(noise_probes, off=no_noise_probes),
        access=access,
        max_queries=max_queries,
        surrogate=surrogate,
    )
    out_dir = _writable(out)
    robust_model = _load_model(
        spec,
        device=device,
        checkpoint=checkpoint,
        pretrained=pretrained,
        mean=mean,
        std=std,
        output_index=output_index,
        output_key=output_key,
        threat=threat,
        model_dir=model_dir,
    )
    info = _load_data(spec, robust_model, data_root, image_size, labels, listing=indices)
    threats = _threats(spec, robust_model, defense, projection_steps, projection_restarts)
    _run_and_publish(spec, threats, info, out_dir, resume=resume, strict=strict)


def _writable(out: Path) -> Path:
    """--out, created and checked writable before anything loads."""
    from robustkit.auditing.results import ensure_writable_dir

    return ensure_writable_dir(out)


def _run_and_publish(
    spec: AuditSpec, threats: Threats, info: DatasetInfo, out: Path, *, resume: bool, strict: bool
) -> None:
    """Run the audit (progress in OUT/progress) and, on rank 0 of a distributed audit, save,
    report and print it."""
    from robustkit.auditing.distributed import is_main
    from robustkit.auditing.engine import run_audit
    from robustkit.commands.audit_output import publish

    with logging_to(stderr):  # e.g. a defense's up-front estimate of its projections
        result = run_audit(
            spec, threats, info, progress=True, progress_dir=out / "progress", resume=resume
        )
    if is_main():  # rank 0 writes the results of a distributed audit
        publish(result, out, strict=strict)


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


def _budgets(eps: str, eps_l2: str | None, eps_l1: str | None, sigmas: str | None) -> Budgets:
    """The budgets given on the command line (None: the defaults where an attack needs them)."""
    return Budgets(
        linf=tuple(parse_budgets(eps, "--eps")),
        l2=None if eps_l2 is None else tuple(parse_floats(eps_l2, "--eps-l2")),
        l1=None if eps_l1 is None else tuple(parse_budgets(eps_l1, "--eps-l1", minimum=0.0)),
        gaussian=None if sigmas is None else tuple(parse_floats(sigmas, "--sigmas")),
    )


def _corruptions(
    names: str | None, severities: str | None, table: str, defense: str | None
) -> Corruptions | None:
    """The corruptions and severities asked for, checked before anything loads."""
    from robustkit.auditing.spec import Corruptions
    from robustkit.corruptions import SEVERITIES, check_severities, parse_corruptions
    from robustkit.corruptions.base import protocol

    if names is None:
        if severities is not None:
            raise RobustkitError("--severities applies to --corruptions: add --corruptions all")
        return None
    if defense is not None:
        raise RobustkitError("--corruptions audits a plain model: drop --defense or --corruptions")
    levels = list(SEVERITIES)
    if severities is not None:
        values = parse_floats(severities, "--severities")
        if any(v != int(v) for v in values):
            raise RobustkitError(f"--severities takes whole numbers 1-5, got {severities!r}")
        levels = check_severities([int(v) for v in values])
    return Corruptions(parse_corruptions(names), levels, protocol(table).name)


def _noise_probes(mode: str, *, off: bool) -> str:
    """--noise-probes checked before anything loads; --no-noise-probes is its ``off``."""
    from robustkit.auditing.probe_modes import check_mode

    checked = check_mode(mode.strip().lower())
    if off and checked != "auto":
        raise RobustkitError(f"--no-noise-probes contradicts --noise-probes {mode}: keep one")
    return "off" if off else checked


def _access(access: str, surrogate: str | None, defense: str | None) -> str:
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
    return level


def _attack_names(
    attacks: str | None,
    suite: str | None,
    *,
    defended: bool,
    access: str = DEFAULTS.access,
    surrogate: str | None = None,
) -> tuple[str, ...] | None:
    """The attacks named on the command line, checked before anything loads (None: the
    diagnostics and the standard suite, or the access's suite; ``none``: no attack); under a
    restricted access each must fit it, or run on the surrogate."""
    from robustkit.attacks import attack_class
    from robustkit.auditing.blackbox import check_fit
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
    check_fit(names or (), suite, access, surrogate=surrogate is not None)
    return names


def _load_model(
    spec: AuditSpec,
    *,
    device: str | None,
    checkpoint: Path | None,
    pretrained: bool,
    mean: str | None,
    std: str | None,
    output_index: int | None,
    output_key: str | None,
    threat: str | None,
    model_dir: Path | None,
) -> RobustModel:
    """The model ``spec`` names, as the spec runs it (precision, memory format, compile), on
    this process's device (``cuda:LOCAL_RANK`` under torchrun)."""
    from robustkit.auditing.distributed import join_torchrun
    from robustkit.models import load_model
    from robustkit.models.execution import Execution
    from robustkit.models.robustbench import dataset_of as zoo_dataset

    return load_model(
        spec.model,
        checkpoint=checkpoint,
        pretrained=pretrained,
        mean=parse_floats(mean, "--mean") if mean else None,
        std=parse_floats(std, "--std") if std else None,
        device=join_torchrun(device),
        execution=Execution(spec.precision, spec.channels_last, spec.compile),
        output_index=output_index,
        output_key=output_key,
        dataset=zoo_dataset(spec.dataset),
        threat=threat,
        model_dir=model_dir,
    )


def _load_data(
    spec: AuditSpec,
    model: RobustModel,
    root: Path | None,
    image_size: int | None,
    labels: Path | None,
    *,
    listing: Path | None,
) -> DatasetInfo:
    """The whole dataset ``spec`` names (the audit picks its images); the --indices file is
    checked against it here, so that an error names the file."""
    from robustkit.data import load_dataset, select

    info = load_dataset(
        spec.dataset,
        root=root,
        seed=spec.seed,
        image_size=image_size or _image_size(model),
        model=model,
        labels=labels,
    )
    if spec.indices is not None:
        select(info, spec.indices, source=f"--indices file {listing}")
    return info


def _surrogate(spec: AuditSpec, model: RobustModel) -> RobustModel | None:
    """The --surrogate model, loaded on the model's device (None: none given)."""
    from robustkit.models import load_model
    from robustkit.models.robustbench import dataset_of as zoo_dataset

    if spec.surrogate is None:
        return None
    return load_model(spec.surrogate, device=model.device, dataset=zoo_dataset(spec.dataset))


def _threats(
    spec: AuditSpec,
    model: RobustModel,
    defense: str | None,
    projection_steps: int,
    projection_restarts: int,
) -> Threats:
    """The model itself (behind its access wrapper, with the surrogate), or the defense
    ``--defense`` names around it."""
    from robustkit.auditing.blackbox import model_threats

    if defense is None:
        return model_threats(model, spec.access, _surrogate(spec, model))
    from robustkit.defenses.evaluation import DefenseThreats
    from robustkit.defenses.manifold import load_defense

    defended = load_defense(defense, model, steps=projection_steps, restarts=projection_restarts)
    return DefenseThreats(model, defended.to(model.device))


def _image_size(model: RobustModel) -> int | None:
    return model.input_shape[-1] if model.input_shape else None
