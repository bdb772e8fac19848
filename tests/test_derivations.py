"""Tests for derivations/: SymPy closed forms versus float64 oracles and SciPy."""
import subprocess
import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy import integrate, stats

import derivations
from derivations import Derivation
from derivations.elbo import elbo, kl_gaussians, log_marginal, posterior

ROOT = Path(__file__).resolve().parents[1]
NAMES = list(derivations.ALL)

# Sampling ranges by symbol name; default: positive symbols in (0.2, 3), others in (-3, 3).
DOMAINS = {"bernoulli.log_likelihood": {"x": (0.0, 1.0), "l": (-6.0, 6.0)},
           "categorical.kl_uniform": {"q": (0.0, 1.0), "Y": (2.0, 12.0)},
           "categorical.enumerated_elbo": {"q": (0.01, 0.99)}}


def random_args(d: Derivation, rng, size=200):
    args = []
    for s in d.symbols:
        low, high = DOMAINS.get(d.name, {}).get(s.name, (0.2, 3.0) if s.is_positive else (-3.0, 3.0))
        args.append(rng.uniform(low, high, size))
    return args


def kl(qm, qv, pm, pv):
    return derivations.KL.oracle(qm, qv, pm, pv)


def random_spd(rng, k):
    m = rng.normal(size=(k, k))
    return m @ m.T / k + 0.1 * np.eye(k)


# ------------------------------------------------------------------ generic
@pytest.mark.parametrize("name", NAMES)
def test_oracle_matches_lambdified_expr(name):
    d = derivations.get(name)
    args = random_args(d, np.random.default_rng(0))
    np.testing.assert_allclose(d.oracle(*args), d.lambdify()(*args), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_derivation_shape(name):
    d = derivations.get(name)
    assert isinstance(d, Derivation) and d.name == name
    assert all(isinstance(s, sp.Symbol) for s in d.symbols)
    assert d.expr.free_symbols <= set(d.symbols)
    assert d.steps and all(isinstance(t, str) and isinstance(e, sp.Basic) for t, e in d.steps)
    assert name in d.pretty() and d.latex()
    # float64 out, whatever comes in; elementwise broadcasting
    args = random_args(d, np.random.default_rng(1), size=3)
    out = d.oracle(*[a.astype(np.float32) for a in args])
    assert out.dtype == np.float64 and out.shape == (3,)
    col = [args[0][:, None]] + [a[None, :] for a in args[1:]]
    assert d.oracle(*col).shape == (3, 3)
    assert np.ndim(d.oracle(*[float(a[0]) for a in args])) == 0


def test_lazy_names_are_cached_objects():
    assert derivations.KL is derivations.kl() is derivations.gaussian.KL
    assert derivations.LOG_DENSITY is derivations.gaussian.log_density()
    assert derivations.KL_STANDARD is derivations.gaussian.kl_standard()
    assert derivations.LOG_LIKELIHOOD is derivations.bernoulli.LOG_LIKELIHOOD
    assert derivations.IDENTITY is derivations.elbo.IDENTITY is derivations.elbo_identity()
    with pytest.raises(AttributeError):
        derivations.NOT_A_DERIVATION


# --------------------------------------------------------------- log density
@pytest.mark.parametrize("m, v", [(0.0, 1.0), (1.5, 0.01), (-3.0, 25.0)])
def test_log_density_normalised_and_matches_scipy(m, v):
    oracle = derivations.LOG_DENSITY.oracle
    total, _ = integrate.quad(lambda x: np.exp(oracle(x, m, v)), -np.inf, np.inf)
    assert total == pytest.approx(1.0, rel=1e-10)
    x = np.linspace(m - 10, m + 10, 41)
    np.testing.assert_allclose(oracle(x, m, v), stats.norm.logpdf(x, m, np.sqrt(v)), rtol=1e-12)


def test_log_density_symbolic_form():
    x, m, v = derivations.LOG_DENSITY.symbols
    target = -(sp.log(2 * sp.pi) + sp.log(v) + (x - m) ** 2 / v) / 2
    assert sp.simplify(derivations.LOG_DENSITY.expr - target) == 0


# ------------------------------------------------------------------------ KL
KL_CASES = [(0.0, 1.0, 0.0, 1.0), (1.0, 0.5, -0.3, 2.0), (-2.0, 3.0, 1.0, 0.2),
            (0.1, 0.01, 0.0, 1.0), (5.0, 4.0, 4.0, 9.0)]


@pytest.mark.parametrize("qm, qv, pm, pv", KL_CASES)
def test_kl_matches_quadrature(qm, qv, pm, pv):
    def integrand(x):
        lq = stats.norm.logpdf(x, qm, np.sqrt(qv))
        return np.exp(lq) * (lq - stats.norm.logpdf(x, pm, np.sqrt(pv)))

    sd = np.sqrt(qv)
    numeric, _ = integrate.quad(integrand, qm - 40 * sd, qm + 40 * sd, points=[qm],
                                epsabs=1e-14, epsrel=1e-12, limit=200)
    assert kl(qm, qv, pm, pv) == pytest.approx(numeric, rel=1e-8, abs=1e-12)


def test_kl_nonnegative_and_zero_iff_equal():
    rng = np.random.default_rng(2)
    qm, pm = rng.normal(size=(2, 1000))
    qv, pv = rng.uniform(0.01, 5, size=(2, 1000))
    assert np.all(kl(qm, qv, pm, pv) > 0)
    assert np.all(kl(qm, qv, qm, qv) == 0)
    for eps in (1e-3, 1e-6):
        assert kl(0.0, 1.0, eps, 1.0) > 0
        assert kl(0.0, 1.0 + eps, 0.0, 1.0) > 0


def test_kl_symbolic_form():
    qm, qv, pm, pv = derivations.KL.symbols
    target = (sp.log(pv / qv) + (qv + (qm - pm) ** 2) / pv - 1) / 2
    assert sp.simplify(sp.expand_log(derivations.KL.expr - target, force=True)) == 0


def test_kl_standard_is_kl_against_unit_normal():
    rng = np.random.default_rng(3)
    mu, sigma = rng.normal(size=100), rng.uniform(0.05, 3, size=100)
    np.testing.assert_allclose(derivations.KL_STANDARD.oracle(mu, sigma),
                               kl(mu, sigma**2, 0.0, 1.0), rtol=1e-12, atol=1e-15)
    m, s = derivations.KL_STANDARD.symbols
    assert sp.simplify(derivations.KL_STANDARD.expr - ((s**2 + m**2 - 1) / 2 - sp.log(s))) == 0


def test_kl_diagonal_is_sum_over_dimensions():
    rng = np.random.default_rng(4)
    qm, pm = rng.normal(size=(2, 6, 4))
    qv, pv = rng.uniform(0.1, 3, size=(2, 6, 4))
    full = kl_gaussians(qm, qv[..., None] * np.eye(4), pm, pv[..., None] * np.eye(4))
    np.testing.assert_allclose(full, kl(qm, qv, pm, pv).sum(-1), rtol=1e-12)


# ----------------------------------------------------------------- Bernoulli
def test_bernoulli_matches_naive_formula():
    ll = derivations.LOG_LIKELIHOOD.oracle
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(0, 1, 300), np.zeros(50), np.ones(50)])
    l = rng.uniform(-8, 8, x.size)
    p = 1 / (1 + np.exp(-l))
    naive = x * np.log(p) + (1 - x) * np.log(1 - p)
    np.testing.assert_allclose(ll(x, l), naive, rtol=1e-9)


def test_bernoulli_extreme_logits_exact():
    ll = derivations.LOG_LIKELIHOOD.oracle
    x = np.array([1.0, 0.0, 1.0, 0.0, 0.5, 0.25])
    l = np.array([-1e4, 1e4, 1e4, -1e4, 1e4, -1e4])
    out = ll(x, l)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out, [-1e4, -1e4, 0.0, 0.0, -5e3, -2.5e3])


def test_bernoulli_high_precision():
    ll = derivations.LOG_LIKELIHOOD.oracle
    mpmath.mp.dps = 50
    for x in (0.0, 0.3, 1.0):
        for l in (-700.0, -40.0, -1.0, 0.0, 1e-8, 2.5, 40.0, 700.0):
            exact = float(mpmath.mpf(x) * l - mpmath.log1p(mpmath.exp(l)))
            assert ll(x, l) == pytest.approx(exact, rel=1e-13, abs=1e-300)


# ---------------------------------------------------------------------- ELBO
def model(rng, k, n):
    return rng.normal(size=(n, k)), rng.normal(size=n), float(rng.uniform(0.1, 2))


@pytest.mark.parametrize("k, n", [(1, 1), (2, 3), (3, 5), (4, 2)])
def test_log_marginal_matches_scipy(k, n):
    rng = np.random.default_rng(10 + k)
    A, b, s2 = model(rng, k, n)
    X = rng.normal(size=(7, n))
    ref = stats.multivariate_normal(b, A @ A.T + s2 * np.eye(n)).logpdf(X)
    np.testing.assert_allclose(log_marginal(X, A, b, s2), ref, rtol=1e-12)
    assert np.ndim(log_marginal(X[0], A, b, s2)) == 0
    assert log_marginal(X[0], A, b, s2) == pytest.approx(ref[0], rel=1e-12)


@pytest.mark.parametrize("x, a, b, s2", [(0.3, 1.2, -0.5, 0.4), (-2.0, 0.1, 1.0, 2.0), (4.0, 3.0, 0.0, 0.05)])
def test_log_marginal_1d_matches_quadrature(x, a, b, s2):
    def joint(z):
        return stats.norm.pdf(x, a * z + b, np.sqrt(s2)) * stats.norm.pdf(z)

    zc = a * (x - b) / (a * a + s2)  # posterior mean: where the integrand peaks
    numeric, _ = integrate.quad(joint, zc - 40, zc + 40, points=[zc], epsabs=0, epsrel=1e-12)
    expected = log_marginal([x], [[a]], [b], s2)
    assert expected == pytest.approx(np.log(numeric), rel=1e-9)
    assert derivations.IDENTITY.oracle(x, a, b, s2) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("k, n", [(1, 1), (2, 3), (3, 5), (4, 2)])
def test_posterior_matches_gaussian_conditioning(k, n):
    rng = np.random.default_rng(20 + k)
    A, b, s2 = model(rng, k, n)
    X = rng.normal(size=(5, n))
    mean, cov = posterior(X, A, b, s2)
    gain = A.T @ np.linalg.inv(A @ A.T + s2 * np.eye(n))  # Cov(z, x) Var(x)^-1
    np.testing.assert_allclose(cov, np.eye(k) - gain @ A, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mean, (X - b) @ gain.T, rtol=1e-10, atol=1e-12)
    assert posterior(X[0], A, b, s2)[0].shape == (k,)


@pytest.mark.parametrize("k, n", [(1, 1), (2, 3), (3, 5), (4, 2)])
def test_elbo_identity_numeric(k, n):
    rng = np.random.default_rng(30 + k)
    A, b, s2 = model(rng, k, n)
    X = rng.normal(size=(6, n))
    qm = rng.normal(size=(6, k))
    qcov = np.stack([random_spd(rng, k) for _ in range(6)])
    pm, pcov = posterior(X, A, b, s2)
    lhs = log_marginal(X, A, b, s2)
    gap = kl_gaussians(qm, qcov, pm, pcov)
    np.testing.assert_allclose(elbo(X, A, b, s2, qm, qcov) + gap, lhs, rtol=1e-10, atol=1e-10)
    assert np.all(gap > 0)
    # unbatched q, and q = posterior makes the bound tight
    assert elbo(X[0], A, b, s2, qm[0], qcov[0]) + gap[0] == pytest.approx(lhs[0], rel=1e-10)
    np.testing.assert_allclose(elbo(X, A, b, s2, pm, pcov), lhs, rtol=1e-10, atol=1e-10)


def test_elbo_identity_symbolic_residual_is_zero():
    residual = [e for t, e in derivations.IDENTITY.steps if "simplifies to" in t]
    assert residual == [0]
    x, a, b, s2 = derivations.IDENTITY.symbols
    log_px = derivations.LOG_DENSITY.expr.subs(dict(zip(derivations.LOG_DENSITY.symbols, (x, b, a**2 + s2))))
    assert sp.simplify(derivations.IDENTITY.expr - log_px) == 0


# ---------------------------------------------------------------------- CLI
def test_python_m_derivations_prints_everything():
    result = subprocess.run([sys.executable, "-m", "derivations"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for name in NAMES:
        assert name in result.stdout
    assert "LaTeX:" in result.stdout


# --------------------------------------------------------------- categorical (SSVAE, GMVAE)
def test_kl_uniform_matches_scipy_entropy():
    """sum_y of the per-class term = scipy's relative entropy from the uniform distribution; 0 log 0 = 0."""
    rng = np.random.default_rng(4)
    for classes in (2, 3, 10):
        q = rng.dirichlet(np.ones(classes), size=20)
        q[0, 0] = 0.0
        q[0] /= q[0].sum()
        got = derivations.get("categorical.kl_uniform").oracle(q, classes).sum(-1)
        np.testing.assert_allclose(got, stats.entropy(q, np.full(classes, 1 / classes), axis=-1), rtol=1e-12)
    assert derivations.get("categorical.kl_uniform").oracle(np.full(4, 0.25), 4).sum() == 0


def test_enumerated_elbo_matches_quadrature():
    """The identity against the joint log-ratio summed over y and integrated over z by quadrature."""
    d = derivations.get("categorical.enumerated_elbo")
    q, (m1, v1), (m2, v2), r1, r2 = 0.3, (0.4, 0.7), (-1.1, 1.9), 2.5, 4.0

    def z_part(m, v, r):
        f = lambda z: stats.norm.pdf(z, m, np.sqrt(v)) * (stats.norm.logpdf(z) - stats.norm.logpdf(z, m, np.sqrt(v)))  # noqa: E731
        return -r + integrate.quad(f, -30, 30, epsabs=1e-13)[0]

    joint = q * (z_part(m1, v1, r1) + np.log(0.5 / q)) + (1 - q) * (z_part(m2, v2, r2) + np.log(0.5 / (1 - q)))
    np.testing.assert_allclose(d.oracle(q, m1, v1, m2, v2, r1, r2), joint, rtol=1e-10)


def test_mixture_log_density_matches_scipy_and_is_stable_far_away():
    d = derivations.get("categorical.mixture_log_density")
    z, m1, v1, m2, v2 = 0.3, -1.0, 0.5, 2.0, 1.5
    direct = np.log(0.5 * stats.norm.pdf(z, m1, np.sqrt(v1)) + 0.5 * stats.norm.pdf(z, m2, np.sqrt(v2)))
    np.testing.assert_allclose(d.oracle(z, m1, v1, m2, v2), direct, rtol=1e-13)
    far = d.oracle(0.0, 1e3, 1.0, 2e3, 1.0)  # both densities underflow; the log-sum-exp form does not
    np.testing.assert_allclose(far, -0.5 * np.log(2 * np.pi) - 0.5e6 - np.log(2), rtol=1e-13)


def test_the_checks_oracles_are_the_derivations_own_closed_forms():
    """verify/oracles.py calls these numpy functions without building the derivations (no SymPy at
    check time): they must be the very oracles the derivations prove against their closed forms."""
    from derivations import bernoulli, categorical, gaussian, numeric

    assert gaussian.LOG_DENSITY.oracle is numeric.log_density_oracle
    assert gaussian.KL.oracle is numeric.kl_oracle
    assert bernoulli.LOG_LIKELIHOOD.oracle is numeric.log_likelihood_oracle
    assert categorical.KL_UNIFORM.oracle is numeric.kl_uniform_term


def test_the_checks_oracles_import_no_sympy():
    """Importing verify.oracles (and so derivations.numeric) leaves SymPy unimported."""
    import subprocess
    import sys

    code = "import sys, verify.oracles; assert 'sympy' not in sys.modules, 'sympy imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__('pathlib').Path(__file__).parents[1]))
