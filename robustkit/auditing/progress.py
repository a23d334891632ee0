"""An audit's progress on disk: one file per finished batch and a manifest of the configuration.

Every batch's rows, eps probes and example adversarials go to ``batch-NNNNNN.pt`` as soon as the
batch is done (a batch that failed under ``--skip-bad``: ``failed-NNNNNN.pt``, retried by the next
``--resume``), so memory does not grow with the dataset, an interrupted audit resumes where it
stopped, and the processes of a distributed audit hand their shares to rank 0 through the same
folder. Files are written whole (:mod:`robustkit.files`), and each one's SHA-256 goes into the
manifest with it, under one :func:`~robustkit.interrupts.uninterrupted` block: a resume checks
them and recomputes a batch whose file is missing, truncated, altered or not the manifest's (a
copy from another audit), saying which. The manifest also holds what decides the numbers (the
audit's spec with the model weights' and data's digests, under the schema of
:mod:`robustkit.auditing.spec`): resuming under another configuration, or progress of another
schema, is refused, naming what changed. ``run.json`` beside it is the run record as the audit
started, so that a cut or running audit can be reported.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset, TensorDataset

from robustkit.auditing.distributed import barrier, is_main, rank, world_size
from robustkit.auditing.examples import stack_examples
from robustkit.auditing.failures import BatchFailed, BatchFailure, error_rows
from robustkit.auditing.results import EXAMPLE_COLUMNS, Examples
from robustkit.errors import RobustkitError
from robustkit.files import TEMP_SUFFIX, refused_writes, torch_bytes, write_bytes, write_text
from robustkit.folder_lock import NO_LOCKS
from robustkit.interrupts import uninterrupted

if TYPE_CHECKING:
    from robustkit.auditing.batch import BatchRecord

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
RUN_RECORD = "run.json"  # the run record as the audit started (a partial report's header)
MANIFEST_LOCK = "manifest.lock"  # serialises the processes of a distributed audit
BATCH_FILE = re.compile(r"batch-(\d+)\.pt")
FAILED_FILE = re.compile(r"failed-(\d+)\.pt")
PROGRESS = "progress"  # the manifest's bookkeeping (batch count, checksums), not the spec
ROW_KEY = ["model", "attack", "norm", "eps"]


@dataclass
class EngineRun:
    """Every batch put together: the tidy rows, the examples, the eps probes, the count and the
    batches that failed (``--skip-bad``: their images have error rows)."""

    frame: pd.DataFrame
    examples: Examples | None
    eps_probes: list[dict[str, Any]]
    num_samples: int
    adversarials: dict[str, Tensor] | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)


class ProgressStore:
    """The batch files and manifest of one audit in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def finished(self) -> set[int]:
        """Indices of the batches done and saved (not those that failed)."""
        return self._indices(BATCH_FILE)

    def saved(self) -> set[int]:
        """Indices of the batches saved, done or failed."""
        return self.finished() | self._indices(FAILED_FILE)

    def counts(self) -> tuple[int, int] | None:
        """How many batches are saved (done or failed) of how many, None without progress."""
        manifest = self.manifest() if self.folder.is_dir() else None
        if manifest is None or PROGRESS not in manifest:
            return None
        return len(self.saved()), int(manifest[PROGRESS]["batches"])

    def write(self, index: int, record: BatchRecord) -> None:
        """Save one finished batch and its checksum; a failed earlier try of it goes."""
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
        with uninterrupted():
            self._save(self._batch(index), torch_bytes(content))
            self._forget(self._failed(index))

    def write_failed(self, index: int, failure: BatchFailure) -> None:
        """Save that batch ``index`` failed, and on which images (--skip-bad)."""
        content = {"size": len(failure.samples), "rank": rank(), "failure": failure.saved()}
        with uninterrupted():
            self._save(self._failed(index), torch_bytes(content))

    def assemble(self, indices: Iterable[int]) -> EngineRun:
        """The batches ``indices`` (all of them, or those a partial report has) in one run, rows
        in the order one process would have made them: per (model, attack, norm, eps) in
        first-seen order, then by sample; a failed batch's images get error rows for every
        such key."""
        sums = self._checksums()
        contents = [self._read(index, sums) for index in indices]
        done = [pd.DataFrame(c["rows"]) for c in contents if "failure" not in c]
        failed = [c["failure"] for c in contents if "failure" in c]
        if failed and not done:  # no batch went through: no row to report
            raise BatchFailed(BatchFailure(**failed[0]))
        keys, done_frames = _row_keys(done), iter(done)
        frames, probes, examples, total = [], [], None, 0
        adversarials: dict[str, list[Tensor]] = {}
        for content in contents:
            total += content["size"]
            if "failure" in content:
                frames.append(error_rows(keys, content["failure"]))
                continue
            for key, images in content.get("adversarials", {}).items():
                adversarials.setdefault(key, []).append(images)
            frames.append(next(done_frames))
            probes += content["eps_probes"]
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
            failures=failed,
        )

    def start(self, manifest: dict[str, Any], batches: int) -> None:
        """Forget any earlier progress and record the manifest of a fresh run of ``batches``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / MANIFEST).unlink(missing_ok=True)  # first: old batches never look current
        for path in self.folder.iterdir():
            if BATCH_FILE.fullmatch(path.name) or FAILED_FILE.fullmatch(path.name):
                path.unlink()
        self.drop_partial()
        content = {**manifest, PROGRESS: {"batches": batches, "sha256": {}}}
        write_text(self.folder / MANIFEST, json.dumps(content, indent=2))

    def verify(self, batches: int) -> None:
        """Check every saved file against the manifest's checksums; remove the missing,
        truncated, altered or foreign ones (recomputed next), saying which in one line."""
        manifest = self.manifest()
        assert manifest is not None, "verify() needs a manifest"
        older = PROGRESS not in manifest  # written before checksums: no file can be trusted
        sums = manifest.setdefault(PROGRESS, {"batches": batches, "sha256": {}})["sha256"]
        present = {
            path.name
            for path in self.folder.iterdir()
            if BATCH_FILE.fullmatch(path.name) or FAILED_FILE.fullmatch(path.name)
        }
        bad: dict[str, str] = {}
        for name in sorted(present | set(sums)):
            if name not in present:
                bad[name] = "missing"
            elif name not in sums:
                bad[name] = "not in the manifest"
            elif _sha256((self.folder / name).read_bytes()) != sums[name]:
                bad[name] = "checksum differs: truncated, altered or another audit's"
        if older or bad:
            for name in bad:
                (self.folder / name).unlink(missing_ok=True)
                sums.pop(name, None)
            write_text(self.folder / MANIFEST, json.dumps(manifest, indent=2))
        if bad:
            listed = ", ".join(f"{name} ({why})" for name, why in bad.items())
            log.warning(
                "recomputing %d batch file(s) of %s that failed the checksum check: %s",
                len(bad),
                self.folder,
                listed,
            )

    def drop_partial(self) -> None:
        """Remove the half-written files a killed process left behind."""
        for path in self.folder.glob(f"*{TEMP_SUFFIX}"):
            path.unlink()

    def manifest(self) -> dict[str, Any] | None:
        """The recorded manifest, None when there is no progress."""
        path = self.folder / MANIFEST
        return json.loads(path.read_text()) if path.is_file() else None

    def write_record(self, record: dict[str, Any]) -> None:
        """Keep the run record as the audit starts (what a partial report shows)."""
        write_text(self.folder / RUN_RECORD, json.dumps(record, indent=2, default=str))

    def record(self) -> dict[str, Any] | None:
        """The run record kept at the start, None when there is none."""
        path = self.folder / RUN_RECORD
        return json.loads(path.read_text()) if path.is_file() else None

    def _indices(self, pattern: re.Pattern[str]) -> set[int]:
        names = (pattern.fullmatch(p.name) for p in self.folder.iterdir())
        return {int(match[1]) for match in names if match}

    def _batch(self, index: int) -> Path:
        return self.folder / f"batch-{index:06d}.pt"

    def _failed(self, index: int) -> Path:
        return self.folder / f"failed-{index:06d}.pt"

    def _save(self, path: Path, data: bytes) -> None:
        """Write ``path`` and record its checksum in the manifest: both or neither (a file whose
        checksum could not be recorded, e.g. on a full disk, goes again)."""
        write_bytes(path, data)
        try:
            self._change_sums(lambda sums: sums.__setitem__(path.name, _sha256(data)))
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def _forget(self, path: Path) -> None:
        """Remove ``path`` and its checksum, if there."""
        if path.is_file():
            path.unlink()
            self._change_sums(lambda sums: sums.pop(path.name, None))

    def _change_sums(self, change: Callable[[dict[str, str]], object]) -> None:
        """Apply ``change`` to the manifest's checksums (under a lock when processes share it)."""
        with _exclusive(self.folder / MANIFEST_LOCK):
            manifest = self.manifest()
            assert manifest is not None, "the manifest is written before any batch"
            change(manifest[PROGRESS]["sha256"])
            write_text(self.folder / MANIFEST, json.dumps(manifest, indent=2))

    def _checksums(self) -> dict[str, str]:
        manifest = self.manifest() or {}
        return dict(manifest.get(PROGRESS, {}).get("sha256", {}))

    def _read(self, index: int, sums: Mapping[str, str]) -> dict[str, Any]:
        path = self._batch(index)
        if not path.is_file():
            path = self._failed(index)
        if not path.is_file():
            raise RobustkitError(
                f"{self._batch(index)} is missing: every process of a distributed audit must "
                "write to the same --out folder (put it on a filesystem that all of them see)"
            )
        data = path.read_bytes()
        if path.name in sums and _sha256(data) != sums[path.name]:
            raise RobustkitError(
                f"{path} changed on disk while the audit ran (its checksum is not the "
                "manifest's): rerun with --resume to recompute it"
            )
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _row_keys(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The row keys (with their pass count) of the done batches, in first-seen order."""
    if not frames:
        return pd.DataFrame(columns=[*ROW_KEY, "passes"])
    keys = pd.concat([frame[[*ROW_KEY, "passes"]] for frame in frames], ignore_index=True)
    return keys.drop_duplicates(ROW_KEY).reset_index(drop=True)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an flock on ``path`` while the processes of a distributed audit share the folder
    (alone, nothing to wait for)."""
    if world_size() == 1:
        yield
        return
    with refused_writes(path, 0):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as err:
            if err.errno not in NO_LOCKS:
                raise
        yield
    finally:
        os.close(fd)


@contextmanager
def open_progress(
    folder: str | Path | None, manifest: dict[str, Any], *, resume: bool, batches: int
) -> Iterator[ProgressStore]:
    """The progress store of an audit of ``batches`` batches in ``folder`` (a temporary folder
    when None), resumed when ``resume`` and progress of the same configuration is there (its
    files checked), started afresh otherwise."""
    if folder is None:
        if resume or world_size() > 1:
            raise RobustkitError(
                "resuming or sharing an audit needs progress_dir=, a folder every process sees "
                "(the CLI uses OUT/progress)"
            )
        with tempfile.TemporaryDirectory(prefix="robustkit-progress-") as tmp:
            store = ProgressStore(Path(tmp))
            store.start(_jsonable(manifest), batches)
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
            store.verify(batches)
    elif is_main():
        if resume:
            log.warning("no progress in %s to resume from: starting afresh", store.folder)
        store.start(wanted, batches)
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
    recorded = {key: value for key, value in recorded.items() if key != PROGRESS}
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
