"""`robustkit audit`: attack a model (or a defense) and print, save and report the result.

The options and their checks live here; torch, the attacks and the engine load when the command
runs (inside the functions), so that ``robustkit --help`` and ``--version`` answer at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from robustkit.auditing.suites import DEFAULT_ATTACKS, DEFAULT_SUITE, SUITES, get_suite
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
    from robustkit.auditing.plan import Corruptions
    from robustkit.data import DatasetInfo
    from robustkit.models import RobustModel

DEFAULT_NUM_SAMPLES = 100  # images an audit attacks unless told: under a minute on 2 cores


def audit_command(
    model: Annotated[
        str,
        typer.Option(
            help="zoo:NAME, timm:NAME, torchvision:NAME, robustbench:NAME, file.py:factory or "
            "package.module:factory"
        ),
    ] = "zoo:mnist-cnn",
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
    ] = "mnist-sample",
    data_root: DataRoot = None,
    labels: Labels = None,
    attacks: Annotated[
        str | None,
        typer.Option(
            help="comma-separated attack names, each run alone, or none (e.g. corruptions only) "
            f"[default: the diagnostics {','.join(DEFAULT_ATTACKS)} plus --suite "
            f"{DEFAULT_SUITE}; with --defense also latent-overpowered]",
            show_default=False,
        ),
    ] = None,
    suite: Annotated[
        str | None,
        typer.Option(
            help="attack suite run as a cascade for the worst case: "
            + "; ".join(f"{s.name}: {s.description}" for s in SUITES.values())
            + f" [default: {DEFAULT_SUITE} when --attacks is not given]",
            show_default=False,
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="exit 1 when a check flags the evaluation (gradient masking...)")
    ] = False,
    eps: Annotated[
        str, typer.Option(help="L-inf budgets (none: no L-inf attack, e.g. an L2-only audit)")
    ] = "0.1,0.2,0.3",
    eps_l2: Annotated[
        str | None,
        typer.Option(
            help="L2 budgets; the suite covers L2 only when they are given [default: 1,2,3 "
            "for L2 attacks named in --attacks]",
            show_default=False,
        ),
    ] = None,
    eps_l1: Annotated[
        str | None,
        typer.Option(
            help="L1 budgets; the suite covers L1 only when they are given [default: 5,10,15 "
            "for L1 attacks named in --attacks]",
            show_default=False,
        ),
    ] = None,
    sigmas: Annotated[
        str | None, typer.Option(help="Gaussian-noise sigmas [default: 0.1,0.3,0.5]")
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
    ] = "cifar10",
    steps: Annotated[int, typer.Option(help="iterations of iterative attacks")] = 40,
    restarts: Annotated[int, typer.Option(help="random restarts of iterative attacks")] = 1,
    num_samples: Annotated[
        int | None,
        typer.Option(
            help="seeded subset size; the standard suite costs about half a second per robust "
            "image on 2 CPU cores, and the 95% CI shows what a sample size buys "
            f"[default: {DEFAULT_NUM_SAMPLES}; 0 for the whole dataset]",
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
    batch_size: BatchSize = 500,
    device: Device = None,
    precision: Precision = "fp32",
    channels_last: ChannelsLast = False,
    compile_forward: Compile = False,
    seed: Seed = 0,
    image_size: Annotated[
        int | None, typer.Option(help="resize imagefolder images (default: the model's size)")
    ] = None,
    noise_probes: Annotated[
        str,
        typer.Option(
            help="pure-noise probes (mean x sigma grid, PGD from noise): auto sizes them to the "
            "audit (cut on large inputs, said on the terminal), full, or off"
        ),
    ] = "auto",
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
            help="passes EOT averages each loss and gradient over [default: 20 for a randomized "
            "model, 8 for --defense]",
            show_default=False,
        ),
    ] = None,
    eval_passes: Annotated[
        int | None,
        typer.Option(
            help="fresh passes that judge each point of a randomized model (early stop, best "
            "adversarial, cascade, score) [default: 20]",
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
    )
    listed = _listed(indices, num_samples)
    corruption_plan = _corruptions(corruptions, severities, corruption_table)
    probe_mode = _noise_probes(noise_probes, off=no_noise_probes)
    if corruption_plan is not None and defense is not None:
        raise RobustkitError("--corruptions audits a plain model: drop --defense or --corruptions")
    from robustkit.auditing.distributed import is_main, join_torchrun
    from robustkit.auditing.engine import audit
    from robustkit.auditing.results import ensure_writable_dir
    from robustkit.commands.audit_output import publish
    from robustkit.data import load_dataset, select
    from robustkit.defenses.evaluation import audit_defense
    from robustkit.defenses.manifold import load_defense
    from robustkit.models import check_classifier, check_deterministic, load_model
    from robustkit.models.execution import Execution
    from robustkit.models.robustbench import dataset_of as zoo_dataset

    out_dir = ensure_writable_dir(out)
    device = join_torchrun(device)
    attack_names = _attack_names(attacks, suite, defended=defense is not None)
    robust_model = load_model(
        model,
        checkpoint=checkpoint,
        pretrained=pretrained,
        mean=parse_floats(mean, "--mean") if mean else None,
        std=parse_floats(std, "--std") if std else None,
        device=device,
        execution=Execution(precision, channels_last, compile_forward),
        output_index=output_index,
        output_key=output_key,
        dataset=zoo_dataset(dataset),
        threat=threat,
        model_dir=model_dir,
    )
    info = load_dataset(
        dataset,
        root=data_root,
        seed=seed,
        image_size=image_size or _image_size(robust_model),
        model=robust_model,
        labels=labels,
    )
    if listed is None:
        info = _sample(info, num_samples, seed)
    else:
        info = select(info, listed, source=f"--indices file {indices}")
    first = info.dataset[0][0].unsqueeze(0)
    check_classifier(robust_model, first)  # shape, channels, logits: before calling it twice
    if not randomized and defense is None:
        check_deterministic(robust_model, first)
    settings: dict[str, Any] = {
        "attacks": attack_names,
        "eps": parse_budgets(eps, "--eps"),
        "eps_l2": None if eps_l2 is None else parse_floats(eps_l2, "--eps-l2"),
        "eps_l1": None if eps_l1 is None else parse_budgets(eps_l1, "--eps-l1", minimum=0.0),
        "sigmas": None if sigmas is None else parse_floats(sigmas, "--sigmas"),
        "steps": steps,
        "restarts": restarts,
        "suite": suite,
        "batch_size": batch_size,
        "seed": seed,
        "progress": True,
        "progress_dir": out_dir / "progress",
        "resume": resume,
    }
    if defense is not None:
        defended = load_defense(
            defense, robust_model, steps=projection_steps, restarts=projection_restarts
        )
        with logging_to(stderr):  # the up-front estimate of the projections to come
            result = audit_defense(
                robust_model, defended, info, eot_samples=eot_samples or 8, **settings
            )
    else:
        result = audit(
            robust_model,
            info,
            noise_probes=probe_mode,
            corruptions=corruption_plan,
            eot_samples=eot_samples,
            eval_passes=eval_passes,
            **settings,
        )
    if is_main():  # rank 0 writes the results of a distributed audit
        publish(result, out_dir, strict=strict)


def _listed(indices: Path | None, num_samples: int | None) -> list[int] | None:
    """The dataset indices of --indices, read before anything loads (None: a seeded subset)."""
    from robustkit.data import read_indices

    if indices is None:
        return None
    if num_samples is not None:
        raise RobustkitError(
            "--indices lists the images to audit and --num-samples draws a seeded subset: "
            "give one of them"
        )
    return read_indices(indices)


def _corruptions(names: str | None, severities: str | None, table: str) -> Corruptions | None:
    """The corruptions and severities asked for, checked before anything loads."""
    from robustkit.auditing.plan import Corruptions
    from robustkit.corruptions import SEVERITIES, check_severities, parse_corruptions
    from robustkit.corruptions.base import protocol

    if names is None:
        if severities is not None:
            raise RobustkitError("--severities applies to --corruptions: add --corruptions all")
        return None
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


def _attack_names(attacks: str | None, suite: str | None, *, defended: bool) -> list[str] | None:
    """The attacks named on the command line, checked before anything loads (None: the
    diagnostics and the standard suite; ``none``: no attack)."""
    from robustkit.attacks import attack_class
    from robustkit.defenses.evaluation import DEFENSE_ATTACKS

    names: list[str] | None = None
    if attacks is not None and attacks.strip().lower() == "none":
        names = []
    elif attacks is not None:
        names = parse_names(attacks)
    elif defended:
        names = [*DEFAULT_ATTACKS, *DEFENSE_ATTACKS]
    for name in names or ():
        attack_class(name)
    if suite is not None:
        get_suite(suite)
    return names


def _image_size(model: RobustModel) -> int | None:
    return model.input_shape[-1] if model.input_shape else None


def _sample(info: DatasetInfo, num_samples: int | None, seed: int) -> DatasetInfo:
    """The seeded subset an audit attacks: ``--num-samples``, the default size, or all (0)."""
    from robustkit.data import subset

    if num_samples == 0:
        return info
    size = len(info.dataset)  # type: ignore[arg-type]
    return subset(
        info, min(DEFAULT_NUM_SAMPLES, size) if num_samples is None else num_samples, seed
    )
