"""The resume-file format shared by classifier and GAN training."""

from __future__ import annotations

import pytest
import torch

import robustkit.checkpoints as checkpoint
from robustkit.checkpoints import load_checkpoint, save_checkpoint
from robustkit.data import load_dataset
from robustkit.errors import RobustkitError
from robustkit.generative.generators import GeneratorConfig
from robustkit.generative.training import GANTrainConfig, run_paths, train_gan
from robustkit.training import TrainConfig, fresh_model, train

STATE = {"epoch": 3, "weights": torch.arange(4.0), "history": [{"loss": 0.5}]}
UNPICKLED: list[str] = []


def _record(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class _Payload:
    """Unpickling it would run ``_record``: code a checkpoint must never execute."""

    def __reduce__(self):
        return _record, ("ran",)


def test_a_saved_state_loads_back_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "run.ckpt.pt"
    save_checkpoint(path, STATE, kind="training")
    loaded = load_checkpoint(path, kind="training")
    assert loaded.keys() == STATE.keys()
    assert loaded["epoch"] == 3 and loaded["history"] == [{"loss": 0.5}]
    assert torch.equal(loaded["weights"], STATE["weights"])
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt.pt"]


def test_an_interrupted_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt.pt"
    save_checkpoint(path, STATE, kind="training")
    before = path.read_bytes()

    def crash(obj, file):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {**STATE, "epoch": 4}, kind="training")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt.pt"]


def test_another_format_version_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "old.ckpt.pt"
    torch.save({"format": 1, "epoch": 3}, path)  # a training checkpoint of robustkit 0.1
    with pytest.raises(RobustkitError, match="has format 1, this robustkit reads 2") as err:
        load_checkpoint(path, kind="training")
    assert "without --resume" in str(err.value)


@pytest.mark.parametrize("payload", [[1, 2], {"epoch": 3}])
def test_a_file_that_is_no_checkpoint_is_refused(tmp_path, payload):
    path = tmp_path / "other.pt"
    torch.save(payload, path)
    with pytest.raises(RobustkitError, match="is not a robustkit training checkpoint"):
        load_checkpoint(path, kind="training")


def test_a_checkpoint_is_read_with_weights_only_and_runs_no_code(tmp_path):
    path = tmp_path / "evil.ckpt.pt"
    torch.save({"format": checkpoint.FORMAT, "kind": "training", "x": _Payload()}, path)
    with pytest.raises(RobustkitError, match="cannot read checkpoint") as err:
        load_checkpoint(path, kind="training")
    assert "\n" not in str(err.value)
    assert UNPICKLED == []


def test_a_missing_checkpoint_names_the_file_to_give(tmp_path):
    with pytest.raises(RobustkitError, match=r"not found: give the \.ckpt\.pt"):
        load_checkpoint(tmp_path / "none.ckpt.pt", kind="GAN")


def test_gan_training_writes_the_shared_format_and_each_loop_refuses_the_others(tmp_path):
    config = GANTrainConfig(
        generator=GeneratorConfig(latent_dim=8, width=8), iterations=1, batch_size=4
    )
    out = tmp_path / "gen.pt"
    train_gan(torch.rand(8, 1, 28, 28), config, out=out)
    gan_checkpoint = run_paths(out)["checkpoint"]
    assert load_checkpoint(gan_checkpoint, kind="GAN")["iteration"] == 1
    data = load_dataset("mnist-sample", num_samples=60, seed=0)
    config = TrainConfig(method="natural", epochs=1, batch_size=50, holdout=10)
    with pytest.raises(RobustkitError, match="is a GAN checkpoint, not a training one"):
        train(
            fresh_model("fast-mnist", data, seed=0),
            data,
            config,
            out=tmp_path / "m.pt",
            resume=gan_checkpoint,
        )
