"""Defenses: adversarial training and the GAN manifold-projection defense (``gan``)."""
