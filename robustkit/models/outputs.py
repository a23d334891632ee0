"""Logits from whatever a wrapped model's forward returns.

A tensor passes as is; a tuple or list gives an element, a dict (Hugging Face's ``ModelOutput``
is one) a value, any other object an attribute; one logit per sample (a binary classifier's
sigmoid logit) becomes two. The selection is indexing and padding: differentiable, on any device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor
from torch.nn import functional as F

from robustkit.errors import RobustkitError

LOGITS = "logits"  # the key or attribute found without --output-key
_SHOW = 8  # keys or attributes listed in an error
_FIX = "pick the logits with --output-index K (tuple, list) or --output-key NAME (dict, attribute)"


@dataclass(frozen=True)
class OutputSelector:
    """Where a model's logits sit in its output.

    ``index``: the element of a tuple or list (default 0), or the value of a dict in its order;
    ``key``: the dict key or attribute (default ``logits``). Give one of them at most; a model
    that returns a tensor is unaffected by either.
    """

    index: int | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if self.index is not None and self.key is not None:
            raise RobustkitError("give --output-index or --output-key, not both")
        if self.key is not None and not self.key.strip():
            raise RobustkitError("--output-key is empty: give the name of the logits' key")

    def __call__(self, output: object, batch: int) -> Tensor:
        """The (batch, classes) logits in ``output``; one logit z per sample becomes [0, z], so
        that their softmax is [1 - sigmoid(z), sigmoid(z)] (class 1 the positive one)."""
        if isinstance(output, Tensor):
            return _as_logits(
                output, "the model's output", batch, "make it return (batch, classes)"
            )
        chosen, where = self._pick(output)
        return _as_logits(chosen, where, batch, _FIX)

    def _pick(self, output: object) -> tuple[object, str]:
        kind = type(output).__name__
        if isinstance(output, Mapping):
            return self._from_mapping(output, kind)
        name = self.key or LOGITS
        if self.index is None and not isinstance(output, str) and hasattr(output, name):
            return getattr(output, name), f"the model's output.{name}"
        if isinstance(output, tuple | list):
            if self.key is not None:
                raise RobustkitError(
                    f"the model returns a {kind} of {len(output)} without attribute "
                    f"{self.key!r}: pick an element with --output-index K"
                )
            index = self.index or 0
            return _element(list(output), index, kind), f"the model's {kind}[{index}]"
        if self.key is not None:
            raise RobustkitError(
                f"the model's output ({kind}) has no attribute {self.key!r}"
                f"{_listed('attributes', _attributes(output))}: name one with --output-key NAME"
            )
        if self.index is not None:
            raise RobustkitError(
                f"--output-index picks from a tuple, list or dict, but the model returns {kind}: "
                "name the logits' attribute with --output-key NAME"
            )
        raise RobustkitError(
            f"the model returns {kind}, not logits: make it return a tensor (batch, classes), "
            "or a tuple, dict or object holding one"
        )

    def _from_mapping(self, output: Mapping, kind: str) -> tuple[object, str]:
        keys = list(output.keys())
        if self.index is not None:
            value = _element([output[k] for k in keys], self.index, kind)
            return value, f"the model's {kind} value {self.index} ({keys[self.index]!r})"
        key = self.key or LOGITS
        if key not in output:
            how = "pick another" if self.key is not None else "pick one"
            raise RobustkitError(
                f"the model returns a {kind} without key {key!r}{_listed('keys', keys)}: "
                f"{how} with --output-key NAME"
            )
        return output[key], f"the model's {kind}[{key!r}]"


def _element(values: list[object], index: int, kind: str) -> object:
    if not values:
        raise RobustkitError(f"the model returns an empty {kind}: make it return its logits")
    if not -len(values) <= index < len(values):
        raise RobustkitError(
            f"--output-index {index} is out of range: the model returns a {kind} of "
            f"{len(values)}, so give {'0' if len(values) == 1 else f'0 to {len(values) - 1}'}"
        )
    return values[index]


def _as_logits(value: object, where: str, batch: int, fix: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise RobustkitError(f"{where} is a {type(value).__name__}, not a tensor of logits: {fix}")
    shape = tuple(value.shape)
    if value.dim() == 2 and shape[0] == batch and shape[1] >= 2:
        return value
    if shape in ((batch,), (batch, 1)):  # one sigmoid logit z per sample: logits [0, z]
        return F.pad(value.reshape(batch, 1), (1, 0))
    raise RobustkitError(
        f"{where} has shape {shape} for a batch of {batch}, not logits (batch, classes) or one "
        f"logit per sample: {fix}"
    )


def _attributes(output: object) -> list[str]:
    return [name for name in getattr(output, "__dict__", {}) if not name.startswith("_")]


def _listed(label: str, names: Sequence[object]) -> str:
    if not names:
        return ""
    shown = ", ".join(str(n) for n in names[:_SHOW])
    more = f" (+{len(names) - _SHOW} more)" if len(names) > _SHOW else ""
    return f" ({label}: {shown}{more})"
