"""Statistical checks with stated false-failure rates.

Policy (enforced by tests/test_statistical_policy.py): every stochastic check spends at most
``ALPHA_CHECK`` = 1e-6 of false-failure probability on a correct implementation, split over its
comparisons with a union bound, and the suite as a whole at most ``ALPHA_SUITE`` = 1e-4.
Checks run on a fixed seed by default (``--verify-seed`` re-randomizes), and never stop sampling
early: the sample size is fixed before any sample is drawn.

Bounds used (each is exact, not asymptotic):

* DKW with Massart's constant: for n iid draws with continuous CDF F,
  P(sup_t |F_n(t) - F(t)| > eps) <= 2 exp(-2 n eps^2).
* Hoeffding: for n iid draws in an interval of length R,
  P(mean - E >= t) <= exp(-2 n t^2 / R^2)  (one-sided), and twice that two-sided.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as _st

ALPHA_CHECK = 1e-6
ALPHA_SUITE = 1e-4


def dkw_radius(n: int, alpha: float) -> float:
    """eps such that P(sup |F_n - F| > eps) <= alpha for n iid draws (Massart 1990)."""
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * n))


def dkw_sample_size(eps: float, alpha: float) -> int:
    """Smallest n whose DKW radius at level alpha is at most eps."""
    return math.ceil(math.log(2.0 / alpha) / (2.0 * eps * eps))


def ks_distance(samples, cdf=_st.norm.cdf) -> float:
    """sup_t |F_n(t) - F(t)| of the empirical CDF of ``samples`` (exact, via the order statistics)."""
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    n = x.size
    f = cdf(x)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))


def assert_distributed(samples, what: str, alpha: float, cdf=_st.norm.cdf, cdf_name: str = "N(0, 1)"):
    """Fail if the empirical CDF of ``samples`` is farther than the DKW radius from ``cdf``.

    False-failure rate at most ``alpha`` when the samples are iid with CDF ``cdf``.
    """
    x = np.asarray(samples, dtype=np.float64).ravel()
    if not np.all(np.isfinite(x)):
        raise AssertionError(f"{what}: {int(np.sum(~np.isfinite(x)))} of {x.size} values are not finite")
    n = x.size
    d, eps = ks_distance(x, cdf), dkw_radius(n, alpha)
    if d > eps:
        raise AssertionError(
            f"{what}: not distributed as {cdf_name}. Kolmogorov distance {d:.4f} > DKW radius {eps:.4f} "
            f"(n = {n}, false-failure rate {alpha:.0e}); sample mean {x.mean():.4f}, std {x.std():.4f}, "
            f"min {x.min():.4g}, max {x.max():.4g}"
        )


def assert_independent_standard_pairs(a, b, what: str, alpha: float):
    """Fail unless the disjoint pairs (a_i, b_i) look like independent N(0, 1) pairs.

    If a_i, b_i are independent N(0, 1), then (a_i - b_i)/sqrt 2 and (a_i + b_i)/sqrt 2 are
    N(0, 1); a correlation rho changes their variances to 1 - rho and 1 + rho. Each is tested by
    DKW at alpha / 2, so the false-failure rate is at most ``alpha``.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise AssertionError(f"{what}: paired samples of different sizes {a.size} and {b.size}")
    if np.array_equal(a, b):
        raise AssertionError(f"{what}: the paired noise values are identical (shared noise), e.g. {a[:3]}")
    assert_distributed((a - b) / math.sqrt(2), f"{what} (differences of pairs / sqrt 2)", alpha / 2)
    assert_distributed((a + b) / math.sqrt(2), f"{what} (sums of pairs / sqrt 2)", alpha / 2)


def hoeffding_radius(n: int, value_range: float, alpha: float, two_sided: bool = False) -> float:
    """t such that P(mean of n iid draws in an interval of length R deviates by >= t) <= alpha."""
    return value_range * math.sqrt(math.log((2.0 if two_sided else 1.0) / alpha) / (2.0 * n))
