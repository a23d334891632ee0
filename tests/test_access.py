"""Black-box audits (issue 24, the audit side): ``--access scores|labels`` wraps the model so an
attack gets its outputs or its top-1 class and nothing else, attacks that need more are refused or
run on a surrogate and replayed, ``--max-queries`` caps every query-based attack per point, every
row records its queries, and the query curve reaches run.json, the terminal and the report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd
import pytest
import torch
from tiny_audits import linear_case
from torch import Tensor, nn
from typer.testing import CliRunner

import robustkit
from robustkit.attacks import Attack, AttackResult, create_attack
from robustkit.attacks.runs import Points
from robustkit.auditing.checks import sanity_flags, skipped_checks
from robustkit.auditing.queries import capped, counts_queries, curve_budgets, query_curve
from robustkit.auditing.results import ROW_COLUMNS, WORST_CASE, AuditResult
from robustkit.auditing.spec import AuditSpec
from robustkit.cli import app
from robustkit.errors import RobustkitError
from robustkit.models.access import LabelsOnly, ScoresOnly, restrict
from robustkit.reports import write_report

runner = CliRunner()
SEEN: list[tuple[nn.Module, Tensor, Tensor]] = []  # the model a spy got, what it asked, the answer


@dataclass(frozen=True, kw_only=True)
class LabelSpy(Attack):
    """Asks the model once, with an input that requires grad, and keeps what came back."""

    norm: ClassVar[str] = "linf"
    name: ClassVar[str] = "label-spy"
    access: ClassVar[str] = "labels"

    def _run(self, model: nn.Module, points: Points, eps: float) -> AttackResult:
        inputs, labels = points.x0, points.labels
        asked = inputs.clone().requires_grad_(True)
        out = model(asked)
        SEEN.append((model, asked, out))
        pred = out.argmax(dim=1)
        return AttackResult(x_adv=inputs, success=pred != labels, adv_pred=pred)


@dataclass(frozen=True, kw_only=True)
class ScoreSpy(LabelSpy):
    name: ClassVar[str] = "score-spy"
    access: ClassVar[str] = "scores"


@dataclass(frozen=True, kw_only=True)
class GradientSpy(LabelSpy):
    name: ClassVar[str] = "gradient-spy"
    access: ClassVar[str] = "gradients"


@dataclass(frozen=True, kw_only=True)
class VertexSearch(Attack):
    """A label-only random search over the L-inf ball's corners, one query per point and try,
    up to ``max_queries`` per point; a point leaves at its first adversarial."""

    norm: ClassVar[str] = "linf"
    name: ClassVar[str] = "vertex-search"
    access: ClassVar[str] = "labels"
    max_queries: int = 50

    def _run(self, model: nn.Module, points: Points, eps: float) -> AttackResult:
        inputs, labels = points.x0, points.labels
        generator = torch.Generator().manual_seed(0)
        x_adv, adv_pred = inputs.clone(), labels.clone()
        queries = torch.zeros(len(inputs), dtype=torch.long)
        open_ = torch.ones(len(inputs), dtype=torch.bool)
        for tries in range(1, self.max_queries + 1):
            idx = open_.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            signs = torch.randint(0, 2, inputs[idx].shape, generator=generator) * 2 - 1
            candidate = (inputs[idx] + eps * signs).clamp(0, 1)
            pred = model(candidate).argmax(dim=1)
            queries[idx] = tries
            hit = pred != labels[idx]
            x_adv[idx[hit]], adv_pred[idx[hit]] = candidate[hit], pred[hit]
            open_[idx[hit]] = False
        return AttackResult(x_adv=x_adv, success=~open_, adv_pred=adv_pred, queries=queries)


@pytest.fixture
def case() -> tuple[nn.Module, tuple[Tensor, Tensor]]:
    return linear_case()


def audit(case: tuple[nn.Module, tuple[Tensor, Tensor]], **kw: Any) -> AuditResult:
    model, data = case
    kw = {"eps": [0.5], "noise_probes": False, "device": "cpu", **kw}
    return robustkit.audit(model, data, **kw)


def test_the_scores_wrapper_gives_detached_logits_and_hides_the_model(case) -> None:
    model, (x, _) = case
    scores = restrict(model, "scores")
    assert isinstance(scores, ScoresOnly) and restrict(model, "gradients") is model
    out = scores(x.clone().requires_grad_(True))
    torch.testing.assert_close(out, model(x).detach())
    assert not out.requires_grad and out.grad_fn is None
    assert list(scores.parameters()) == [] and scores.state_dict() == {}
    assert list(scores.children()) == []  # the inner model is no submodule: nothing to walk to


def test_the_labels_wrapper_gives_a_one_hot_of_the_top_class(case) -> None:
    model, (x, _) = case
    labels = restrict(model, "labels")
    assert isinstance(labels, LabelsOnly)
    out = labels(x.clone().requires_grad_(True))
    assert not out.requires_grad and out.dtype == torch.float32 and out.shape == (40, 3)
    assert set(out.unique().tolist()) == {0.0, 1.0} and bool((out.sum(dim=1) == 1).all())
    assert torch.equal(out.argmax(dim=1), model(x).argmax(dim=1))
    assert list(labels.parameters()) == [] and labels.state_dict() == {}


@pytest.mark.parametrize(
    ("access", "spy", "wrapper"),
    [("labels", LabelSpy, LabelsOnly), ("scores", ScoreSpy, ScoresOnly)],
)
def test_an_attack_gets_no_gradient_and_under_labels_no_score(case, access, spy, wrapper) -> None:
    SEEN.clear()
    result = audit(case, access=access, attacks=[spy()])
    assert SEEN, "the spy attack never ran"
    for given, asked, out in SEEN:
        assert isinstance(given, wrapper) and list(given.parameters()) == []
        assert not out.requires_grad
        with pytest.raises(RuntimeError, match="does not require grad"):
            torch.autograd.grad(out.sum(), asked)
        if access == "labels":  # a one-hot row per query: the top-1 class, no score
            assert set(out.unique().tolist()) <= {0.0, 1.0}
            assert bool((out.sum(dim=1) == 1).all())
    assert result.config["access"]["level"] == access
    assert result.config["access"]["skipped_checks"]  # the gradient probe did not run


def test_an_attack_needing_more_than_the_access_is_refused_naming_what_fits(case) -> None:
    with pytest.raises(RobustkitError, match="gradient-spy needs gradients: --access labels"):
        audit(case, access="labels", attacks=[GradientSpy()])
    with pytest.raises(RobustkitError, match="score-spy needs scores: --access labels gives"):
        audit(case, access="labels", attacks=[ScoreSpy()])


def test_max_queries_caps_the_query_attacks_and_every_row_records_queries(case) -> None:
    result = audit(case, access="labels", attacks=[VertexSearch()], max_queries=6, eps=[0.05, 0.1])
    assert result.config["attacks"][0]["max_queries"] == 6  # the audit's cap, not the default
    rows = result.frame
    attacked = rows[rows["clean_correct"]]
    assert rows.loc[~rows["clean_correct"], "queries"].isna().all()  # never attacked
    assert attacked["queries"].between(1, 6).all()
    assert (attacked.loc[attacked["robust_correct"], "queries"] == 6).all()  # spent in full
    broken = attacked[~attacked["robust_correct"]]
    assert 0 < len(broken) < len(attacked) and broken["queries"].lt(6).any()
    small, large = (attacked[attacked["eps"] == eps].set_index("sample") for eps in (0.05, 0.1))
    early = ~small["robust_correct"]  # broken within 0.05: not attacked again, same count
    assert early.any() and small["queries"][early].equals(large["queries"][early])
    worst = result.worst_case()
    pd.testing.assert_series_equal(worst["queries"], rows["queries"])  # one attack: its counts
    curve = pd.DataFrame(result.config["query_curve"])
    assert curve["queries"].tolist() == [6, 6]  # per eps; no budget of 100 below the cap
    assert curve["robust_accuracy"].tolist() == result.robust_accuracy().tolist()


def test_the_query_curve_counts_a_point_broken_at_every_budget_its_breaker_needed() -> None:
    rows = []
    # sample -> (attack, queries, broken): 0 falls to a at 50, 1 to b at 2,000 (a spent 5,000),
    # 2 holds, 3 starts misclassified
    plan = {
        0: [("a", 50, True)],
        1: [("a", 5000, False), ("b", 2000, True)],
        2: [("a", 5000, False)],
    }
    for sample in range(4):
        for attack, queries, broken in plan.get(sample, [("a", float("nan"), False)]):
            rows.append(
                {
                    "model": "m",
                    "attack": attack,
                    "norm": "linf",
                    "eps": 0.3,
                    "sample": sample,
                    "label": 0,
                    "clean_pred": 0 if sample < 3 else 1,
                    "adv_pred": 1 if broken else 0,
                    "clean_correct": sample < 3,
                    "robust_correct": sample < 3 and not broken,
                    "broken_by": attack if broken else "",
                    "queries": queries,
                }
            )
    frame = pd.DataFrame(rows).reindex(columns=ROW_COLUMNS)
    curve = query_curve(frame, 5000)
    assert curve["queries"].tolist() == [100, 1000, 5000]
    assert curve["robust_accuracy"].tolist() == [0.5, 0.5, 0.25]  # of the 4 audited points
    assert curve_budgets(10) == [10] and curve_budgets(20_000) == [100, 1000, 10_000, 20_000]
    worst = AuditResult(frame=frame).worst_case().set_index("sample")["queries"]
    assert worst.tolist()[:3] == [50, 2000, 5000] and pd.isna(worst[3])


def test_a_surrogate_equal_to_the_model_transfers_exactly_what_the_white_box_attack_breaks(
    case,
) -> None:
    model, _ = case
    white = audit(case, attacks=["fgsm"])
    black = audit(case, access="labels", attacks=["fgsm"], surrogate=model)
    replayed = black.frame
    assert set(replayed["attack"]) == {"transfer:fgsm"}
    assert replayed["robust_correct"].tolist() == white.frame["robust_correct"].tolist()
    attacked = replayed["clean_correct"]
    assert (replayed.loc[attacked, "queries"] == 1).all()  # one replay per point
    assert black.config["access"]["surrogate"]["name"] == model.__class__.__name__
    assert white.frame["queries"].isna().all() and white.config["query_curve"] is None
    assert white.config["access"] == {
        "level": "gradients",
        "max_queries": None,
        "surrogate": None,
        "skipped_checks": [],
    }


def test_the_cap_reaches_every_query_attack_and_square_shares_it_between_restarts() -> None:
    assert capped(create_attack("nes-linf"), 300).max_queries == 300
    assert capped(create_attack("hsj-l2"), 300).max_queries == 300
    assert capped(create_attack("square"), 300).queries == 300
    assert capped(create_attack("square", restarts=2), 300).queries == 150  # 2 x 150 at most
    fgsm = create_attack("fgsm")
    assert capped(fgsm, 300) is fgsm and not counts_queries(fgsm)


def test_max_queries_is_refused_where_no_attack_counts_queries(case) -> None:
    with pytest.raises(RobustkitError, match="--max-queries caps query-based attacks"):
        audit(case, attacks=["fgsm"], max_queries=10)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_queries": 0}, "max_queries must be >= 1, got 0"),
        ({"access": "root"}, "unknown access 'root': use gradients, scores, labels"),
        ({"surrogate": "zoo:mnist-cnn"}, "a surrogate model serves"),
    ],
)
def test_the_spec_refuses_bad_access_settings(fields, message) -> None:
    with pytest.raises(RobustkitError, match=message):
        AuditSpec(**fields)


def test_checks_that_need_gradients_do_not_run_under_restricted_access() -> None:
    rows = [
        {
            "model": "m",
            "attack": attack,
            "norm": "linf",
            "eps": 0.3,
            "sample": sample,
            "label": 0,
            "clean_pred": 0,
            "adv_pred": int(broken),
            "clean_correct": True,
            "robust_correct": not broken,
            "broken_by": attack if broken else "",
            "queries": 1.0,
        }
        for sample in range(20)
        for attack, broken in (("square", sample < 10), ("transfer:pgd-linf", False))
    ]
    result = AuditResult(frame=pd.DataFrame(rows).reindex(columns=ROW_COLUMNS), config={})
    assert "gradient-free-beats-gradient" in [f.code for f in sanity_flags(result)]
    skipped = [{"check": "gradient-free-beats-gradient", "reason": "no gradient attack"}]
    result.config["access"] = {"level": "scores", "skipped_checks": skipped}
    assert "gradient-free-beats-gradient" not in [f.code for f in sanity_flags(result)]
    assert skipped_checks(result.config) == [("gradient-free-beats-gradient", "no gradient attack")]


def test_a_resumed_audit_with_another_access_is_refused(case, tmp_path) -> None:
    kw = {"attacks": [VertexSearch()], "max_queries": 3, "progress_dir": tmp_path}
    audit(case, access="labels", **kw)
    with pytest.raises(RobustkitError, match=r'access.level changed \(was "labels", now "scores"'):
        audit(case, access="scores", resume=True, **kw)


def test_the_report_draws_the_query_curve_and_escapes_the_names(case, tmp_path) -> None:
    result = audit(case, access="labels", attacks=[VertexSearch()], max_queries=6, eps=[0.1])
    curve = result.config["query_curve"]
    curve += [{**point, "model": "<script>alert(1)</script>"} for point in curve]
    result.save(tmp_path)
    html = write_report(AuditResult.load(tmp_path), tmp_path / "report.html").read_text()
    assert 'id="queries"' in html and "robust accuracy against the query budget" in html
    assert "6 queries</th>" in html and "<script>alert" not in html
    assert "not run: <code>zero-gradients</code>" in html


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ["--access", "labels", "--attacks", "pgd-linf"],
            ["pgd-linf needs gradients", "--access labels", "--surrogate MODEL"],
        ),
        (
            ["--access", "scores", "--suite", "standard"],
            ["--suite standard needs gradients", "use --suite scores"],
        ),
        (["--max-queries", "0"], ["--max-queries must be >= 1, got 0"]),
        (
            ["--surrogate", "zoo:mnist-robust"],
            ["--surrogate serves a black-box audit", "--access labels"],
        ),
        (["--access", "root"], ["unknown access 'root'", "gradients, scores, labels"]),
        (["--access", "scores", "--universal"], ["--universal crafts with the model's gradients"]),
        (
            ["--access", "labels", "--defense", "manifold:zoo:mnist-dcgan"],
            ["--defense is audited with gradients"],
        ),
    ],
)
def test_bad_access_options_are_refused_in_one_line(
    tmp_path, one_line_error, args, fragments
) -> None:
    result = runner.invoke(app, ["audit", *args, "--out", str(tmp_path)])
    one_line_error(result, *fragments)


def cli_audit(tmp_path, *args: str, eps: str = "0.3") -> tuple[pd.DataFrame, dict[str, Any], str]:
    common = ["--num-samples", "8", "--eps", eps, "--device", "cpu", "--out", str(tmp_path)]
    result = runner.invoke(app, ["audit", *common, *args])
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "run.json").read_text())
    return pd.read_csv(tmp_path / "results.csv"), run, result.output


def check_curve(rows: pd.DataFrame, run: dict[str, Any], budgets: list[int]) -> None:
    """The curve reads the budgets, never rises, and meets the worst case at the cap."""
    curve = pd.DataFrame(run["query_curve"])
    worst = rows[rows["attack"] == WORST_CASE].groupby("eps")["robust_correct"].mean()
    for eps, line in curve.groupby("eps"):
        assert line["queries"].tolist() == budgets
        assert line["robust_accuracy"].is_monotonic_decreasing
        assert line["robust_accuracy"].iloc[-1] == pytest.approx(worst[eps])


@pytest.mark.slow
def test_cli_gradient_access_counts_only_the_query_attacks(tmp_path) -> None:
    rows, run, _ = cli_audit(tmp_path, "--attacks", "fgsm,square", "--max-queries", "40")
    assert run["access"]["level"] == "gradients" and run["query_curve"] is None
    assert rows.loc[rows["attack"] == "fgsm", "queries"].isna().all()
    square = rows[(rows["attack"] == "square") & rows["clean_correct"]]
    assert square["queries"].between(1, 40).all()
    assert run["attacks"][1]["queries"] == 40  # Square's budget per run, capped


@pytest.mark.slow
def test_cli_scores_access_runs_the_scores_suite_within_the_budget(tmp_path) -> None:
    rows, run, output = cli_audit(
        tmp_path, "--access", "scores", "--max-queries", "200", eps="0.1,0.2"
    )
    assert run["protocol"]["suite"] == "scores" and run["access"]["max_queries"] == 200
    assert set(rows["attack"]) == {"square", "nes-linf", WORST_CASE}
    attacked = rows[rows["clean_correct"]]
    assert attacked["queries"].between(1, 200).all()
    check_curve(rows, run, [100, 200])
    assert "robust accuracy by query budget" in output and "not run under" in output


@pytest.mark.slow
def test_cli_labels_access_runs_the_labels_suite_and_the_surrogate(tmp_path) -> None:
    rows, run, output = cli_audit(
        tmp_path,
        "--access",
        "labels",
        "--max-queries",
        "200",
        "--surrogate",
        "zoo:mnist-robust",
        eps="0.1,0.2",
    )
    assert {"rays-linf", "hsj-linf", "transfer:pgd-linf", WORST_CASE} == set(rows["attack"])
    assert run["access"]["surrogate"]["name"] == "zoo:mnist-robust"
    attacked = rows[rows["clean_correct"] & (rows["attack"] != WORST_CASE)]
    assert attacked["queries"].between(1, 200).all()
    transfer = attacked[attacked["attack"] == "transfer:pgd-linf"]
    assert (transfer["queries"] == 1).all()
    check_curve(rows, run, [100, 200])
    assert "black-box (labels)" in output and (tmp_path / "report.html").is_file()
