"""Write the self-contained HTML report of one or several audits."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from robustkit.auditing.checks import CHECKS, sanity_flags, skipped_checks, steps_flags
from robustkit.auditing.leaderboard import leaderboard_lines
from robustkit.auditing.partial import Partial, load_saved
from robustkit.auditing.probe_modes import describe_probes
from robustkit.auditing.results import AuditResult
from robustkit.errors import RobustkitError
from robustkit.files import write_text
from robustkit.reports import figures, images, views
from robustkit.transfer.result import read_frames

log = logging.getLogger(__name__)

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("robustkit.reports", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["pct"] = lambda value: "-" if value is None or pd.isna(value) else f"{value:.1%}"


def _table(frame: pd.DataFrame) -> dict[str, Any]:
    """A frame as header + rows for the template (the index becomes the first column)."""
    frame = frame.reset_index()
    return {"columns": [str(c) for c in frame.columns], "rows": frame.to_numpy().tolist()}


def _normalisation(info: dict[str, Any]) -> str:
    if not info["mean"] and not info["std"]:
        return "none (the model takes [0, 1] pixels)"

    def rounded(values: list[float] | None) -> str:
        return ", ".join(f"{v:.4g}" for v in values) if values else "none"

    return f"mean {rounded(info['mean'])}; std {rounded(info['std'])}"


def _run_context(result: AuditResult, label: str) -> dict[str, Any]:
    """Everything the template shows about one audit (its run.json fields are those of the
    schema :func:`~robustkit.auditing.spec.check_run_record` checks)."""
    corruptions = views.corruption_table(result)
    corruption_headline = views.corruption_headline(result)
    result = result.without_corruptions()  # the views below are about adversarial budgets
    attacked = not result.frame.empty
    config = result.config
    info = config["model_info"]
    summary = result.summary()
    command, recorded = views.reproduce_command(config)
    sweep = views.sigma_sweep(result)
    defense = views.defense_table(result)
    norms = dict(zip(result.frame["attack"], result.frame["norm"], strict=True))
    return {
        "label": label,
        "model": config["model"],
        "parameters": info["parameters"],
        "input_shape": " x ".join(str(d) for d in info["input_shape"] or []) or "unknown",
        "normalisation": _normalisation(info),
        "dataset": config["dataset"],
        "num_samples": config["num_samples"],
        "clean_accuracy": views.clean_accuracy(result),
        "headline": views.headline(result),
        "date": config["date"],
        "versions": config["versions"],
        "seed": config["seed"],
        "device": config["device"],
        "wall_time_s": config["wall_time_s"],
        "command": command,
        "command_recorded": recorded,
        "accuracy_table": _table(views.accuracy_table(result)),
        "curves": figures.accuracy_curves(summary, views.radius_curves(result)) if attacked else "",
        "per_class": figures.per_class(views.per_class_accuracy(result)) if attacked else "",
        "corruptions": None if corruptions is None else _table(corruptions),
        "corruption_headline": corruption_headline,
        "confused": views.confused_pairs(result),
        "examples": []
        if result.examples is None
        else images.triplets(result.examples, config, norms),
        "universal": images.universal(result),
        "universal_source": (config.get("universal") or {}).get("crafting_source"),
        "sigma_sweep": figures.sigma_sweep(sweep) if not sweep.empty else None,
        "noise_grid": (
            figures.noise_grid(result.noise_grid) if result.noise_grid is not None else None
        ),
        "noise_targets": views.noise_success(result),
        "noise_probes": _noise_probes(config),
        "defense": None if defense is None else _table(defense.set_index("base")),
        "flags": sanity_flags(result),
        **_access(config),
        "suite": config["suite"],
        "evaluation": config["evaluation"],
        "protocol": config["protocol"],
        "leaderboard": leaderboard_lines(config["leaderboard"]) if config["leaderboard"] else [],
        "leaderboard_link": (config["leaderboard"] or {}).get("link"),
        "partial": Partial(**config["partial"]).describe() if config.get("partial") else None,
        "errors": _failed_batches(config),
    }


def _access(config: dict[str, Any]) -> dict[str, Any]:
    """What the template shows of the access: its level, the checks it skipped, the curve."""
    return {
        "access": (config.get("access") or {}).get("level", "gradients"),
        "skipped_checks": skipped_checks(config),
        "query_curve": _query_curve(config),
    }


def _query_curve(config: dict[str, Any]) -> dict[str, Any] | None:
    """A black-box audit's robust accuracy against the query budget: the figure, and a table
    with a row per model, norm and eps and a column per budget (None: no curve)."""
    curve = config.get("query_curve")
    if not curve:
        return None
    frame = pd.DataFrame(curve)
    keys = ["model", "norm", "eps"]
    table = frame.pivot_table(index=keys, columns="queries", values="robust_accuracy", sort=False)
    return {
        "figure": figures.query_curve(frame),
        "budgets": [int(q) for q in table.columns],
        "several": frame["model"].nunique() > 1,
        "rows": [
            (*key, values)
            for key, values in zip(table.index, table.to_numpy().tolist(), strict=True)
        ],
    }


def _failed_batches(config: dict[str, Any]) -> list[str]:
    """Per batch that failed under --skip-bad: its images and the cause."""
    return [
        f"batch {failed['batch']} ({len(failed['samples'])} images): {failed['cause']}"
        for failed in config.get("failed_batches") or []
    ]


def _noise_probes(config: dict[str, Any]) -> str | None:
    """The size of the noise probes an audit ran (cut or full), None when off."""
    recorded = config["noise_probes"]
    if recorded["mode"] == "off":
        return None
    return describe_probes(recorded)


def _labels(results: Sequence[AuditResult]) -> list[str]:
    """Model names, numbered where several runs share one."""
    names = [str(r.config["model"]) for r in results]
    counts = Counter(names)
    return [f"{n} (run {i + 1})" if counts[n] > 1 else n for i, n in enumerate(names)]


def write_report(
    results: Sequence[AuditResult] | AuditResult,
    path: str | Path,
    transfer: pd.DataFrame | None = None,
) -> Path:
    """Render one self-contained HTML file comparing ``results`` side by side."""
    runs = [results] if isinstance(results, AuditResult) else list(results)
    if not runs:
        raise RobustkitError("a report needs at least one audit result")
    contexts = [_run_context(r, label) for r, label in zip(runs, _labels(runs), strict=True)]
    html = _env.get_template("report.html.j2").render(
        runs=contexts,
        budgets=list(dict.fromkeys(b for c in contexts for b in c["headline"])),
        cross_flags=steps_flags(runs),
        checks=CHECKS,
        transfer=figures.transfer(transfer)
        if transfer is not None and not transfer.empty
        else None,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, html)
    log.info("report written to %s (%.0f kB)", out, out.stat().st_size / 1e3)
    return out


def report_from_dirs(dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Load the results folders ``dirs`` (and any transfer matrix in them) into one report; an
    audit that has not finished shows what it saved, marked partial."""
    folders = [Path(d) for d in dirs]
    results = [load_saved(folder) for folder in folders]
    return write_report(results, out, transfer=read_frames(folders))
