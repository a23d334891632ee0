"""One audit spec: the CLI, the Python API and the pytest plugin build the same AuditSpec from the
same request and get the same numbers; run.json and the resume manifest carry the current schema,
the defense audit's run.json included, and a result of another schema is refused in one line."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

# Imported before the inline pytester run below (see tests/test_pytest_plugin.py): native ops
# cannot be registered twice in one process.
import torch._dynamo  # noqa: F401
from tiny_audits import linear_case
from torch import nn
from typer.testing import CliRunner

import robustkit
import robustkit.reports
from robustkit.auditing import engine
from robustkit.auditing.results import WORST_CASE, AuditResult
from robustkit.auditing.spec import DEFAULTS, MANIFEST_FIELDS, RUN_FIELDS, SCHEMA, AuditSpec
from robustkit.auditing.threats import Threats
from robustkit.cli import app
from robustkit.commands.audit import audit_command
from robustkit.defenses.evaluation import audit_defense
from robustkit.errors import RobustkitError
from robustkit.models import load_model
from robustkit.testing.requirement import Requirement

pytest_plugins = ["pytester"]
runner = CliRunner()

# The one tiny audit every front end runs below: 16 bundled MNIST images, FGSM and PGD-3, one eps.
CLI_ARGS = ["--dataset", "mnist-sample", "--num-samples", "16", "--attacks", "fgsm,pgd-linf"]
CLI_ARGS += ["--steps", "3", "--eps", "0.2", "--no-noise-probes", "--device", "cpu"]
PLUGIN_TEST = """
import pytest

@pytest.mark.robustness(
    attack=["fgsm", "pgd-linf"], eps=0.2, min_accuracy=0.0, num_samples=16, steps=3
)
def test_tiny():
    return "zoo:mnist-cnn"
"""
VARYING = ("date", "wall_time_s", "command", "test")  # differ between runs, not between specs


def run_json(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def test_cli_api_and_plugin_give_the_same_frames(tmp_path, pytester: pytest.Pytester) -> None:
    cli = runner.invoke(app, ["audit", *CLI_ARGS, "--out", str(tmp_path / "cli")])
    assert cli.exit_code == 0, cli.output
    api = robustkit.audit(
        "zoo:mnist-cnn",
        "mnist-sample",
        attacks=["fgsm", "pgd-linf"],
        steps=3,
        eps=[0.2],
        num_samples=16,
        noise_probes=False,
        device="cpu",
    )
    api.save(tmp_path / "api")
    pytester.makepyfile(test_tiny=PLUGIN_TEST)
    plugin = pytester.runpytest("--robustkit-device=cpu", "--robustkit-report=report")
    plugin.assert_outcomes(passed=1)
    checks = pd.read_csv(pytester.path / "report" / "checks.csv")
    folders = {"cli": tmp_path / "cli", "api": tmp_path / "api", "plugin": checks["folder"][0]}
    frames = {name: pd.read_csv(Path(f) / "results.csv") for name, f in folders.items()}
    assert set(frames["cli"]["attack"]) == {"fgsm", "pgd-linf", WORST_CASE}
    assert frames["cli"]["sample"].nunique() == 16
    pd.testing.assert_frame_equal(frames["api"], frames["cli"])
    pd.testing.assert_frame_equal(frames["plugin"], frames["cli"])
    worst = {name: AuditResult.load(f).robust_accuracy().to_dict() for name, f in folders.items()}
    assert worst["api"] == worst["cli"] == worst["plugin"]
    runs = {name: run_json(Path(f)) for name, f in folders.items()}
    for name in ("api", "plugin"):  # the same spec, weights and images, recorded alike
        for field in MANIFEST_FIELDS:
            assert runs[name][field] == runs["cli"][field], (name, field)
    assert runs["cli"]["schema"] == SCHEMA and runs["cli"]["attacks"][1]["steps"] == 3


def spec_of(monkeypatch: pytest.MonkeyPatch, call: Callable[[], object]) -> AuditSpec:
    """The spec a front end hands to run_audit, which stops there."""
    seen: list[AuditSpec] = []

    def stop(spec: AuditSpec, *args: object, **kwargs: object) -> None:
        seen.append(spec)
        raise RobustkitError("stopped before attacking")

    monkeypatch.setattr(engine, "run_audit", stop)
    with contextlib.suppress(RobustkitError):
        call()
    return seen[0]


def test_cli_and_api_build_one_spec_and_a_named_attack_keeps_its_steps(monkeypatch, tmp_path):
    """``--attacks apgd-ce`` and ``attacks=["apgd-ce"]`` ask for the same audit: APGD's own 100
    steps (not the 40 the CLI used to impose), the default images, budgets and batch size."""
    args = ["audit", "--attacks", "apgd-ce", "--out", str(tmp_path)]
    cli = spec_of(monkeypatch, lambda: runner.invoke(app, args))
    api = spec_of(monkeypatch, lambda: robustkit.audit(attacks=["apgd-ce"]))
    assert cli.randomized is False  # the CLI refuses a randomized model without --randomized
    assert dataclasses.replace(cli, randomized=None) == api
    assert api.num_samples is None and api.steps is None and api.batch_size == DEFAULTS.batch_size
    protocol = {"suite": None, "eot_samples": 1, "eval_passes": 1}
    plan = engine._plan(api, protocol, Threats(load_model("zoo:mnist-cnn", device="cpu")))
    assert [a.steps for a in plan.independent] == [100]
    assert plan.budgets == {"linf": list(DEFAULTS.eps)}


def test_every_front_end_reads_the_one_table_of_defaults() -> None:
    cli = inspect.signature(audit_command).parameters
    api = inspect.signature(robustkit.audit).parameters
    defense = inspect.signature(audit_defense).parameters
    for name in ("batch_size", "seed"):
        value = getattr(DEFAULTS, name)
        assert cli[name].default == api[name].default == defense[name].default == value
    assert cli["model"].default == api["model"].default == DEFAULTS.model
    assert cli["eps"].default == ",".join(f"{v:g}" for v in DEFAULTS.eps)
    assert tuple(api["eps"].default) == tuple(defense["eps"].default) == DEFAULTS.eps
    assert defense["eot_samples"].default == DEFAULTS.defense_eot_samples
    for params in (cli, api, defense):  # None: the table's sample count, each attack's steps
        assert params["num_samples"].default is None and params["steps"].default is None
    requirement = Requirement(eps=0.1, min_accuracy=0.5)
    assert requirement.num_samples is None and requirement.attacks == (DEFAULTS.check_attack,)


class Blur(nn.Module):
    """A deterministic stand-in defense: the model on slightly blurred inputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(0.5 * x + 0.5 * x.mean(dim=(2, 3), keepdim=True))


def test_a_defense_audit_records_the_fields_of_a_model_audit(tmp_path) -> None:
    model, data = linear_case()
    kw = {"attacks": ["fgsm", "apgd-ce"], "eps": [0.1], "steps": 2, "batch_size": 16}
    robustkit.audit(model, data, noise_probes=False, **kw).save(tmp_path / "plain")
    audit_defense(model, Blur(model), data, eot_samples=2, **kw).save(tmp_path / "defense")
    plain, defense = run_json(tmp_path / "plain"), run_json(tmp_path / "defense")
    assert set(RUN_FIELDS) <= set(plain) and set(plain) <= set(defense)
    assert defense["schema"] == SCHEMA and defense["eot_samples"] == 2
    # EOT is the bpda-eot threat's: the attacks themselves average over one pass
    assert [a.get("eot_samples", 1) for a in defense["attacks"]] == [1, 1]
    assert defense["classes"] == plain["classes"] and defense["date"] and defense["versions"]
    assert defense["model_info"] == plain["model_info"] and defense["evaluation"] is True
    loaded = AuditResult.load(tmp_path / "defense")  # read back with no default filled in
    assert robustkit.reports.write_report(loaded, tmp_path / "report.html").is_file()


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (lambda run: run.pop("schema"), ["no schema", f"reads schema {SCHEMA}"]),
        (lambda run: run.update(schema=1), ["schema 1", f"reads schema {SCHEMA}"]),
        (lambda run: run.pop("versions"), [f"schema {SCHEMA} but no versions"]),
    ],
)
def test_a_run_json_of_another_schema_is_refused_in_one_line(
    tmp_path, one_line_error, change, fragments
) -> None:
    model, data = linear_case()
    result = robustkit.audit(model, data, attacks=["fgsm"], eps=[0.1], noise_probes=False)
    run = json.loads((result.save(tmp_path) / "run.json").read_text())
    change(run)
    (tmp_path / "run.json").write_text(json.dumps(run))
    with pytest.raises(RobustkitError, match="another robustkit version"):
        AuditResult.load(tmp_path)
    report = runner.invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "r.html")])
    one_line_error(report, "another robustkit version", *fragments)


def test_progress_of_another_schema_does_not_resume(tmp_path) -> None:
    model, data = linear_case()
    kw = {"attacks": ["fgsm"], "eps": [0.1], "noise_probes": False, "progress_dir": tmp_path}
    robustkit.audit(model, data, **kw)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    # the spec's fields, and the progress bookkeeping (batch count and checksums) beside them
    assert manifest["schema"] == SCHEMA and set(manifest) == {*MANIFEST_FIELDS, "progress"}
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "schema": 1}))
    with pytest.raises(
        RobustkitError, match=rf"another robustkit version .*schema 1.* schema {SCHEMA}"
    ):
        robustkit.audit(model, data, resume=True, **kw)
