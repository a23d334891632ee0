"""Adaptive-attack wrappers: expectation over transformation (EOT) for randomized models.

BPDA needs no wrapper here: a defense offers its own differentiable surrogate (the manifold
defense's backward is the identity through its projection), so attacking the defense module is
the BPDA attack, and attacking ``EOT(defense)`` is BPDA + EOT. Every registered attack works on
either unchanged, because both are plain ``nn.Module`` models. EOT itself lives with the other
many-pass tools in :mod:`robustkit.models.passes`, which the plain audit uses too.
"""

from __future__ import annotations

from robustkit.models.passes import EOT

__all__ = ["EOT"]
