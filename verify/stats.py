"""Statistical checks with stated false-failure rates and stated power.

Policy (enforced by tests/test_statistical_policy.py): every stochastic check spends at most
``ALPHA_CHECK`` = 1e-6 of false-failure probability on a correct implementation, split over its
comparisons with a union bound, and the suite as a whole at most ``ALPHA_SUITE`` = 1e-4.
Checks run on a fixed seed by default (``--verify-seed`` re-randomizes), and never stop sampling
early: the sample size is fixed before any sample is drawn.

The helpers follow TensorFlow Probability's ``statistical_testing``: each ``assert_<claim>_by_<bound>``
asserts a property of the *true* distribution from n samples and fails with probability at most
``false_fail_rate`` when the property holds. Each has a power function, ``min_<deviation>_detectable_by_<bound>``:
the smallest deviation from the property that makes it fail with probability at least
``1 - false_pass_rate``; ``min_num_samples_*`` invert those. Every failure message states what
failed, the statistic against its radius, n, the false-failure rate, and the power at this n at
the false-pass rate ``FALSE_PASS_RATE`` = 1e-6. docs/statistics.md lists the checks' rates and powers.

The assertions and their power, with e(n, a) = sqrt(log(2/a) / 2n), h(n, a) = sqrt(log(1/a) / 2n),
a the false-failure rate, b the false-pass rate and R the length of the draws' interval:

* ``assert_true_cdf_equal_by_dkwm``: a sup-CDF error of e(n, a) + e(n, b)
  (:func:`min_discrepancy_of_true_cdf_detectable_by_dkwm`); against N(0, 1), a standard
  deviation off by the factor s whose sup-CDF error that is
  (:func:`min_scale_factor_of_standard_normal_detectable_by_dkwm`).
* ``assert_independent_standard_pairs_by_dkwm``: a correlation of 1 - 1/s^2, s the scale factor
  at a/2 (:func:`min_correlation_of_standard_pairs_detectable_by_dkwm`); shared noise always.
* ``assert_true_mean_equal_by_hoeffding`` (two-sided): a true mean R (e(n, a) + h(n, b)) away;
  ``assert_true_mean_at_most_by_hoeffding`` / ``assert_true_mean_at_least_by_hoeffding``
  (one-sided): R (h(n, a) + h(n, b)) beyond the bound
  (:func:`min_discrepancy_of_true_mean_detectable_by_hoeffding`);
  ``assert_true_mean_in_interval_by_hoeffding`` is the general case of the three.
* ``assert_two_sample_means_equal_by_hoeffding`` (two-sided) and
  ``assert_two_sample_means_ordered_by_hoeffding`` (one-sided): the same with 2R, the length of
  the interval of a difference of two draws
  (:func:`min_discrepancy_of_two_sample_means_detectable_by_hoeffding`).

Bounds used (each is exact, not asymptotic):

* DKW with Massart's constant: for n iid draws with continuous CDF F,
  P(sup_t |F_n(t) - F(t)| > eps) <= 2 exp(-2 n eps^2). Power: if the true CDF G has
  sup |G - F| >= eps_fail + eps_pass, the test passes only if sup |F_n - G| >= eps_pass, which has
  probability at most the false-pass rate (DKW again, for G).
* Hoeffding: for n iid draws in an interval of length R,
  P(mean - E >= t) <= exp(-2 n t^2 / R^2)  (one-sided), and twice that two-sided. Power: a true
  mean t_fail + t_pass beyond the claim passes only if the sample mean deviates by t_pass towards
  it (one-sided, so t_pass = R h(n, b)), for draws that still lie in an interval of length R.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

from verify.lazy import OnFirstUse

_st, optimize = OnFirstUse("scipy.stats"), OnFirstUse("scipy.optimize")

ALPHA_CHECK = 1e-6
ALPHA_SUITE = 1e-4
FALSE_PASS_RATE = 1e-6  # the false-pass rate at which messages and docstrings state each check's power


# ---------------------------------------------------------------------------------------- radii
def dkw_radius(n: int, alpha: float) -> float:
    """eps such that P(sup |F_n - F| > eps) <= alpha for n iid draws (Massart 1990)."""
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * n))


def dkw_sample_size(eps: float, alpha: float) -> int:
    """Smallest n whose DKW radius at level alpha is at most eps."""
    return math.ceil(math.log(2.0 / alpha) / (2.0 * eps * eps))


def hoeffding_radius(n: int, value_range: float, alpha: float, two_sided: bool = False) -> float:
    """t such that P(mean of n iid draws in an interval of length R deviates by >= t) <= alpha."""
    return value_range * math.sqrt(math.log((2.0 if two_sided else 1.0) / alpha) / (2.0 * n))


def ks_distance(samples, cdf=None) -> float:
    """sup_t |F_n(t) - F(t)| of the empirical CDF of ``samples`` (exact, via the order statistics);
    ``cdf``: the standard normal's by default."""
    cdf = _st.norm.cdf if cdf is None else cdf
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    n = x.size
    f = cdf(x)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))


def fmt_rate(rate: float) -> str:
    """A rate as the docstrings write it: 1e-6, 2.5e-7, 3.3e-7."""
    mantissa, _, exponent = f"{rate:.2g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


# ---------------------------------------------------------------------------------------- power
def min_discrepancy_of_true_cdf_detectable_by_dkwm(n: int, *, false_fail_rate: float, false_pass_rate: float) -> float:
    """Smallest sup_t |G(t) - F(t)| between the true CDF G and the claimed F that
    :func:`assert_true_cdf_equal_by_dkwm` detects with probability >= 1 - false_pass_rate:
    ``dkw_radius(n, false_fail_rate) + dkw_radius(n, false_pass_rate)``."""
    return dkw_radius(n, false_fail_rate) + dkw_radius(n, false_pass_rate)


def _smallest_n(power, discrepancy: float, estimate: float) -> int:
    """The smallest n with power(n) <= discrepancy, from the closed-form ``estimate`` (rounding-safe)."""
    n = max(1, math.ceil(estimate))
    while n > 1 and power(n - 1) <= discrepancy:
        n -= 1
    while power(n) > discrepancy:
        n += 1
    return n


def min_num_samples_for_true_cdf_by_dkwm(discrepancy: float, *, false_fail_rate: float, false_pass_rate: float) -> int:
    """Smallest n at which :func:`assert_true_cdf_equal_by_dkwm` detects a sup-CDF error of ``discrepancy``."""
    root = math.sqrt(math.log(2.0 / false_fail_rate) / 2.0) + math.sqrt(math.log(2.0 / false_pass_rate) / 2.0)
    return _smallest_n(lambda n: min_discrepancy_of_true_cdf_detectable_by_dkwm(
        n, false_fail_rate=false_fail_rate, false_pass_rate=false_pass_rate), discrepancy, (root / discrepancy) ** 2)


def sup_cdf_distance_of_normal_scale(scale: float) -> float:
    """sup_t |Phi(t) - Phi(t / scale)|: the sup-CDF error of N(0, scale^2) against N(0, 1).

    The same for ``scale`` and ``1 / scale``; attained at t = s sqrt(2 log s / (s^2 - 1)), s = max(scale, 1/scale).
    """
    s = max(scale, 1.0 / scale)
    if s == 1.0:
        return 0.0
    t = s * math.sqrt(2.0 * math.log(s) / (s * s - 1.0))
    return float(_st.norm.cdf(t) - _st.norm.cdf(t / s))


def min_scale_factor_of_standard_normal_detectable_by_dkwm(n: int, *, false_fail_rate: float,
                                                          false_pass_rate: float) -> float:
    """Smallest s > 1 such that :func:`assert_true_cdf_equal_by_dkwm` against N(0, 1) detects samples
    from N(0, s^2) or N(0, 1/s^2) (a standard deviation off by a factor s) with probability
    >= 1 - false_pass_rate: the s whose sup-CDF error (:func:`sup_cdf_distance_of_normal_scale`) is
    the minimal detectable discrepancy. ``inf`` if no scale error is detectable (discrepancy >= 1/2)."""
    d = min_discrepancy_of_true_cdf_detectable_by_dkwm(n, false_fail_rate=false_fail_rate,
                                                       false_pass_rate=false_pass_rate)
    if d >= 0.5:
        return math.inf
    log_s = optimize.brentq(lambda u: sup_cdf_distance_of_normal_scale(math.exp(u)) - d, 1e-12, 50.0, xtol=1e-14)
    return math.exp(log_s)


def min_correlation_of_standard_pairs_detectable_by_dkwm(n: int, *, false_fail_rate: float,
                                                        false_pass_rate: float) -> float:
    """Smallest |rho| of jointly normal N(0, 1) pairs (a_i, b_i) with correlation rho that
    :func:`assert_independent_standard_pairs_by_dkwm` (n pairs, ``false_fail_rate`` split in two)
    detects with probability >= 1 - false_pass_rate: (a - b)/sqrt 2 or (a + b)/sqrt 2 has variance
    1 - |rho| = 1/s^2, so rho = 1 - 1/s^2 with s from
    :func:`min_scale_factor_of_standard_normal_detectable_by_dkwm` at ``false_fail_rate / 2``."""
    s = min_scale_factor_of_standard_normal_detectable_by_dkwm(n, false_fail_rate=false_fail_rate / 2,
                                                              false_pass_rate=false_pass_rate)
    return 1.0 - 1.0 / (s * s)


def min_discrepancy_of_true_mean_detectable_by_hoeffding(n: int, *, value_range: float, false_fail_rate: float,
                                                        false_pass_rate: float, two_sided: bool) -> float:
    """Smallest distance of the true mean beyond the claimed value (or bound) that the Hoeffding mean
    tests detect with probability >= 1 - false_pass_rate, for n iid draws in an interval of length
    ``value_range``: ``hoeffding_radius(n, R, false_fail_rate, two_sided)`` plus the one-sided
    ``hoeffding_radius(n, R, false_pass_rate)``."""
    return (hoeffding_radius(n, value_range, false_fail_rate, two_sided)
            + hoeffding_radius(n, value_range, false_pass_rate))


def min_num_samples_for_true_mean_by_hoeffding(discrepancy: float, *, value_range: float, false_fail_rate: float,
                                               false_pass_rate: float, two_sided: bool) -> int:
    """Smallest n at which the Hoeffding mean tests detect a true mean ``discrepancy`` beyond the claim."""
    root = (math.sqrt(math.log((2.0 if two_sided else 1.0) / false_fail_rate) / 2.0)
            + math.sqrt(math.log(1.0 / false_pass_rate) / 2.0))
    return _smallest_n(lambda n: min_discrepancy_of_true_mean_detectable_by_hoeffding(
        n, value_range=value_range, false_fail_rate=false_fail_rate, false_pass_rate=false_pass_rate,
        two_sided=two_sided), discrepancy, (value_range * root / discrepancy) ** 2)


def min_discrepancy_of_two_sample_means_detectable_by_hoeffding(n: int, *, value_range: float, false_fail_rate: float,
                                                               false_pass_rate: float, two_sided: bool) -> float:
    """The two-sample tests' power: the one-sample power for the n differences of pairs of draws,
    which lie in an interval of length ``2 value_range``."""
    return min_discrepancy_of_true_mean_detectable_by_hoeffding(
        n, value_range=2 * value_range, false_fail_rate=false_fail_rate, false_pass_rate=false_pass_rate,
        two_sided=two_sided)


# --------------------------------------------------------------------------------------- ledger
@dataclass(frozen=True)
class Spent:
    """One helper call: which helper, on how many samples, at which false-failure rate, and its
    power at ``FALSE_PASS_RATE``: the smallest deviations it detects, as the check's docstring
    states them (a sup-CDF error and, against N(0, 1), a standard deviation off by this many
    percent; a correlation; a distance of true means, in the draws' unit)."""

    helper: str
    n: int
    false_fail_rate: float
    powers: tuple[float, ...]


_ledger: list[Spent] | None = None


@contextlib.contextmanager
def ledger():
    """Record every ``assert_*_by_*`` call made inside the block (tests/test_statistical_policy.py
    reads the false-failure rate each check spends and the power it states)."""
    global _ledger
    outer, _ledger = _ledger, []
    try:
        yield _ledger
    finally:
        _ledger = outer


def _spend(helper: str, n: int, false_fail_rate: float, *powers: float) -> None:
    if not 0 < false_fail_rate < 1:
        raise ValueError(f"{helper}: false_fail_rate must be in (0, 1), not {false_fail_rate}")
    if _ledger is not None:
        _ledger.append(Spent(helper, int(n), false_fail_rate, tuple(powers)))


def _detects(power: str, n: int) -> str:
    return f"At n = {n} this test detects {power} with probability at least 1 - {fmt_rate(FALSE_PASS_RATE)}."


# ---------------------------------------------------------------------------- DKW (distributions)
def _cdf_powers(n: int, false_fail_rate: float, standard_normal: bool) -> tuple[float, ...]:
    """The sup-CDF error detectable at ``FALSE_PASS_RATE`` and, against N(0, 1), the matching
    standard-deviation error in percent."""
    rates = dict(false_fail_rate=false_fail_rate, false_pass_rate=FALSE_PASS_RATE)
    sup_cdf = min_discrepancy_of_true_cdf_detectable_by_dkwm(n, **rates)
    if not standard_normal:
        return (sup_cdf,)
    return sup_cdf, 100 * (min_scale_factor_of_standard_normal_detectable_by_dkwm(n, **rates) - 1)


def _cdf_failure(x, cdf, cdf_name: str, false_fail_rate: float, what: str) -> str | None:
    """The failure message of the DKW test of ``x`` against ``cdf`` (None: N(0, 1)), or None if it passes."""
    if not np.all(np.isfinite(x)):
        return f"{what}: {int(np.sum(~np.isfinite(x)))} of {x.size} values are not finite"
    n = x.size
    d, eps = ks_distance(x, cdf), dkw_radius(n, false_fail_rate)
    if d <= eps:
        return None
    power, *percent = _cdf_powers(n, false_fail_rate, cdf is None)
    detects = f"a sup-CDF error of {power:.4f}"
    if percent:
        factor = 1 + percent[0] / 100
        detects += f" (e.g. a standard deviation {percent[0]:.1f}% off: by a factor of {factor:.3f} either way)"
    return (
        f"{what}: not distributed as {cdf_name}. Kolmogorov distance {d:.4f} > DKW radius {eps:.4f} "
        f"(n = {n}, false-failure rate {fmt_rate(false_fail_rate)}); sample mean {x.mean():.4f}, std {x.std():.4f}, "
        f"min {x.min():.4g}, max {x.max():.4g}. {_detects(detects, n)}"
    )


def assert_true_cdf_equal_by_dkwm(samples, *, false_fail_rate: float, what: str, cdf=None,
                                  cdf_name: str = "N(0, 1)") -> None:
    """Fail unless ``samples`` (flattened) are consistent with iid draws from the continuous ``cdf``
    (default, ``None``: the standard normal's; then the power is also stated as a scale error).

    Fails if a value is not finite, or if the Kolmogorov distance sup_t |F_n(t) - F(t)| exceeds the
    DKW radius sqrt(log(2 / false_fail_rate) / 2n). False-failure rate: at most ``false_fail_rate``
    for iid draws from ``cdf`` (DKW with Massart's constant). Power: iid draws whose true CDF is
    :func:`min_discrepancy_of_true_cdf_detectable_by_dkwm` or more from ``cdf`` in sup distance fail
    with probability at least 1 - false_pass_rate.
    """
    __tracebackhide__ = True
    x = np.asarray(samples, dtype=np.float64).ravel()
    _spend("assert_true_cdf_equal_by_dkwm", x.size, false_fail_rate, *_cdf_powers(x.size, false_fail_rate, cdf is None))
    message = _cdf_failure(x, cdf, cdf_name, false_fail_rate, what)
    if message is not None:
        raise AssertionError(message)


def assert_independent_standard_pairs_by_dkwm(a, b, *, false_fail_rate: float, what: str) -> None:
    """Fail unless the disjoint pairs (a_i, b_i) look like independent N(0, 1) pairs.

    If a_i, b_i are independent N(0, 1), then (a_i - b_i)/sqrt 2 and (a_i + b_i)/sqrt 2 are
    N(0, 1); a correlation rho changes their variances to 1 - rho and 1 + rho. Identical arrays
    (shared noise) fail at once. False-failure rate: at most ``false_fail_rate`` (two DKW tests at
    half of it each) for independent N(0, 1) pairs. Power: jointly normal N(0, 1) pairs with
    correlation |rho| >= :func:`min_correlation_of_standard_pairs_detectable_by_dkwm` fail with
    probability at least 1 - false_pass_rate.
    """
    __tracebackhide__ = True
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    power = min_correlation_of_standard_pairs_detectable_by_dkwm(a.size, false_fail_rate=false_fail_rate,
                                                                false_pass_rate=FALSE_PASS_RATE)
    _spend("assert_independent_standard_pairs_by_dkwm", a.size, false_fail_rate, power)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: paired samples of different sizes {a.size} and {b.size}")
    if np.array_equal(a, b):
        raise AssertionError(f"{what}: the paired noise values are identical (shared noise), e.g. {a[:3]}")
    for x, label in (((a - b) / math.sqrt(2), "differences"), ((a + b) / math.sqrt(2), "sums")):
        message = _cdf_failure(x, None, "N(0, 1)", false_fail_rate / 2, f"{what} ({label} of pairs / sqrt 2)")
        if message is not None:
            raise AssertionError(
                f"{message} As a test of independence (false-failure rate {fmt_rate(false_fail_rate)} for both "
                f"tests) on {a.size} pairs, it detects a correlation of {power:.4f} with probability at least "
                f"1 - {fmt_rate(FALSE_PASS_RATE)}."
            )


# ------------------------------------------------------------------------------- Hoeffding (means)
def _range_note(n: int, value_range: float, pairs: bool) -> str:
    if pairs:
        return (f"n = {n} independent pairs of draws, each draw in an interval of length {value_range:g}, so each "
                f"difference in one of length {2 * value_range:g}")
    return f"n = {n} iid draws in an interval of length {value_range:g}"


def assert_true_mean_in_interval_by_hoeffding(mean: float, *, expected_low: float, expected_high: float, n: int,
                                              value_range: float, false_fail_rate: float, what: str,
                                              details: str = "") -> None:
    """Fail unless ``mean``, the sample mean of n iid draws in an interval of length ``value_range``,
    is consistent with a true mean in [expected_low, expected_high] (either end may be infinite).

    Fails if the sample mean is above ``expected_high`` or below ``expected_low`` by more than the
    Hoeffding radius at ``false_fail_rate`` split over the finite ends. False-failure rate: at most
    ``false_fail_rate`` when the true mean is in the interval. Power: a true mean
    :func:`min_discrepancy_of_true_mean_detectable_by_hoeffding` or more outside the interval fails
    with probability at least 1 - false_pass_rate. A NaN mean passes (as the checks always did).
    """
    __tracebackhide__ = True
    _mean_in_interval("assert_true_mean_in_interval_by_hoeffding", mean, expected_low, expected_high, n, value_range,
                      false_fail_rate, what, details)


def _mean_in_interval(helper: str, mean: float, expected_low: float, expected_high: float, n: int, value_range: float,
                      false_fail_rate: float, what: str, details: str) -> None:
    __tracebackhide__ = True
    if not expected_low <= expected_high:
        raise ValueError(f"{helper}: an empty interval [{expected_low}, {expected_high}]")
    two_sided = math.isfinite(expected_low) and math.isfinite(expected_high)
    t = hoeffding_radius(n, value_range, false_fail_rate, two_sided)
    power = min_discrepancy_of_true_mean_detectable_by_hoeffding(
        n, value_range=value_range, false_fail_rate=false_fail_rate, false_pass_rate=FALSE_PASS_RATE,
        two_sided=two_sided)
    _spend(helper, n, false_fail_rate, power)
    sides = "two-sided" if two_sided else "one-sided"
    if expected_low == expected_high:
        deviation = abs(mean - expected_low)
        off, beyond = f"is {deviation:.4f} away from the expected {expected_low:.4f}", "away from the expected value"
    elif mean - expected_high > t:
        deviation = mean - expected_high
        off, beyond = f"exceeds the upper bound {expected_high:.4f} by {deviation:.4f}", "above the upper bound"
    else:
        deviation = expected_low - mean
        off, beyond = f"is below the lower bound {expected_low:.4f} by {deviation:.4f}", "below the lower bound"
    if deviation > t:
        raise AssertionError(
            f"{what}: rejected. The sample mean {mean:.4f} over {_range_note(n, value_range, False)} {off}, more "
            f"than the {sides} Hoeffding radius {t:.4f} (false-failure rate {fmt_rate(false_fail_rate)}). "
            f"{_detects(f'a true mean {power:.4f} {beyond}', n)} {details}".rstrip()
        )


def assert_true_mean_equal_by_hoeffding(mean: float, *, expected: float, n: int, value_range: float,
                                        false_fail_rate: float, what: str, details: str = "") -> None:
    """Fail unless ``mean`` (n iid draws in an interval of length R) is consistent with the true mean
    ``expected``: two-sided Hoeffding. False-failure rate at most ``false_fail_rate``; power
    R (sqrt(log(2/a)/2n) + sqrt(log(1/b)/2n)) (:func:`min_discrepancy_of_true_mean_detectable_by_hoeffding`,
    two_sided=True)."""
    __tracebackhide__ = True
    _mean_in_interval("assert_true_mean_equal_by_hoeffding", mean, expected, expected, n, value_range, false_fail_rate,
                      what, details)


def assert_true_mean_at_most_by_hoeffding(mean: float, *, bound: float, n: int, value_range: float,
                                          false_fail_rate: float, what: str, details: str = "") -> None:
    """Fail unless ``mean`` (n iid draws in an interval of length R) is consistent with a true mean
    <= ``bound``: one-sided Hoeffding. False-failure rate at most ``false_fail_rate``; power
    R (sqrt(log(1/a)/2n) + sqrt(log(1/b)/2n)) above the bound."""
    __tracebackhide__ = True
    _mean_in_interval("assert_true_mean_at_most_by_hoeffding", mean, -math.inf, bound, n, value_range, false_fail_rate,
                      what, details)


def assert_true_mean_at_least_by_hoeffding(mean: float, *, bound: float, n: int, value_range: float,
                                           false_fail_rate: float, what: str, details: str = "") -> None:
    """Fail unless ``mean`` (n iid draws in an interval of length R) is consistent with a true mean
    >= ``bound``: one-sided Hoeffding. False-failure rate at most ``false_fail_rate``; power
    R (sqrt(log(1/a)/2n) + sqrt(log(1/b)/2n)) below the bound."""
    __tracebackhide__ = True
    _mean_in_interval("assert_true_mean_at_least_by_hoeffding", mean, bound, math.inf, n, value_range, false_fail_rate,
                      what, details)


def _two_sample(helper: str, first: float, second: float, n: int, value_range: float, false_fail_rate: float,
                two_sided: bool) -> tuple[float, float, str]:
    t = hoeffding_radius(n, 2 * value_range, false_fail_rate, two_sided)
    power = min_discrepancy_of_two_sample_means_detectable_by_hoeffding(
        n, value_range=value_range, false_fail_rate=false_fail_rate, false_pass_rate=FALSE_PASS_RATE,
        two_sided=two_sided)
    _spend(helper, n, false_fail_rate, power)
    return t, power, (f"(first {first:.4f}, second {second:.4f}; {_range_note(n, value_range, True)}; false-failure "
                      f"rate {fmt_rate(false_fail_rate)})")


def assert_two_sample_means_equal_by_hoeffding(first: float, second: float, *, n: int, value_range: float,
                                               false_fail_rate: float, what: str, details: str = "") -> None:
    """Fail unless two independent sample means, n iid draws each, every draw in an interval of
    length R, are consistent with equal true means: two-sided Hoeffding on the n differences of
    pairs (an interval of length 2R). False-failure rate at most ``false_fail_rate``; power
    2R (sqrt(log(2/a)/2n) + sqrt(log(1/b)/2n)) (:func:`min_discrepancy_of_two_sample_means_detectable_by_hoeffding`)."""
    __tracebackhide__ = True
    t, power, shown = _two_sample("assert_two_sample_means_equal_by_hoeffding", first, second, n, value_range,
                                  false_fail_rate, two_sided=True)
    if abs(first - second) > t:
        raise AssertionError(
            f"{what}: rejected. The two means differ by {abs(first - second):.4f} > {t:.4f}, the two-sided "
            f"Hoeffding radius {shown}. {_detects(f'true means {power:.4f} apart', n)} {details}".rstrip()
        )


def assert_two_sample_means_ordered_by_hoeffding(lower: float, upper: float, *, n: int, value_range: float,
                                                 false_fail_rate: float, what: str, details: str = "") -> None:
    """Fail unless two independent sample means, n iid draws each, every draw in an interval of
    length R, are consistent with E[lower] <= E[upper]: one-sided Hoeffding on the n differences of
    pairs (an interval of length 2R). False-failure rate at most ``false_fail_rate``; power
    2R (sqrt(log(1/a)/2n) + sqrt(log(1/b)/2n)) (:func:`min_discrepancy_of_two_sample_means_detectable_by_hoeffding`)."""
    __tracebackhide__ = True
    t, power, shown = _two_sample("assert_two_sample_means_ordered_by_hoeffding", lower, upper, n, value_range,
                                  false_fail_rate, two_sided=False)
    if lower - upper > t:
        raise AssertionError(
            f"{what}: rejected. The first mean exceeds the second by {lower - upper:.4f} > {t:.4f}, the one-sided "
            f"Hoeffding radius {shown}. {_detects(f'a first true mean {power:.4f} above the second', n)} "
            f"{details}".rstrip()
        )


# ------------------------------------------------------------- exact tests of N(0, 1) noise: variance, tails
# Two exact (not asymptotic) tests that DKW needs tens of millions of draws to match: for n iid N(0, 1) draws
# the sum of squares is chi-square(n) and the number beyond a threshold c is Binomial(n, 2 Phi(-c)), so their
# two-sided quantiles at false_fail_rate / 2 each give the stated false-failure rate exactly (the binomial's
# at most it, being discrete).
def min_variance_factors_of_standard_normal_detectable_by_chi2(n: int, *, false_fail_rate: float,
                                                               false_pass_rate: float) -> tuple[float, float]:
    """(f_low, f_high): iid N(0, f) draws with f <= f_low or f >= f_high fail
    :func:`assert_true_variance_equal_by_chi2` with probability >= 1 - false_pass_rate."""
    lo, hi = _st.chi2.ppf(false_fail_rate / 2, n), _st.chi2.isf(false_fail_rate / 2, n)
    return float(lo / _st.chi2.isf(false_pass_rate, n)), float(hi / _st.chi2.ppf(false_pass_rate, n))


def _variance_power(n: int, false_fail_rate: float) -> float:
    """The variance error, in percent, detected either way at ``FALSE_PASS_RATE``."""
    f_lo, f_hi = min_variance_factors_of_standard_normal_detectable_by_chi2(
        n, false_fail_rate=false_fail_rate, false_pass_rate=FALSE_PASS_RATE)
    return 100 * max(f_hi - 1, 1 - f_lo)


def assert_true_variance_equal_by_chi2(samples, *, false_fail_rate: float, what: str) -> None:
    """Fail unless the sum of squares of ``samples`` (flattened; claimed iid N(0, 1)) lies between the
    chi-square(n) quantiles at ``false_fail_rate`` / 2 and 1 - ``false_fail_rate`` / 2. False-failure rate:
    exactly ``false_fail_rate`` for iid N(0, 1) draws. Power: a variance off by
    :func:`min_variance_factors_of_standard_normal_detectable_by_chi2` or more (iid normal draws) fails with
    probability at least 1 - false_pass_rate."""
    __tracebackhide__ = True
    x = np.asarray(samples, dtype=np.float64).ravel()
    n = x.size
    power = _variance_power(n, false_fail_rate)
    _spend("assert_true_variance_equal_by_chi2", n, false_fail_rate, power)
    ss = float(np.sum(x * x))
    lo, hi = _st.chi2.ppf(false_fail_rate / 2, n), _st.chi2.isf(false_fail_rate / 2, n)
    if not (np.all(np.isfinite(x)) and lo <= ss <= hi):
        raise AssertionError(
            f"{what}: the variance of the standardized noise is {ss / n:.6f}, outside [{lo / n:.6f}, {hi / n:.6f}] "
            f"(chi-square({n}) quantiles, false-failure rate {fmt_rate(false_fail_rate)}): the noise is not N(0, 1) "
            f"(a variance, or a standard deviation, slightly off). "
            + _detects(f"a variance {power:.2g}% off", n))


def _binomial_acceptance(n: int, p: float, false_fail_rate: float) -> tuple[int, int]:
    """[k_lo, k_hi]: counts of Binomial(n, p) whose two tails each have probability > false_fail_rate / 2."""
    k_lo = int(_st.binom.ppf(false_fail_rate / 2, n, p))
    while _st.binom.cdf(k_lo, n, p) <= false_fail_rate / 2:
        k_lo += 1
    k_hi = int(_st.binom.isf(false_fail_rate / 2, n, p))
    while k_hi > 0 and _st.binom.sf(k_hi - 1, n, p) <= false_fail_rate / 2:
        k_hi -= 1
    return k_lo, k_hi


def min_tail_probabilities_detectable_by_binomial(n: int, p: float, *, false_fail_rate: float,
                                                  false_pass_rate: float) -> tuple[float, float]:
    """(p_low, p_high): a true tail probability at most p_low or at least p_high fails
    :func:`assert_true_tail_probability_equal_by_binomial` (claimed ``p``) with probability >= 1 - false_pass_rate."""
    k_lo, k_hi = _binomial_acceptance(n, p, false_fail_rate)
    p_lo = optimize.brentq(lambda q: _st.binom.sf(k_lo - 1, n, q) - false_pass_rate, 1e-300, p) if k_lo > 0 else 0.0
    p_hi = optimize.brentq(lambda q: _st.binom.cdf(k_hi, n, q) - false_pass_rate, p, 1.0)
    return float(p_lo), float(p_hi)


def assert_true_tail_probability_equal_by_binomial(samples, *, threshold: float, false_fail_rate: float,
                                                   what: str) -> None:
    """Fail unless the number of |samples| beyond ``threshold`` (claimed iid N(0, 1), so each beyond it with
    probability p = 2 Phi(-threshold)) lies within the two-sided Binomial(n, p) acceptance region at
    ``false_fail_rate``. False-failure rate: at most ``false_fail_rate``. Power: a true tail probability
    outside :func:`min_tail_probabilities_detectable_by_binomial` fails with probability >= 1 - false_pass_rate
    (noise truncated at the threshold has none beyond it)."""
    __tracebackhide__ = True
    x = np.asarray(samples, dtype=np.float64).ravel()
    n, p = x.size, float(2 * _st.norm.sf(threshold))
    p_lo, p_hi = min_tail_probabilities_detectable_by_binomial(n, p, false_fail_rate=false_fail_rate,
                                                               false_pass_rate=FALSE_PASS_RATE)
    _spend("assert_true_tail_probability_equal_by_binomial", n, false_fail_rate, p_lo, p_hi)
    k = int(np.sum(~(np.abs(x) <= threshold)))
    k_lo, k_hi = _binomial_acceptance(n, p, false_fail_rate)
    if not k_lo <= k <= k_hi:
        raise AssertionError(
            f"{what}: {k} of {n} standardized draws lie beyond +-{threshold:g}, outside [{k_lo}, {k_hi}] (Binomial(n, "
            f"{p:.4g}), false-failure rate {fmt_rate(false_fail_rate)}): the noise's tails are not N(0, 1)'s "
            f"(truncated or clipped noise has none there). "
            + _detects(f"a tail probability of {p_lo:.2g} or less, or {p_hi:.2g} or more (N(0, 1): {p:.4g})", n))
