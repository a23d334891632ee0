"""The accepted robustness figures of a test suite, as a JSON file kept in the repository."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustkit.errors import RobustkitError
from robustkit.testing.wording import accuracy_with_ci

FORMAT_KEY = "robustkit_baseline"
FORMAT_VERSION = 1


@dataclass
class Baseline:
    """Per check key: the accepted robust accuracy and the settings it was measured with."""

    path: Path
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: str | Path) -> Baseline:
        """Read ``path``; a missing file is an empty baseline."""
        path = Path(path)
        if path.is_dir():
            raise RobustkitError(f"baseline {path} is a folder: give a JSON file path")
        if not path.exists():
            return cls(path)
        try:
            document = json.loads(path.read_text())
        except OSError as err:
            raise RobustkitError(f"cannot read baseline {path}: {err.strerror}") from None
        except ValueError as err:
            raise RobustkitError(
                f"baseline {path} is not JSON ({err}): fix it, or delete it and rerun with "
                "--robustkit-update-baseline"
            ) from None
        if not isinstance(document, dict) or document.get(FORMAT_KEY) != FORMAT_VERSION:
            raise RobustkitError(
                f"{path} is not a robustkit baseline (version {FORMAT_VERSION}): "
                "delete it and rerun with --robustkit-update-baseline"
            )
        entries = document.get("checks", {})
        if not isinstance(entries, dict) or not all(
            isinstance(e, dict) and _is_fraction(e.get("accuracy")) for e in entries.values()
        ):
            raise RobustkitError(f"baseline {path}: every check needs an accuracy in [0, 1]")
        return cls(path, entries)

    def write(self) -> None:
        """Write the entries, sorted, so the file diffs cleanly in review."""
        document = {FORMAT_KEY: FORMAT_VERSION, "checks": dict(sorted(self.entries.items()))}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(document, indent=2) + "\n")

    def accept(
        self,
        key: str,
        accuracy: float,
        settings: dict[str, Any],
        ci: tuple[float, float] | None = None,
    ) -> None:
        """Record ``accuracy`` (and its 95% interval ``ci``) as the accepted figure for ``key``."""
        entry: dict[str, Any] = {"accuracy": accuracy}
        if ci is not None:
            entry["ci_low"], entry["ci_high"] = ci
        self.entries[key] = {**entry, "settings": settings}

    def mismatch(self, key: str, settings: dict[str, Any]) -> str | None:
        """Why the accepted figure for ``key`` is not comparable (other settings), or None."""
        entry = self.entries.get(key)
        if entry is None or entry.get("settings") == _jsonable(settings):
            return None
        return (
            f"baseline {self.path} holds {key!r} measured with other settings "
            f"({_difference(entry.get('settings'), _jsonable(settings))}): not compared; "
            "accept the new settings with --robustkit-update-baseline"
        )

    def regression(
        self,
        key: str,
        accuracy: float,
        tolerance: float,
        ci: tuple[float, float] | None = None,
    ) -> str | None:
        """Why ``accuracy`` fell more than ``tolerance`` below the accepted figure, or None;
        both figures with their 95% intervals where known."""
        entry = self.entries.get(key)
        if entry is None or accuracy >= entry["accuracy"] - tolerance:
            return None
        measured = accuracy_with_ci(accuracy, *(ci or (None, None)))
        accepted = accuracy_with_ci(entry["accuracy"], entry.get("ci_low"), entry.get("ci_high"))
        return (
            f"robust accuracy {measured} regressed from the accepted {accepted}, "
            f"more than the tolerance {tolerance:g} (baseline {self.path}): "
            "accept the new figure with --robustkit-update-baseline"
        )


def _jsonable(value: dict[str, Any]) -> Any:
    return json.loads(json.dumps(value))


def _difference(old: Any, new: dict[str, Any]) -> str:
    if not isinstance(old, dict):
        return "none recorded"
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys)


def _is_fraction(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
