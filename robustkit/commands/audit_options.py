"""The options of ``robustkit audit``, one typed, frozen record (:class:`AuditOptions`).

Each field is one command-line option: its type, its ``typer.Option(...)`` (help and flags) and
its default, in the order ``robustkit audit --help`` lists them; the command
(:mod:`robustkit.commands.audit`) gets them as one record through
:func:`robustkit.commands.records.takes_options` and checks and turns them into an
:class:`~robustkit.auditing.spec.AuditSpec` there.

Adding an option is a one-field change: add ``name: Annotated[type, typer.Option(help=...)] =
default`` here, next to the options it belongs with (its place is its place in the help), and
read ``options.name`` where the command uses it; ``--name`` then parses, shows in the help and
reaches the command with no other edit. A setting that changes the audit's numbers belongs in the
``AuditSpec`` too (its field and default in ``auditing/spec.py``), so that every front end and
the resume manifest see it.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from robustkit.auditing.spec import DEFAULTS
from robustkit.auditing.suites import SUITES
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
)
from robustkit.commands.universal import SAMPLES_HELP


def _listing(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in values)


@dataclass(frozen=True, kw_only=True)
class AuditOptions:
    """What ``robustkit audit`` was given, as parsed: text lists and paths still unchecked."""

    model: Annotated[
        str,
        typer.Option(
            help="zoo:NAME, timm:NAME, torchvision:NAME, robustbench:NAME, file.py:factory or "
            "package.module:factory"
        ),
    ] = DEFAULTS.model
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="state dict to load into the model"),
    ] = None
    pretrained: Annotated[
        bool,
        typer.Option(help="load timm/torchvision pretrained weights"),
    ] = False
    threat: Annotated[
        str | None,
        typer.Option(
            help="robustbench: models: the zoo's threat model, Linf, L2 or corruptions "
            "[default: Linf]",
            show_default=False,
        ),
    ] = None
    model_dir: Annotated[
        Path | None,
        typer.Option(
            help="robustbench: models: the folder of robustbench's checkpoints "
            "(DIR/DATASET/THREAT/NAME.pt; never downloaded) [default: ./models]",
            show_default=False,
        ),
    ] = None
    mean: Annotated[str | None, typer.Option(help="normalisation mean, e.g. 0.1307")] = None
    std: Annotated[str | None, typer.Option(help="normalisation std, e.g. 0.3081")] = None
    output_index: OutputIndex = None
    output_key: OutputKey = None
    dataset: Annotated[
        str,
        typer.Option(
            help="mnist-sample, mnist, fashion-mnist, cifar10, imagefolder:PATH or "
            "cifar10-c:DIR:CORRUPTION:SEVERITY (a CIFAR-10-C-layout folder of .npy files)"
        ),
    ] = DEFAULTS.dataset
    data_root: DataRoot = None
    labels: Labels = None
    attacks: Annotated[
        str | None,
        typer.Option(
            help="comma-separated attack names, each run alone, or none (e.g. corruptions only) "
            f"[default: the diagnostics {','.join(DEFAULTS.diagnostics)} plus --suite "
            f"{DEFAULTS.suite}; with --defense also {','.join(DEFAULTS.defense_attacks)}]",
            show_default=False,
        ),
    ] = None
    suite: Annotated[
        str | None,
        typer.Option(
            help="attack suite run as a cascade for the worst case: "
            + "; ".join(f"{s.name}: {s.description}" for s in SUITES.values())
            + f" [default: {DEFAULTS.suite} when --attacks is not given]",
            show_default=False,
        ),
    ] = None
    access: Annotated[
        str,
        typer.Option(
            help="what the attacks may ask of the model: gradients (white-box), scores (its "
            "outputs: --suite scores, Square then NES) or labels (its top-1 class: --suite "
            "labels, RayS then HopSkipJump); scores and labels are black-box audits that count "
            "queries"
        ),
    ] = DEFAULTS.access
    max_queries: Annotated[
        int | None,
        typer.Option(
            help="model queries per point for every query-based attack (Square, NES, RayS, "
            "HopSkipJump); the summary gives robust accuracy at 100, 1,000, 10,000 queries up "
            "to it [default: each attack's own]",
            show_default=False,
        ),
    ] = None
    surrogate: Annotated[
        str | None,
        typer.Option(
            help="with --access scores or labels: a model (any --model spec) that the attacks "
            "needing more access run on (default PGD), their adversarials replayed on the model "
            "at one query per point"
        ),
    ] = None
    strict: Annotated[
        bool, typer.Option(help="exit 1 when a check flags the evaluation (gradient masking...)")
    ] = False
    eps: Annotated[
        str, typer.Option(help="L-inf budgets (none: no L-inf attack, e.g. an L2-only audit)")
    ] = _listing(DEFAULTS.eps)
    eps_l2: Annotated[
        str | None,
        typer.Option(
            help="L2 budgets; the suite covers L2 only when they are given [default: "
            f"{_listing(DEFAULTS.eps_l2)} for L2 attacks named in --attacks]",
            show_default=False,
        ),
    ] = None
    eps_l1: Annotated[
        str | None,
        typer.Option(
            help="L1 budgets; the suite covers L1 only when they are given [default: "
            f"{_listing(DEFAULTS.eps_l1)} for L1 attacks named in --attacks]",
            show_default=False,
        ),
    ] = None
    sigmas: Annotated[
        str | None,
        typer.Option(help=f"Gaussian-noise sigmas [default: {_listing(DEFAULTS.sigmas)}]"),
    ] = None
    corruptions: Annotated[
        str | None,
        typer.Option(
            help="common corruptions (Hendrycks & Dietterich): all, or names such as "
            "gaussian_noise,fog; each corruption x severity is scored on every image"
        ),
    ] = None
    severities: Annotated[
        str | None,
        typer.Option(help="corruption severities, 1-5 (default: all five)", show_default=False),
    ] = None
    corruption_table: Annotated[
        str,
        typer.Option(help="corruption parameters: cifar10 (CIFAR-10-C) or imagenet (ImageNet-C)"),
    ] = DEFAULTS.corruption_table
    universal: Annotated[
        bool,
        typer.Option(
            help="also craft a universal perturbation (one for every image) at each L-inf and L2 "
            "budget on the dataset's training split, scored on the audited images as attack "
            "universal-linf / universal-l2; saved as OUT/universal-NORM-EPS.pt and .png"
        ),
    ] = False
    universal_samples: Annotated[
        int | None,
        typer.Option(help=SAMPLES_HELP, show_default=False),
    ] = None
    steps: Annotated[
        int | None,
        typer.Option(
            help="iterations of the iterative attacks named in --attacks [default: each "
            "attack's own, e.g. 40 for pgd-linf, 100 for apgd-ce]",
            show_default=False,
        ),
    ] = None
    restarts: Annotated[
        int | None,
        typer.Option(
            help="random restarts of the attacks named in --attacks [default: each attack's own]",
            show_default=False,
        ),
    ] = None
    num_samples: Annotated[
        int | None,
        typer.Option(
            help="seeded subset size; the standard suite costs about half a second per robust "
            "image on 2 CPU cores, and the 95% CI shows what a sample size buys "
            f"[default: {DEFAULTS.num_samples}; 0 for the whole dataset]",
            show_default=False,
        ),
    ] = None
    indices: Annotated[
        Path | None,
        typer.Option(
            help="audit exactly these images, in this order: a file of dataset indices (one per "
            "line or comma-separated, # comments; or a JSON list, or a one-column CSV); "
            "instead of --num-samples",
        ),
    ] = None
    batch_size: BatchSize = DEFAULTS.batch_size
    device: Device = None
    precision: Precision = DEFAULTS.precision
    channels_last: ChannelsLast = False
    compile_forward: Compile = False
    seed: Seed = DEFAULTS.seed
    image_size: Annotated[
        int | None, typer.Option(help="resize imagefolder images (default: the model's size)")
    ] = None
    noise_probes: Annotated[
        str,
        typer.Option(
            help="pure-noise probes (mean x sigma grid, PGD from noise): auto sizes them to the "
            "audit (cut on large inputs, said on the terminal), full, or off"
        ),
    ] = DEFAULTS.noise_probes
    no_noise_probes: Annotated[
        bool, typer.Option("--no-noise-probes", help="the same as --noise-probes off")
    ] = False
    defense: Annotated[
        str | None,
        typer.Option(
            help="manifold:GEN.pt or manifold:zoo:mnist-dcgan; audited with oblivious, BPDA "
            "and BPDA+EOT attacks, the worst case counting"
        ),
    ] = None
    projection_steps: Annotated[int, typer.Option(help="defense: latent steps")] = 200
    projection_restarts: Annotated[int, typer.Option(help="defense: latent restarts")] = 10
    eot_samples: Annotated[
        int | None,
        typer.Option(
            help="passes EOT averages each loss and gradient over [default: "
            f"{DEFAULTS.eot_samples} for a randomized model, {DEFAULTS.defense_eot_samples} for "
            "--defense]",
            show_default=False,
        ),
    ] = None
    eval_passes: Annotated[
        int | None,
        typer.Option(
            help="fresh passes that judge each point of a randomized model (early stop, best "
            f"adversarial, cascade, score) [default: {DEFAULTS.eval_passes}]",
            show_default=False,
        ),
    ] = None
    randomized: Annotated[
        bool,
        typer.Option(
            help="accept a model whose logits change between calls: it gets the rand protocol "
            "(the rand suite, EOT, points judged over --eval-passes fresh passes)"
        ),
    ] = False
    out: Annotated[Path, typer.Option(help="folder for results.csv, summary.csv, run.json")] = Path(
        "robustkit-results"
    )
    resume: Annotated[
        bool,
        typer.Option(
            help="skip the batches an interrupted audit with the same options saved in OUT/progress"
        ),
    ] = False
    skip_bad: Annotated[
        bool,
        typer.Option(
            help="a batch the model fails on (an exception, NaN or inf logits, out of memory on "
            "one image): record its images as error rows (never robust) and go on, instead of "
            "stopping with exit code 1"
        ),
    ] = False
