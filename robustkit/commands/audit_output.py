"""What `robustkit audit` shows and saves once the attacks are done: results, report, the
summary table, the protocol, probe and leaderboard lines and the checks, on the terminal."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from robustkit.auditing.checks import Flag, sanity_flags, skipped_checks
from robustkit.auditing.leaderboard import compare as compare_leaderboard
from robustkit.auditing.leaderboard import leaderboard_lines
from robustkit.auditing.probe_modes import describe_probes
from robustkit.auditing.results import (
    CORRUPTION,
    CORRUPTION_MEAN,
    CORRUPTION_WORST,
    WORST_CASE,
    AuditResult,
)
from robustkit.commands.console import print_table, recorded_command, stderr, stdout
from robustkit.models.leaderboard import leaderboard_entry
from robustkit.reports import write_report

MODEL_COLUMN_WIDTH = 24  # a longer model name wraps over several lines


def publish(result: AuditResult, out_dir: Path, *, strict: bool) -> None:
    """Save the results and report, print the table and the checks; --strict fails on a flag."""
    result.config["command"] = recorded_command()
    entry = leaderboard_entry(str(result.config["model"]))
    if entry is not None:
        result.config["leaderboard"] = compare_leaderboard(result, entry)
    result.save(out_dir)
    report = write_report(result, out_dir / "report.html")
    print_table(summary_table(result))
    curve = query_table(result)
    if curve is not None:
        print_table(curve)
    print_protocol(result)
    print_noise_probes(result)
    print_leaderboard(result)
    print_universal(result, out_dir)
    flags = sanity_flags(result)
    print_flags(result, flags)
    stdout.print(f"results written to {out_dir}/, report: {report}", highlight=False)
    if strict and flags:
        stderr.print(f"--strict: {len(flags)} check(s) failed", highlight=False)
        raise typer.Exit(code=1)


def query_table(result: AuditResult) -> Table | None:
    """Robust accuracy against the per-point query budget of a black-box audit, one row per
    norm and eps, one column per budget (None: no query curve in run.json)."""
    curve = result.config.get("query_curve")
    if not curve:
        return None
    frame = pd.DataFrame(curve)
    several = frame["model"].nunique() > 1
    budgets = sorted(frame["queries"].unique())
    table = Table(title="robust accuracy by query budget")
    for column in [*["model"] * several, "norm", "eps", *(f"{q:,} queries" for q in budgets)]:
        table.add_column(column, justify="left" if column in ("model", "norm") else "right")
    for (model, norm, eps), group in frame.groupby(["model", "norm", "eps"], sort=False):
        accuracy = group.set_index("queries")["robust_accuracy"]
        table.add_row(
            *[str(model)] * several,
            str(norm),
            f"{eps:g}",
            *(f"{accuracy[q]:.1%}" for q in budgets),
        )
    return table


def print_protocol(result: AuditResult) -> None:
    """Which protocol ran and why, and the counting rule where points took several passes."""
    protocol = result.config["protocol"]
    stdout.print(
        f"[bold]protocol:[/] {escape(str(protocol['name']))} (suite "
        f"{escape(str(protocol['suite']))}): {escape(str(protocol['reason']))}",
        highlight=False,
        soft_wrap=True,
    )
    if "rule" in protocol:
        stdout.print(f"[bold]rule:[/] {escape(protocol['rule'])}", highlight=False, soft_wrap=True)


def print_noise_probes(result: AuditResult) -> None:
    """One line when the noise probes were cut to the audit's size, saying how to run them whole."""
    if result.config["noise_probes"]["cut"]:
        recorded = result.config["noise_probes"]
        stdout.print(
            f"[bold yellow]note:[/] {escape(describe_probes(recorded))}",
            highlight=False,
            soft_wrap=True,
        )


def print_leaderboard(result: AuditResult) -> None:
    """A RobustBench zoo model's leaderboard figures beside ours, below the table."""
    record = result.config["leaderboard"]
    for label, text in leaderboard_lines(record) if record else ():
        stdout.print(f"[bold]{label}:[/] {escape(text)}", highlight=False, soft_wrap=True)


def print_universal(result: AuditResult, out_dir: Path) -> None:
    """Each universal perturbation's fooling rate on the audited images, and where it lies."""
    record = result.config.get("universal")
    if not record:
        return
    stdout.print(
        f"[bold]universal:[/] crafted on {escape(record['crafting_source'])}",
        highlight=False,
        soft_wrap=True,
    )
    for entry in record["perturbations"]:
        stdout.print(
            f"  {entry['attack']} eps={entry['eps']:g}: fools {entry['fooling_rate']:.1%} of "
            f"the {entry['n']} audited images ({entry['crafting_fooling_rate']:.1%} of the "
            f"crafting images), {escape(str(out_dir / entry['file']))}",
            highlight=False,
            soft_wrap=True,
        )


def print_flags(result: AuditResult, flags: list[Flag]) -> None:
    """The checks' verdicts below the table, where the user looks."""
    if not result.config["evaluation"]:
        stdout.print(
            f"[bold yellow]note:[/] suite {result.config['suite']!r} is a smoke check, not "
            "an evaluation: use --suite standard for a robust accuracy you can report",
            highlight=False,
        )
    access = result.config.get("access") or {}
    for check, reason in skipped_checks(result.config):
        stdout.print(
            f"[bold yellow]note:[/] {escape(f'[{check}]')} not run under --access "
            f"{escape(str(access.get('level')))}: {escape(reason)}",
            highlight=False,
            soft_wrap=True,
        )
    for flag in flags:
        colour = "red" if flag.severity == "error" else "yellow"
        stdout.print(
            f"[bold {colour}]{flag.severity}:[/] {escape(f'[{flag.code}]')} {escape(flag.message)}",
            highlight=False,
            soft_wrap=True,
        )


def summary_table(result: AuditResult) -> Table:
    """The summary view as a Rich table, worst case in bold. Names wrap rather than being cut;
    the model column appears only when the audit holds several models (a defense audit)."""
    summary = result.summary()
    config = result.config
    table = Table(
        title=f"robustkit audit: {config['model']} on {config['dataset']} "
        f"({config['num_samples']} samples, {config['wall_time_s']:.1f} s)"
    )
    several = summary["model"].nunique() > 1
    names = int(summary["model"].astype(str).str.len().max())
    text = ["model"] * several + ["attack", "norm"]
    passes = int(summary["passes"].max()) if len(summary) else 1
    extra = ["all passes", "majority"] if passes > 1 else []
    errors = ["errors"] if summary["errors"].any() else []  # --skip-bad recorded some
    for column in [*text, "eps", "n", *errors, "clean acc", "robust acc", *extra, "95% CI"]:
        right = column not in text
        table.add_column(
            column,
            justify="right" if right else "left",
            overflow="fold",
            no_wrap=column != "model",  # only the model's name may wrap, never be cut
            min_width=min(MODEL_COLUMN_WIDTH, names) if column == "model" else None,
        )
    cells = (summary["norm"] == CORRUPTION) & ~summary["attack"].isin(
        [CORRUPTION_MEAN, CORRUPTION_WORST]
    )
    for row in summary[~cells].itertuples():  # corruption cells: in summary.csv and the report
        style = "bold" if row.attack in (WORST_CASE, CORRUPTION_MEAN, CORRUPTION_WORST) else None
        attack = str(row.attack)
        if row.attack == CORRUPTION_WORST:
            attack = f"{attack}: {row.corruption}"
        table.add_row(
            *[str(row.model)] * several,
            attack,
            str(row.norm),
            "-" if row.eps != row.eps else f"{row.eps:g}",
            str(row.n),
            *[str(row.errors)] * len(errors),
            f"{row.clean_accuracy:.1%}",
            f"{row.robust_accuracy:.1%}",
            *([f"{row.robust_all_passes:.1%}", f"{row.robust_majority:.1%}"] if extra else []),
            "-" if row.ci_low != row.ci_low else f"{row.ci_low:.1%}-{row.ci_high:.1%}",
            style=style,
        )
    return table
