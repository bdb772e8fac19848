"""The suite's statistical budget: per check <= 1e-6, whole suite <= 1e-4; calibration over seeds.

Every stochastic check makes its comparisons through the ``assert_*_by_*`` helpers of
verify/stats.py, never with a radius of its own, and its docstring states the false-failure rate it
spends and its power, as the helpers compute them (the checks are run on the reference with the
helpers' ledger open, so the numbers are those of the sizes the checks really use).
"""
import ast
import math
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as st

from conftest import REPO, VERIFY
from verify import stats
from verify.stats import (
    ALPHA_CHECK,
    ALPHA_SUITE,
    FALSE_PASS_RATE,
    dkw_radius,
    dkw_sample_size,
    fmt_rate,
    hoeffding_radius,
    ks_distance,
)

CALIBRATION_SEEDS = 200
DOCS = REPO / "docs" / "statistics.md"
HELPER = re.compile(r"\b(assert_\w+_by_(?:dkwm|hoeffding|chi2|binomial))\s*\(")
RAW_BOUNDS = re.compile(r"\b(hoeffding_radius|dkw_radius|dkw_sample_size|ks_distance)\s*\(")


def _stochastic_check_ids():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(VERIFY), "-m", "stochastic", "--collect-only", "-q", "-o", "addopts=",
         "-p", "no:cacheprovider"], cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    return [line for line in proc.stdout.splitlines() if "::" in line]


def _is_stochastic(decorator) -> bool:
    return isinstance(decorator, ast.Attribute) and decorator.attr == "stochastic"


def _stochastic_functions():
    """(file, function name, source) of every check marked ``stochastic`` in verify/test_*.py."""
    found = []
    for path in sorted(VERIFY.glob("test_*.py")):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef) and any(_is_stochastic(d) for d in node.decorator_list):
                found.append((path.name, node.name, ast.get_source_segment(text, node)))
    return found


def test_suite_false_failure_budget():
    ids = _stochastic_check_ids()
    assert len(ids) >= 8, ids
    assert ALPHA_CHECK <= 1e-6
    assert len(ids) * ALPHA_CHECK <= ALPHA_SUITE, f"{len(ids)} stochastic checks x {ALPHA_CHECK} > {ALPHA_SUITE}"


def test_bounds_are_the_stated_ones():
    # DKW (Massart): 2 exp(-2 n eps^2) = alpha at the radius; the sample-size helper inverts it.
    n, a = 10000, 1e-6
    eps = dkw_radius(n, a)
    assert 2 * math.exp(-2 * n * eps**2) == pytest.approx(a)
    assert dkw_sample_size(eps, a) == n
    # Hoeffding: exp(-2 n t^2 / R^2) = a one-sided, 2 exp(...) = a two-sided
    t = hoeffding_radius(n, 12.0, a)
    assert math.exp(-2 * n * t**2 / 144) == pytest.approx(a)
    t2 = hoeffding_radius(n, 12.0, a, two_sided=True)
    assert 2 * math.exp(-2 * n * t2**2 / 144) == pytest.approx(a)
    assert ks_distance([0.0]) == pytest.approx(0.5)  # one sample at the median


def test_power_is_the_stated_one():
    """Power = the fail radius plus the pass radius (DKW: both two-sided; Hoeffding: the pass side
    one-sided); min_num_samples_* invert them; the scale and correlation powers match brute force."""
    n, a, b, r = 20000, 2.5e-7, FALSE_PASS_RATE, 12.0
    rates = dict(false_fail_rate=a, false_pass_rate=b)
    d = stats.min_discrepancy_of_true_cdf_detectable_by_dkwm(n, **rates)
    assert d == pytest.approx(math.sqrt(math.log(2 / a) / (2 * n)) + math.sqrt(math.log(2 / b) / (2 * n)))
    assert stats.min_num_samples_for_true_cdf_by_dkwm(d, **rates) == n
    for two_sided in (False, True):
        m = stats.min_discrepancy_of_true_mean_detectable_by_hoeffding(n, value_range=r, two_sided=two_sided, **rates)
        assert m == pytest.approx(hoeffding_radius(n, r, a, two_sided) + hoeffding_radius(n, r, b))
        assert stats.min_num_samples_for_true_mean_by_hoeffding(m, value_range=r, two_sided=two_sided, **rates) == n
        pair = stats.min_discrepancy_of_two_sample_means_detectable_by_hoeffding(
            n, value_range=r, two_sided=two_sided, **rates)
        assert pair == pytest.approx(2 * m)
    t = np.linspace(0, 10, 200001)
    for s in (1.01, 1.3, 3.0):
        brute = np.max(np.abs(st.norm.cdf(t) - st.norm.cdf(t / s)))
        assert stats.sup_cdf_distance_of_normal_scale(s) == pytest.approx(brute, abs=1e-9)
        assert stats.sup_cdf_distance_of_normal_scale(1 / s) == pytest.approx(brute, abs=1e-9)
    s = stats.min_scale_factor_of_standard_normal_detectable_by_dkwm(n, **rates)
    assert stats.sup_cdf_distance_of_normal_scale(s) == pytest.approx(d, rel=1e-9)
    rho = stats.min_correlation_of_standard_pairs_detectable_by_dkwm(n, **rates)
    half = stats.min_discrepancy_of_true_cdf_detectable_by_dkwm(n, false_fail_rate=a / 2, false_pass_rate=b)
    assert stats.sup_cdf_distance_of_normal_scale(math.sqrt(1 - rho)) == pytest.approx(half, rel=1e-9)


def test_deviations_at_the_stated_power_are_detected():
    """Draws off by the stated power fail the helpers (on a few seeds: the bound says they fail
    with probability at least 1 - 1e-6)."""
    n, rate, r = 20000, ALPHA_CHECK, 12.0
    rates = dict(false_fail_rate=rate, false_pass_rate=FALSE_PASS_RATE)
    s = stats.min_scale_factor_of_standard_normal_detectable_by_dkwm(n, **rates)
    rho = stats.min_correlation_of_standard_pairs_detectable_by_dkwm(n, **rates)
    shift = stats.min_discrepancy_of_true_mean_detectable_by_hoeffding(n, value_range=r, two_sided=False, **rates)
    for seed in range(3):
        g = np.random.default_rng(seed)
        for scale in (s, 1 / s):
            with pytest.raises(AssertionError, match="not distributed as N"):
                stats.assert_true_cdf_equal_by_dkwm(scale * g.normal(size=n), false_fail_rate=rate, what="scaled")
        a = g.normal(size=n)
        b = rho * a + math.sqrt(1 - rho * rho) * g.normal(size=n)
        with pytest.raises(AssertionError, match="correlation"):
            stats.assert_independent_standard_pairs_by_dkwm(a, b, false_fail_rate=rate, what="correlated")
        x = g.uniform(-r, 0, size=n)  # in an interval of length r, true mean -r/2: ``shift`` above the bound
        with pytest.raises(AssertionError, match="exceeds the upper bound"):
            stats.assert_true_mean_at_most_by_hoeffding(float(x.mean()), bound=-r / 2 - shift, n=n, value_range=r,
                                                        false_fail_rate=rate, what="shifted")


def test_every_stochastic_check_calls_a_helper():
    checks = _stochastic_functions()
    assert len(checks) >= 7, checks
    helpers = {name for name in dir(stats) if HELPER.match(name + "(")}
    for path, name, source in checks:
        called = set(HELPER.findall(source))
        assert called, f"{path}::{name} is marked stochastic but calls no assert_*_by_* helper of verify/stats.py"
        assert called <= helpers, f"{path}::{name} calls {called - helpers}, not helpers of verify/stats.py"


def test_no_radius_computed_outside_stats():
    for path in sorted(VERIFY.glob("test_*.py")):
        lines = [f"{path.name}:{i}: {line.strip()}" for i, line in enumerate(path.read_text().splitlines(), 1)
                 if RAW_BOUNDS.search(line)]
        assert not lines, "radii and distances belong to the helpers of verify/stats.py:\n" + "\n".join(lines)


class _LedgerPlugin:
    """Opens the helpers' ledger around each check's call; keeps what it spent and its docstring."""

    def __init__(self):
        self.spent, self.docs, self.outcomes = {}, {}, {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        with stats.ledger() as spent:
            yield
        self.spent[item.nodeid] = list(spent)
        self.docs[item.nodeid] = item.function.__doc__ or ""

    def pytest_runtest_logreport(self, report):
        if report.when == "call":
            self.outcomes[report.nodeid] = report.outcome


@pytest.fixture(scope="module")
def ledger_run():
    plugin = _LedgerPlugin()
    code = pytest.main([str(VERIFY), "-m", "stochastic", "-q", "-p", "no:cacheprovider", "-p", "no:unraisableexception",
                        "--no-header", "-o", "addopts="], plugins=[plugin])
    assert code == 0 and plugin.outcomes and set(plugin.outcomes.values()) == {"passed"}, plugin.outcomes
    return plugin


def _states(doc: str, number: str) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", doc) is not None


def test_each_stochastic_check_spends_at_most_its_budget_and_states_rate_and_power(ledger_run):
    """The docstring of each check, and its row in docs/statistics.md, state the false-failure rate it
    spends and every power its helpers compute (to two significant digits)."""
    assert len(ledger_run.spent) >= 8, list(ledger_run.spent)
    rows = [line for line in DOCS.read_text().splitlines() if line.startswith("| `test_")]
    for nodeid, spent in ledger_run.spent.items():
        assert spent, f"{nodeid} called no assert_*_by_* helper"
        total = sum(s.false_fail_rate for s in spent)
        assert total <= ALPHA_CHECK * (1 + 1e-12), f"{nodeid} spends {total:g} > {ALPHA_CHECK:g}: {spent}"
        doc = " ".join(ledger_run.docs[nodeid].split())
        function = nodeid.split("::")[-1].split("[")[0]
        row = next((line for line in rows if line.startswith(f"| `{function}`")), "")
        assert row, f"docs/statistics.md has no row for {function}"
        assert f"False-failure rate: {fmt_rate(total)}" in doc and _states(row, fmt_rate(total)), (
            f"{nodeid}: its docstring must state 'False-failure rate: {fmt_rate(total)}' (the sum over {spent}), "
            "and its row in docs/statistics.md that rate")
        for s in spent:
            for power in s.powers:
                for text, where in ((doc, "docstring"), (row, "row in docs/statistics.md")):
                    assert _states(text, f"{power:.2g}"), (
                        f"{nodeid}: the {where} does not state the power {power:.2g} of {s.helper} at n = {s.n}, "
                        f"false-failure rate {fmt_rate(s.false_fail_rate)} (false-pass rate "
                        f"{fmt_rate(FALSE_PASS_RATE)})")


@pytest.mark.slow
def test_stochastic_checks_never_fail_on_the_reference_over_200_seeds():
    """Every stochastic check on the reference under 200 fresh seeds: zero failures expected
    (at the stated rate the chance of any failure here is below 200 x 1e-4 = 2%)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(VERIFY), "-m", "stochastic", "--verify-seed", "1000",
         "--verify-seed-count", str(CALIBRATION_SEEDS), "-q", "-o", "addopts=", "-p", "no:cacheprovider"],
        cwd=REPO, capture_output=True, text=True, timeout=3600,
    )
    tail = proc.stdout[-3000:]
    passed = int(re.search(r"(\d+) passed", tail).group(1)) if re.search(r"(\d+) passed", tail) else 0
    assert proc.returncode == 0 and "failed" not in tail.splitlines()[-1], tail
    assert passed >= 8 * CALIBRATION_SEEDS, tail
