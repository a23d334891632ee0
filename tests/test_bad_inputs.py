"""The bad-input catalogue: every command refuses bad input with one line naming the fix, exit 2.

Each case is a command line and the fragments its one error line must hold. Files a case needs
(a corrupt checkpoint, a model returning NaN, a broken results folder...) are written by
``_fixtures`` into the test's folder, which is the working directory of the run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from robustkit.auditing.results import ROW_COLUMNS
from robustkit.cli import app
from robustkit.models.architectures import FastMnistCNN

runner = CliRunner()

_NAN_MODEL = """import torch
from torch import nn
class NaNModel(nn.Module):
    def forward(self, x):
        return torch.full((x.shape[0], 10), float("nan"))
def make():
    return NaNModel()
"""
_RANDOM_MODEL = """import torch
from torch import nn
class Jittery(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(784, 10)
    def forward(self, x):
        return self.linear(x.flatten(1)) + torch.randn(x.shape[0], 10)
def make():
    return Jittery()
"""
_RGB_MODEL = """import torch
from torch import nn
def make():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 28 * 28, 2))
"""
_SOFTMAX_MODEL = """from torch import nn
def make():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Softmax(dim=1))
"""


def _fixtures(folder: Path) -> None:
    (folder / "nan_model.py").write_text(_NAN_MODEL)
    (folder / "random_model.py").write_text(_RANDOM_MODEL)
    (folder / "softmax_model.py").write_text(_SOFTMAX_MODEL)
    (folder / "garbage.pt").write_bytes(b"not a checkpoint at all")
    torch.save(FastMnistCNN().state_dict(), folder / "fast_mnist.pt")  # not mnist-cnn's layout
    (folder / "rgb_model.py").write_text(_RGB_MODEL)
    (folder / "no_images" / "cat").mkdir(parents=True)
    _image_folder(folder / "truncated", truncate="one/1.jpg")
    _image_folder(folder / "colour")
    (folder / "labels.csv").write_text("one,0\nseven,1\n")
    (folder / "a_file").write_text("")
    broken_json = folder / "broken_json"
    broken_json.mkdir()
    (broken_json / "run.json").write_text("{not json")
    (broken_json / "results.csv").write_text(",".join(ROW_COLUMNS) + "\n")
    wrong_columns = folder / "wrong_columns"
    wrong_columns.mkdir()
    (wrong_columns / "run.json").write_text("{}")
    (wrong_columns / "results.csv").write_text("a,b\n1,2\n")


def _image_folder(root: Path, truncate: str | None = None) -> None:
    """Two classes of two 28 x 28 RGB JPEGs; ``truncate`` names one to cut in half."""
    for name in ("one", "seven"):
        (root / name).mkdir(parents=True)
        for index in range(2):
            Image.new("RGB", (28, 28), color=(index * 100,) * 3).save(root / name / f"{index}.jpg")
    if truncate:
        data = (root / truncate).read_bytes()
        (root / truncate).write_bytes(data[: len(data) // 2])


RGB_FOLDER = ["--model", "rgb_model.py:make", "--labels", "labels.csv", "--image-size", "28"]
AUDIT = [
    (["--model", "zoo:mnist-cn"], ["unknown zoo model", "did you mean mnist-cnn"]),
    (["--model", "resnet18"], ["timm:NAME"]),
    (["--model", "timm:resnet18"], ["channel"]),
    (["--model", "missing.py:make"], ["missing.py not found"]),
    (["--model", "nan_model.py:nope"], ["has no 'nope'"]),
    (["--model", "nan_model.py:make"], ["NaN/inf logits"]),
    (["--model", "softmax_model.py:make"], ["remove the softmax"]),
    (["--model", "random_model.py:make"], ["different logits", "--randomized"]),
    (["--checkpoint", "no/such/file.pt"], ["not found"]),
    (["--checkpoint", "garbage.pt"], ["corrupt or not a PyTorch file"]),
    (["--checkpoint", "fast_mnist.pt"], ["does not match the model"]),
    (["--device", "cuda:7"], ["cuda:7", "use cpu"]),
    (["--device", "tpu"], ["unknown device 'tpu'", "use cpu, cuda or cuda:N"]),
    (["--attacks", "pgd-lnf"], ["unknown attack 'pgd-lnf'", "did you mean pgd-linf"]),
    (["--attacks", "latent-overpowered"], ["--defense manifold:zoo:mnist-dcgan"]),
    (["--suite", "standrd"], ["unknown suite 'standrd'", "did you mean standard"]),
    (["--dataset", "mnsit"], ["unknown dataset 'mnsit'", "did you mean mnist"]),
    (["--corruptions", "gausian_noise"], ["unknown corruption", "did you mean gaussian_noise"]),
    (["--corruptions", "fog", "--severities", "1,6"], ["severity 6 is out of range", "1 to 5"]),
    (["--corruptions", "fog", "--severities", "0"], ["severity 0 is out of range"]),
    (["--severities", "2"], ["--severities applies to --corruptions"]),
    (["--corruptions", "fog", "--corruption-table", "cifar"], ["did you mean cifar10"]),
    (["--dataset", "cifar10-c:nowhere:fog:3"], ["not found", "cifar10-c:DIR"]),
    (["--dataset", "cifar10-c:.:fog:9"], ["severity '9'", "give 1 to 5"]),
    (["--dataset", "imagefolder:no_images"], ["no images found"]),
    (["--dataset", "imagefolder:nowhere"], ["not found"]),
    ([*RGB_FOLDER, "--dataset", "imagefolder:truncated"], ["truncated/one/1.jpg", "truncated"]),
    (["--dataset", "imagefolder:colour", "--labels", "labels.csv"], ["1 channels", "has 3"]),
    (["--dataset", "mnist", "--data-root", "nowhere"], ["MNIST not found", "--data-root"]),
    (["--eps", "-0.1"], ["eps must be >= 0"]),
    (["--eps", "2"], ["exceeds the pixel range"]),
    (["--eps", "a,b"], ["--eps takes comma-separated numbers"]),
    (["--eps-l1", "10,-1"], ["--eps-l1 must be >= 0, got -1"]),
    (["--sigmas", "x"], ["--sigmas takes comma-separated numbers"]),
    (["--num-samples", "5000"], ["1000"]),
    (["--batch-size", "0"], ["--batch-size must be >= 1"]),
    (["--steps", "0"], ["--steps must be >= 1"]),
    (["--defense", "jpeg:90"], ["manifold:zoo:mnist-dcgan"]),
    (["--defense", "manifold:zoo:mnist-dcgn"], ["did you mean mnist-dcgan"]),
    (["--defense", "manifold:missing.pt"], ["missing.pt not found"]),
    (["--defense", "manifold:zoo:mnist-dcgan", "--eot-samples", "0"], ["--eot-samples"]),
    (["--randomized", "--eot-samples", "0"], ["--eot-samples must be >= 1"]),
    (["--randomized", "--eval-passes", "0"], ["--eval-passes must be >= 1"]),
    (["--out", "a_file/out"], ["choose another --out"]),
    (["--out", "/proc/robustkit-out"], ["choose another --out"]),  # /proc refuses even root
]
TRAIN = [
    (["--method", "pgb"], ["did you mean pgd"]),
    (["--norm", "l3"], ["unknown norm 'l3'"]),
    (["--model", "arch:nope"], ["unknown architecture 'nope'"]),
    (["--resume", "missing.ckpt.pt"], ["missing.ckpt.pt not found"]),
    (["--method", "manifold", "--num-samples", "10"], ["needs --generator"]),
    (["--epochs", "0", "--num-samples", "10"], ["--epochs must be >= 1"]),
    (["--eps", "-1", "--num-samples", "10"], ["--eps must be >= 0"]),
]
TRAIN_GAN = [
    (["--dataset", "cifar10"], ["train-gan supports mnist, fashion-mnist"]),
    (["--arch", "began"], ["use dcgan or wgan-gp"]),
    (["--iterations", "0"], ["must be >= 1"]),
]
TRANSFER = [
    (["--attack", "pgd-lnf"], ["did you mean pgd-linf"]),
    (["--attack", "foolbox:LinfPDG"], ["did you mean foolbox:LinfPGD"]),
    (["--models", "zoo:mnist-cnn,zoo:nope"], ["unknown zoo model 'nope'"]),
    (["--eps", "-1"], ["eps"]),
]
REPORT = [
    (["nowhere"], ["holds no audit results"]),
    (["broken_json"], ["run.json is corrupt", "re-run"]),
    (["wrong_columns"], ["results.csv is corrupt", "re-run"]),
]
CASES = [
    *[
        pytest.param("audit", args, fragments, id=f"audit {' '.join(args)}")
        for args, fragments in AUDIT
    ],
    *[
        pytest.param("train", args, fragments, id=f"train {' '.join(args)}")
        for args, fragments in TRAIN
    ],
    *[pytest.param("train-gan", a, f, id=f"train-gan {' '.join(a)}") for a, f in TRAIN_GAN],
    *[pytest.param("transfer", a, f, id=f"transfer {' '.join(a)}") for a, f in TRANSFER],
    *[pytest.param("report", a, f, id=f"report {' '.join(a)}") for a, f in REPORT],
]


def test_the_catalogue_covers_at_least_30_bad_inputs():
    assert len(CASES) >= 30


@pytest.mark.parametrize(("command", "args", "fragments"), CASES)
def test_bad_input_gives_one_line_naming_the_fix_and_exit_2(
    command, args, fragments, tmp_path, monkeypatch, data_root, one_line_error
):
    _fixtures(tmp_path)
    monkeypatch.chdir(tmp_path)
    extra = ["--out", "out"] if command == "audit" and "--out" not in args else []
    one_line_error(runner.invoke(app, [command, *args, *extra]), *fragments)


USAGE = [
    (["audit", "--no-such-option"], ["No such option: --no-such-option", "robustkit audit --help"]),
    (["train", "--epochs"], ["'--epochs' requires an argument"]),
    (["audit", "--steps", "many"], ["Invalid value for '--steps'", "robustkit audit --help"]),
    (["audti"], ["No such command 'audti'", "robustkit --help"]),
]


@pytest.mark.parametrize(("args", "fragments"), USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_usage_errors_of_the_real_command_are_one_line_too(args, fragments):
    run = subprocess.run(
        [sys.executable, "-m", "robustkit", *args], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), run.stderr
    assert all(fragment in lines[0] for fragment in fragments), lines[0]
