"""Gradient-masking canaries: each hides its (absent) robustness from gradient attacks; the
standard suite must break it, and the audit must say why the gradient attacks could not."""

from __future__ import annotations

import pytest
import torch

import robustkit
from robustkit.auditing.checks import sanity_flags
from robustkit.models import load_model
from robustkit.models.masked import NoisyInput, QuantizedInput, ScaledLogits


@pytest.fixture(scope="module")
def classifier() -> torch.nn.Module:
    return load_model("zoo:mnist-cnn", device="cpu")


def audit(model: torch.nn.Module, **kw):
    kw.setdefault("eps", [0.3])
    return robustkit.audit(
        model, "mnist-sample", num_samples=16, device="cpu", noise_probes=False, **kw
    )


@pytest.mark.parametrize("canary", [ScaledLogits, QuantizedInput])
def test_canaries_keep_the_classifiers_decisions(classifier, canary):
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(canary(classifier)(x).argmax(1), classifier(x).argmax(1))


@pytest.mark.parametrize(
    ("canary", "code"), [(ScaledLogits, "zero-gradients"), (QuantizedInput, "zero-gradients")]
)
def test_pgd_alone_is_fooled_but_the_audit_flags_it(classifier, canary, code):
    result = audit(canary(classifier), attacks=["pgd-linf"])
    assert result.robust_accuracy()[("linf", 0.3)] > 0.9  # the masked number
    assert code in [flag.code for flag in sanity_flags(result)]


def test_a_randomized_model_attacked_without_eot_is_flagged(classifier):
    result = audit(NoisyInput(classifier), attacks=["fgsm"])
    assert "randomized-without-eot" in [flag.code for flag in sanity_flags(result)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("canary", "breaker", "code"),
    [
        (ScaledLogits, "apgd-t", "ce-dlr-disagree"),  # DLR is scale-invariant
        (QuantizedInput, "square", "gradient-free-beats-gradient"),  # Square needs no gradient
    ],
)
def test_the_standard_suite_breaks_masked_models(classifier, canary, breaker, code):
    torch.manual_seed(0)
    result = audit(canary(classifier), attacks=[], suite="standard")
    assert result.robust_accuracy()[("linf", 0.3)] == 0.0  # mnist-cnn is not robust at 0.3
    rows = result.frame[result.frame["attack"] == "square"]
    assert (rows.loc[rows["clean_correct"], "broken_by"] == breaker).mean() > 0.5
    assert code in [flag.code for flag in sanity_flags(result)]
