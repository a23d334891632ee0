"""load_model: turn a spec string (zoo/timm/torchvision/factory) into a RobustModel."""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import pickle
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from robustkit.errors import RobustkitError
from robustkit.models.classes import ModelClasses, timm_classes, torchvision_classes
from robustkit.models.execution import Execution
from robustkit.models.outputs import OutputSelector
from robustkit.models.wrapper import RobustModel

SPEC_FORMS = (
    "zoo:NAME (see list_zoo_models()), timm:NAME, torchvision:NAME, robustbench:NAME, "
    "path/to/file.py:FACTORY or package.module:FACTORY"
)
SAVE_FIX = "save it with torch.save(model.state_dict(), path)"
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
ROBUSTBENCH = "robustbench:"
_PREFIXES = ("module.", "_orig_mod.")
_SHOW_KEYS = 5


@dataclass
class _Built:
    """A bare module plus what its library knows about its inputs."""

    module: nn.Module
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    input_shape: tuple[int, int, int] | None = None
    num_classes: int | None = None
    classes: ModelClasses | None = None
    outputs: OutputSelector | None = None
    name: str | None = None  # the model's canonical spec, where the library gives one


def load_model(
    spec: str = "zoo:mnist-cnn",
    *,
    checkpoint: str | Path | None = None,
    pretrained: bool = False,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    device: str | torch.device | None = None,
    num_classes: int | None = None,
    execution: Execution | None = None,
    output_index: int | None = None,
    output_key: str | None = None,
    dataset: str | None = None,
    threat: str | None = None,
    model_dir: str | Path | None = None,
) -> RobustModel:
    """Build the model named by ``spec``, optionally load ``checkpoint``, and wrap it.

    Explicit ``mean``/``std`` override the normalisation the model's library recommends; the
    model's class names come from its library where it has them (timm, torchvision);
    ``execution`` sets precision, channels_last and torch.compile; ``output_index`` /
    ``output_key`` say where the logits are in a tuple, dict or object the model returns
    (default: what a factory's RobustModel says, else the first element or ``logits``).
    ``dataset``, ``threat`` and ``model_dir`` pick a ``robustbench:NAME`` entry and the folder of
    its checkpoints (see :mod:`robustkit.models.robustbench`); such a model is named
    ``robustbench:DATASET/THREAT/NAME``.
    """
    outputs = OutputSelector(output_index, output_key)  # both given: refused before building
    spec = spec.strip()
    if spec.startswith(ROBUSTBENCH):
        built = _from_robustbench_spec(
            spec, checkpoint, pretrained, num_classes, dataset, threat, model_dir
        )
    else:
        built = _build(
            spec, pretrained=pretrained, num_classes=num_classes, picks=(threat, model_dir)
        )
    spec = built.name or spec
    if output_index is None and output_key is None and built.outputs is not None:
        outputs = built.outputs
    if checkpoint is not None:
        apply_checkpoint(built.module, checkpoint)
    mean = built.mean if mean is None else mean
    std = built.std if std is None else std
    _check_norm(mean, std, built.input_shape)
    return RobustModel(
        built.module,
        mean=mean,
        std=std,
        input_shape=built.input_shape,
        num_classes=num_classes if num_classes is not None else built.num_classes,
        name=spec,
        device=device,
        classes=built.classes,
        execution=execution,
        output_index=outputs.index,
        output_key=outputs.key,
    )


def _from_robustbench_spec(
    spec: str,
    checkpoint: str | Path | None,
    pretrained: bool,
    num_classes: int | None,
    dataset: str | None,
    threat: str | None,
    model_dir: str | Path | None,
) -> _Built:
    """A ``robustbench:`` spec: the zoo's architecture and its checkpoint from ``model_dir``."""
    if checkpoint is not None or pretrained:
        raise RobustkitError(
            "robustbench: models read robustbench's checkpoint from --model-dir "
            "(DIR/DATASET/THREAT/NAME.pt): drop --checkpoint and --pretrained"
        )
    built = _from_robustbench(spec[len(ROBUSTBENCH) :], dataset, threat, model_dir)
    if num_classes not in (None, built.num_classes):
        raise RobustkitError(
            f"{built.name or spec} has {built.num_classes} classes, not {num_classes}: "
            "drop --num-classes"
        )
    return built


def _build(
    spec: str, *, pretrained: bool, num_classes: int | None, picks: tuple[object, ...] = ()
) -> _Built:
    """Any spec but ``robustbench:``; ``picks`` (--threat, --model-dir) must then be unset."""
    if any(pick is not None for pick in picks):
        raise RobustkitError(
            "--threat and --model-dir pick robustbench models: use --model robustbench:NAME "
            "or drop them"
        )
    prefix, sep, rest = spec.partition(":")
    if sep and rest:
        if prefix == "zoo":
            return _from_zoo(rest, num_classes)
        if prefix == "timm":
            return _from_timm(rest, pretrained, num_classes)
        if prefix in ("torchvision", "tv"):
            return _from_torchvision(rest, pretrained, num_classes)
    target, sep, factory = spec.rpartition(":")
    if sep and factory.isidentifier():
        if target.endswith(".py"):
            return _from_factory(_import_file(Path(target)), factory, target, num_classes)
        if target and all(part.isidentifier() for part in target.split(".")):
            return _from_factory(_import_module(target), factory, target, num_classes)
    raise RobustkitError(f"unrecognised model spec {spec!r}: use one of {SPEC_FORMS}")


def _from_robustbench(
    name: str, dataset: str | None, threat: str | None, model_dir: str | Path | None
) -> _Built:
    from robustkit.models.robustbench import load_zoo_entry  # lazy: robustbench is an extra

    zoo = load_zoo_entry(name, dataset=dataset, threat=threat, model_dir=model_dir)
    return _Built(
        zoo.module,
        input_shape=zoo.input_shape,
        num_classes=zoo.num_classes,
        classes=zoo.classes,
        name=zoo.entry.spec,
    )


def _from_zoo(name: str, num_classes: int | None) -> _Built:
    from robustkit.models.zoo import load_zoo_model  # lazy: the zoo is optional at import

    wrapped = load_zoo_model(name, device="cpu")
    if num_classes is not None and wrapped.num_classes not in (None, num_classes):
        raise RobustkitError(
            f"zoo model {name!r} has {wrapped.num_classes} classes, not {num_classes}: "
            "drop --num-classes or pick another model"
        )
    return _Built(
        wrapped.model,
        mean=_as_list(wrapped.mean),
        std=_as_list(wrapped.std),
        input_shape=wrapped.input_shape,
        num_classes=wrapped.num_classes,
    )


def _from_timm(name: str, pretrained: bool, num_classes: int | None) -> _Built:
    import timm

    if not name.startswith(("hf-hub:", "hf_hub:")) and not timm.is_model(name):
        raise RobustkitError(
            f"unknown timm model {name!r}{_suggest(name, timm.list_models())}"
            " (see timm.list_models())"
        )
    kwargs: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}
    try:
        module = timm.create_model(name, pretrained=pretrained, **kwargs)
    except Exception as exc:
        if not pretrained:
            raise
        raise _download_error(f"timm:{name}", exc) from exc
    cfg = dict(getattr(module, "pretrained_cfg", None) or {})
    size = cfg.get("input_size")
    return _Built(
        module,
        mean=cfg.get("mean"),
        std=cfg.get("std"),
        input_shape=tuple(size) if size and len(size) == 3 else None,
        num_classes=getattr(module, "num_classes", None) or cfg.get("num_classes"),
        classes=timm_classes(module),
    )


def _from_torchvision(name: str, pretrained: bool, num_classes: int | None) -> _Built:
    import torchvision

    names = torchvision.models.list_models()
    if name not in names:
        raise RobustkitError(
            f"unknown torchvision model {name!r}{_suggest(name, names)}"
            " (see torchvision.models.list_models())"
        )
    kwargs: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}
    try:
        module = torchvision.models.get_model(
            name, weights="DEFAULT" if pretrained else None, **kwargs
        )
    except ValueError as exc:
        if not pretrained or num_classes is None:
            raise
        raise RobustkitError(
            f"pretrained torchvision:{name} weights have a fixed number of classes ({exc}): "
            "drop --num-classes, or use pretrained=False and load a --checkpoint"
        ) from exc
    except Exception as exc:
        if not pretrained:
            raise
        raise _download_error(f"torchvision:{name}", exc) from exc
    built = _Built(module, num_classes=num_classes)
    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        transform = weights.transforms()
    except Exception:  # models without weights or transforms: no library normalisation
        return built
    built.mean = getattr(transform, "mean", None)
    built.std = getattr(transform, "std", None)
    crop = getattr(transform, "crop_size", None)
    if isinstance(crop, Sequence) and crop:
        crop = (crop[0], crop[-1])
    elif isinstance(crop, int):
        crop = (crop, crop)
    if crop:
        built.input_shape = (3, int(crop[0]), int(crop[1]))
    built.classes = torchvision_classes(weights.meta, num_classes)
    if built.num_classes is None and built.classes is not None:
        built.num_classes = len(built.classes)
    return built


def _from_factory(module: Any, factory: str, where: str, num_classes: int | None) -> _Built:
    func = getattr(module, factory, None)
    if func is None:
        raise RobustkitError(
            f"{where} has no {factory!r}: define `def {factory}() -> nn.Module` there "
            "or fix the name after ':'"
        )
    if not callable(func):
        raise RobustkitError(f"{where}:{factory} is not callable: make it a function or class")
    result = func(**_factory_kwargs(func, num_classes))
    if isinstance(result, RobustModel):
        return _Built(
            result.model,
            mean=_as_list(result.mean),
            std=_as_list(result.std),
            input_shape=result.input_shape,
            num_classes=result.num_classes,
            classes=result.classes,
            outputs=result.outputs,
        )
    if not isinstance(result, nn.Module):
        raise RobustkitError(
            f"{where}:{factory} returned {type(result).__name__}, not an nn.Module: "
            "make the factory return the model"
        )
    return _Built(result, num_classes=num_classes)


def _factory_kwargs(func: Callable[..., Any], num_classes: int | None) -> dict[str, Any]:
    """Pass ``num_classes`` only to factories that accept it."""
    if num_classes is None:
        return {}
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return {}
    if "num_classes" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return {"num_classes": num_classes}
    return {}


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise RobustkitError(f"model file {path} not found: check the path before ':'")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    mod_name = f"robustkit_user_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, resolved)
    if spec is None or spec.loader is None:
        raise RobustkitError(f"cannot import {path}: give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    return module


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise RobustkitError(
            f"cannot import module {name!r} ({exc}): install it or add its folder to PYTHONPATH"
        ) from exc


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict safely (weights_only), unwrapping common containers and prefixes."""
    path = Path(path)
    if not path.is_file():
        raise RobustkitError(f"checkpoint {path} not found: check the path")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(path), device="cpu")
        except Exception as exc:
            raise RobustkitError(
                f"checkpoint {path} is not a valid safetensors file: {exc}"
            ) from exc
    else:
        obj = _torch_load(path)
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise RobustkitError(
            f"checkpoint {path} holds {type(obj).__name__}, not a state dict: {SAVE_FIX}"
        )
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise RobustkitError(
            f"checkpoint {path} is not a plain state dict (non-tensor entries: "
            f"{_first(bad)}): {SAVE_FIX}"
        )
    state = dict(obj)
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):
            raise RobustkitError(
                f"checkpoint {path} stores pickled Python objects (e.g. a whole model), which "
                f"robustkit will not unpickle: {SAVE_FIX} (if you trust the file, re-save it via "
                "torch.load(path, weights_only=False).state_dict())"
            ) from exc
        raise _corrupt(path, exc) from exc
    except Exception as exc:  # random bytes fail in many ways inside the unpickler
        raise _corrupt(path, exc) from exc


def apply_checkpoint(module: nn.Module, path: str | Path) -> None:
    """Load the checkpoint at ``path`` into ``module`` strictly, explaining any mismatch."""
    state = load_state_dict_file(path)
    expected = module.state_dict().keys()
    missing = [k for k in expected if k not in state]
    if missing and all(f"model.{k}" in state for k in expected):  # a saved RobustModel
        state = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
        missing = []
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_first(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_first(unexpected)}")
        raise RobustkitError(
            f"checkpoint {path} does not match the model ({'; '.join(parts)}): load it into "
            "the architecture it was saved from"
        )
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = "; ".join(
            line.strip() for line in str(exc).splitlines()[1 : 1 + _SHOW_KEYS] if line.strip()
        )
        raise RobustkitError(
            f"checkpoint {path} has tensors of the wrong shape ({detail or exc}): check "
            "--num-classes and that the architecture matches the checkpoint"
        ) from exc


def _check_norm(
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    input_shape: tuple[int, int, int] | None,
) -> None:
    for label, values in (("mean", mean), ("std", std)):
        if values is None:
            continue
        if len(values) == 0:
            raise RobustkitError(f"--{label} is empty: give one value per channel")
        if input_shape is not None and len(values) not in (1, input_shape[0]):
            raise RobustkitError(
                f"--{label} has {len(values)} values but the model takes {input_shape[0]} "
                "channels: give one value per channel"
            )
    if std is not None and any(float(s) <= 0 for s in std):
        raise RobustkitError("--std values must be positive")


def _download_error(spec: str, exc: BaseException) -> RobustkitError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return RobustkitError(
        f"could not get pretrained weights for {spec} ({first}): check the network connection, "
        "or load the weights with pretrained=False and --checkpoint"
    )


def _corrupt(path: Path, exc: BaseException) -> RobustkitError:
    text = str(exc).split("WeightsUnpickler error:")[-1]  # skip torch's weights_only preamble
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[0][:200] if lines else type(exc).__name__
    return RobustkitError(
        f"checkpoint {path} is corrupt or not a PyTorch file ({reason}): {SAVE_FIX}"
    )


def _suggest(name: str, names: Sequence[str]) -> str:
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=5, cutoff=0.6)
    return f": did you mean {', '.join(lowered[c] for c in close)}?" if close else ""


def _first(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:_SHOW_KEYS])
    return shown + (f" (+{len(keys) - _SHOW_KEYS} more)" if len(keys) > _SHOW_KEYS else "")


def _as_list(values: Tensor | None) -> list[float] | None:
    return None if values is None else values.flatten().tolist()
