"""robustbench:NAME: a RobustBench model-zoo entry, built from robustbench's own architecture
definitions, its checkpoint read here from robustbench's layout
(``{model_dir}/{dataset}/{threat}/{NAME}.pt``), safely (``weights_only``) and never downloaded.

robustbench is imported only when such a spec is loaded (the ``robustbench`` extra). Its 1.1.1
wheel imports ``autoattack`` but depends on ``pyautoattack``, fra31's AutoAttack packaged under
that name: when only the latter is installed, the import maps the one name to the other.

What robustbench's ``load_model`` does to a checkpoint, done here as well: a ``'last'`` entry
(Kireev2021Effectiveness*, Andriushchenko2020Understanding), a ``state_dict`` or
``model_state_dict`` wrapper, ``module.`` and ``model.`` prefixes, ``model.`` added back where the
architecture wraps its network in ``normalize_model``, timm's Swin conversion, and its tolerance
of checkpoints without the normalisation buffers (its ``_safe_load_state_dict``). Ensembles read
one file per member, ``{NAME}.pt_m{i}.pt``. Entries robustbench builds through timm with
pretrained weights (XCiT, DeiT, AlexNet) load a local state dict saved at the same path; the
ImageNet ``Standard_R50`` (torchvision's download) and the composite Bai2023Improving* and
Bai2024MixedNUTS models are refused with one line saying how to audit them instead.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from robustkit.data.classes import ModelClasses
from robustkit.data.corrupted import CIFAR10_CLASSES
from robustkit.data.corrupted import PREFIX as CORRUPTED_PREFIX
from robustkit.errors import RobustkitError

PREFIX = "robustbench:"
DATASETS = ("cifar10", "cifar100", "imagenet")
THREATS = ("Linf", "L2", "corruptions")
DEFAULT_THREAT = "Linf"
DEFAULT_MODEL_DIR = Path("models")  # robustbench's own default, ./models
INSTALL_FIX = "pip install -e '.[robustbench]'"
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}
CIFAR_SHAPE = (3, 32, 32)
IMAGENET_SIZE = 224  # robustbench's ImageNet preprocessing crops to 224 (one entry: 288)
COMPOSITE = ("Bai2023Improving", "Bai2024MixedNUTS")  # members robustbench loads by its own rules
_LAST_CHECKPOINT = ("Kireev2021Effectiveness", "Andriushchenko2020Understanding")
_WRAPPERS = ("state_dict", "model_state_dict")
_SHOWN = 200  # characters of a load error's detail kept on the one line


@dataclass(frozen=True)
class ZooEntry:
    """One entry of robustbench's zoo: dataset, threat model and name."""

    dataset: str
    threat: str
    name: str

    @property
    def spec(self) -> str:
        """The fully qualified spec, ``robustbench:DATASET/THREAT/NAME``."""
        return f"{PREFIX}{self.dataset}/{self.threat}/{self.name}"

    def checkpoint(self, model_dir: str | Path) -> Path:
        """Where robustbench keeps this entry's checkpoint under ``model_dir``."""
        return Path(model_dir) / self.dataset / self.threat / f"{self.name}.pt"

    @classmethod
    def parse(cls, spec: str) -> ZooEntry | None:
        """The entry a fully qualified spec names; None for any other spec."""
        parts = spec.removeprefix(PREFIX).split("/") if spec.startswith(PREFIX) else []
        if len(parts) != 3 or parts[0] not in DATASETS or parts[1] not in THREATS:
            return None
        return cls(*parts)


@dataclass
class ZooModel:
    """A zoo entry built and loaded: the module takes [0, 1] pixels and normalises inside."""

    entry: ZooEntry
    module: nn.Module
    input_shape: tuple[int, int, int]
    num_classes: int
    classes: ModelClasses | None


def dataset_of(data: str) -> str | None:
    """The zoo dataset an audit's ``--dataset`` names (cifar10 and CIFAR-10-C folders), else
    None: the spec or the zoo then decides."""
    if data == "cifar10" or data.startswith(CORRUPTED_PREFIX):
        return "cifar10"
    return None


def load_zoo_entry(
    name: str,
    *,
    dataset: str | None = None,
    threat: str | None = None,
    model_dir: str | Path | None = None,
) -> ZooModel:
    """Build robustbench's ``name`` (``NAME`` or ``DATASET/THREAT/NAME``) and load its checkpoint
    from ``model_dir`` (default ./models); the dataset, when neither given nor in the name, is the
    one zoo that holds ``name`` for the threat model (default Linf)."""
    zoo = _Zoo.load()
    entry = zoo.resolve(name, dataset=dataset, threat=threat)
    record = zoo.record(entry)
    path = entry.checkpoint(DEFAULT_MODEL_DIR if model_dir is None else model_dir)
    if zoo.timm_name(entry) is not None:
        module = zoo.from_timm(entry, path)
    elif entry.dataset == "imagenet" and "Standard" in entry.name:
        raise RobustkitError(
            f"robustbench builds {entry.spec} from torchvision's pretrained download, which "
            "robustkit does not do: audit it as --model torchvision:resnet50 --pretrained"
        )
    elif isinstance(record["gdrive_id"], list):
        module = zoo.ensemble(entry, record, path)
    else:
        state = zoo.state_dict(entry, path, strip=("module.", "model."))
        module = record["model"]()
        zoo.load_into(module, state, entry, path)
    size = _image_size(record.get("preprocessing")) if entry.dataset == "imagenet" else None
    return ZooModel(
        entry,
        module.eval(),
        input_shape=(3, size, size) if size else CIFAR_SHAPE,
        num_classes=NUM_CLASSES[entry.dataset],
        classes=_classes(entry.dataset),
    )


def untrained(
    name: str, *, dataset: str | None = None, threat: str | None = None
) -> tuple[ZooEntry, nn.Module]:
    """robustbench's architecture for a zoo entry, with fresh weights: what tests and benchmarks
    save in its checkpoint layout."""
    zoo = _Zoo.load()
    entry = zoo.resolve(name, dataset=dataset, threat=threat)
    return entry, zoo.record(entry)["model"]()


class _Zoo:
    """robustbench's model dictionaries and loading helpers, imported once on first use."""

    def __init__(self, models: Any, datasets: Any, threats: Any, utils: Any) -> None:
        self.models, self.datasets, self.threats, self.utils = models, datasets, threats, utils

    @classmethod
    def load(cls) -> _Zoo:
        _alias_autoattack()
        try:
            with warnings.catch_warnings():  # its imports warn about pkg_resources and timm
                warnings.simplefilter("ignore")
                from robustbench import utils
                from robustbench.model_zoo import model_dicts
                from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel
        except ImportError as exc:
            raise RobustkitError(
                f"robustbench: models need the robustbench package, which could not be imported "
                f"({exc}): {INSTALL_FIX}"
            ) from exc
        return cls(model_dicts, BenchmarkDataset, ThreatModel, utils)

    def names(self, dataset: str, threat: str) -> Mapping[str, Any]:
        threats = self.models[self.datasets(dataset)]
        key = self.threats(threat)
        return threats.get(key, {})

    def record(self, entry: ZooEntry) -> Mapping[str, Any]:
        return self.names(entry.dataset, entry.threat)[entry.name]

    def resolve(self, name: str, *, dataset: str | None, threat: str | None) -> ZooEntry:
        """The entry ``name`` means, every part checked against the zoo."""
        parts = name.split("/")
        if len(parts) == 3:
            for option, given, part, choices in (
                ("dataset", dataset, parts[0], DATASETS),
                ("threat", threat, parts[1], THREATS),
            ):
                if given is not None and _canonical(given, choices) != _canonical(part, choices):
                    raise RobustkitError(
                        f"{PREFIX}{name} names {option} {part!r}, but {given!r} was given: "
                        "drop one of them"
                    )
            dataset, threat, name = parts
        elif len(parts) != 1 or not name:
            raise RobustkitError(
                f"unrecognised robustbench spec {PREFIX + name!r}: use {PREFIX}NAME or "
                f"{PREFIX}DATASET/THREAT/NAME (e.g. {PREFIX}cifar10/Linf/Carmon2019Unlabeled)"
            )
        threat = _choose(threat or DEFAULT_THREAT, THREATS, "threat model (--threat)")
        if dataset is None:
            dataset = self._dataset_holding(name, threat)
        dataset = _choose(dataset, DATASETS, "robustbench dataset")
        names = self.names(dataset, threat)
        if not names:
            offered = [t for t in THREATS if self.names(dataset, t)]
            raise RobustkitError(
                f"robustbench has no {dataset} {threat} models: use --threat {' or '.join(offered)}"
            )
        if name not in names:
            raise self._unknown(name, dataset, threat)
        return ZooEntry(dataset, threat, name)

    def _dataset_holding(self, name: str, threat: str) -> str:
        holding = [d for d in DATASETS if name in self.names(d, threat)]
        if len(holding) == 1:
            return holding[0]
        if not holding:
            raise self._unknown(name, None, threat)
        raise RobustkitError(
            f"robustbench has {name} for {threat} on {', '.join(holding)}: say which, as "
            f"--model {PREFIX}{holding[0]}/{threat}/{name} (or load_model(..., dataset=...))"
        )

    def _unknown(self, name: str, dataset: str | None, threat: str) -> RobustkitError:
        datasets = DATASETS if dataset is None else (dataset,)
        names = [n for d in datasets for n in self.names(d, threat)]
        close = difflib.get_close_matches(name, sorted(set(names)), n=3, cutoff=0.6)
        hint = f": did you mean {', '.join(close)}?" if close else ""
        elsewhere = [
            f"{d}/{t}"
            for d in DATASETS
            for t in THREATS
            if (d, t) not in {(x, threat) for x in datasets} and name in self.names(d, t)
        ]
        also = f" (robustbench has it under {', '.join(elsewhere)}: set --dataset/--threat)"
        also = also if elsewhere else ""
        where = f"{dataset} {threat}" if dataset else threat
        return RobustkitError(f"unknown robustbench {where} model {name!r}{hint}{also}")

    def timm_name(self, entry: ZooEntry) -> str | None:
        """The timm name robustbench's load_model builds this entry under, if it does."""
        import timm

        name = entry.name.lower().replace("-", "_")
        candidate = f"{name}_{entry.dataset}_{entry.threat.lower()}"
        return candidate if timm.is_model(candidate) else None

    def from_timm(self, entry: ZooEntry, path: Path) -> nn.Module:
        """A timm-registered entry, its pretrained download replaced by a local state dict."""
        import timm

        if not path.is_file():
            raise RobustkitError(
                f"robustbench gets {entry.spec} through timm's pretrained download, which "
                f"robustkit does not do: save its weights at {path} once, with python -c "
                f'"import torch; from robustbench.utils import load_model; torch.save('
                f"load_model('{entry.name}', dataset='{entry.dataset}', "
                f"threat_model='{entry.threat}').state_dict(), '{path}')\""
            )
        module = timm.create_model(
            self.timm_name(entry), pretrained=False, num_classes=NUM_CLASSES[entry.dataset]
        )
        self.load_into(module, self.state_dict(entry, path, strip=("module.",)), entry, path)
        return module

    def ensemble(self, entry: ZooEntry, record: Mapping[str, Any], path: Path) -> nn.Module:
        """An ensemble: member i from ``{NAME}.pt_m{i}.pt`` into ``module.models[i]``."""
        if entry.name.startswith(COMPOSITE):
            raise RobustkitError(
                f"{entry.spec} is a composite model whose parts robustbench loads by rules of "
                "its own: audit it through a factory file, def model(): return robustbench."
                f"utils.load_model('{entry.name}', dataset='{entry.dataset}', threat_model="
                f"'{entry.threat}'), as --model file.py:model"
            )
        files = [Path(f"{path}_m{i}.pt") for i in range(len(record["gdrive_id"]))]
        states = [self.state_dict(entry, file, strip=("module.",)) for file in files]
        module = record["model"]()
        for member, state, file in zip(module.models, states, files, strict=True):
            self.load_into(member, state, entry, file)
        return module

    def state_dict(
        self, entry: ZooEntry, path: Path, *, strip: tuple[str, ...]
    ) -> dict[str, Tensor]:
        """The checkpoint at ``path`` as robustbench reads it: unwrapped, prefixes stripped."""
        from robustkit.models.loader import SAVE_FIX, _torch_load

        if not path.is_file():
            raise RobustkitError(
                f"no checkpoint for {entry.spec} at {path}: robustkit never downloads; get it "
                f'once with python -c "from robustbench.utils import load_model; load_model('
                f"'{entry.name}', model_dir='{path.parents[2]}', dataset="
                f"'{entry.dataset}', threat_model='{entry.threat}')\" or point --model-dir at "
                "the folder that holds it"
            )
        obj: Any = _torch_load(path)
        if entry.name.startswith(_LAST_CHECKPOINT) and isinstance(obj, Mapping) and "last" in obj:
            obj = obj["last"]  # robustbench keeps the last epoch of these ('last', 'best')
        inner = (obj.get(key) for key in _WRAPPERS) if isinstance(obj, Mapping) else iter(())
        obj = next((s for s in inner if isinstance(s, Mapping)), obj)
        if not isinstance(obj, Mapping) or not all(
            isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()
        ):
            raise RobustkitError(
                f"checkpoint {path} is not a state dict of tensors: {SAVE_FIX}, or get "
                "robustbench's own again"
            )
        return dict(_strip(obj, strip))

    def load_into(
        self, module: nn.Module, state: dict[str, Tensor], entry: ZooEntry, path: Path
    ) -> None:
        """Load ``state`` with robustbench's own tolerance, naming any mismatch on one line."""
        expected = module.state_dict().keys()
        state = {  # normalize_model's 'model.' wrapper, which its checkpoints do not carry
            k if k in expected or f"model.{k}" not in expected else f"model.{k}": v
            for k, v in state.items()
        }
        state = _swin_converted(module, state) if entry.dataset == "imagenet" else state
        try:  # robustbench: some known checkpoints lack normalisation buffers or carry extra keys
            self.utils._safe_load_state_dict(
                module, entry.name, state, self.datasets(entry.dataset)
            )
        except RuntimeError as exc:
            lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
            detail = "; ".join(lines)[:_SHOWN] or str(exc)[:_SHOWN]
            raise RobustkitError(
                f"checkpoint {path} does not fit robustbench's {entry.spec} ({detail}): get "
                "robustbench's own checkpoint for this name, dataset and threat model"
            ) from exc


def _alias_autoattack() -> None:
    """Let robustbench's ``import autoattack`` find pyautoattack, its declared dependency."""
    if "autoattack" in sys.modules or importlib.util.find_spec("autoattack") is not None:
        return
    if importlib.util.find_spec("pyautoattack") is None:
        return  # robustbench's import then fails, and the error names what is missing
    sys.modules["autoattack"] = importlib.import_module("pyautoattack")
    sys.modules["autoattack.state"] = importlib.import_module("pyautoattack.state")


def _strip(state: Mapping[str, Tensor], prefixes: tuple[str, ...]) -> Iterator[tuple[str, Tensor]]:
    for key, value in state.items():
        for prefix in prefixes:
            key = key.removeprefix(prefix)
        yield key, value


def _swin_converted(module: nn.Module, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """timm's conversion of older Swin checkpoints, as robustbench applies it to its Swins."""
    from timm.models.swin_transformer import SwinTransformer, checkpoint_filter_fn

    inner = getattr(module, "model", None)
    if not isinstance(inner, SwinTransformer):
        return state
    body = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    rest = {k: v for k, v in state.items() if not k.startswith("model.")}
    converted = checkpoint_filter_fn(body, inner)
    return rest | {f"model.{k}": v for k, v in converted.items()}


def _choose(value: str, choices: tuple[str, ...], what: str) -> str:
    chosen = _canonical(value, choices)
    if chosen is None:
        raise RobustkitError(f"unknown {what} {value!r}: use {', '.join(choices)}")
    return chosen


def _canonical(value: str, choices: tuple[str, ...]) -> str | None:
    """``value`` spelled as in ``choices`` (linf -> Linf), or None."""
    return next((c for c in choices if c.lower() == value.lower()), None)


def _image_size(preprocessing: str | None) -> int:
    """The crop robustbench's ImageNet preprocessing ends with ('Res256Crop224' -> 224)."""
    match = re.search(r"(\d+)$", preprocessing or "")
    return int(match.group(1)) if match else IMAGENET_SIZE


def _classes(dataset: str) -> ModelClasses | None:
    """Class names where they are known offline: CIFAR-10's, and ImageNet-1K's with wnids."""
    if dataset == "cifar10":
        return ModelClasses(synonyms=tuple((name,) for name in CIFAR10_CLASSES))
    if dataset == "imagenet":
        from timm.data import ImageNetInfo

        info = ImageNetInfo("imagenet-1k")
        wnids = info.label_names()
        return ModelClasses.from_descriptions(
            [info.label_name_to_description(w) for w in wnids], ids=wnids
        )
    return None
