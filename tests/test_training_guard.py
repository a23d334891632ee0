"""The catastrophic-overfitting guard on recorded held-out accuracies."""

from __future__ import annotations

from robustkit.training import OverfittingGuard

# Held-out (FGSM, PGD) accuracy per epoch of an FGSM-RS run that overfits catastrophically at
# epoch 5: PGD accuracy falls to nearly zero while FGSM accuracy jumps (the one-step attack is
# masked), as in Wong et al. (2020), figure 2.
COLLAPSE = [(0.35, 0.20), (0.55, 0.41), (0.68, 0.55), (0.74, 0.62), (0.97, 0.04), (0.99, 0.00)]
HEALTHY = [(0.30, 0.15), (0.52, 0.38), (0.66, 0.55), (0.70, 0.53), (0.75, 0.61), (0.78, 0.66)]


def test_guard_triggers_on_a_recorded_collapse_and_keeps_the_best_epoch():
    guard = OverfittingGuard()
    verdicts = [guard.update(epoch, f, p) for epoch, (f, p) in enumerate(COLLAPSE, start=1)]
    assert verdicts == [False, False, False, False, True, True]
    assert (guard.best_at, guard.best_pgd, guard.collapsed_at) == (4, 0.62, 5)


def test_guard_stays_quiet_on_a_healthy_run_with_noise():
    guard = OverfittingGuard()
    assert not any(guard.update(epoch, f, p) for epoch, (f, p) in enumerate(HEALTHY, start=1))
    assert guard.best_at == 6


def test_guard_ignores_a_drop_where_fgsm_falls_too():
    guard = OverfittingGuard()
    guard.update(1, 0.70, 0.60)
    assert not guard.update(2, 0.40, 0.20)  # both fall: divergence, not gradient masking


def test_guard_ignores_noise_near_zero():
    guard = OverfittingGuard()
    guard.update(1, 0.60, 0.03)
    assert not guard.update(2, 0.90, 0.00)  # no robustness yet, nothing to lose
