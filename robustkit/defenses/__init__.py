"""Defenses: adversarial training (PGD-AT, fast FGSM-RS, TRADES-style) and its guard."""

from robustkit.defenses.adversarial_training import (
    METHODS,
    AdversarialLoss,
    OverfittingGuard,
    monitor_attacks,
    training_attack,
)

__all__ = ["METHODS", "AdversarialLoss", "OverfittingGuard", "monitor_attacks", "training_attack"]
