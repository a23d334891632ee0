"""Build robustkit/models/robustbench_leaderboard.json from a checkout of RobustBench's repository.

The figures are RobustBench's published leaderboard entries, one JSON file per model under
``model_info/{dataset}/{threat}/{NAME}.json`` in github.com/RobustBench/robustbench (the PyPI
wheel does not ship them). This keeps, per dataset, threat model and name: the clean accuracy,
the AutoAttack accuracy (``corruptions_acc`` for the corruptions threat), ``external`` (a
stronger evaluation's figure, where one replaced AutoAttack's) and ``unreliable`` where present,
the eps as published ("8/255"), the architecture and the paper's link. Accuracies stay in percent,
as published.

    python scripts/make_robustbench_leaderboard.py /path/to/robustbench            # a checkout
    python scripts/make_robustbench_leaderboard.py /path/to/robustbench.git --git  # a bare clone
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "robustkit" / "models" / "robustbench_leaderboard.json"
ACCURACIES = ("clean_acc", "autoattack_acc", "corruptions_acc", "external")
TEXT = ("eps", "architecture", "link")
FLAGS = ("unreliable",)


def compact(info: dict[str, Any]) -> dict[str, Any]:
    """The fields robustkit shows of one model_info file, accuracies as numbers."""
    entry: dict[str, Any] = {}
    for key in ACCURACIES:
        if info.get(key) not in (None, ""):
            entry[key] = float(info[key])
    for key in TEXT + FLAGS:
        if info.get(key) is not None:
            entry[key] = info[key]
    return entry


def from_folder(root: Path) -> Iterator[tuple[str, str]]:
    """(relative path, text) of every model_info file of a checkout."""
    for path in sorted((root / "model_info").glob("*/*/*.json")):
        yield path.relative_to(root).as_posix(), path.read_text(encoding="utf-8")


def from_git(repo: Path) -> Iterator[tuple[str, str]]:
    """(relative path, text) of every model_info file at HEAD of a (bare) git repository."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
        ).stdout

    for name in sorted(git("ls-tree", "-r", "--name-only", "HEAD", "model_info").split()):
        if name.endswith(".json") and name.count("/") == 3:
            yield name, git("show", f"HEAD:{name}")


def commit_of(repo: Path) -> str | None:
    run = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return run.stdout.strip() if run.returncode == 0 else None


def build(files: Iterator[tuple[str, str]], commit: str | None) -> dict[str, Any]:
    """{"source": ..., "models": {dataset: {threat: {name: entry}}}}."""
    models: dict[str, dict[str, dict[str, Any]]] = {}
    for name, text in files:
        _, dataset, threat, file = name.split("/")
        entry = compact(json.loads(text))
        models.setdefault(dataset, {}).setdefault(threat, {})[file.removesuffix(".json")] = entry
    return {
        "source": "RobustBench leaderboard, model_info/*.json of github.com/RobustBench/robustbench"
        + (f" at {commit}" if commit else ""),
        "units": "accuracies in percent, as published; eps as published",
        "models": models,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path, help="a RobustBench checkout or git repository")
    parser.add_argument("--git", action="store_true", help="read HEAD of a (bare) git repository")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    files = from_git(args.repo) if args.git else from_folder(args.repo)
    table = build(files, commit_of(args.repo))
    args.out.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    count = sum(len(names) for threats in table["models"].values() for names in threats.values())
    print(f"{count} leaderboard entries written to {args.out}")


if __name__ == "__main__":
    main()
