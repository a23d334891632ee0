"""benchmarks/gpu.py as a CPU smoke check: its floor makes exactly the model passes APGD-CE makes,
and a small run prints one row per precision."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from robustkit.attacks import create_attack
from robustkit.models import RobustModel

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu.py"


@pytest.fixture(scope="module")
def gpu() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("benchmark_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def passes(model: RobustModel, work) -> list[bool]:
    """Whether gradients were on, for each forward pass ``work`` makes."""
    seen: list[bool] = []
    handle = model.model.register_forward_hook(lambda *_: seen.append(torch.is_grad_enabled()))
    work()
    handle.remove()
    return seen


def test_the_floor_makes_the_attacks_passes_and_nothing_else(gpu: ModuleType) -> None:
    torch.manual_seed(0)
    model = RobustModel(nn.Sequential(nn.Flatten(), nn.Linear(12, 5)), device="cpu")
    x = torch.rand(4, 3, 2, 2)
    labels = model(x).argmax(1)
    attack = create_attack("apgd-ce", steps=3, early_stop=False)
    made = passes(model, lambda: attack(model, x, labels, eps=0.01))
    floor = passes(model, lambda: gpu.floor_passes(model, x, labels, 3))
    assert sorted(floor) == sorted(made) and made.count(True) == 3


def test_a_small_cpu_run_prints_a_row_per_precision(gpu: ModuleType, capsys) -> None:
    args = ["--device", "cpu", "--images", "8", "--steps", "2"]
    results = gpu.main([*args, "--model", "timm:resnet10t", "--image-size", "32"])
    assert [r.precision for r in results] == ["fp32", "bf16"]
    for result in results:
        assert result.attack > 0 and result.floor > 0
        assert result.share < 2  # the attack cannot beat its own model passes by much
    table = capsys.readouterr().out
    assert "| fp32 |" in table and "| bf16 |" in table
