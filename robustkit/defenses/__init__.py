"""Defenses: the manifold-projection defense, adaptive-attack wrappers (EOT) and their audit."""
