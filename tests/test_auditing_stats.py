"""Clopper-Pearson intervals: the beta quantiles the definition names, and the edge cases."""

from __future__ import annotations

import numpy as np
from scipy.stats import beta

from robustkit.auditing.stats import clopper_pearson


def test_matches_the_beta_quantiles_of_the_definition():
    k = np.array([1, 5, 50, 99, 873])
    n = np.array([100, 100, 100, 100, 1000])
    low, high = clopper_pearson(k, n)
    np.testing.assert_allclose(low, beta.ppf(0.025, k, n - k + 1), rtol=1e-10)
    np.testing.assert_allclose(high, beta.ppf(0.975, k + 1, n - k), rtol=1e-10)


def test_edges_zero_all_and_empty():
    low, high = clopper_pearson(np.array([0, 100, 0]), np.array([100, 100, 0]))
    assert low[0] == 0.0 and abs(high[0] - (1 - 0.025 ** (1 / 100))) < 1e-12  # closed form
    assert high[1] == 1.0 and abs(low[1] - 0.025 ** (1 / 100)) < 1e-12
    assert np.isnan(low[2]) and np.isnan(high[2])
