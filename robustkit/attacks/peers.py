"""Peer attacks: any foolbox or ART evasion attack as a robustkit Attack.

``attack_class("foolbox:LinfPGD")`` builds (once) a frozen dataclass whose fields are the peer
constructor's keyword arguments, so ``create_attack("art:ProjectedGradientDescent", max_iter=20)``
type-checks its hyper-parameters like any registered attack. ``eps`` comes at call time; the
result is projected onto the eps-ball (L-inf, L2, L1; a peer's rounding may overshoot it) and
success is judged by robustkit's criterion on the returned images, so peers and built-ins are
scored the same way.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import inspect
import math
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from robustkit.attacks.base import Attack
from robustkit.attacks.geometry import GEOMETRIES
from robustkit.attacks.runs import Points, RunOutcome
from robustkit.errors import RobustkitError
from robustkit.models.wrapper import BOUNDS

_NORMS = {math.inf: "linf", 2.0: "l2", 1.0: "l1", 0.0: "l0"}
_NORM_NAMES = {"inf": "linf", "linf": "linf", "l2": "l2", "2": "l2", "l1": "l1", "1": "l1"}
_CLASSES: dict[str, type[Attack]] = {}


def canonical_norm(value: object) -> str | None:
    """'linf', 'l2', 'l1' or 'l0' for a norm given as a number or a name; None if unknown."""
    if isinstance(value, (int, float)):
        return _NORMS.get(float(value))
    if isinstance(value, str):
        return _NORM_NAMES.get(value.strip().lower().replace("-", ""))
    return None


@dataclass(frozen=True, kw_only=True)
class PeerAttack(Attack):
    """Base of the generated peer classes; subclasses say how to run their library.

    What the checks read is unknown for most peers: no declared loss, and counted among the
    gradient attacks unless the peer library says it needs no gradient (ART does). No radius is
    reported (the peer's result is projected onto the ball), so none is a minimum-norm attack."""

    peer: ClassVar[type]
    loss: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        norm = canonical_norm(getattr(self, "norm", None))
        if norm is None:
            raise RobustkitError(
                f"cannot tell which norm {self.name} measures eps in: pass norm='linf' or 'l2'"
            )
        object.__setattr__(self, "norm", norm)

    def peer_kwargs(self) -> dict[str, Any]:
        """The hyper-parameters to pass to the peer's constructor."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def _tries(self) -> int:
        return 1  # restarts, where a peer has them, are its own hyper-parameter

    def _single_run(
        self, model: nn.Module, points: Points, *, eps: float, restart: int, **settings: Any
    ) -> RunOutcome:
        """The peer's adversarials, projected onto the ball and box; the fresh scoring of the
        result judges them."""
        x0 = points.x0
        x_adv = self._perturb(model, x0, points.labels, eps, points.targets).to(x0)
        if self.norm in GEOMETRIES:
            x_adv = self.geometry.project(x_adv, x0, eps)
        judged_later = torch.zeros(len(x0), dtype=torch.bool, device=x0.device)
        return RunOutcome(x_adv=x_adv.clamp(*BOUNDS), success=judged_later)

    @abstractmethod
    def _perturb(
        self, model: nn.Module, inputs: Tensor, labels: Tensor, eps: float, targets: Tensor | None
    ) -> Tensor:
        """The peer's adversarials for ``inputs`` (any device; projected afterwards)."""


@dataclass(frozen=True, kw_only=True)
class FoolboxAttack(PeerAttack):
    """A foolbox 3 attack run on a ``fb.PyTorchModel`` view of the model."""

    def peer_kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in super().peer_kwargs().items() if k != "norm"}

    def _perturb(
        self, model: nn.Module, inputs: Tensor, labels: Tensor, eps: float, targets: Tensor | None
    ) -> Tensor:
        import foolbox as fb

        fmodel = fb.PyTorchModel(model, bounds=BOUNDS, device=inputs.device)
        criterion = (
            fb.criteria.Misclassification(labels)
            if targets is None
            else fb.criteria.TargetedMisclassification(targets)
        )
        _, clipped, _ = self.peer(**self.peer_kwargs())(fmodel, inputs, criterion, epsilons=eps)
        return clipped


@dataclass(frozen=True, kw_only=True)
class ArtAttack(PeerAttack):
    """An ART evasion attack run on a ``PyTorchClassifier`` view of the model (numpy in/out)."""

    def peer_kwargs(self) -> dict[str, Any]:
        kwargs = super().peer_kwargs()
        if "norm" in _parameters(self.peer):
            kwargs["norm"] = {"linf": np.inf, "l2": 2, "l1": 1}[self.norm]
        else:
            kwargs.pop("norm")
        return kwargs

    def _perturb(
        self, model: nn.Module, inputs: Tensor, labels: Tensor, eps: float, targets: Tensor | None
    ) -> Tensor:
        params = _parameters(self.peer)
        estimator = art_classifier(model, inputs)
        kwargs = self.peer_kwargs()
        if "eps" in params:
            kwargs["eps"] = eps
        if targets is not None:
            if "targeted" not in params:
                raise RobustkitError(f"{self.name} has no targeted mode: drop the targets")
            kwargs["targeted"] = True
        goal = labels if targets is None else targets
        attack = self.peer(estimator, **kwargs)
        x_adv = attack.generate(x=inputs.cpu().numpy(), y=goal.cpu().numpy())
        return torch.from_numpy(np.asarray(x_adv, dtype=np.float32))


def art_classifier(model: nn.Module, inputs: Tensor) -> Any:
    """ART's ``PyTorchClassifier`` view of ``model`` for inputs shaped like ``inputs`` (pixels in
    [0, 1], cross-entropy loss, on the inputs' device)."""
    from art.estimators.classification import PyTorchClassifier  # lazy: a heavy optional import

    with torch.no_grad():
        num_classes = model(inputs[:1]).shape[1]
    return PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(inputs.shape[1:]),
        nb_classes=num_classes,
        clip_values=BOUNDS,
        device_type="gpu" if inputs.is_cuda else "cpu",
    )


def peer_attack_class(name: str) -> type[Attack]:
    """The Attack class for ``foolbox:CLASS`` or ``art:CLASS``, built once per name."""
    if name not in _CLASSES:
        library, _, class_name = name.partition(":")
        peers = _foolbox_attacks() if library == "foolbox" else _art_attacks()
        if class_name not in peers:
            close = difflib.get_close_matches(class_name, peers, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(f'{library}:{c}' for c in close)}? " if close else ""
            raise RobustkitError(
                f"unknown {library} attack {class_name!r}: {hint}"
                f"see dir({'foolbox.attacks' if library == 'foolbox' else 'art.attacks.evasion'})"
            )
        _CLASSES[name] = _make_class(name, class_name, peers[class_name])
    return _CLASSES[name]


def _make_class(name: str, class_name: str, peer: type) -> type[Attack]:
    library = name.partition(":")[0]
    base: type[PeerAttack] = FoolboxAttack if library == "foolbox" else ArtAttack
    supplied = ("eps", "targeted") if library == "art" else ()  # robustkit passes these itself
    params = list(_parameters(peer).values())
    if library == "art":
        params = params[1:]  # the estimator
    fields: list[tuple[str, Any, Any]] = [
        ("norm", Any, dataclasses.field(default=_default_norm(library, peer)))
    ]
    for param in params:
        if param.name in (*supplied, "norm") or param.kind in (
            param.VAR_POSITIONAL,
            param.VAR_KEYWORD,
        ):
            continue
        default = _OVERRIDES.get(param.name, param.default)
        fields.append((param.name, Any, _field(default)))
    return dataclasses.make_dataclass(
        class_name,
        fields,
        bases=(base,),
        frozen=True,
        kw_only=True,
        namespace={
            "name": name,
            "peer": peer,
            "gradient_free": _needs_no_gradient(library, peer),
            "__doc__": f"{library}'s {peer.__name__}, run through robustkit's evaluator.",
        },
    )


# Defaults robustkit changes: no per-batch progress bars from inside the evaluator.
_OVERRIDES: dict[str, Any] = {"verbose": False}


def _field(default: Any) -> Any:
    if default is inspect.Parameter.empty:
        return dataclasses.field()
    if type(default).__hash__ is None:  # list, dict, array: a fresh copy per instance
        return dataclasses.field(default_factory=_copier(default))
    return dataclasses.field(default=default)


def _copier(value: Any) -> Callable[[], Any]:
    return lambda: copy.deepcopy(value)


def _default_norm(library: str, peer: type) -> str | None:
    if library == "foolbox":
        distance = peer.__dict__.get("distance") or getattr(peer, "distance", None)
        return canonical_norm(getattr(distance, "p", None))
    norm_param = _parameters(peer).get("norm")
    if norm_param is not None:
        return canonical_norm(norm_param.default)
    lowered = peer.__name__.lower()
    for marker, norm in (("linf", "linf"), ("l2", "l2"), ("l1", "l1")):
        if marker in lowered:
            return norm
    return None


def _needs_no_gradient(library: str, peer: type) -> bool:
    """ART declares what an attack needs of the model (``_estimator_requirements``): one that
    asks for no loss or class gradients is gradient-free. foolbox declares nothing of the kind."""
    if library != "art":
        return False
    needs = [getattr(r, "__name__", "") for r in getattr(peer, "_estimator_requirements", ())]
    return not any(name.endswith("GradientsMixin") for name in needs)


def _parameters(peer: type) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(peer).parameters)


def _foolbox_attacks() -> dict[str, type]:
    try:
        import foolbox as fb
    except ImportError:
        raise RobustkitError("foolbox: attacks need foolbox: pip install foolbox") from None
    return {
        name: cls
        for name, cls in vars(fb.attacks).items()
        if inspect.isclass(cls)
        and issubclass(cls, fb.attacks.base.Attack)
        and not inspect.isabstract(cls)
    }


def _art_attacks() -> dict[str, type]:
    try:
        from art.attacks import EvasionAttack, evasion
    except ImportError:
        raise RobustkitError(
            "art: attacks need the Adversarial Robustness Toolbox: "
            "pip install adversarial-robustness-toolbox"
        ) from None
    return {
        name: cls
        for name, cls in vars(evasion).items()
        if inspect.isclass(cls) and issubclass(cls, EvasionAttack) and not inspect.isabstract(cls)
    }
