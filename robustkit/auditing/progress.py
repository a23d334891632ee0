"""An audit's progress on disk: one file per finished batch and a manifest of the configuration.

Every batch's rows, eps probes and example adversarials go to ``batch-NNNNNN.pt`` as soon as the
batch is done (written to a temporary name, then renamed: a file present is whole), so memory
does not grow with the dataset, an interrupted audit resumes where it stopped, and the processes
of a distributed audit hand their shares to rank 0 through the same folder. The manifest holds
what decides the numbers (the audit's spec with the model weights' and data's digests, under the
schema of :mod:`robustkit.auditing.spec`): resuming under another configuration, or progress of
another schema, is refused, naming what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset, TensorDataset

from robustkit.auditing.distributed import barrier, is_main, rank, world_size
from robustkit.auditing.examples import Picked, stack_examples
from robustkit.auditing.results import EXAMPLE_COLUMNS, Examples
from robustkit.auditing.rows import RowStore
from robustkit.errors import RobustkitError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
BATCH_FILE = re.compile(r"batch-(\d+)\.pt")
ROW_KEY = ["model", "attack", "norm", "eps"]


@dataclass
class BatchRecord:
    """What one batch yields: its rows, the eps probes run on it and (first batch only) a few
    example adversarials."""

    size: int
    rows: RowStore = field(default_factory=RowStore)
    examples: list[Picked] = field(default_factory=list)
    eps_probes: list[dict[str, Any]] = field(default_factory=list)
    # randomized models: per row key (adversarial_key), the batch's kept adversarials
    adversarials: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class EngineRun:
    """Every batch put together: the tidy rows, the examples, the eps probes and the count."""

    frame: pd.DataFrame
    examples: Examples | None
    eps_probes: list[dict[str, Any]]
    num_samples: int
    adversarials: dict[str, Tensor] | None = None


class ProgressStore:
    """The batch files and manifest of one audit in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def finished(self) -> set[int]:
        """Indices of the batches already on disk."""
        names = (BATCH_FILE.fullmatch(p.name) for p in self.folder.iterdir())
        return {int(match[1]) for match in names if match}

    def write(self, index: int, record: BatchRecord) -> None:
        """Save one finished batch, atomically."""
        examples = stack_examples(record.examples)
        content = {
            "size": record.size,
            "rank": rank(),  # the process that attacked it
            "rows": record.rows.frame().to_dict("list"),
            "eps_probes": record.eps_probes,
            "adversarials": record.adversarials,
            "examples": None
            if examples is None
            else {
                "clean": examples.clean,
                "adversarial": examples.adversarial,
                "frame": examples.frame.to_dict("list"),
            },
        }
        _replace(self._batch(index), lambda handle: torch.save(content, handle))

    def assemble(self, count: int) -> EngineRun:
        """The ``count`` batches in one run, rows in the order one process would have made them:
        per (model, attack, norm, eps) in first-seen order, then by sample."""
        frames, probes, examples, total = [], [], None, 0
        adversarials: dict[str, list[Tensor]] = {}
        for index in range(count):
            content = self._read(index)
            for key, images in content.get("adversarials", {}).items():
                adversarials.setdefault(key, []).append(images)
            frames.append(pd.DataFrame(content["rows"]))
            probes += content["eps_probes"]
            total += content["size"]
            if examples is None and content["examples"] is not None:
                saved = content["examples"]
                frame = pd.DataFrame(saved["frame"])[EXAMPLE_COLUMNS]
                examples = Examples(saved["clean"], saved["adversarial"], frame)
        rows = pd.concat(frames, ignore_index=True)
        first_seen = rows.groupby(ROW_KEY, sort=False).ngroup().to_numpy()
        rows = rows.iloc[np.argsort(first_seen, kind="stable")].reset_index(drop=True)
        return EngineRun(
            frame=rows,
            examples=examples,
            eps_probes=probes,
            num_samples=total,
            adversarials={key: torch.cat(parts) for key, parts in adversarials.items()} or None,
        )

    def start(self, manifest: dict[str, Any]) -> None:
        """Forget any earlier progress and record the manifest of a fresh run."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / MANIFEST).unlink(missing_ok=True)  # first: old batches never look current
        for path in self.folder.iterdir():
            if BATCH_FILE.fullmatch(path.name):
                path.unlink()
        self.drop_partial()
        text = json.dumps(manifest, indent=2)
        _replace(self.folder / MANIFEST, lambda handle: handle.write(text.encode()))

    def drop_partial(self) -> None:
        """Remove the half-written files a killed process left behind."""
        for path in self.folder.glob("*.tmp"):
            path.unlink()

    def manifest(self) -> dict[str, Any] | None:
        """The recorded manifest, None when there is no progress."""
        path = self.folder / MANIFEST
        return json.loads(path.read_text()) if path.is_file() else None

    def _batch(self, index: int) -> Path:
        return self.folder / f"batch-{index:06d}.pt"

    def _read(self, index: int) -> dict[str, Any]:
        path = self._batch(index)
        if not path.is_file():
            raise RobustkitError(
                f"{path} is missing: every process of a distributed audit must write to the same "
                "--out folder (put it on a filesystem that all of them see)"
            )
        return torch.load(path, map_location="cpu", weights_only=True)


@contextmanager
def open_progress(
    folder: str | Path | None, manifest: dict[str, Any], *, resume: bool
) -> Iterator[ProgressStore]:
    """The progress store of an audit in ``folder`` (a temporary folder when None), resumed when
    ``resume`` and progress of the same configuration is there, started afresh otherwise."""
    if folder is None:
        if resume or world_size() > 1:
            raise RobustkitError(
                "resuming or sharing an audit needs progress_dir=, a folder every process sees "
                "(the CLI uses OUT/progress)"
            )
        with tempfile.TemporaryDirectory(prefix="robustkit-progress-") as tmp:
            store = ProgressStore(Path(tmp))
            store.start(_jsonable(manifest))
            yield store
        return
    store = ProgressStore(Path(folder))
    wanted = _jsonable(manifest)
    recorded = store.manifest()
    barrier()  # every process has read the manifest before rank 0 may rewrite it
    if resume and recorded is not None:
        _check_unchanged(recorded, wanted, store.folder)
        if is_main():
            store.drop_partial()
    elif is_main():
        if resume:
            log.warning("no progress in %s to resume from: starting afresh", store.folder)
        store.start(wanted)
    barrier()
    yield store


def module_digest(module: nn.Module) -> str:
    """A SHA-256 of a module's parameters and buffers: the same weights, the same digest."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


def dataset_digest(dataset: Dataset) -> str:
    """A SHA-256 of what picks a dataset's items: its type and size, a subset's indices, the
    tensors of a TensorDataset."""
    digest = hashlib.sha256(f"{type(dataset).__name__}:{len(dataset)}".encode())  # type: ignore[arg-type]
    if isinstance(dataset, Subset):
        digest.update(np.asarray(dataset.indices, dtype=np.int64).tobytes())
        digest.update(dataset_digest(dataset.dataset).encode())
    elif isinstance(dataset, TensorDataset):
        for tensor in dataset.tensors:
            digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


def _tensor_bytes(tensor: Tensor) -> bytes:
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


def _jsonable(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as it reads back from JSON (tuples become lists, odd values strings)."""
    return json.loads(json.dumps(manifest, default=str))


def _check_unchanged(recorded: dict[str, Any], wanted: dict[str, Any], folder: Path) -> None:
    found, schema = recorded.get("schema"), wanted.get("schema")
    if found != schema:
        written = "no schema" if found is None else f"schema {found}"
        raise RobustkitError(
            f"cannot resume from {folder}: another robustkit version wrote it (its manifest has "
            f"{written}, this one writes schema {schema}); rerun without --resume to start over"
        )
    change = _first_difference(recorded, wanted, "")
    if change is not None:
        raise RobustkitError(
            f"cannot resume from {folder}: {change}; rerun with the options of the interrupted "
            "audit, or without --resume to start over"
        )


def _first_difference(old: Any, new: Any, where: str) -> str | None:
    """Where two JSON values first differ, e.g. ``attacks[0].steps changed (was 10, now 20)``."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in [*old, *(k for k in new if k not in old)]:
            found = _first_difference(old.get(key), new.get(key), f"{where}.{key}".lstrip("."))
            if found:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            found = _first_difference(a, b, f"{where}[{i}]")
            if found:
                return found
        return None
    if old == new:
        return None
    return f"{where} changed (was {_short(old)}, now {_short(new)})"


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _replace(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through a temporary file in the same folder, synced, then renamed over it."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
