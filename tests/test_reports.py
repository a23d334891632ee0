"""The HTML report: rendered from a real small audit, escaped, and opened in headless Chromium."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import robustkit
from robustkit.auditing.results import AuditResult
from robustkit.cli import app
from robustkit.models import load_model
from robustkit.reports import report_from_dirs, write_report
from robustkit.reports.figures import UnsafeSVGError, svg_markup

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
HOSTILE_CLASS = "five<script>window.__pwned=3</script>"
SECTIONS = [
    "summary",
    "robust-accuracy",
    "per-class",
    "confusions",
    "examples",
    "noise",
    "transfer",
    "defense",
    "sanity",
]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
INSTALL = "install them with: apt-get install chromium chromium-driver"


@pytest.fixture(scope="module")
def audited() -> AuditResult:
    """A small real audit of the bundled MNIST CNN, named and labelled with hostile strings."""
    model = load_model("zoo:mnist-cnn")
    model.name = HOSTILE
    result = robustkit.audit(
        model,
        "mnist-sample",
        attacks=("fgsm", "pgd-linf", "gaussian-noise"),
        eps=(0.1, 0.3),
        sigmas=(0.1, 0.5),
        num_samples=50,
        steps=5,
        seed=0,
    )
    result.config["classes"][5] = HOSTILE_CLASS
    assert result.noise_grid is not None
    result.noise_grid["top1_name"] = result.noise_grid["top1_name"].str.replace(
        "5 - five", HOSTILE_CLASS
    )
    return result


def with_defense(result: AuditResult) -> AuditResult:
    """The audit plus oblivious and BPDA copies of its PGD rows, as a defense evaluation writes."""
    pgd = result.frame[result.frame["attack"] == "pgd-linf"]
    defended = [pgd.assign(attack=f"{prefix}:pgd-linf") for prefix in ("oblivious", "bpda")]
    frame = pd.concat([result.frame, *defended], ignore_index=True)
    return AuditResult(
        frame, result.config, result.examples, result.noise_grid, result.noise_targets
    )


def transfer_matrix() -> pd.DataFrame:
    models = ["zoo:mnist-cnn", "arch:fast-mnist", HOSTILE]
    return pd.DataFrame(
        [
            {
                "source": s,
                "target": t,
                "eps": 0.3,
                "attack": "pgd-linf",
                "n": 50,
                "success_rate": 1.0 if s == t else 0.4,
                "conditioned": conditioned,
            }
            for s in models
            for t in models
            for conditioned in (True, False)
        ]
    )


@pytest.fixture(scope="module")
def report(audited: AuditResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    return write_report(with_defense(audited), out, transfer=transfer_matrix())


def test_report_has_every_section_and_escapes_user_strings(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    assert re.search(r"<\s*script", html, re.IGNORECASE) is None
    # Text and attribute values are escaped, so what is left between < and > is real markup.
    tags = [re.sub(r'"[^"]*"', '""', tag) for tag in re.findall(r"<[^>]*>", html)]
    assert not [tag for tag in tags if re.search(r"\son\w+\s*=", tag)]
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "five&lt;script&gt;window.__pwned=3&lt;/script&gt;" in html  # in tables and SVG text
    assert "oblivious" in html and "bpda" in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing fetched from the network
    assert report.stat().st_size < 3_000_000


def test_report_says_when_there_are_no_flags(audited: AuditResult, tmp_path: Path) -> None:
    strong_pgd = audited.frame.copy()
    fgsm = strong_pgd["attack"] == "fgsm"
    strong_pgd.loc[~fgsm & (strong_pgd["norm"] == "linf"), "robust_correct"] = False
    result = AuditResult(strong_pgd, audited.config, audited.examples, audited.noise_grid)
    html = write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "No flags: every check passed." in html


def test_a_flag_sits_in_the_header_next_to_the_number_it_doubts(
    audited: AuditResult, tmp_path: Path
) -> None:
    config = audited.config | {
        "model_checks": [{"code": "zero-gradients", "severity": "error", "message": "masked"}]
    }
    result = AuditResult(audited.frame, config, audited.examples, audited.noise_grid)
    html = write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    header = html[: html.index('id="robust-accuracy"')]
    assert "in doubt" in header and "zero-gradients" in header and "95% CI" in header
    clean = write_report(audited, tmp_path / "c.html").read_text(encoding="utf-8")
    assert "95% CI" in clean


def test_minimum_norm_radii_draw_a_continuous_curve(audited: AuditResult, tmp_path: Path) -> None:
    fmn = audited.frame[audited.frame["attack"] == "pgd-linf"].assign(attack="fmn", radius=0.2)
    result = AuditResult(
        pd.concat([audited.frame, fmn], ignore_index=True), audited.config, audited.examples
    )
    html = write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "fmn (radius)" in html


def test_several_audits_compare_side_by_side(audited: AuditResult, tmp_path: Path) -> None:
    html = write_report([audited, audited], tmp_path / "two.html").read_text(encoding="utf-8")
    assert "(run 1)" in html and "(run 2)" in html
    assert "Across runs" in html


def test_report_command_reads_results_folders(audited: AuditResult, tmp_path: Path) -> None:
    folder = audited.save(tmp_path / "audit")
    transfer_matrix().to_csv(folder / "transfer_matrix.csv", index=False)
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    assert 'id="transfer"' in (folder / "report.html").read_text(encoding="utf-8")
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert "holds no audit results" in missing.output
    assert report_from_dirs([folder], tmp_path / "direct.html").is_file()


def test_svg_with_script_is_refused() -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    fig.subplots().set_title(HOSTILE)
    assert "&lt;script&gt;" in svg_markup(fig)  # matplotlib escapes text
    fig.text(0.5, 0.5, "click", url="javascript:alert(1)")
    with pytest.raises(UnsafeSVGError):
        svg_markup(fig)


def chrome(tmp_path: Path) -> Any:
    """Headless Chromium through selenium; fails (never skips) when it is not installed."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.fail(f"Chromium and chromedriver are needed for the browser test: {INSTALL}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("the browser test drives Chromium with selenium: pip install selenium")

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@pytest.mark.slow
def test_report_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    driver = chrome(tmp_path)
    try:
        driver.get(report.resolve().as_uri())
        deadline = time.monotonic() + 30
        while driver.execute_script("return document.readyState") != "complete":
            assert time.monotonic() < deadline, "the report did not finish loading"
            time.sleep(0.1)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        assert driver.execute_script("return window.__pwned") is None
        for section in SECTIONS:
            assert driver.find_elements("id", section), f"section {section} missing"
        body = driver.find_element("tag name", "body").text
        assert "<script>window.__pwned=1</script>" in body  # shown as text
        images = driver.execute_script(
            "return [...document.images].map(i => [i.complete, i.naturalWidth])"
        )
        assert images and all(done and width > 0 for done, width in images)
        svgs = driver.execute_script(
            "return [...document.querySelectorAll('svg')].map(s => s.getBoundingClientRect().width)"
        )
        assert len(svgs) >= 5 and all(width > 0 for width in svgs)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(height + 100, 16000))
        assert driver.save_screenshot(str(report.with_suffix(".png")))
    finally:
        driver.quit()
