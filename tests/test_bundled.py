"""Bundled weights files (robustkit/bundled.py), as both zoos (models, generators) load them."""

from __future__ import annotations

import hashlib
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from robustkit.bundled import BundledEntry
from robustkit.errors import RobustkitError
from robustkit.generative import zoo as generator_zoo
from robustkit.models import zoo as model_zoo
from robustkit.registry import Registry

ZOOS = pytest.mark.parametrize(
    ("module", "entries", "load"),
    [
        (model_zoo, model_zoo.ZOO, model_zoo.load_zoo_model),
        (generator_zoo, generator_zoo.GENERATOR_ZOO, generator_zoo.load_zoo_generator),
    ],
    ids=["models", "generators"],
)


def entry_for(path: Path) -> BundledEntry:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return BundledEntry(name="x", weights=path.name, sha256=digest, dataset="d", description="")


def test_a_verified_file_is_read_with_weights_only(tmp_path: Path) -> None:
    torch.save({"w": torch.arange(3)}, tmp_path / "ok.pt")
    assert torch.equal(entry_for(tmp_path / "ok.pt").load(tmp_path)["w"], torch.arange(3))
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")  # a pickled class, not weights
    with pytest.raises(pickle.UnpicklingError):
        entry_for(tmp_path / "module.pt").load(tmp_path)


@ZOOS
def test_a_corrupt_bundled_file_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: ModuleType,
    entries: Registry[BundledEntry],
    load: Callable[[str], Any],
) -> None:
    name, entry = next(iter(entries.items()))
    copy = tmp_path / entry.weights
    shutil.copy(module.WEIGHTS_DIR / entry.weights, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    monkeypatch.setattr(module, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(RobustkitError, match=r"is corrupt \(sha256 .*reinstall robustkit"):
        load(name)


@ZOOS
def test_a_missing_bundled_file_names_the_fix(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: ModuleType,
    entries: Registry[BundledEntry],
    load: Callable[[str], Any],
) -> None:
    name = next(iter(entries))
    monkeypatch.setattr(module, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(RobustkitError, match=f"weights for '{name}' missing.*reinstall robustkit"):
        load(name)


@ZOOS
def test_every_bundled_file_passes_its_checksum_and_loads(
    module: ModuleType, entries: Registry[BundledEntry], load: Callable[[str], Any]
) -> None:
    for name, entry in entries.items():
        assert load(name) is not None
        assert hashlib.sha256((module.WEIGHTS_DIR / entry.weights).read_bytes()).hexdigest() == (
            entry.sha256
        )
