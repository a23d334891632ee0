"""Every row leads back to its image: results.csv's ``sample`` is the image's index in the named
dataset (seeded subset, ``--indices`` list, defense and corruption audits, resumed runs), run.json
lists the indices, and the report's example captions name them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import robustkit
from robustkit.attacks import FGSM
from robustkit.auditing.plan import Corruptions
from robustkit.auditing.progress import ProgressStore
from robustkit.cli import app
from robustkit.data import load_dataset, read_indices, select, subset
from robustkit.defenses.evaluation import audit_defense
from robustkit.defenses.manifold import ManifoldProjectionDefense
from robustkit.errors import RobustkitError
from robustkit.reports import write_report

SIZE = 1000  # images in the bundled mnist-sample
LISTED = [917, 3, 458, 12, 640]  # --indices, in an order that is not sorted
QUICK = ["--attacks", "fgsm", "--eps", "0.3", "--no-noise-probes"]
runner = CliRunner()


@pytest.fixture(scope="module")
def sample_data() -> tuple[torch.Tensor, torch.Tensor]:
    """The whole bundled MNIST sample as (images, labels), read apart from any audit."""
    dataset = load_dataset("mnist-sample").dataset
    images = torch.stack([dataset[i][0] for i in range(SIZE)])
    labels = torch.tensor([int(dataset[i][1]) for i in range(SIZE)])
    return images, labels


def seeded_indices(count: int, seed: int) -> list[int]:
    """The dataset indices of the seeded subset, recomputed from the documented draw."""
    return torch.randperm(SIZE, generator=torch.Generator().manual_seed(seed))[:count].tolist()


def assert_rows_are_the_images(
    rows: pd.DataFrame, expected: list[int], data: tuple[torch.Tensor, torch.Tensor], model
) -> None:
    """One attack's rows: in audit order the images ``expected``, with their labels and the
    model's own clean predictions on those images."""
    images, labels = data
    assert rows["sample"].tolist() == expected
    assert rows["label"].tolist() == labels[expected].tolist()
    with torch.no_grad():
        predicted = model(images[expected]).argmax(dim=1)
    assert rows["clean_pred"].tolist() == predicted.tolist()


def test_seeded_subset_rows_carry_dataset_indices(classifier, sample_data):
    expected = seeded_indices(12, seed=3)
    assert expected != list(range(12))
    result = robustkit.audit(
        classifier,
        "mnist-sample",
        attacks=["fgsm"],
        eps=[0.3],
        num_samples=12,
        seed=3,
        batch_size=5,  # three batches: the indices must follow each batch's offset
        device="cpu",
        noise_probes=False,
    )
    rows = result.frame[result.frame["attack"] == "fgsm"]
    assert_rows_are_the_images(rows, expected, sample_data, classifier)
    assert result.config["indices"] == expected and result.config["subset"]
    # the examples are the dataset's images at the indices they name
    assert result.examples is not None and len(result.examples.frame)
    for k, sample in enumerate(result.examples.frame["sample"]):
        assert sample in expected
        assert torch.equal(result.examples.clean[k], sample_data[0][sample])
    worst = result.worst_case()
    assert set(worst["sample"]) == set(expected)


def test_python_api_audits_exactly_the_indices(classifier, sample_data):
    result = robustkit.audit(
        classifier,
        "mnist-sample",
        attacks=["fgsm"],
        eps=[0.3],
        indices=LISTED,
        batch_size=2,
        device="cpu",
        noise_probes=False,
    )
    assert_rows_are_the_images(result.frame, LISTED, sample_data, classifier)
    with pytest.raises(RobustkitError, match="give one"):
        robustkit.audit(classifier, "mnist-sample", indices=LISTED, num_samples=5)


def test_select_refuses_a_subset_and_bad_entries():
    full = load_dataset("mnist-sample")
    with pytest.raises(RobustkitError, match="already a subset"):
        select(subset(full, 10, 0), [1])
    with pytest.raises(RobustkitError, match=r"entry 2 \(1\.5\) is not an integer"):
        select(full, [1, 1.5])  # type: ignore[list-item]
    picked = select(full, torch.tensor([7, 2]))
    assert picked.sample_indices().tolist() == [7, 2]
    # a subset of a subset keeps the indices of the named dataset
    nested = subset(subset(full, 50, 1), 5, 2)
    inner = seeded_indices(50, 1)
    outer = torch.randperm(50, generator=torch.Generator().manual_seed(2))[:5].tolist()
    assert nested.sample_indices().tolist() == [inner[i] for i in outer]


def test_defense_and_corruption_rows_carry_dataset_indices(classifier, tiny_generator, sample_data):
    defense = ManifoldProjectionDefense(classifier, tiny_generator, steps=2, restarts=1)
    defended = audit_defense(
        classifier,
        defense,
        "mnist-sample",
        attacks=[FGSM()],
        eps=[0.3],
        eot_samples=1,
        indices=LISTED,
        batch_size=2,
    )
    assert defended.config["indices"] == LISTED
    for (_, _), rows in defended.frame.groupby(["model", "attack"]):
        assert rows["sample"].tolist() == LISTED
        assert rows["label"].tolist() == sample_data[1][LISTED].tolist()
    corrupted = robustkit.audit(
        classifier,
        "mnist-sample",
        attacks=[],
        eps=[],
        indices=LISTED,
        corruptions=Corruptions(["gaussian_noise"], [1]),
        device="cpu",
        noise_probes=False,
    )
    assert corrupted.frame["norm"].eq("corruption").all()
    assert_rows_are_the_images(corrupted.frame, LISTED, sample_data, classifier)


def test_resume_keeps_the_dataset_indices(classifier, sample_data, tmp_path):
    def run(**kw):
        return robustkit.audit(
            classifier,
            "mnist-sample",
            attacks=["fgsm"],
            eps=[0.3],
            num_samples=9,
            seed=5,
            batch_size=4,
            device="cpu",
            noise_probes=False,
            progress_dir=tmp_path,
            **kw,
        )

    full = run()
    (tmp_path / "batch-000001.pt").unlink()
    saved = torch.load(tmp_path / "batch-000002.pt", weights_only=True)
    assert pd.DataFrame(saved["rows"])["sample"].tolist() == seeded_indices(9, 5)[8:]
    resumed = run(resume=True)
    assert ProgressStore(tmp_path).finished() == {0, 1, 2}
    pd.testing.assert_frame_equal(resumed.frame, full.frame)
    assert_rows_are_the_images(resumed.frame, seeded_indices(9, 5), sample_data, classifier)
    # progress saved before the rows named dataset indices (they counted positions) is not mixed in
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    del manifest["sample_column"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RobustkitError, match="sample_column changed"):
        run(resume=True)


def test_indices_file_audits_exactly_those_images(tmp_path, classifier, sample_data):
    listing = tmp_path / "chosen.txt"
    listing.write_text("# images a cross-check found odd\n917, 3\n458 12  # two on a line\n640\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["audit", "--indices", str(listing), *QUICK, "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out / "results.csv")
    assert set(rows["sample"]) == set(LISTED)
    assert_rows_are_the_images(rows[rows["attack"] == "fgsm"], LISTED, sample_data, classifier)
    run = json.loads((out / "run.json").read_text())
    assert run["indices"] == LISTED and run["num_samples"] == len(LISTED)
    # the report's examples name the image each one shows
    examples = pd.read_csv(out / "examples.csv")
    assert len(examples) and set(examples["sample"]) <= set(LISTED)
    report = (out / "report.html").read_text()
    for sample in examples["sample"]:
        assert f"image #{sample}, true" in report


def test_report_caption_names_the_dataset_index(classifier, tmp_path):
    result = robustkit.audit(
        classifier,
        "mnist-sample",
        attacks=["fgsm"],
        eps=[0.3],
        indices=[4, 777],
        device="cpu",
        noise_probes=False,
    )
    assert result.examples is not None
    shown = result.examples.frame["sample"].tolist()
    assert shown and set(shown) <= {4, 777}
    html = write_report(result, tmp_path / "report.html").read_text()
    for sample in shown:
        assert f"image #{sample}, true" in html
        assert f"example on image #{sample}:" in html  # the alt text too


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (None, ["not found", "--indices"]),
        ("5\nx7\n", ["line 2", "'x7' is not an integer"]),
        ("5\n1.5\n", ["line 2", "'1.5' is not an integer"]),
        ("3\n1000\n", ["index 1000 is out of range", "1000 images", "0 to 999"]),
        ("-1\n", ["index -1 is out of range"]),
        ("# nothing yet\n\n", ["lists no image"]),
        ("8, 9, 8\n", ["index 8 is listed twice", "entries 1 and 3"]),
    ],
)
def test_bad_indices_file_is_one_line(tmp_path, one_line_error, content, fragments):
    listing = tmp_path / "indices.txt"
    if content is not None:
        listing.write_text(content)
    result = runner.invoke(
        app, ["audit", "--indices", str(listing), *QUICK, "--out", str(tmp_path)]
    )
    one_line_error(result, *fragments)


def test_indices_beside_num_samples_is_refused(tmp_path, one_line_error):
    listing = tmp_path / "indices.txt"
    listing.write_text("1\n")
    args = ["audit", "--indices", str(listing), "--num-samples", "5", *QUICK]
    result = runner.invoke(app, [*args, "--out", str(tmp_path)])
    one_line_error(result, "--indices", "--num-samples", "give one of them")


def test_json_and_csv_lists_read_like_text(tmp_path):
    (tmp_path / "a.json").write_text("[917, 3, 458]")
    (tmp_path / "a.csv").write_text("index\n917\n3\n458\n")
    (tmp_path / "b.csv").write_text("917\n3\n458\n")
    for name in ("a.json", "a.csv", "b.csv"):
        assert read_indices(tmp_path / name) == [917, 3, 458]
    (tmp_path / "bad.json").write_text('[1, "2"]')
    with pytest.raises(RobustkitError, match=r"entry 2: \"2\" is not an integer"):
        read_indices(tmp_path / "bad.json")
    (tmp_path / "wide.csv").write_text("sample,label\n3,1\n")
    with pytest.raises(RobustkitError, match="give one column"):
        read_indices(tmp_path / "wide.csv")
