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
    from scipy.stats import beta  # lazy: half a second of import for every command otherwise

    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        high = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    empty = n == 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)
