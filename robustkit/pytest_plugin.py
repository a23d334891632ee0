"""pytest plugin: robustness requirements as tests.

``@pytest.mark.robustness(attack=..., suite=..., eps=..., min_accuracy=...)`` on a test that
returns or yields the model, or the ``robustkit_check`` fixture for explicit calls; both run
``robustkit.audit`` and judge its worst case, with its confidence interval and sanity checks.
Registered through the ``pytest11`` entry point as ``robustkit``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from robustkit.auditing.spec import DEFAULTS
from robustkit.errors import RobustkitError
from robustkit.testing import options
from robustkit.testing.state import CheckRecord, SessionState

if TYPE_CHECKING:  # the evaluator (torch) is imported only once a robustness test is collected
    from robustkit.testing.requirement import Requirement
    from robustkit.testing.session import Checker

MARKER = "robustness"
WORKER_OUTPUT = "robustkit_records"

STATE = pytest.StashKey[SessionState]()
REQUIREMENT: pytest.StashKey[tuple[Requirement, str]] = pytest.StashKey()
CHECKER: pytest.StashKey[Checker] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("robustkit", "robustness checks (robustkit)")
    group.addoption(
        "--robustkit-device", type=options.device, metavar="DEVICE", help="cpu, cuda or cuda:N"
    )
    group.addoption(
        "--robustkit-samples",
        type=options.positive_int,
        metavar="N",
        help="evaluate N samples in every check, overriding num_samples (for quick runs; "
        f"default: num_samples, else {DEFAULTS.num_samples})",
    )
    group.addoption(
        "--robustkit-seed",
        type=options.seed,
        default=DEFAULTS.seed,
        metavar="SEED",
        help=f"default: {DEFAULTS.seed}",
    )
    group.addoption(
        "--robustkit-report",
        type=options.report_dir,
        metavar="DIR",
        help="write report.html, results.csv and checks.csv for every check of the session",
    )
    group.addoption(
        "--robustkit-baseline",
        type=options.baseline,
        metavar="FILE",
        help="JSON file of accepted figures: a check also fails when it falls below its figure",
    )
    group.addoption(
        "--robustkit-update-baseline",
        action="store_true",
        help="write this session's figures into the --robustkit-baseline file",
    )
    group.addoption(
        "--robustkit-tolerance",
        type=options.fraction,
        default=0.02,
        metavar="DROP",
        help="accuracy drop below the baseline still accepted (default: 0.02)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(attack, suite, norm, eps, min_accuracy, num_samples, dataset, steps, "
        "restarts, allow_flags): the test returns or yields a model that must keep min_accuracy "
        "under the attack, or the worst case of the suite (quick, standard, plus), and pass "
        "the sanity checks bar those in allow_flags (robustkit)",
    )
    baseline = config.getoption("robustkit_baseline")
    update = config.getoption("robustkit_update_baseline")
    if update and baseline is None:
        raise pytest.UsageError("--robustkit-update-baseline needs --robustkit-baseline FILE")
    if baseline is not None and not baseline.path.exists() and not update:
        raise pytest.UsageError(
            f"--robustkit-baseline: {baseline.path} does not exist; "
            "create it with --robustkit-update-baseline"
        )
    config.stash[STATE] = SessionState(
        device=config.getoption("robustkit_device"),
        samples=config.getoption("robustkit_samples"),
        seed=config.getoption("robustkit_seed"),
        report_dir=config.getoption("robustkit_report"),
        baseline=baseline,
        update_baseline=update,
        tolerance=config.getoption("robustkit_tolerance"),
    )


@pytest.hookimpl(specname="pytest_pycollect_makeitem", tryfirst=True)
def pytest_pycollect_makeitem_yielding(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> object | None:
    """pytest refuses generator tests; a robustness test may yield its model (teardown after)."""
    if not (inspect.isgeneratorfunction(obj) and collector.istestfunction(obj, name)):
        return None
    marks = [getattr(mark, "name", None) for mark in getattr(obj, "pytestmark", [])]
    if MARKER not in marks and collector.get_closest_marker(MARKER) is None:
        return None
    return collector.ihook.pytest_pycollect_makeitem(
        collector=collector, name=name, obj=_returning(obj)
    )


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, Any, Any]:
    """Validate robustness marker arguments: a bad one makes that test a collection error."""
    collected = yield
    if collected is None:
        return None
    items = collected if isinstance(collected, list) else [collected]
    return [_validated(item, collector) for item in items]


class InvalidMarker(pytest.Collector):
    """Stands in for a test whose robustness marker is invalid: collecting it is an error."""

    def __init__(self, *, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        raise self.CollectError(self.message)


def _validated(
    node: pytest.Item | pytest.Collector, parent: pytest.Collector
) -> pytest.Item | pytest.Collector:
    mark = node.get_closest_marker(MARKER) if isinstance(node, pytest.Function) else None
    if mark is None:
        return node
    from robustkit.testing.marker import marker_requirement

    try:
        node.stash[REQUIREMENT] = marker_requirement(mark.args, mark.kwargs)
    except RobustkitError as err:
        message = f"{node.name}: @pytest.mark.{MARKER}: {err}"
        return InvalidMarker.from_parent(parent, name=node.name, message=message)
    return node


@pytest.fixture
def robustkit_check(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Checker:
    """``check(model, data, attack=, suite=, eps=, min_accuracy=, num_samples=, allow_flags=)``:
    fails the test when the model's worst-case robust accuracy is below ``min_accuracy`` or a
    sanity check says it cannot be trusted; returns the Measurement."""
    from robustkit.testing.session import Checker

    state = request.config.stash[STATE]
    root = (
        state.report_dir / "checks"
        if state.report_dir
        else tmp_path_factory.getbasetemp() / "robustkit"
    )
    return Checker(state, request.node, root)


@pytest.fixture(autouse=True)
def _robustkit_marker(request: pytest.FixtureRequest) -> None:
    """Give a robustness-marked test its checker (run in pytest_pyfunc_call)."""
    if REQUIREMENT in request.node.stash:
        request.node.stash[CHECKER] = request.getfixturevalue("robustkit_check")


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
    """Check what a robustness test returns or yields, captured so pytest sees None
    (no PytestReturnNotNoneWarning)."""
    if REQUIREMENT not in pyfuncitem.stash:
        return (yield)
    test = pyfuncitem.obj
    returned: list[object] = []

    @functools.wraps(test)
    def capture(*args: Any, **kwargs: Any) -> None:
        returned.append(test(*args, **kwargs))

    pyfuncitem.obj = capture
    try:
        outcome = yield
    finally:
        pyfuncitem.obj = test
    requirement, dataset = pyfuncitem.stash[REQUIREMENT]
    checker = pyfuncitem.stash[CHECKER]
    value = returned[0]
    if inspect.isgenerator(value):
        _check_yielded(value, lambda model: checker.check(requirement, model, dataset))
    elif value is None:
        pytest.fail(
            f"@pytest.mark.{MARKER} test must return or yield the model to check "
            "(an nn.Module, a RobustModel or a spec such as 'zoo:mnist-cnn')",
            pytrace=False,
        )
    else:
        checker.check(requirement, value, dataset)
    return outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Workers hand their records to the controller; the controller writes report and baseline."""
    config = session.config
    state = config.stash[STATE]
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[WORKER_OUTPUT] = [dataclasses.asdict(record) for record in state.records]
        return
    if state.report_dir is not None:
        from robustkit.testing.session import write_session_report

        state.written += write_session_report(state.records, state.report_dir)
    if state.baseline is not None and state.update_baseline:
        for record in state.records:
            state.baseline.accept(
                record.test, record.accuracy, record.settings, ci=(record.ci_low, record.ci_high)
            )
        state.baseline.write()
        state.written.append(state.baseline.path)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist: collect a finished worker's records."""
    records = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT, [])
    node.config.stash[STATE].records.extend(CheckRecord(**record) for record in records)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Every check's worst-case robust accuracy with its 95% interval, and its sanity flags."""
    state = config.stash[STATE]
    if not state.records:
        return
    below = sum(not record.meets_accuracy for record in state.records)
    untrusted = sum(any(flag["blocking"] for flag in record.flags) for record in state.records)
    terminalreporter.section("robustkit")
    counts = f"{len(state.records)} robustness checks, {below} below their required accuracy"
    if untrusted:
        counts += f", {untrusted} untrusted (a sanity check failed)"
    terminalreporter.write_line(counts)
    for record in sorted(state.records, key=lambda record: record.test):
        for line in record.summary_lines():
            terminalreporter.write_line(line)
    for path in state.written:
        terminalreporter.write_line(f"wrote {path}")


def _returning(test: Callable[..., Iterator[object]]) -> Callable[..., Iterator[object]]:
    """The generator test as a plain function returning its generator (same name, marks)."""

    @functools.wraps(test)
    def call(*args: Any, **kwargs: Any) -> Iterator[object]:
        return test(*args, **kwargs)

    return call


def _check_yielded(
    generator: Generator[object, Any, Any], check: Callable[[object], object]
) -> None:
    """Check the one model a test yields, then run the test's code after ``yield``."""
    try:
        model = next(generator)
    except StopIteration:
        pytest.fail(f"@pytest.mark.{MARKER} test ended without yielding the model", pytrace=False)
    try:
        check(model)
    finally:
        try:
            next(generator)
        except StopIteration:
            pass
        else:
            generator.close()
            pytest.fail(f"@pytest.mark.{MARKER} test must yield the model once", pytrace=False)
