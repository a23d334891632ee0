"""The arguments of ``@pytest.mark.robustness``, checked when the test is collected."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from robustkit.data.datasets import IMAGEFOLDER_PREFIX, SAMPLE_NAME, list_datasets
from robustkit.errors import RobustkitError
from robustkit.testing.requirement import Requirement

MARKER_ARGS = (
    "attack",
    "suite",
    "norm",
    "eps",
    "min_accuracy",
    "num_samples",
    "dataset",
    "steps",
    "restarts",
    "allow_flags",
)


def marker_requirement(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Requirement, str]:
    """The requirement and dataset name a robustness marker asks for."""
    if args:
        raise RobustkitError(
            "give keyword arguments only, e.g. (attack='pgd-linf', eps=0.1, min_accuracy=0.8)"
        )
    kwargs = dict(kwargs)
    for unknown in sorted(set(kwargs) - set(MARKER_ARGS)):
        close = difflib.get_close_matches(unknown, MARKER_ARGS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise RobustkitError(f"unknown argument {unknown!r}: {hint}takes {', '.join(MARKER_ARGS)}")
    missing = [name for name in ("eps", "min_accuracy") if name not in kwargs]
    if missing:
        raise RobustkitError(f"missing {' and '.join(missing)}, e.g. eps=0.1, min_accuracy=0.8")
    dataset = kwargs.pop("dataset", SAMPLE_NAME)
    check_dataset_name(dataset)
    return Requirement(**kwargs), dataset


def check_dataset_name(name: object) -> None:
    """Fail early on a dataset name ``load_dataset`` would refuse."""
    names = [n for n in list_datasets() if not n.startswith(IMAGEFOLDER_PREFIX)]
    if isinstance(name, str) and (name in names or name.startswith(IMAGEFOLDER_PREFIX)):
        return
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise RobustkitError(
        f"unknown dataset {name!r}: {hint}choose {', '.join(names)} or {IMAGEFOLDER_PREFIX}PATH"
    )
