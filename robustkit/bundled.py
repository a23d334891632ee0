"""Weights files shipped inside the package, each checked by sha256 before it is read.

The model zoo (``zoo:NAME``) and the generator zoo (``manifold:zoo:NAME``) describe their files
with :class:`BundledEntry` (the model zoo adds how to build and wrap the network).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from robustkit.errors import RobustkitError


@dataclass(frozen=True, kw_only=True)
class BundledEntry:
    """A bundled file: its name, file inside its zoo's weights folder, checksum and provenance."""

    name: str
    weights: str
    sha256: str
    dataset: str
    description: str

    def load(self, folder: Path) -> Any:
        """The file's contents, after checking its sha256, read with ``weights_only=True``."""
        path = folder / self.weights
        if not path.is_file():
            raise RobustkitError(
                f"weights for '{self.name}' missing at {path}: reinstall robustkit"
            )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != self.sha256:
            raise RobustkitError(
                f"weights file {path} is corrupt (sha256 {digest[:12]}..., expected "
                f"{self.sha256[:12]}...): reinstall robustkit"
            )
        return torch.load(path, map_location="cpu", weights_only=True)
