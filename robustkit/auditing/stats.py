"""Confidence intervals for accuracies measured on a finite sample."""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95


def clopper_pearson(
    successes: np.ndarray, trials: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) binomial interval for ``successes`` out of ``trials``, elementwise.

    Conservative: it covers the true rate with at least ``confidence`` probability for any n, which
    is what a robustness claim on a few hundred images needs.
    """
    # the beta quantile as scipy.special's inverse incomplete beta function: scipy.stats would
    # cost every audit half a second of import for the same numbers
    from scipy.special import betaincinv

    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, betaincinv(k, n - k + 1, alpha / 2), 0.0)
        high = np.where(k < n, betaincinv(k + 1, n - k, 1 - alpha / 2), 1.0)
    empty = n == 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)
