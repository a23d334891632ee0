"""Attacks: a foolbox-style base class, a timm-style registry and the built-in attacks."""

from robustkit.attacks.base import Attack, AttackResult
from robustkit.attacks.latent import LatentOverpowered
from robustkit.attacks.mifgsm import MIFGSM
from robustkit.attacks.noise import GaussianNoise, pgd_from_noise, pure_noise_probe
from robustkit.attacks.pgd import FGSM, PGDL2, GradientAttack, PGDLinf
from robustkit.attacks.registry import attack_class, create_attack, list_attacks, register_attack

__all__ = [
    "FGSM",
    "MIFGSM",
    "PGDL2",
    "Attack",
    "AttackResult",
    "GaussianNoise",
    "GradientAttack",
    "LatentOverpowered",
    "PGDLinf",
    "attack_class",
    "create_attack",
    "list_attacks",
    "pgd_from_noise",
    "pure_noise_probe",
    "register_attack",
]
