"""The evaluator: batched attacks over a dataset, one tidy row per sample x attack x eps."""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import robustkit
from robustkit.attacks import Attack, AttackResult, attack_class, pgd_from_noise, pure_noise_probe
from robustkit.data import DatasetInfo, load_dataset, subset
from robustkit.errors import RobustkitError
from robustkit.models import RobustModel, check_classifier, load_model
from robustkit.results import EXAMPLE_COLUMNS, ROW_COLUMNS, AuditResult, Examples

DEFAULT_ATTACKS = ("fgsm", "pgd-linf", "pgd-l2", "gaussian-noise")
DEFAULT_BUDGETS: dict[str, tuple[float, ...]] = {
    "linf": (0.1, 0.2, 0.3),
    "l2": (1.0, 2.0, 3.0),
    "gaussian": (0.1, 0.3, 0.5),
}


def build_attack(spec: str | Attack, **hyper: Any) -> Attack:
    """An attack from a registry name; the audit's steps and restarts go to iterative attacks
    only (FGSM stays one step)."""
    if isinstance(spec, Attack):
        return spec
    cls = attack_class(spec)
    if not cls.iterative:
        return cls()
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in hyper.items() if k in names and v is not None})


def resolve_model(model: str | nn.Module, device: str | torch.device | None) -> RobustModel:
    """A RobustModel from a spec string, a RobustModel, or a bare module taking [0, 1] pixels."""
    if isinstance(model, str):
        return load_model(model, device=device)
    if isinstance(model, RobustModel):
        return model.to(device) if device is not None else model
    return RobustModel(model, name=type(model).__name__, device=device)


def resolve_data(
    data: str | DatasetInfo | Dataset | tuple[Tensor, Tensor],
    num_samples: int | None,
    seed: int,
) -> DatasetInfo:
    """A DatasetInfo from a dataset name, a DatasetInfo, a Dataset or an (x, y) pair, cut to a
    seeded subset of ``num_samples`` items when given."""
    if isinstance(data, str):
        return load_dataset(data, num_samples=num_samples, seed=seed)
    info = data if isinstance(data, DatasetInfo) else _wrap_dataset(data)
    return subset(info, num_samples, seed) if num_samples is not None else info


def _wrap_dataset(data: Dataset | tuple[Tensor, Tensor]) -> DatasetInfo:
    if isinstance(data, tuple):
        x, y = data
        if x.dim() != 4:
            raise RobustkitError(
                f"images must have shape (N, C, H, W), got {tuple(x.shape)}: "
                "add the channel dimension with x.unsqueeze(1)"
            )
        data = TensorDataset(x, y)
    first_x, _ = data[0]
    return DatasetInfo(
        dataset=data, name=type(data).__name__, classes=[], input_shape=tuple(first_x.shape)
    )


def plan_attacks(
    attacks: Iterable[str | Attack],
    *,
    steps: int | None,
    restarts: int | None,
    eps: Sequence[float],
    eps_l2: Sequence[float],
    sigmas: Sequence[float],
) -> tuple[list[Attack], dict[str, Sequence[float]]]:
    """The attacks to run and the budgets of each norm, checked: at least one attack, and
    budgets for every attack's norm."""
    attack_list = [build_attack(a, steps=steps, restarts=restarts) for a in attacks]
    if not attack_list:
        raise RobustkitError("give at least one attack, e.g. --attacks pgd-linf")
    budgets: dict[str, Sequence[float]] = {"linf": eps, "l2": eps_l2, "gaussian": sigmas}
    for attack in attack_list:
        if not budgets.get(attack.norm):
            raise RobustkitError(f"attack {attack.name!r} needs {attack.norm} budgets: none given")
    return attack_list, budgets


def batch_loader(info: DatasetInfo, batch_size: int) -> DataLoader:
    """Fixed-order batches of the dataset."""
    if batch_size < 1:
        raise RobustkitError(f"batch size must be >= 1, got {batch_size}")
    return DataLoader(info.dataset, batch_size=batch_size, shuffle=False)


def audit(
    model: str | nn.Module = "zoo:mnist-cnn",
    data: str | DatasetInfo | Dataset | tuple[Tensor, Tensor] = "mnist-sample",
    *,
    attacks: Iterable[str | Attack] = DEFAULT_ATTACKS,
    eps: Sequence[float] = DEFAULT_BUDGETS["linf"],
    eps_l2: Sequence[float] = DEFAULT_BUDGETS["l2"],
    sigmas: Sequence[float] = DEFAULT_BUDGETS["gaussian"],
    steps: int | None = None,
    restarts: int | None = None,
    num_samples: int | None = None,
    batch_size: int = 500,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = False,
    examples_per_attack: int = 4,
    noise_probes: bool = True,
) -> AuditResult:
    """Run every attack at every budget on the correctly classified samples of ``data``.

    Clean predictions are computed once per batch; memory is bounded by ``batch_size``. The
    first batch also yields a few example adversarials per attack and eps; with
    ``noise_probes`` the model is also asked to classify pure noise (a mean x sigma grid, and
    PGD from noise towards every class).
    """
    started = time.perf_counter()
    torch.manual_seed(seed)
    robust_model = resolve_model(model, device)
    info = resolve_data(data, num_samples, seed)
    attack_list, budgets = plan_attacks(
        attacks, steps=steps, restarts=restarts, eps=eps, eps_l2=eps_l2, sigmas=sigmas
    )
    loader = batch_loader(info, batch_size)
    num_classes = check_classifier(robust_model, next(iter(loader))[0][:2].to(robust_model.device))

    jobs = [(attack, budget) for attack in attack_list for budget in budgets[attack.norm]]
    # One column store per (attack, eps), so rows come out in the same order for any batch size.
    stores: list[dict[str, list[Any]]] = [{name: [] for name in ROW_COLUMNS} for _ in jobs]
    examples: list[tuple[Tensor, Tensor, dict[str, list[Any]]]] = []
    with progress_bar(progress) as bar:
        task = bar.add_task("attacking", total=len(jobs) * len(loader))
        offset = 0
        for x, y in loader:
            x, y = x.to(robust_model.device), y.to(robust_model.device)
            with torch.no_grad():
                clean_pred = robust_model(x).argmax(dim=1)
            correct = clean_pred == y
            for store, (attack, budget) in zip(stores, jobs, strict=True):
                bar.update(task, description=f"{attack.name} eps={budget:g}")
                adv_pred = clean_pred.clone()
                if correct.any():
                    result = attack(robust_model, x[correct], y[correct], eps=budget)
                    adv_pred[correct] = result.adv_pred
                    if offset == 0 and examples_per_attack > 0:
                        examples.append(
                            _pick_examples(
                                robust_model,
                                attack.name,
                                budget,
                                correct.nonzero().squeeze(1),
                                x[correct],
                                y[correct],
                                result,
                                examples_per_attack,
                            )
                        )
                _append_rows(
                    store,
                    model=robust_model.name,
                    attack=attack,
                    eps=budget,
                    first_sample=offset,
                    labels=y,
                    clean_pred=clean_pred,
                    adv_pred=adv_pred,
                )
                bar.advance(task)
            offset += len(y)

    config = {
        "model": robust_model.name,
        "model_info": describe_model(robust_model),
        "dataset": info.name,
        "classes": info.classes,
        "num_samples": offset,
        "attacks": [a.describe() for a in attack_list],
        "budgets": {norm: list(values) for norm, values in budgets.items()},
        "batch_size": batch_size,
        "seed": seed,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": str(robust_model.device),
        "versions": {
            "robustkit": robustkit.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }
    frame = pd.concat([pd.DataFrame(store) for store in stores], ignore_index=True)
    audit_result = AuditResult(frame=frame, config=config, examples=_stack_examples(examples))
    if noise_probes:
        audit_result.noise_grid = pure_noise_probe(
            robust_model, info.input_shape, class_names=info.classes or None
        )
        audit_result.noise_targets = pgd_from_noise(robust_model, info.input_shape, num_classes)
    config["wall_time_s"] = round(time.perf_counter() - started, 3)
    return audit_result


def describe_model(model: RobustModel) -> dict[str, Any]:
    """What a report header says about a model."""
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "input_shape": list(model.input_shape) if model.input_shape else None,
        "mean": None if model.mean is None else model.mean.flatten().tolist(),
        "std": None if model.std is None else model.std.flatten().tolist(),
    }


def _pick_examples(
    model: nn.Module,
    attack: str,
    eps: float,
    samples: Tensor,
    x: Tensor,
    y: Tensor,
    result: AttackResult,
    limit: int,
) -> tuple[Tensor, Tensor, dict[str, list[Any]]]:
    """The first ``limit`` successful adversarials of one attack, with confidences."""
    chosen = result.success.nonzero().squeeze(1)[:limit]
    clean, adversarial = x[chosen], result.x_adv[chosen]
    with torch.no_grad():
        clean_conf = model(clean).softmax(dim=1).amax(dim=1)
        adv_conf = model(adversarial).softmax(dim=1).amax(dim=1)
    n = len(chosen)
    meta = {
        "attack": [attack] * n,
        "eps": [eps] * n,
        "sample": samples[chosen].tolist(),
        "label": y[chosen].tolist(),
        "clean_pred": y[chosen].tolist(),
        "adv_pred": result.adv_pred[chosen].tolist(),
        "clean_confidence": clean_conf.tolist(),
        "adv_confidence": adv_conf.tolist(),
    }
    return clean.cpu(), adversarial.cpu(), meta


def _stack_examples(picked: list[tuple[Tensor, Tensor, dict[str, list[Any]]]]) -> Examples | None:
    if not picked or not any(len(clean) for clean, _, _ in picked):
        return None
    frame = pd.concat([pd.DataFrame(meta) for _, _, meta in picked], ignore_index=True)
    return Examples(
        clean=torch.cat([clean for clean, _, _ in picked]),
        adversarial=torch.cat([adv for _, adv, _ in picked]),
        frame=frame[EXAMPLE_COLUMNS],
    )


def _append_rows(
    columns: dict[str, list[Any]],
    *,
    model: str,
    attack: Attack,
    eps: float,
    first_sample: int,
    labels: Tensor,
    clean_pred: Tensor,
    adv_pred: Tensor,
) -> None:
    n = len(labels)
    labels_l = labels.tolist()
    clean_l = clean_pred.tolist()
    adv_l = adv_pred.tolist()
    columns["model"] += [model] * n
    columns["attack"] += [attack.name] * n
    columns["norm"] += [attack.norm] * n
    columns["eps"] += [eps] * n
    columns["sample"] += range(first_sample, first_sample + n)
    columns["label"] += labels_l
    columns["clean_pred"] += clean_l
    columns["adv_pred"] += adv_l
    columns["clean_correct"] += [c == t for c, t in zip(clean_l, labels_l, strict=True)]
    columns["robust_correct"] += [a == t for a, t in zip(adv_l, labels_l, strict=True)]


def progress_bar(enabled: bool) -> Progress:
    """A Rich progress bar on stderr, shown only when asked and stderr is a terminal."""
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=True,
    )
