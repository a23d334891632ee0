"""What an unfinished audit has saved, as a result to report: `robustkit report` on a folder whose
audit was cut (Ctrl-C, a full disk, a failing batch, kill -9) or is still running.

The saved batches are put together as the finished audit would (checksums checked), under the
run record kept as the audit started, and marked partial: how many batches of how many, and
whether the audit is still running (its lock held) or was cut.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from robustkit.auditing.progress import ProgressStore
from robustkit.auditing.results import AuditResult
from robustkit.errors import RobustkitError
from robustkit.folder_lock import running_holder

PROGRESS_DIR = "progress"  # OUT/progress, as the CLI writes it


@dataclass(frozen=True)
class Partial:
    """How far an unfinished audit got."""

    saved: int
    total: int
    running: str | None  # the running audit (PID, host, start), None when it was cut

    def describe(self) -> str:
        """``3 of 8 batches saved; the audit was cut ...``."""
        state = (
            f"the audit is still running ({self.running})"
            if self.running
            else "the audit was cut: resume it (the same command with --resume) to finish"
        )
        return f"{self.saved} of {self.total} batches saved; {state}"


def partial_state(folder: Path) -> Partial | None:
    """How far the audit writing to ``folder`` got, None once it finished (its results written
    and every batch saved) or when the folder holds no progress."""
    counts = ProgressStore(folder / PROGRESS_DIR).counts()
    if counts is None:
        return None
    holder = running_holder(folder)
    written = (folder / "results.csv").is_file() and (folder / "run.json").is_file()
    saved, total = counts
    if holder is None and written and saved == total:
        return None
    return Partial(saved, total, holder.describe() if holder else None)


def load_saved(folder: str | Path) -> AuditResult:
    """The audit results in ``folder``: those written when it finished, or else what its
    unfinished audit has saved, marked partial (``config["partial"]``)."""
    folder = Path(folder)
    state = partial_state(folder)
    if state is None:
        return AuditResult.load(folder)
    store = ProgressStore(folder / PROGRESS_DIR)
    record = store.record()
    if record is None:
        raise RobustkitError(
            f"the audit in {folder} has not finished ({state.saved} of {state.total} batches) "
            "and an older robustkit left no run record to report it with: resume it to finish"
        )
    if state.saved == 0:
        raise RobustkitError(
            f"the audit in {folder} has saved no batch yet (0 of {state.total}): report it once "
            "it has"
        )
    run = store.assemble(sorted(store.saved()))
    config: dict[str, Any] = {
        **record,
        "num_samples": run.num_samples,
        "eps_probes": run.eps_probes,
        "failed_batches": run.failures,
        "partial": asdict(state),
    }
    return AuditResult(frame=run.frame, config=config, examples=run.examples)
