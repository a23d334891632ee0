"""Faults a long audit meets, each injected into a real `robustkit audit` process and then resumed:
Ctrl-C and SIGTERM (and Ctrl-C twice), a disk that fills up (under the write layer, and a real
tmpfs where the machine lets us mount one), batch files truncated, altered, missing or copied from
another audit, a second audit on the same folder and the lock of a killed one, a model that raises
or returns NaN on one batch (with and without --skip-bad). Every case shows one line, its exit
code, loses no saved batch, and resumes to the results of an audit that ran through, byte for
byte. The fast tests check the same pieces in-process."""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from tiny_audits import linear_case, saved_outputs
from torch import nn
from typer.testing import CliRunner

import robustkit
import robustkit.files
from robustkit.auditing.failures import BatchFailed, is_out_of_memory
from robustkit.auditing.partial import load_saved
from robustkit.auditing.progress import ProgressStore
from robustkit.cli import app
from robustkit.errors import RobustkitError
from robustkit.files import UnwritableError, human_size, write_bytes
from robustkit.folder_lock import LOCK_NAME, lock_folder, running_holder
from robustkit.interrupts import Interrupted, stop_on_signals, uninterrupted
from robustkit.reports import write_report

REPO = Path(__file__).resolve().parents[1]
MODEL = f"{REPO / 'tests' / 'fault_model.py'}:mnist"
AUDIT = [
    *("--model", MODEL, "--attacks", "pgd-linf", "--steps", "10", "--eps", "0.1,0.2"),
    *("--num-samples", "32", "--batch-size", "4", "--no-noise-probes"),
]
BATCHES, BATCH = 8, 4
HOST = socket.gethostname()


# ---------------------------------------------------------------- real processes, then resumed


def _command(out: Path, extra: tuple[str, ...], enospc: str | None) -> list[str]:
    entry = [str(REPO / "tests" / "enospc_cli.py")] if enospc else ["-m", "robustkit"]
    return [sys.executable, *entry, "audit", *AUDIT, "--out", str(out), *extra]


def _start(
    out: Path,
    *extra: str,
    fault: str | None = None,
    mark: Path | None = None,
    enospc: str | None = None,
) -> subprocess.Popen[bytes]:
    """`robustkit audit` (the fault model told ``fault``; ``enospc``: a full disk at a write)."""
    faults = {"ROBUSTKIT_FAULT": fault, "ROBUSTKIT_FAULT_MARK": mark, "ROBUSTKIT_ENOSPC": enospc}
    env = _env() | {name: str(value) for name, value in faults.items() if value}
    return subprocess.Popen(
        _command(out, extra, enospc), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _env() -> dict[str, str]:
    """This checkout's robustkit, one thread, log lines unwrapped (COLUMNS), no fault."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "COLUMNS": "1000"}
    return {name: value for name, value in env.items() if not name.startswith("ROBUSTKIT_FA")}


def _run(out: Path, *extra: str, **faults: str) -> tuple[int, str]:
    """Run the audit to its end: the exit code and stderr."""
    process = _start(out, *extra, **faults)
    _, err = process.communicate(timeout=300)
    return process.returncode, err.decode()


def _paused(out: Path, mark: Path, *extra: str, at: int) -> subprocess.Popen[bytes]:
    """An audit paused in the middle of a batch (the model's ``at``-th call)."""
    process = _start(out, *extra, fault=f"pause:{at}", mark=mark)
    while not mark.exists():
        assert process.poll() is None, process.communicate()[1].decode()
        time.sleep(0.01)
    return process


def _resume_command(out: Path, *extra: str) -> str:
    """What the one line tells the user to run: their own command plus --resume."""
    command = shlex.join(["robustkit", "audit", *AUDIT, "--out", str(out), *extra])
    return command if "--resume" in extra else f"{command} --resume"


def _saved(out: Path) -> set[str]:
    return {p.name for p in (out / "progress").glob("batch-*.pt")}


def _leftovers(out: Path) -> list[Path]:
    return [path for path in out.rglob("*") if path.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The audit run through without a fault."""
    out = tmp_path_factory.mktemp("reference")
    code, err = _run(out)
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def reference(reference_dir: Path) -> dict[str, bytes]:
    return saved_outputs(reference_dir)


def _batch_samples(reference_dir: Path, batch: int) -> list[int]:
    """The dataset indices of batch ``batch``, in order."""
    samples = pd.read_csv(reference_dir / "results.csv")["sample"].drop_duplicates().tolist()
    return samples[batch * BATCH : (batch + 1) * BATCH]


@pytest.mark.slow
def test_sigint_sigterm_and_a_second_sigint_stop_in_one_line_and_resume_identically(
    reference, tmp_path
):
    out, mark = tmp_path / "out", tmp_path / "mark"
    counts = []
    stops = [((), [signal.SIGINT], 130), (("--resume",), [signal.SIGTERM], 143)]
    stops.append((("--resume",), [signal.SIGINT, signal.SIGINT], 130))
    for extra, signals, code in stops:
        process = _paused(out, mark, *extra, at=40)  # mid-batch
        before = _saved(out)
        for signum in signals:
            process.send_signal(signum)
            time.sleep(0.05)
        _, err = process.communicate(timeout=60)
        # a second SIGINT landing once Python has reset its handlers to exit kills the process
        # by SIGINT: the shell shows 130 just the same
        assert process.returncode in (code, -signals[-1] if len(signals) > 1 else code)
        name = signal.Signals(signals[0]).name
        assert err.decode().strip().splitlines() == [
            f"interrupted by {name}: {len(before)} of {BATCHES} batches saved in "
            f"{out / 'progress'}; resume with: {_resume_command(out, *extra)}"
        ]
        assert _saved(out) == before  # the batch in flight dropped, every saved one kept
        assert not _leftovers(out) and not (out / LOCK_NAME).exists()
        counts.append(len(before))
        mark.unlink()
    assert 0 < counts[0] < counts[1] < counts[2] < BATCHES  # each stop came mid-audit
    code, err = _run(out, "--resume")
    assert code == 0 and "recomputing" not in err  # every saved batch passed its checksum
    assert saved_outputs(out) == reference


@pytest.mark.slow
def test_a_second_audit_on_the_folder_is_refused_and_a_killed_ones_lock_taken_over(
    reference, tmp_path
):
    out, mark = tmp_path / "out", tmp_path / "mark"
    first = _paused(out, mark, at=40)
    code, err = _run(out)
    assert code == 2
    assert re.fullmatch(
        rf"error: another audit is running in {re.escape(str(out))} \(PID {first.pid} on "
        rf"{re.escape(HOST)}, started [-\d:T+]+\): wait for it to finish or stop it, or give "
        r"another --out",
        err.strip(),
    )
    report = CliRunner().invoke(app, ["report", str(out)])  # the running audit, as it stands
    assert report.exit_code == 0, report.output
    assert re.search(
        rf"partial results: \d of {BATCHES} batches saved; the audit is still running \(PID "
        rf"{first.pid} on {re.escape(HOST)}",
        " ".join(report.output.split()),
    )
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert (out / LOCK_NAME).is_file()  # left behind by the killed audit
    code, err = _run(out, "--resume")
    assert code == 0, err
    assert f"note: took over the lock of an audit that is gone (PID {first.pid} on {HOST}," in err
    assert not (out / LOCK_NAME).exists()
    assert saved_outputs(out) == reference


@pytest.mark.slow
def test_truncated_altered_missing_and_foreign_batch_files_are_recomputed_naming_each(
    reference_dir, reference, tmp_path
):
    out = tmp_path / "out"
    progress = out / "progress"
    shutil.copytree(reference_dir / "progress", progress)
    truncated, flipped = progress / "batch-000002.pt", progress / "batch-000005.pt"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    (progress / "batch-000003.pt").unlink()
    model, tensors = linear_case()  # another audit's batch, copied in under this one's name
    robustkit.audit(
        model, tensors, attacks=["fgsm"], noise_probes=False, progress_dir=tmp_path / "other"
    )
    shutil.copy(tmp_path / "other" / "batch-000000.pt", progress / "batch-000006.pt")
    manifest = json.loads((progress / "manifest.json").read_text())
    del manifest["progress"]["sha256"]["batch-000007.pt"]  # saved, never recorded
    (progress / "manifest.json").write_text(json.dumps(manifest))
    code, err = _run(out, "--resume")
    assert code == 0, err
    altered = "checksum differs: truncated, altered or another audit's"
    assert (
        f"recomputing 5 batch file(s) of {progress} that failed the checksum check: "
        f"batch-000002.pt ({altered}), batch-000003.pt (missing), batch-000005.pt ({altered}), "
        f"batch-000006.pt ({altered}), batch-000007.pt (not in the manifest)"
    ) in " ".join(err.replace("WARNING", "").split())
    assert saved_outputs(out) == reference


@pytest.mark.slow
def test_a_full_disk_at_a_batch_results_or_report_stops_in_one_line_and_resumes(
    reference_dir, reference, tmp_path
):
    out = tmp_path / "out"
    fills = [  # the size: what was being written (the report's dates and command differ a bit)
        ((), "batch-*.pt:3", out / "progress" / "batch-000002.pt", 2, True),
        (("--resume",), "results.csv:1", out / "results.csv", BATCHES, True),
        (("--resume",), "report.html:1", out / "report.html", BATCHES, False),
    ]
    for extra, enospc, path, saved, exact in fills:
        code, err = _run(out, *extra, enospc=enospc)
        assert code == 2
        size = human_size((reference_dir / path.relative_to(out)).stat().st_size)
        size = re.escape(size) if exact else r"[\d.]+ kB"
        assert re.fullmatch(
            rf"error: could not write {re.escape(str(path))} \(No space left on device\): it "
            rf"needs about {size}: free that much space "
            rf"there; {saved} of {BATCHES} batches saved in {re.escape(str(out / 'progress'))}; "
            rf"then resume with: {re.escape(_resume_command(out, *extra))}",
            err.strip(),
        ), err
        assert len(_saved(out)) == saved and not _leftovers(out)
    code, err = _run(out, "--resume")
    assert code == 0 and "recomputing" not in err
    assert saved_outputs(out) == reference


def _namespaces_allowed() -> bool:
    """Whether this machine lets a user namespace mount a tmpfs."""
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c"]
    done = subprocess.run([*probe, "mount -t tmpfs tmpfs /mnt"], capture_output=True, check=False)
    return done.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _namespaces_allowed(), reason="no user namespace to mount a tmpfs in")
def test_a_real_tmpfs_that_fills_up_mid_audit_stops_in_one_line_and_resumes(
    reference_dir, reference, tmp_path
):
    out, mark, copy = tmp_path / "out", tmp_path / "mark", tmp_path / "copy"
    out.mkdir()
    audit = shlex.join(_command(out, (), None))
    script = f"""
        mount -t tmpfs -o size=2m tmpfs {out} || exit 99
        ROBUSTKIT_FAULT=pause:40 ROBUSTKIT_FAULT_MARK={mark} {audit} 2>{tmp_path / "err"} &
        pid=$!
        while [ ! -f {mark} ] && kill -0 $pid; do sleep 0.01; done
        cat /dev/zero > {out / "filler"} 2>/dev/null
        rm {mark}
        wait $pid; echo $? > {tmp_path / "code"}
        rm {out / "filler"}
        {audit} --resume >/dev/null 2>{tmp_path / "err2"}; echo $? > {tmp_path / "code2"}
        cp -r {out} {copy}
    """
    unshare = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script]
    subprocess.run(unshare, env=_env(), check=True, timeout=300)
    assert (tmp_path / "code").read_text().strip() == "2"
    line = (tmp_path / "err").read_text().strip()
    match = re.fullmatch(
        rf"error: could not write {re.escape(str(out))}/progress/batch-00000(\d)\.pt \(No space "
        rf"left on device\): it needs about [\d.]+ kB: free that much space there; (\d) of "
        rf"{BATCHES} batches saved in .*; then resume with: {re.escape(_resume_command(out))}",
        line,
    )
    assert match and match[1] == match[2], line  # the batch in flight when the disk filled
    assert (tmp_path / "code2").read_text().strip() == "0", (tmp_path / "err2").read_text()
    assert saved_outputs(copy) == reference


@pytest.mark.slow
def test_a_model_that_raises_or_returns_nan_names_the_batch_and_skip_bad_records_errors(
    reference_dir, reference, tmp_path
):
    out = tmp_path / "out"
    failed = []
    for extra, fault, cause in [
        ((), "raise:40", "RuntimeError: injected fault on forward call 40"),
        (("--resume",), "nan:40", "the model returned NaN or inf logits"),
    ]:
        code, err = _run(out, *extra, fault=fault)
        assert code == 1
        batch = len(_saved(out))  # one process attacks the batches in order
        indices = ", ".join(map(str, _batch_samples(reference_dir, batch)))
        assert err.strip().splitlines() == [
            f"error: batch {batch} (dataset indices {indices}) failed: {cause}; {batch} of "
            f"{BATCHES} batches saved in {out / 'progress'}; fix the model and resume with: "
            f"{_resume_command(out, *extra)} (or add --skip-bad to record its images as errors)"
        ]
        failed.append(batch)
    assert 0 < failed[0] < failed[1] < BATCHES
    code, err = _run(out, "--resume", "--skip-bad", fault="raise:40")
    assert code == 0, err
    bad = sorted(set(range(BATCHES)) - {int(n[6:12]) for n in _saved(out)})
    assert len(bad) == 1
    images = _batch_samples(reference_dir, bad[0])
    rows, expected = pd.read_csv(out / "results.csv"), pd.read_csv(reference_dir / "results.csv")
    errors = rows["sample"].isin(images)
    assert (rows.loc[errors, "outcome"] == "error").all()
    assert not rows.loc[errors, "robust_correct"].any()  # never robust
    pd.testing.assert_frame_equal(  # every other row as the audit that ran through has it
        rows[~errors].reset_index(drop=True),
        expected[~expected["sample"].isin(images)].reset_index(drop=True),
    )
    summary = pd.read_csv(out / "summary.csv")
    assert (summary["errors"] == BATCH).all() and (summary["n"] == 32).all()
    record = json.loads((out / "run.json").read_text())["failed_batches"]
    assert [(f["batch"], f["samples"]) for f in record] == [(bad[0], images)]
    assert f"batch {bad[0]} (4 images): RuntimeError" in (out / "report.html").read_text()
    code, err = _run(out, "--resume")  # the failed batch is tried again, and now goes through
    assert code == 0, err
    assert saved_outputs(out) == reference


# ---------------------------------------------------------------------- the pieces, in-process


def test_a_write_is_whole_or_absent_and_a_full_disk_names_file_and_size(tmp_path, monkeypatch):
    path = tmp_path / "results.csv"
    write_bytes(path, b"old")
    real = robustkit.files._write_file

    def fail(code: int):
        def write(temp: Path, data: bytes) -> None:
            real(temp, data[:3])
            raise OSError(code, os.strerror(code), str(temp))

        return write

    monkeypatch.setattr(robustkit.files, "_write_file", fail(errno.ENOSPC))
    with pytest.raises(UnwritableError) as full:
        write_bytes(path, b"x" * 1500)
    assert str(full.value) == (
        f"could not write {path} (No space left on device): it needs about 1.5 kB: free that "
        "much space there"
    )
    monkeypatch.setattr(robustkit.files, "_write_file", fail(errno.EROFS))
    with pytest.raises(UnwritableError, match=rf"\(Read-only file system\): make {tmp_path} wri"):
        write_bytes(path, b"new")
    monkeypatch.setattr(robustkit.files, "_write_file", fail(errno.EIO))
    with pytest.raises(OSError) as other:  # not a disk that refuses: no disguise
        write_bytes(path, b"new")
    assert not isinstance(other.value, RobustkitError)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == [path.name]
    assert [human_size(n) for n in (999, 1000, 2_540_000, 3 * 10**12)] == [
        "999 B",
        "1.0 kB",
        "2.5 MB",
        "3.0 TB",
    ]


def test_every_file_an_audit_writes_goes_through_the_write_layer(tmp_path, monkeypatch):
    written: list[str] = []
    real = robustkit.files._write_file

    def spy(temp: Path, data: bytes) -> None:
        written.append(str(temp.with_name(temp.name.rsplit(".", 2)[0]).relative_to(tmp_path)))
        real(temp, data)

    monkeypatch.setattr(robustkit.files, "_write_file", spy)
    args = ["audit", "--attacks", "fgsm", "--num-samples", "8", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    on_disk = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert on_disk == set(written)  # noise probes, report and progress included
    assert {"results.csv", "report.html", "progress/manifest.json"} <= on_disk


def test_a_first_signal_waits_for_the_write_under_way_and_a_second_stops_at_once():
    seconds: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(Interrupted) as stop, stop_on_signals(seconds.append):
        with uninterrupted():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # the handler has run: the stop is held, the write goes on
            finished = True
            os.kill(os.getpid(), signal.SIGTERM)  # a second signal: straight to the callback
            time.sleep(0.01)
        raise AssertionError("the held stop comes when the write is done")
    assert finished and seconds == [signal.SIGTERM]
    assert (stop.value.name, stop.value.exit_code) == ("SIGINT", 130)
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    with stop_on_signals(seconds.append):
        pass
    assert signal.getsignal(signal.SIGINT) is previous[signal.SIGINT]  # no signal: they come back


def test_a_folder_holds_one_audit_and_a_dead_ones_lock_is_taken_over(tmp_path):
    with lock_folder(tmp_path, "robustkit audit first") as stale:
        assert stale is None
        holder = running_holder(tmp_path)
        assert holder is not None and (holder.pid, holder.host) == (os.getpid(), HOST)
        taken = rf"\(PID {os.getpid()} on {re.escape(HOST)}, "
        with pytest.raises(RobustkitError, match=taken), lock_folder(tmp_path, "second"):
            pass
    assert running_holder(tmp_path) is None and not (tmp_path / LOCK_NAME).exists()
    left = {"pid": 4242, "host": HOST, "started": "yesterday", "command": "robustkit audit"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(left))  # its audit was killed: nobody holds it
    assert running_holder(tmp_path) is None
    with lock_folder(tmp_path, "robustkit audit third") as stale:
        assert stale is not None and stale.describe() == f"PID 4242 on {HOST}, started yesterday"


def _tiny(progress: Path, **kw):
    model, data = linear_case()
    kw = {"attacks": ["pgd-linf"], "eps": [0.05, 0.5], "steps": 3, "batch_size": 12} | kw
    return robustkit.audit(
        model, data, device="cpu", noise_probes=False, progress_dir=progress, **kw
    )


def test_a_resume_recomputes_each_bad_batch_file_and_says_which(tmp_path, caplog):
    full = _tiny(tmp_path / "progress")
    progress = tmp_path / "progress"
    (progress / "batch-000001.pt").write_bytes(b"half a ba")
    _tiny(tmp_path / "other", eps=[0.1])  # another spec's batch copied in
    shutil.copy(tmp_path / "other" / "batch-000002.pt", progress / "batch-000002.pt")
    with caplog.at_level("WARNING", logger="robustkit"):
        resumed = _tiny(progress, resume=True)
    altered = "checksum differs: truncated, altered or another audit's"
    assert [r.getMessage() for r in caplog.records] == [
        f"recomputing 2 batch file(s) of {progress} that failed the checksum check: "
        f"batch-000001.pt ({altered}), batch-000002.pt ({altered})"
    ]
    pd.testing.assert_frame_equal(resumed.frame, full.frame)


def test_a_checksum_that_cannot_be_recorded_takes_its_batch_file_along(tmp_path, monkeypatch):
    def full_disk(store, change):
        raise UnwritableError(store.folder / "manifest.json", 900, OSError(errno.ENOSPC, "full"))

    monkeypatch.setattr(ProgressStore, "_change_sums", full_disk)
    with pytest.raises(UnwritableError):
        _tiny(tmp_path)
    assert not list(tmp_path.glob("batch-*")) and not list(tmp_path.glob("*.tmp"))


class FailsOnBatch(nn.Module):
    """``model``, failing (raising, or NaN logits) on the inputs of one batch."""

    def __init__(self, model: nn.Module, bad: torch.Tensor, how: str) -> None:
        super().__init__()
        self.model, self.bad, self.how = model, bad, how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        hit = (x.flatten(1)[:, None] == self.bad.flatten(1)[None]).all(-1).any(-1)
        if self.how == "nan":
            return torch.where(hit[:, None], float("nan"), logits)
        if bool(hit.any()):
            raise ValueError("bad input")
        return logits


@pytest.mark.parametrize(("how", "cause"), [("raise", "ValueError: bad input"), ("nan", "NaN")])
def test_a_failing_batch_names_its_indices_or_becomes_error_rows(tmp_path, how, cause):
    model, (x, y) = linear_case()
    faulty = FailsOnBatch(model, x[24:28], how)  # in batch 2 (of 12 images each)
    kw = {"attacks": ["fgsm"], "batch_size": 12, "noise_probes": False}
    shown = r"batch 2 \(dataset indices 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, \.\.\. \(12 im"
    with pytest.raises(BatchFailed, match=shown):
        robustkit.audit(faulty, (x, y), progress_dir=tmp_path, **kw)
    assert ProgressStore(tmp_path).finished() == {0, 1}
    kept = robustkit.audit(faulty, (x, y), progress_dir=tmp_path, resume=True, skip_bad=True, **kw)
    errors = kept.frame[kept.frame["outcome"] == "error"]
    assert sorted(set(errors["sample"])) == list(range(24, 36))
    assert not errors["robust_correct"].any()
    assert cause in kept.config["failed_batches"][0]["cause"]
    summary = kept.summary()
    assert (summary["errors"] == 12).all() and (summary["n"] == 40).all()
    clean = robustkit.audit(model, (x, y), **kw)
    good = kept.frame["outcome"] != "error"
    pd.testing.assert_frame_equal(
        kept.frame[good].drop(columns="model").reset_index(drop=True),
        clean.frame[~clean.frame["sample"].between(24, 35)]
        .drop(columns="model")
        .reset_index(drop=True),
    )


def test_an_audit_whose_every_batch_fails_has_nothing_to_report(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the model is broken")

    monkeypatch.setattr("robustkit.auditing.batch.BatchRunner.batch", broken)
    with pytest.raises(BatchFailed, match=r"batch 0 \(dataset indices 0, 1, .*RuntimeError: the"):
        _tiny(tmp_path, skip_bad=True)
    assert len(list(tmp_path.glob("failed-*.pt"))) == 4  # each saved as failed, tried again later


@pytest.mark.parametrize(
    ("error", "memory"),
    [
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8"), True),
        (MemoryError(), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
    ],
)
def test_out_of_memory_is_told_from_other_errors(error, memory):
    assert is_out_of_memory(error) is memory


def test_a_cut_audit_reports_what_it_saved_marked_partial(tmp_path):
    _tiny(tmp_path / "progress")
    (tmp_path / "progress" / "batch-000003.pt").unlink()
    result = load_saved(tmp_path)
    assert result.config["partial"] == {"saved": 3, "total": 4, "running": None}
    assert result.config["num_samples"] == 36 and set(result.frame["sample"]) == set(range(36))
    html = write_report(result, tmp_path / "report.html").read_text()
    assert "partial results</strong> Linear: 3 of 4 batches saved; the audit was cut" in html


def test_a_model_failing_in_the_noise_probes_stops_in_one_line_and_resumes(tmp_path, monkeypatch):
    args = ["audit", "--attacks", "fgsm", "--num-samples", "8", "--out"]
    straight = CliRunner().invoke(app, [*args, str(tmp_path / "straight")])
    assert straight.exit_code == 0, straight.output

    def broken(*args, **kwargs):
        raise RuntimeError("the model fails on noise\nsecond line")

    out = tmp_path / "cut"
    with monkeypatch.context() as patch:
        patch.setattr("robustkit.auditing.engine.run_probes", broken)
        cut = CliRunner().invoke(app, [*args, str(out)])
    assert cut.exit_code == 1, cut.output
    lines = cut.output.strip().splitlines()
    assert lines[-1].startswith("error: the noise probes failed: RuntimeError: the model fails on")
    assert "1 of 1 batches saved" in lines[-1] and "--resume" in lines[-1]
    assert "Traceback" not in cut.output and "second line" not in cut.output
    resumed = CliRunner().invoke(app, [*args, str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert saved_outputs(out) == saved_outputs(tmp_path / "straight")
