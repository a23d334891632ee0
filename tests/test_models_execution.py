"""How a RobustModel runs its forward (robustkit.models.execution): autocast precision with fp32
logits, channels_last, torch.compile, fp16 refused on CPU, and the run config records it."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from robustkit.attacks import create_attack
from robustkit.auditing.inputs import describe_model
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel, load_model
from robustkit.models.execution import Execution


def conv_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 5)
    )


def pixels() -> Tensor:
    return torch.rand(6, 3, 12, 12, generator=torch.Generator().manual_seed(0))


def wrapped(execution: Execution | None = None) -> RobustModel:
    """The same weights every call, wrapped with ``execution``."""
    return RobustModel(conv_net(), mean=[0.5] * 3, std=[0.25] * 3, execution=execution)


def test_fp32_is_the_bare_forward() -> None:
    model = wrapped()
    x = pixels()
    assert torch.equal(model(x), model.model((x - 0.5) / 0.25))


def test_bf16_runs_the_model_in_bf16_and_returns_fp32_logits_and_gradients() -> None:
    model = wrapped(Execution("bf16"))
    seen: list[torch.dtype] = []
    model.model[-1].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    x = pixels().requires_grad_(True)
    logits = model(x)
    assert seen == [torch.bfloat16]
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, wrapped()(x), atol=0.05, rtol=0.05)
    (grad,) = torch.autograd.grad(logits.logsumexp(1).sum(), x)
    assert grad.dtype == torch.float32 and bool(grad.abs().sum() > 0)


def test_an_attack_under_bf16_keeps_its_arithmetic_in_fp32() -> None:
    model = wrapped(Execution("bf16"))
    x = pixels()
    labels = model(x).argmax(1)
    result = create_attack("apgd-ce", steps=5)(model, x, labels, eps=0.05)
    assert result.x_adv.dtype == torch.float32
    assert float((result.x_adv - x).abs().max()) <= 0.05 + 1e-6


def test_fp16_on_cpu_is_refused_up_front() -> None:
    with pytest.raises(RobustkitError, match="fp16 needs a GPU: on CPU use --precision bf16"):
        wrapped(Execution("fp16"))


def test_an_unknown_precision_suggests_the_close_one() -> None:
    with pytest.raises(
        RobustkitError, match=r"unknown precision 'bf61': did you mean bf16.*available: fp32, bf16"
    ):
        Execution("bf61")


def test_channels_last_converts_weights_and_inputs_with_the_same_logits() -> None:
    model = wrapped(Execution(channels_last=True))
    conv = model.model[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    formats: list[bool] = []
    conv.register_forward_pre_hook(
        lambda _m, args: formats.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    x = pixels()
    torch.testing.assert_close(model(x), wrapped()(x))
    assert formats == [True]


def test_compile_compiles_the_wrapped_forward_only(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[nn.Module] = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, *a, **k: compiled.append(self))
    model = wrapped(Execution(compile=True))
    assert compiled == [model.model]


@pytest.mark.slow
def test_a_compiled_forward_gives_the_eager_logits_and_gradients() -> None:
    x = pixels().requires_grad_(True)
    eager, fast = wrapped(), wrapped(Execution(compile=True))
    torch.testing.assert_close(fast(x), eager(x))
    (grad_fast,) = torch.autograd.grad(fast(x).sum(), x)
    (grad_eager,) = torch.autograd.grad(eager(x).sum(), x)
    torch.testing.assert_close(grad_fast, grad_eager)
    assert list(fast.state_dict()) == list(eager.state_dict())  # checkpoints stay loadable


def test_load_model_passes_the_execution_and_the_run_config_records_it() -> None:
    model = load_model("zoo:mnist-cnn", device="cpu", execution=Execution("bf16"))
    assert model.execution == Execution("bf16")
    assert describe_model(model)["execution"] == {
        "precision": "bf16",
        "channels_last": False,
        "compile": False,
    }
