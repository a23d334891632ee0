"""Labels for an image folder: each class folder's index among the model's outputs, found by the
model's class ids or names (ImageNet wnids such as n01440764, or 'goldfish'), by a CSV file of
folder,index lines, or, for a model whose classes have no names, by the folders' own order."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from robustkit.data.classes import ModelClasses
from robustkit.errors import RobustkitError

LABELS_FIX = "map each folder to a class index with --labels FILE.csv (lines folder,index)"
_SHOWN = 8


@dataclass(frozen=True)
class FolderLabels:
    """``indices[i]``: the model's class index for the i-th folder (sorted by name);
    ``names[j]``: what reports call class j."""

    indices: list[int]
    names: list[str]


def folder_labels(
    folders: Sequence[str],
    *,
    classes: ModelClasses | None = None,
    num_classes: int | None = None,
    labels_file: str | Path | None = None,
) -> FolderLabels:
    """The label of each folder: from ``labels_file`` when given, else by the model's class
    names when it has them, else the folder's position (at most ``num_classes`` folders)."""
    if labels_file is not None:
        indices = _from_file(folders, Path(labels_file), num_classes)
    elif classes is not None:
        indices = _by_name(folders, classes)
    elif num_classes is not None and len(folders) > num_classes:
        raise RobustkitError(
            f"the image folder has {len(folders)} class folders but the model only "
            f"{num_classes} outputs: remove folders, or {LABELS_FIX}"
        )
    else:
        indices = list(range(len(folders)))
    if classes is not None:
        return FolderLabels(indices, classes.names)
    names = [str(i) for i in range(max(indices, default=-1) + 1)]
    for folder, index in zip(folders, indices, strict=True):
        names[index] = folder
    return FolderLabels(indices, names)


def read_labels_file(path: Path) -> dict[str, int]:
    """``folder,index`` lines (an optional header line, blank lines skipped) as a dict."""
    if not path.is_file():
        raise RobustkitError(f"labels file {path} not found: give a CSV of folder,index lines")
    mapping: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        for row in reader:
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            where = f"{path} line {reader.line_num}"
            if len(cells) != 2 or not cells[0]:
                raise RobustkitError(f"{where} is {row!r}: write one folder,index pair a line")
            folder, index = cells
            if not index.isdigit():
                if reader.line_num == 1:  # a header such as folder,index
                    continue
                raise RobustkitError(f"{where}: class index {index!r} is not a whole number >= 0")
            if mapping.get(folder, int(index)) != int(index):
                raise RobustkitError(f"{where}: folder {folder!r} is mapped twice: keep one line")
            mapping[folder] = int(index)
    return mapping


def _from_file(folders: Sequence[str], path: Path, num_classes: int | None) -> list[int]:
    mapping = read_labels_file(path)
    missing = [folder for folder in folders if folder not in mapping]
    if missing:
        raise RobustkitError(
            f"labels file {path} maps no index for {len(missing)} folder(s): {_shown(missing)}: "
            "add a folder,index line for each"
        )
    indices = [mapping[folder] for folder in folders]
    if num_classes is None:
        return indices
    too_big = [f"{f}={i}" for f, i in zip(folders, indices, strict=True) if i >= num_classes]
    if too_big:
        raise RobustkitError(
            f"labels file {path} maps folders past the model's {num_classes} classes "
            f"({_shown(too_big)}): use indices 0 to {num_classes - 1}"
        )
    return indices


def _by_name(folders: Sequence[str], classes: ModelClasses) -> list[int]:
    lookup: dict[str, set[int]] = {}
    for index, synonyms in enumerate(classes.synonyms):
        keys = [*synonyms, classes.ids[index]] if classes.ids else synonyms
        for key in keys:
            lookup.setdefault(_key(key), set()).add(index)
    unmatched = [folder for folder in folders if _key(folder) not in lookup]
    if unmatched:
        example = f"{classes.ids[0]} or " if classes.ids else ""
        raise RobustkitError(
            f"{len(unmatched)} of {len(folders)} folder(s) name no class of the model: "
            f"{_shown(unmatched)}: rename them to the model's class ids or names (e.g. "
            f"{example}'{classes.names[0]}'), or {LABELS_FIX}"
        )
    for folder in folders:
        found = sorted(lookup[_key(folder)])
        if len(found) > 1:
            named = ", ".join(classes.ids[i] if classes.ids else str(i) for i in found)
            rename = "rename it to one of those ids, or " if classes.ids else ""
            raise RobustkitError(
                f"folder {folder!r} names {len(found)} classes of the model ({named}): "
                f"{rename}{LABELS_FIX}"
            )
    return [min(lookup[_key(folder)]) for folder in folders]


def _key(name: str) -> str:
    """Case-insensitive, with '_' as a space: 'Great_White_Shark' finds 'great white shark'."""
    return " ".join(name.replace("_", " ").split()).casefold()


def _shown(names: Sequence[str]) -> str:
    more = f" (+{len(names) - _SHOWN} more)" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more
