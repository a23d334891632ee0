"""The pytest plugin, run on small test suites through pytester (bundled model and data)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

# Imported here, before any inline run: pytester drops modules a run imported, and torchvision's
# native ops (imported by the HTML report) cannot be registered twice in one process.
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


def test_passing_and_failing_checks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=PASSING + FAILING + FIXTURE)
    result = pytester.runpytest(CPU, "--junitxml=junit.xml")

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_fails _*",
            "robust accuracy 0.433 is below the required 0.800 (13 of 30 samples robust)",
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
        ]
    )
    result.stdout.no_fnmatch_line("*PytestReturnNotNoneWarning*")
    folder = Path(result.stdout.str().split("adversarial examples and results: ")[1].split()[0])
    assert {"results.csv", "examples.pt", "run.json"} <= {p.name for p in folder.iterdir()}
    assert (pytester.path / "teardown-ran").exists()

    properties = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(pytester.path / "junit.xml").iter("testcase")
    }
    assert properties["test_passes"] == {
        "robustkit_accuracy": "0.9333",
        "robustkit_required": "0.8",
        "robustkit_n": "30",
        "robustkit_attack": "fgsm",
        "robustkit_eps": "0.1",
    }
    assert properties["test_fails"]["robustkit_accuracy"] == "0.4333"


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
        (["--robustkit-device=gpu7"], "argument --robustkit-device: 'gpu7' is not a torch device*"),
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
    assert document["checks"][key]["accuracy"] == pytest.approx(28 / 30)

    document["checks"][key]["accuracy"] = 1.0  # as if the last accepted model did better
    baseline.write_text(json.dumps(document))
    result = pytester.runpytest(CPU, f"--robustkit-baseline={baseline}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "robust accuracy 0.933 regressed from the accepted 1.000 (tolerance 0.02, baseline "
            f"{baseline}): accept the new figure with --robustkit-update-baseline",
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
    ],
)
def test_requirement_rejects_bad_values(kwargs: dict, error: str) -> None:
    with pytest.raises(RobustkitError, match=error):
        Requirement(**kwargs)


def test_baseline_file_round_trips(tmp_path: Path) -> None:
    baseline = Baseline(tmp_path / "b.json")
    baseline.accept("t", 0.9, {"n": 10})
    baseline.write()
    again = Baseline.read(tmp_path / "b.json")
    assert again.mismatch("t", {"n": 10}) is None
    assert again.regression("t", 0.89, tolerance=0.02) is None
    assert "regressed from the accepted 0.900" in (again.regression("t", 0.85, 0.02) or "")
