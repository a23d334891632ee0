"""The spec as written to disk (schema :data:`~robustkit.auditing.spec.SCHEMA`): the resume
manifest (what decides the numbers) and run.json (the manifest, then what the run found)."""

from __future__ import annotations

import dataclasses
import platform
from datetime import datetime, timezone
from typing import Any

import torch

import robustkit
from robustkit.auditing.checks import Flag
from robustkit.auditing.plan import Plan
from robustkit.auditing.progress import EngineRun, dataset_digest
from robustkit.auditing.queries import query_curve
from robustkit.auditing.spec import RUN_FIELDS, SCHEMA, AuditSpec
from robustkit.auditing.suites import get_suite
from robustkit.auditing.threats import Threats
from robustkit.data import DatasetInfo, indices_record

SAMPLE_MEANING = "dataset index"  # what the rows' sample column holds


def manifest(
    spec: AuditSpec, plan: Plan, threats: Threats, info: DatasetInfo, protocol: dict[str, Any]
) -> dict[str, Any]:
    """What decides an audit's numbers: who is attacked (weights digest), on which images
    (their digest), with which attacks, budgets, batches, seed and passes."""
    return {
        "schema": SCHEMA,
        **threats.record(protocol),
        "dataset": info.name,
        "samples": dataset_digest(info.dataset),
        "suite": plan.suite,
        "attacks": plan.describe(),
        "budgets": plan.budgets,
        "corruptions": None if plan.corruptions is None else dataclasses.asdict(plan.corruptions),
        "batch_size": spec.batch_size,
        "seed": spec.seed,
        "eot_samples": protocol["eot_samples"],
        "eval_passes": protocol["eval_passes"],
        "examples_per_attack": spec.examples_per_attack,
        "sample_column": SAMPLE_MEANING,  # older progress, whose rows counted positions, differs
        "access": threats.access(spec),
    }


def run_record(
    head: dict[str, Any],
    threats: Threats,
    plan: Plan,
    info: DatasetInfo,
    run: EngineRun,
    *,
    protocol: dict[str, Any],
    probes: dict[str, Any],
    model_flags: list[Flag],
) -> dict[str, Any]:
    """run.json: the manifest ``head``, then what the run found and where it ran (the wall time
    comes on top; the CLI adds the command and a leaderboard's figures)."""
    record = {
        **head,
        **threats.describe(plan, protocol),
        "classes": info.classes,
        "num_samples": run.num_samples,
        **indices_record(info),
        "evaluation": plan.suite is None or get_suite(plan.suite).evaluation,
        "protocol": protocol,
        "noise_probes": probes,
        "model_checks": [dataclasses.asdict(flag) for flag in model_flags],
        "eps_probes": run.eps_probes,
        "query_curve": _query_curve(head, run),
        "failed_batches": run.failures,  # --skip-bad: their images have error rows
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": str(threats.model.device),
        "versions": {
            "robustkit": robustkit.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "command": None,
        "leaderboard": None,
        "wall_time_s": None,
    }
    assert set(RUN_FIELDS) <= set(record), "run.json lacks a field of its schema"
    return record


def _query_curve(head: dict[str, Any], run: EngineRun) -> list[dict[str, Any]] | None:
    """Robust accuracy against the query budget, for an audit whose attacks only query the
    model (None under gradient access, where the gradient attacks count no queries)."""
    access = head["access"]
    if access["level"] == "gradients":
        return None
    curve = query_curve(run.frame, access["max_queries"])
    return curve.to_dict("records") or None
