"""Dataset indices: read from an ``--indices`` file, and recorded in run.json so that every row of
an audit leads back to its image."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import torch

from robustkit.data.datasets import DatasetInfo
from robustkit.errors import RobustkitError

MAX_RECORDED_INDICES = 10_000  # run.json lists the indices up to this many, else their digest
_INTEGER = re.compile(r"[+-]?\d+")
_SEPARATORS = re.compile(r"[\s,]+")


def read_indices(path: str | Path) -> list[int]:
    """The integers of an indices file, in order: a JSON list (``.json``), one column with an
    optional header (``.csv``), else text of integers split by commas or whitespace, ``#``
    starting a comment. Emptiness, duplicates and the range are :func:`select`'s to check."""
    file = Path(path)
    if not file.is_file():
        raise RobustkitError(
            f"--indices file {file} not found: give a text file of dataset indices, one per line"
        )
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RobustkitError(
            f"--indices file {file} is unreadable ({exc}): give a text file of dataset indices"
        ) from exc
    if file.suffix.lower() == ".json":
        return _from_json(file, text)
    if file.suffix.lower() == ".csv":
        return _from_csv(file, text)
    values = []
    for number, line in enumerate(text.splitlines(), start=1):
        for token in _SEPARATORS.split(line.split("#", 1)[0].strip()):
            if token:
                values.append(_integer(file, number, token))
    return values


def _integer(file: Path, line: int, token: str) -> int:
    if not _INTEGER.fullmatch(token):
        raise RobustkitError(
            f"--indices file {file}, line {line}: {token!r} is not an integer: give whole "
            "dataset indices, one per line or separated by commas"
        )
    return int(token)


def _from_json(file: Path, text: str) -> list[int]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RobustkitError(
            f"--indices file {file} is not valid JSON ({exc.msg} at line {exc.lineno}): give a "
            "JSON list of integers"
        ) from exc
    if not isinstance(values, list):
        raise RobustkitError(f"--indices file {file} holds no JSON list: give [3, 17, ...]")
    for entry, value in enumerate(values, start=1):
        if isinstance(value, bool) or not isinstance(value, int):
            raise RobustkitError(
                f"--indices file {file}, entry {entry}: {json.dumps(value)} is not an integer: "
                "give a JSON list of whole dataset indices"
            )
    return values


def _from_csv(file: Path, text: str) -> list[int]:
    rows = [(n, row) for n, row in enumerate(csv.reader(text.splitlines()), start=1) if row]
    if rows and not _INTEGER.fullmatch(rows[0][1][0].strip()):
        rows = rows[1:]  # a header
    values = []
    for number, row in rows:
        if len(row) != 1:
            raise RobustkitError(
                f"--indices file {file}, line {number}: {len(row)} columns: give one column "
                "of dataset indices"
            )
        values.append(_integer(file, number, row[0].strip()))
    return values


def indices_record(info: DatasetInfo) -> dict[str, Any]:
    """What run.json says of the images audited: their dataset indices in audit order (only
    their SHA-256 beyond :data:`MAX_RECORDED_INDICES`) and whether they are a subset."""
    indices = info.sample_indices()
    digest = hashlib.sha256(indices.to(torch.int64).numpy().tobytes()).hexdigest()
    listed = len(indices) <= MAX_RECORDED_INDICES
    return {
        "subset": info.indices is not None,
        "indices": indices.tolist() if listed else None,
        "indices_sha256": digest,
    }
