"""One audit over several processes: torchrun with 2 gloo processes on the CPU gives the results
of one process, and rank 0 alone writes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from tiny_audits import COMPARED_FILES, saved_outputs

from robustkit.auditing.distributed import join_torchrun, my_batches, rank, world_size
from robustkit.errors import RobustkitError

REPO = Path(__file__).resolve().parents[1]
AUDIT = [
    *("audit", "--attacks", "pgd-linf,gaussian-noise", "--steps", "10", "--eps", "0.1,0.2"),
    *("--num-samples", "40", "--batch-size", "6"),  # 7 batches: uneven shares
]


def test_without_torchrun_one_process_takes_every_batch(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert join_torchrun("cpu") == "cpu"
    assert (rank(), world_size(), my_batches(5)) == (0, 1, [0, 1, 2, 3, 4])


def test_a_fixed_device_under_torchrun_names_the_fix(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RobustkitError, match="give --device cuda or --device cpu"):
        join_torchrun("cuda:3")


def _run(command: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()


def _outputs(out: Path) -> dict[str, bytes]:
    return saved_outputs(out, (*COMPARED_FILES, "noise_grid.csv", "noise_targets.csv"))


@pytest.mark.slow
def test_two_gloo_processes_give_the_results_of_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _run([sys.executable, "-m", "robustkit", *AUDIT, "--out", str(one)])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    _run([*torchrun, "-m", "robustkit", *AUDIT, "--out", str(two)])
    assert _outputs(two) == _outputs(one)
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert sorted(p.name for p in (two / "progress").iterdir()) == [
        *(f"batch-{i:06d}.pt" for i in range(7)),
        "manifest.json",
        "manifest.lock",  # the processes take turns recording their checksums
        "run.json",
    ]
    manifest = json.loads((two / "progress" / "manifest.json").read_text())
    assert len(manifest["progress"]["sha256"]) == 7  # no process lost another's record
    ranks = [
        torch.load(two / "progress" / f"batch-{i:06d}.pt", weights_only=True)["rank"]
        for i in range(7)
    ]
    assert ranks == [0, 1, 0, 1, 0, 1, 0]  # each process attacked its share only
    # every share's rows name the images' dataset indices: the seeded subset of mnist-sample
    subset = torch.randperm(1000, generator=torch.Generator().manual_seed(0))[:40].tolist()
    sample = pd.read_csv(two / "results.csv").drop_duplicates("sample")["sample"].tolist()
    assert sample == subset
