"""robustbench:NAME models: robustbench's own architectures with random weights saved in its
checkpoint layout and conventions, loaded back to the same logits; one line for every bad input;
the leaderboard's figures beside ours (terminal, run.json, report) and the checks they feed."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from imagefolders import write_image_folder
from torch import nn
from typer.testing import CliRunner

from robustkit.auditing.checks import sanity_flags
from robustkit.auditing.leaderboard import compare, leaderboard_lines
from robustkit.auditing.results import ROW_COLUMNS, AuditResult
from robustkit.cli import app
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel, load_model
from robustkit.models.leaderboard import leaderboard_entry, parse_eps
from robustkit.models.robustbench import untrained

runner = CliRunner()
EIGHT = 8 / 255
CARMON = "robustbench:cifar10/Linf/Carmon2019Unlabeled"  # leaderboard: 89.69% clean, 59.53% AA


@pytest.fixture(scope="module")
def zoo() -> Any:
    """robustbench's zoo, imported as robustkit imports it; CI installs it with .[test]."""
    from robustkit.models.robustbench import _Zoo

    try:
        return _Zoo.load()
    except RobustkitError:
        if os.environ.get("CI"):
            pytest.fail("CI installs .[test], which holds the robustbench extra")
        pytest.skip("robustbench is not installed: pip install -e '.[robustbench]'")


def architecture(name: str) -> nn.Module:
    """A fresh, seeded instance of robustbench's cifar10 Linf architecture for ``name``."""
    torch.manual_seed(0)
    return untrained(name, dataset="cifar10", threat="Linf")[1].eval()


def checkpoint_path(model_dir: Path, name: str, threat: str = "Linf") -> Path:
    path = model_dir / "cifar10" / threat / f"{name}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def assert_same_logits(model: RobustModel, module: nn.Module) -> None:
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)
        assert logits.shape == (2, 10)
        assert torch.equal(logits, module(x))


@pytest.mark.slow
def test_standard_wideresnet_loads_from_robustbench_layout(zoo, tmp_path) -> None:
    module = architecture("Standard")  # WideResNet-28-10, 36M parameters
    torch.save(module.state_dict(), checkpoint_path(tmp_path, "Standard"))
    model = load_model(
        "robustbench:Standard", threat="Linf", dataset="cifar10", model_dir=tmp_path, device="cpu"
    )
    assert model.name == "robustbench:cifar10/Linf/Standard"
    assert (model.input_shape, model.num_classes, model.mean) == ((3, 32, 32), 10, None)
    assert model.classes is not None and model.classes.names[0] == "airplane"
    assert_same_logits(model, module)


def test_a_checkpoint_in_robustbench_conventions_loads(zoo, tmp_path) -> None:
    # Wong2020Fast: a PreActResNet-18 normalising inside with mu and sigma buffers, which its
    # checkpoint lacks; stored wrapped, with DataParallel's 'module.' prefix
    module = architecture("Wong2020Fast")
    state = {f"module.{k}": v for k, v in module.state_dict().items() if k not in ("mu", "sigma")}
    torch.save({"state_dict": state, "epoch": 15}, checkpoint_path(tmp_path, "Wong2020Fast"))
    model = load_model("robustbench:cifar10/Linf/Wong2020Fast", model_dir=tmp_path, device="cpu")
    assert_same_logits(model, module)


def test_the_last_epoch_of_a_two_epoch_checkpoint_is_loaded(zoo, tmp_path) -> None:
    module = architecture("Andriushchenko2020Understanding")
    best = {k: torch.zeros_like(v) for k, v in module.state_dict().items()}
    torch.save(
        {"last": module.state_dict(), "best": best},
        checkpoint_path(tmp_path, "Andriushchenko2020Understanding"),
    )
    model = load_model(
        "robustbench:Andriushchenko2020Understanding", model_dir=tmp_path, device="cpu"
    )
    assert_same_logits(model, module)


class Pair(nn.Module):
    """A two-member ensemble in robustbench's shape: members in ``models``."""

    def __init__(self) -> None:
        super().__init__()
        self.models = nn.ModuleList(
            nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(10)) for _ in range(2)
        )
        self(torch.zeros(1, 3, 32, 32))  # materialise the lazy layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(member(x) for member in self.models) / len(self.models)


def test_an_ensemble_reads_one_file_per_member(zoo, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(
        zoo.names("cifar10", "Linf"), "Pair", {"model": Pair, "gdrive_id": ["a", "b"]}
    )
    torch.manual_seed(0)
    module = Pair().eval()
    path = checkpoint_path(tmp_path, "Pair")
    torch.save(
        {f"module.{k}": v for k, v in module.models[0].state_dict().items()}, f"{path}_m0.pt"
    )
    with pytest.raises(RobustkitError, match=r"Pair\.pt_m1\.pt"):
        load_model("robustbench:cifar10/Linf/Pair", model_dir=tmp_path)
    torch.save({"state_dict": module.models[1].state_dict()}, f"{path}_m1.pt")
    model = load_model("robustbench:cifar10/Linf/Pair", model_dir=tmp_path, device="cpu")
    assert_same_logits(model, module)


@pytest.mark.slow
def test_an_entry_robustbench_builds_through_timm_loads_a_local_state_dict(zoo, tmp_path) -> None:
    import timm

    name = "Debenedetti2022Light_XCiT-S12"
    with pytest.raises(RobustkitError, match=r"torch\.save\(load_model\('Debenedetti2022Light"):
        load_model(f"robustbench:cifar10/Linf/{name}", model_dir=tmp_path)
    torch.manual_seed(0)
    module = timm.create_model("debenedetti2022light_xcit_s12_cifar10_linf", num_classes=10)
    torch.save(module.eval().state_dict(), checkpoint_path(tmp_path, name))
    model = load_model(f"robustbench:cifar10/Linf/{name}", model_dir=tmp_path, device="cpu")
    assert_same_logits(model, module)


def test_a_missing_checkpoint_names_the_path_and_how_to_get_it(zoo, tmp_path) -> None:
    with pytest.raises(RobustkitError) as error:
        load_model("robustbench:Carmon2019Unlabeled", dataset="cifar10", model_dir=tmp_path)
    message = str(error.value)
    assert str(tmp_path / "cifar10" / "Linf" / "Carmon2019Unlabeled.pt") in message
    assert (
        "from robustbench.utils import load_model; load_model('Carmon2019Unlabeled', "
        f"model_dir='{tmp_path}', dataset='cifar10', threat_model='Linf')" in message
    )
    assert "\n" not in message


def test_a_checkpoint_of_another_architecture_is_refused(zoo, tmp_path) -> None:
    other = architecture("Andriushchenko2020Understanding").state_dict()  # PreActResNet-18
    torch.save(other, checkpoint_path(tmp_path, "Ding2020MMA"))  # a WideResNet-28-4
    with pytest.raises(RobustkitError, match="does not fit robustbench's robustbench:cifar10/"):
        load_model("robustbench:Ding2020MMA", dataset="cifar10", model_dir=tmp_path)


@pytest.mark.parametrize(
    ("spec", "options", "fragment"),
    [
        ("robustbench:Carmon2019Unlabled", {}, "did you mean Carmon2019Unlabeled?"),
        ("robustbench:Carmon2019Unlabeled", {"threat": "L2"}, "under cifar10/Linf"),
        ("robustbench:Standard", {"threat": "Linf2"}, "use Linf, L2, corruptions"),
        ("robustbench:Standard", {"dataset": "cifar100", "threat": "L2"}, "--threat Linf or"),
        ("robustbench:Wong2020Fast", {}, "--model robustbench:cifar10/Linf/Wong2020Fast"),
        ("robustbench:cifar100/Linf/Standard", {"dataset": "cifar10"}, "drop one of them"),
        ("robustbench:a/b", {}, "robustbench:DATASET/THREAT/NAME"),
        ("robustbench:imagenet/Linf/Standard_R50", {}, "torchvision:resnet50 --pretrained"),
        ("robustbench:cifar10/Linf/Bai2024MixedNUTS", {}, "--model file.py:model"),
        ("robustbench:Standard", {"checkpoint": "x.pt"}, "drop --checkpoint"),
        ("zoo:mnist-cnn", {"threat": "L2"}, "pick robustbench models"),
    ],
)
def test_bad_robustbench_input_is_one_line(zoo, spec, options, fragment) -> None:
    with pytest.raises(RobustkitError) as error:
        load_model(spec, **options)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_without_robustbench_one_line_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "robustbench", None)  # as if it were not installed
    with pytest.raises(RobustkitError, match=r"pip install -e '\.\[robustbench\]'"):
        load_model("robustbench:Standard")


def test_the_cli_refuses_a_bad_robustbench_spec_in_one_line(zoo, tmp_path, one_line_error):
    result = runner.invoke(
        app, ["audit", "--model", "robustbench:Carmon2019Unlabled", "--dataset", "cifar10"]
    )
    one_line_error(
        result, "unknown robustbench cifar10 Linf model", "did you mean Carmon2019Unlabeled?"
    )
    result = runner.invoke(app, ["audit", "--threat", "L2", "--out", str(tmp_path)])
    one_line_error(result, "--threat and --model-dir pick robustbench models")


def test_the_shipped_leaderboard_holds_robustbench_figures() -> None:
    entry = leaderboard_entry(CARMON)
    assert entry is not None and entry["found"]
    assert (entry["clean_accuracy"], entry["robust_accuracy"]) == (0.8969, 0.5953)
    assert entry["eps"] == "8/255" and entry["eps_value"] == pytest.approx(EIGHT)
    assert entry["architecture"] == "WideResNet-28-10" and entry["metric"] == "AutoAttack"
    corruptions = leaderboard_entry("robustbench:cifar10/corruptions/Standard")
    assert corruptions is not None and corruptions["robust_accuracy"] == 0.7346
    assert leaderboard_entry("timm:resnet18") is None
    assert leaderboard_entry("robustbench:cifar10/Linf/Nobody2030")["found"] is False


@pytest.mark.parametrize(
    ("text", "value"), [("8/255", EIGHT), ("4/255", 4 / 255), ("0.5", 0.5), (None, None)]
)
def test_published_eps_strings_parse(text, value) -> None:
    assert parse_eps(text) == value


def test_the_script_builds_the_table_from_a_checkout(tmp_path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_leaderboard", Path(__file__).parents[1] / "scripts/make_robustbench_leaderboard.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    info = tmp_path / "model_info" / "cifar10" / "Linf"
    info.mkdir(parents=True)
    published = {"clean_acc": "89.69", "autoattack_acc": "59.53", "eps": "8/255", "venue": "x"}
    (info / "Carmon2019Unlabeled.json").write_text(json.dumps(published | {"external": ""}))
    table = script.build(script.from_folder(tmp_path), None)
    assert table["models"] == {
        "cifar10": {
            "Linf": {
                "Carmon2019Unlabeled": {"clean_acc": 89.69, "autoattack_acc": 59.53, "eps": "8/255"}
            }
        }
    }


def audited(clean: int, robust: int, eps: float = EIGHT, model: str = CARMON) -> AuditResult:
    """A hand-built L-inf audit of 100 samples: ``clean`` classified, ``robust`` robust at eps."""
    rows = [
        {
            "model": model,
            "attack": "apgd-ce",
            "norm": "linf",
            "eps": eps,
            "sample": sample,
            "label": 0,
            "clean_pred": 0 if sample < clean else 1,
            "adv_pred": 0 if sample < robust else 1,
            "clean_correct": sample < clean,
            "robust_correct": sample < robust,
            "broken_by": "" if sample < robust else "apgd-ce",
        }
        for sample in range(100)
    ]
    frame = pd.DataFrame(rows, columns=ROW_COLUMNS)
    return AuditResult(frame=frame, config={"model": model, "dataset": "cifar10"})


def with_leaderboard(result: AuditResult) -> AuditResult:
    entry = leaderboard_entry(str(result.config["model"]))
    assert entry is not None
    result.config["leaderboard"] = compare(result, entry)
    return result


def test_robust_accuracy_above_the_leaderboard_flags_a_weaker_attack() -> None:
    result = with_leaderboard(audited(clean=90, robust=75))  # 95% CI 65.3%-83.1% > 59.53%
    record = result.config["leaderboard"]
    assert record["audited"] and record["robust_above_leaderboard"]
    assert record["gap"] == pytest.approx(0.75 - 0.5953)
    assert record["gap_ci_low"] == pytest.approx(record["ours"]["ci_low"] - 0.5953, abs=1e-6)
    flags = {flag.code: flag for flag in sanity_flags(result)}
    assert set(flags) == {"robust-above-leaderboard"}
    assert flags["robust-above-leaderboard"].severity == "error"
    assert "59.53%" in flags["robust-above-leaderboard"].message


def test_robust_accuracy_within_the_interval_is_not_flagged() -> None:
    result = with_leaderboard(audited(clean=90, robust=62))
    assert sanity_flags(result) == []
    board, ours = leaderboard_lines(result.config["leaderboard"])
    assert board == (
        "leaderboard",
        "RobustBench, cifar10 Linf Carmon2019Unlabeled (WideResNet-28-10): clean 89.69%, "
        "AutoAttack 59.53% at eps 8/255",
    )
    assert "worst case at linf eps 8/255 62.0% (95% CI 51.7%-71.5%), gap +2.5 points" in ours[1]


def test_clean_accuracy_far_from_the_leaderboard_is_flagged() -> None:
    result = with_leaderboard(audited(clean=40, robust=20))
    assert [flag.code for flag in sanity_flags(result)] == ["clean-off-leaderboard"]


def test_an_unaudited_leaderboard_eps_is_said_so() -> None:
    result = with_leaderboard(audited(clean=90, robust=70, eps=0.03))
    record = result.config["leaderboard"]
    assert not record["audited"] and record["gap"] is None
    assert not record["robust_above_leaderboard"]
    assert (
        "eps 8/255 (0.03137255) was not audited: add 0.03137255 to --eps"
        in (leaderboard_lines(record)[1][1])
    )


@pytest.mark.slow
def test_an_audit_of_a_zoo_model_shows_the_leaderboard_everywhere(zoo, tmp_path) -> None:
    module = architecture("Wong2020Fast")
    torch.save(module.state_dict(), checkpoint_path(tmp_path / "models", "Wong2020Fast"))
    data = write_image_folder(tmp_path / "data", ["airplane", "automobile"], per_class=2)
    out = tmp_path / "out"
    args = ["audit", "--model", "robustbench:cifar10/Linf/Wong2020Fast"]
    args += ["--model-dir", str(tmp_path / "models"), "--dataset", f"imagefolder:{data}"]
    args += ["--num-samples", "4", "--attacks", "fgsm", "--eps", "0.0313725"]
    args += ["--no-noise-probes", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    board = "RobustBench, cifar10 Linf Wong2020Fast (PreActResNet-18): clean 83.34%, AutoAttack "
    board += "43.21% at eps 8/255"
    terminal = " ".join(result.stdout.split())  # Rich may wrap the long lines
    assert f"leaderboard: {board}" in terminal
    assert result.stdout.index("leaderboard:") > result.stdout.index("\u2514")  # below the table
    assert "ours: 4 samples, clean" in terminal and "worst case at linf eps 8/255" in terminal
    record = json.loads((out / "run.json").read_text())["leaderboard"]
    assert record["audited"] and record["clean_accuracy"] == 0.8334
    assert record["gap"] == pytest.approx(record["ours"]["robust_accuracy"] - 0.4321)
    report = (out / "report.html").read_text()
    assert "RobustBench leaderboard" in report and board in report
