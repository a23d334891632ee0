"""Attacks: a foolbox-style base class, a timm-style registry and the built-in attacks."""

from robustkit.attacks.apgd import APGDCE, APGDCEL2, APGDDLR, APGDDLRL2, APGDT, APGDTL2
from robustkit.attacks.apgd_l1 import APGDCEL1, APGDTL1
from robustkit.attacks.base import Attack, AttackResult, BudgetError
from robustkit.attacks.fab import FABTargetedL2, FABTargetedLinf
from robustkit.attacks.fab_l1 import FABTargetedL1
from robustkit.attacks.fmn import FMNL1, FMNL2, FMNLinf
from robustkit.attacks.hop_skip_jump import HopSkipJump, HopSkipJumpL2, HopSkipJumpLinf
from robustkit.attacks.latent import LatentOverpowered
from robustkit.attacks.mifgsm import MIFGSM
from robustkit.attacks.nes import NES, NESL2, NESLinf
from robustkit.attacks.noise import GaussianNoise, pgd_from_noise, pure_noise_probe
from robustkit.attacks.pgd import FGSM, PGDL2, GradientAttack, PGDLinf
from robustkit.attacks.rays import RaySLinf
from robustkit.attacks.registry import attack_class, create_attack, list_attacks, register_attack
from robustkit.attacks.square import SquareAttack, SquareL2, SquareLinf
from robustkit.attacks.square_l1 import SquareL1

__all__ = [
    "APGDCE",
    "APGDCEL1",
    "APGDCEL2",
    "APGDDLR",
    "APGDDLRL2",
    "APGDT",
    "APGDTL1",
    "APGDTL2",
    "FGSM",
    "FMNL1",
    "FMNL2",
    "MIFGSM",
    "NES",
    "NESL2",
    "PGDL2",
    "Attack",
    "AttackResult",
    "BudgetError",
    "FABTargetedL1",
    "FABTargetedL2",
    "FABTargetedLinf",
    "FMNLinf",
    "GaussianNoise",
    "GradientAttack",
    "HopSkipJump",
    "HopSkipJumpL2",
    "HopSkipJumpLinf",
    "LatentOverpowered",
    "NESLinf",
    "PGDLinf",
    "RaySLinf",
    "SquareAttack",
    "SquareL1",
    "SquareL2",
    "SquareLinf",
    "attack_class",
    "create_attack",
    "list_attacks",
    "pgd_from_noise",
    "pure_noise_probe",
    "register_attack",
]
