"""The pytest plugin, run on small test suites through pytester (bundled model and data)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

# Imported here, before any inline run: pytester drops modules a run imported, and native ops
# cannot be registered twice in one process: torchvision's (imported by the HTML report) and
# torch._dynamo's (imported lazily by the first torch.manual_seed of an audit).
import torch._dynamo  # noqa: F401

import robustkit.reports  # noqa: F401
from robustkit.errors import RobustkitError
from robustkit.testing.baseline import Baseline
from robustkit.testing.requirement import Requirement

pytest_plugins = ["pytester"]

# FGSM has no random start: the figures below are exact (bundled model, first 30 samples).
PASSING = """
import pytest

@pytest.mark.robustness(attack="fgsm", eps=0.1, min_accuracy=0.8, num_samples=30)
def test_passes():
    return "zoo:mnist-cnn"
"""
FAILING = """
import pytest
from robustkit.models import load_model

@pytest.mark.robustness(attack="fgsm", eps=0.2, min_accuracy=0.8, num_samples=30)
def test_fails():
    yield load_model("zoo:mnist-cnn")
    open("teardown-ran", "w").close()  # the code after yield runs as teardown
"""
FIXTURE = """
def test_explicit(robustkit_check):
    measurement = robustkit_check(
        "zoo:mnist-cnn", "mnist-sample", attack="pgd-linf", eps=0.05, min_accuracy=0.5,
        num_samples=20, steps=5,
    )
    assert measurement.n == 20 and measurement.accuracy >= 0.5
"""
CPU = "--robustkit-device=cpu"

# A linear classifier built in the test, in closed form: nearest class mean on the bundled sample.
# ``scale`` multiplies the logits (1e4 saturates the softmax: cross-entropy gradients are exactly
# zero in float32) and ``levels`` rounds the input first (round has no gradient): both mask the
# gradients. Figures below are for the first 30 samples at L-inf eps=0.1.
CENTROIDS = """
import pytest
import torch
from torch import nn

from robustkit.data import load_dataset


class Centroids(nn.Module):
    def __init__(self, scale=1.0, levels=0):
        super().__init__()
        x, y = load_dataset("mnist-sample").dataset.tensors
        means = torch.stack([x[y == c].flatten(1).mean(0) for c in range(10)])
        self.linear = nn.Linear(means.shape[1], 10)
        with torch.no_grad():
            self.linear.weight.copy_(means)
            self.linear.bias.copy_(-0.5 * means.pow(2).sum(1))
        self.scale, self.levels = scale, levels

    def forward(self, x):
        if self.levels:
            x = torch.round(x * self.levels) / self.levels
        return self.linear(x.flatten(1)) * self.scale
"""


def test_passing_and_failing_checks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=PASSING + FAILING + FIXTURE)
    result = pytester.runpytest(CPU, "--junitxml=junit.xml")

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_fails _*",
            "robust accuracy 0.433 (95% CI 0.255-0.626), required >= 0.8, n=30",
            "below the required accuracy: 13 of 30 samples robust",
            "  attack: fgsm, linf eps=0.2 (steps=1, rel_stepsize=1, *, restarts=1, *)",
            "  model: zoo:mnist-cnn on mnist-sample, n=30, clean accuracy 1.000, seed 0, "
            "device cpu",
            "  worst classes (robust accuracy, robust / n):",
            "    7 - seven  0.000  (0 / 5)",
            "    9 - nine   0.000  (0 / 3)",
            "    2 - two    0.000  (0 / 1)",
            "  adversarial examples and results: "
            "*/basetemp/robustkit/test_model.py_test_fails_fgsm_eps=0.2-*",
            "*robustkit*",
            "3 robustness checks, 1 below their required accuracy",
            "ok: test_model.py::test_explicit pgd-linf eps=0.05: robust accuracy * (95% CI *-*), "
            "required >= 0.5, n=20",
            "below: test_model.py::test_fails fgsm eps=0.2: robust accuracy 0.433 "
            "(95% CI 0.255-0.626), required >= 0.8, n=30",
            "ok: test_model.py::test_passes fgsm eps=0.1: robust accuracy 0.933 "
            "(95% CI 0.779-0.992), required >= 0.8, n=30",
        ]
    )
    result.stdout.no_fnmatch_line("*PytestReturnNotNoneWarning*")
    folder = Path(result.stdout.str().split("adversarial examples and results: ")[1].split()[0])
    assert {"results.csv", "examples.pt", "run.json"} <= {p.name for p in folder.iterdir()}
    assert (pytester.path / "teardown-ran").exists()

    properties = _junit_properties(pytester.path / "junit.xml")
    assert properties["test_passes"] == {
        "robustkit_accuracy": "0.9333",
        "robustkit_ci_low": "0.7793",
        "robustkit_ci_high": "0.9918",
        "robustkit_required": "0.8",
        "robustkit_n": "30",
        "robustkit_attack": "fgsm",
        "robustkit_eps": "0.1",
    }
    assert properties["test_fails"]["robustkit_accuracy"] == "0.4333"
    assert properties["test_fails"]["robustkit_ci_low"] == "0.2546"
    assert properties["test_fails"]["robustkit_ci_high"] == "0.6257"


def _junit_properties(path: Path) -> dict[str, dict[str, str]]:
    return {
        case.get("name", ""): {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        for case in ET.parse(path).iter("testcase")
    }


def test_a_suite_requirement_measures_the_worst_case(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_model=CENTROIDS
        + """
@pytest.mark.robustness(attack="fgsm", eps=0.1, min_accuracy=0.0, num_samples=30)
def test_fgsm():
    return Centroids()

@pytest.mark.robustness(suite="quick", eps=0.1, min_accuracy=0.0, num_samples=30)
def test_quick():
    return Centroids()

@pytest.mark.robustness(suite="quick", eps=0.1, min_accuracy=0.9, num_samples=30)
def test_quick_fails():
    return Centroids()

def test_fgsm_and_quick(robustkit_check):
    m = robustkit_check(
        Centroids(), attack="fgsm", suite="quick", eps=0.1, min_accuracy=0.0, num_samples=30
    )
    summary = m.result.summary().set_index("attack")["robust_accuracy"]
    assert list(summary.index) == ["fgsm", "apgd-ce", "apgd-t", "worst-case"]
    # n counts samples, not the rows of three attacks; the figure is the worst case, strictly
    # below what FGSM's row (the first attack of the run) says
    assert m.n == 30 and m.robust == m.result.worst_case()["robust_correct"].sum()
    assert m.accuracy == summary["worst-case"] == summary.min() < summary["fgsm"]
    assert m.ci_low < m.accuracy < m.ci_high
"""
    )
    result = pytester.runpytest(CPU, "--junitxml=junit.xml")

    result.assert_outcomes(passed=3, failed=1)
    properties = _junit_properties(pytester.path / "junit.xml")
    fgsm, quick = properties["test_fgsm"], properties["test_quick"]
    assert float(quick["robustkit_accuracy"]) <= float(fgsm["robustkit_accuracy"])
    assert quick["robustkit_attack"] == "suite=quick" and quick["robustkit_n"] == "30"
    low, accuracy, high = (
        float(quick[f"robustkit_{name}"]) for name in ("ci_low", "accuracy", "ci_high")
    )
    assert 0 < low < accuracy < high < 1
    smoke = "-- worst case of suite quick: a smoke check, not an evaluation"
    result.stdout.fnmatch_lines(
        [
            "*_ test_quick_fails _*",
            f"robust accuracy 0.* (95% CI 0.*-0.*), required >= 0.9, n=30 {smoke}",
            "below the required accuracy: * of 30 samples robust",
            "  attacks: worst case at linf eps=0.1 over suite quick (*), robust accuracy after "
            "each:",
            "    apgd-ce (steps=20, *): 0.* in the cascade",
            "    apgd-t (steps=20, *num_targets=3*): 0.* in the cascade",
            "  model: Centroids on mnist-sample, n=30, *",
        ]
    )
    result.stdout.fnmatch_lines_random(
        [
            f"ok: test_model.py::test_quick suite=quick eps=0.1: robust accuracy * {smoke}",
            "ok: test_model.py::test_fgsm_and_quick fgsm suite=quick eps=0.1: robust accuracy "
            f"* {smoke}",
            "ok: test_model.py::test_fgsm fgsm eps=0.1: robust accuracy 0.* (95% CI *), "
            "required >= 0, n=30",
        ]
    )


@pytest.mark.parametrize("masked", ["Centroids(scale=1e4)", "Centroids(levels=4)"])
def test_masked_gradients_fail_whatever_the_accuracy(
    pytester: pytest.Pytester, masked: str
) -> None:
    pytester.makepyfile(
        test_model=CENTROIDS
        + f"""
@pytest.mark.robustness(suite="quick", eps=0.1, min_accuracy=0.1, num_samples=30)
def test_masked():
    return {masked}

@pytest.mark.robustness(
    suite="quick", eps=0.1, min_accuracy=0.1, num_samples=30, allow_flags=("zero-gradients",)
)
def test_masked_accepted():
    return {masked}
"""
    )
    result = pytester.runpytest(CPU, "--junitxml=junit.xml")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_masked _*",
            "robust accuracy 0.* (95% CI *), required >= 0.1, n=30 -- worst case of suite quick*",
            "untrusted: sanity check zero-gradients failed, the accuracy cannot be trusted: "
            "*% of the probed inputs have a zero or non-finite loss gradient on Centroids*"
            "(if you accept it knowingly: allow_flags=('zero-gradients',))",
        ]
    )
    result.stdout.no_fnmatch_line("below the required accuracy*")  # the accuracy cleared the bar
    result.stdout.fnmatch_lines(
        [
            "2 robustness checks, 0 below their required accuracy, 1 untrusted (a sanity "
            "check failed)",
            "untrusted: test_model.py::test_masked suite=quick eps=0.1: robust accuracy *",
            "    sanity error zero-gradients: *",
            "ok: test_model.py::test_masked_accepted suite=quick eps=0.1: robust accuracy *",
            "    sanity error zero-gradients (accepted by allow_flags): *",
        ]
    )
    properties = _junit_properties(pytester.path / "junit.xml")
    assert properties["test_masked"]["robustkit_flags"].startswith("zero-gradients (error)")


def test_sanity_warnings_are_reported_without_failing(pytester: pytest.Pytester) -> None:
    """Scaled logits: the scale-invariant DLR attack (apgd-t) breaks what cross-entropy cannot."""
    pytester.makepyfile(
        test_model=CENTROIDS
        + """
def test_scaled(robustkit_check):
    m = robustkit_check(
        Centroids(scale=1e4), suite="quick", eps=0.1, min_accuracy=0.1, num_samples=30,
        allow_flags=["zero-gradients"],
    )
    assert {flag.code for flag in m.flags} == {"zero-gradients", "ce-dlr-disagree"}
"""
    )
    result = pytester.runpytest(CPU)

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["    sanity warning ce-dlr-disagree: attacks on the *"])


def test_invalid_markers_are_collection_errors(pytester: pytest.Pytester) -> None:
    cases = {
        "attack='pgd-lnf', eps=0.1, min_accuracy=0.8": "unknown attack 'pgd-lnf': "
        "did you mean pgd-linf*",
        "eps=-0.1, min_accuracy=0.8": "eps must be a number >= 0, got -0.1",
        "eps=0.1, min_accuracy=80": "min_accuracy must be a fraction in [[]0, 1], got 80*",
        "eps=0.1, min_acuracy=0.8": "unknown argument 'min_acuracy': did you mean min_accuracy?*",
        "eps=0.1": "missing min_accuracy*",
        "eps=0.1, min_accuracy=0.8, dataset='mnist-smaple'": "unknown dataset 'mnist-smaple': "
        "did you mean mnist-sample?*",
        "eps=0.1, min_accuracy=0.8, steps=0": "steps must be an integer >= 1, got 0",
        "'pgd-linf', eps=0.1, min_accuracy=0.8": "give keyword arguments only*",
        "suite='quik', eps=0.1, min_accuracy=0.8": "unknown suite 'quik': did you mean quick? "
        "available: quick, standard, plus, rand, scores, labels",
        "suite='quick', eps=0.1, min_accuracy=0.8, steps=5": "steps and restarts apply to "
        "attack=, and suite 'quick' runs its attacks at its own settings*",
        "attack='apgd-ce', suite='quick', eps=0.1, min_accuracy=0.8": "attack 'apgd-ce' is part "
        "of suite 'quick' already*",
        "attack='gaussian-noise', suite='quick', eps=0.1, min_accuracy=0.8": "suite 'quick' "
        "holds L-inf, L2 and L1 attacks, not gaussian ones*",
        "suite='quick', norm='l0', eps=0.1, min_accuracy=0.8": "norm must be one of linf, l2, l1*",
        "eps=0.1, min_accuracy=0.8, allow_flags=('zero-gradient',)": "allow_flags: unknown "
        "check 'zero-gradient': did you mean zero-gradients?*",
    }
    source = ["import pytest"]
    for i, args in enumerate(cases):
        source += [f"@pytest.mark.robustness({args})", f"def test_{i}():", "    return 'm'"]
    source += ["def test_unmarked():", "    pass"]
    pytester.makepyfile("\n".join(source))
    result = pytester.runpytest()

    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=len(cases))
    result.stdout.fnmatch_lines_random(
        [f"test_{i}: @pytest.mark.robustness: {error}" for i, error in enumerate(cases.values())]
    )


def test_a_marked_test_must_give_the_model(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.robustness(eps=0.1, min_accuracy=0.8)
        def test_forgot_return():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*robustness test must return or yield the model to check*"])


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--robustkit-samples=0"], "argument --robustkit-samples: must be >= 1, got 0"),
        (["--robustkit-samples=ten"], "argument --robustkit-samples: expected an integer*"),
        (["--robustkit-seed=-1"], "argument --robustkit-seed: must be >= 0, got -1"),
        (["--robustkit-device=gpu7"], "argument --robustkit-device: unknown device 'gpu7'*"),
        (["--robustkit-tolerance=2"], "argument --robustkit-tolerance: must be in [[]0, 1], got 2"),
        (["--robustkit-report=setup.cfg"], "argument --robustkit-report: setup.cfg is a file*"),
        (["--robustkit-baseline=setup.cfg"], "*baseline setup.cfg is not JSON (Expecting value*"),
        (["--robustkit-baseline=other.json"], "*other.json is not a robustkit baseline*"),
        (["--robustkit-baseline=missing.json"], "*missing.json does not exist; create it with*"),
        (
            ["--robustkit-update-baseline"],
            "*--robustkit-update-baseline needs --robustkit-baseline*",
        ),
    ],
)
def test_bad_options_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], error: str
) -> None:
    pytester.makefile(".cfg", setup="[metadata]\nname = x\n")
    pytester.makefile(".json", other='{"checks": {}}')
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{error}"])


def test_session_report_covers_every_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=PASSING + FIXTURE)
    result = pytester.runpytest(CPU, "--robustkit-report=report")

    result.assert_outcomes(passed=2)
    report = pytester.path / "report"
    result.stdout.fnmatch_lines(["wrote *results.csv", "wrote *checks.csv", "wrote *report.html"])
    rows = pd.read_csv(report / "results.csv")
    assert rows.groupby("test").size().to_dict() == {
        "test_model.py::test_explicit pgd-linf eps=0.05": 20,
        "test_model.py::test_passes fgsm eps=0.1": 30,
    }
    checks = pd.read_csv(report / "checks.csv")
    assert checks["passed"].all() and list(checks["n"]) == [20, 30]
    assert (checks["ci_low"] <= checks["accuracy"]).all()
    assert (checks["accuracy"] <= checks["ci_high"]).all()
    assert (report / "report.html").stat().st_size > 0


def test_baseline_catches_a_regression(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=PASSING)
    baseline = pytester.path / "robustness.json"
    accept = pytester.runpytest(
        CPU, f"--robustkit-baseline={baseline}", "--robustkit-update-baseline"
    )
    accept.assert_outcomes(passed=1)
    key = "test_model.py::test_passes fgsm eps=0.1"
    document = json.loads(baseline.read_text())
    entry = document["checks"][key]
    assert (entry["accuracy"], entry["ci_low"], entry["ci_high"]) == pytest.approx(
        (28 / 30, 0.7793, 0.9918), abs=1e-4
    )

    # as if the last accepted model did better: 30 of 30
    entry.update(accuracy=1.0, ci_low=0.8843, ci_high=1.0)
    baseline.write_text(json.dumps(document))
    result = pytester.runpytest(CPU, f"--robustkit-baseline={baseline}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "robust accuracy 0.933 (95% CI 0.779-0.992), required >= 0.8, n=30",
            "robust accuracy 0.933 (95% CI 0.779-0.992) regressed from the accepted 1.000 "
            f"(95% CI 0.884-1.000), more than the tolerance 0.02 (baseline {baseline}): "
            "accept the new figure with --robustkit-update-baseline",
            "  attack: fgsm, linf eps=0.1 *",
        ]
    )
    assert (
        pytester.runpytest(CPU, f"--robustkit-baseline={baseline}", "--robustkit-tolerance=0.1").ret
        == 0
    )


def test_baseline_with_other_settings_is_not_compared(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=PASSING)
    baseline = pytester.path / "robustness.json"
    key = "test_model.py::test_passes fgsm eps=0.1"
    Baseline(baseline, {key: {"accuracy": 1.0, "settings": {"n": 200}}}).write()
    result = pytester.runpytest(CPU, f"--robustkit-baseline={baseline}", "--robustkit-samples=10")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*measured with other settings (*n: 200 -> 10*): not compared*"])


@pytest.mark.slow
def test_xdist_workers_report_to_one_session_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a=PASSING, test_b=FIXTURE)
    result = pytester.runpytest_subprocess("-n", "2", CPU, "--robustkit-report=report")

    result.assert_outcomes(passed=2)
    rows = pd.read_csv(pytester.path / "report" / "results.csv")
    assert rows.groupby("test").size().to_dict() == {
        "test_a.py::test_passes fgsm eps=0.1": 30,
        "test_b.py::test_explicit pgd-linf eps=0.05": 20,
    }
    assert (pytester.path / "report" / "report.html").is_file()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"eps": float("nan"), "min_accuracy": 0.5}, "eps must be a number >= 0"),
        ({"eps": True, "min_accuracy": 0.5}, "eps must be a number >= 0"),
        ({"eps": 0.1, "min_accuracy": 0.5, "num_samples": 2.5}, "num_samples must be an integer"),
        ({"eps": 0.1, "min_accuracy": 0.5, "attack": 3}, "attack must be a registered name"),
        ({"eps": 0.1, "min_accuracy": 0.5, "suite": 3}, "suite must be one of quick, standard"),
        (
            {"eps": 0.1, "min_accuracy": 0.5, "suite": "quick", "norm": "l2", "attack": "fgsm"},
            "norm='l2' contradicts attack 'fgsm'",
        ),
        ({"eps": 0.1, "min_accuracy": 0.5, "allow_flags": 1}, "allow_flags must be a tuple"),
    ],
)
def test_requirement_rejects_bad_values(kwargs: dict, error: str) -> None:
    with pytest.raises(RobustkitError, match=error):
        Requirement(**kwargs)


def test_requirement_labels_and_defaults() -> None:
    assert Requirement(eps=0.1, min_accuracy=0.5).label == "pgd-linf"
    quick = Requirement(eps=0.5, min_accuracy=0.5, suite="quick", norm="l2")
    assert (quick.attack, quick.label, quick.threat_norm) == (None, "suite=quick norm=l2", "l2")
    both = Requirement(eps=0.1, min_accuracy=0.5, suite="plus", attack="fgsm")
    assert both.label == "fgsm suite=plus"
    assert Requirement(eps=0.1, min_accuracy=0.5, allow_flags="zero-gradients").allow_flags == (
        "zero-gradients",
    )


def test_baseline_file_round_trips(tmp_path: Path) -> None:
    baseline = Baseline(tmp_path / "b.json")
    baseline.accept("t", 0.9, {"n": 10})
    baseline.write()
    again = Baseline.read(tmp_path / "b.json")
    assert again.mismatch("t", {"n": 10}) is None
    assert again.regression("t", 0.89, tolerance=0.02) is None
    assert "regressed from the accepted 0.900" in (again.regression("t", 0.85, 0.02) or "")
