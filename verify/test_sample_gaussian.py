"""sample_gaussian(m, v): z = m + sqrt(v) eps, eps ~ N(0, I), reparameterized."""
import numpy as np
import pytest
import torch

from verify.assertions import as_numpy, assert_close, check_tensor, fmt
from verify.stats import (ALPHA_CHECK, assert_independent_standard_pairs_by_dkwm, assert_true_cdf_equal_by_dkwm,
                          assert_true_tail_probability_equal_by_binomial, assert_true_variance_equal_by_chi2)
from verify.contract import grades

pytestmark = grades('sample_gaussian')


def _params(rng, shape, device, dtype=torch.float64, log10_v=(-3, 3)):
    m = torch.tensor(rng.uniform(-5, 5, size=shape), dtype=dtype, device=device)
    v = torch.tensor(10.0 ** rng.uniform(*log10_v, size=shape), dtype=dtype, device=device)
    return m, v


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(7,), (5, 3), (2, 3, 4)], ids=["7", "5x3", "2x3x4"])
def test_sample_gaussian_preserves_shape_dtype_device(impl, device, rng, dtype, shape):
    m, v = _params(rng, shape, device, dtype)
    z = impl.sample_gaussian(m, v)
    check_tensor(z, name=f"sample_gaussian(m, v) with m, v of shape {shape} and dtype {dtype}", shape=shape,
                 dtype=dtype, device=device.type)
    m, v = torch.full_like(m, 100.0), torch.full_like(v, 0.01)
    eps = as_numpy((impl.sample_gaussian(m, v) - m) / v.sqrt())
    if not np.all(np.isfinite(eps)) or np.abs(eps).max() > 8 or np.all(eps == eps.ravel()[0]):
        raise AssertionError(f"sample_gaussian(m = 100, v = 0.01) of shape {shape}: the standardized draws "
                             f"(z - m)/sqrt(v) are {fmt(eps)}: not draws of N(m, v) (N(0, 1) noise stays within 8 with "
                             "probability 1 - 1e-12, and varies; a placeholder returning m or a constant is no sample)")


def test_sample_gaussian_reparameterized_gradients(impl, device, rng):
    """Replay: with eps = (z - m)/sqrt(v), dz/dm = 1 and dz/dv = eps / (2 sqrt v), exactly."""
    m, v = _params(rng, (64, 5), device)
    m.requires_grad_(True)
    v.requires_grad_(True)
    z = impl.sample_gaussian(m, v)
    if not isinstance(z, torch.Tensor) or z.grad_fn is None:
        raise AssertionError(
            "sample_gaussian: the sample does not depend differentiably on m and v (no grad_fn): it is not "
            "reparameterized. Use z = m + sqrt(v) * eps with eps drawn independently of m and v "
            "(not .sample(), .detach() or torch.normal(m, s))."
        )
    w = torch.tensor(rng.normal(size=(64, 5)), dtype=torch.float64, device=device)
    gm, gv = torch.autograd.grad((z * w).sum(), (m, v), allow_unused=True)
    eps = (z.detach() - m.detach()) / v.detach().sqrt()
    inputs = "Inputs: m uniform in [-5, 5], v log-uniform in [1e-3, 1e3], shape (64, 5), float64."
    for g, name, expected in ((gm, "m", w), (gv, "v", w * eps / (2 * v.detach().sqrt()))):
        if g is None or not torch.any(g != 0):
            raise AssertionError(
                f"sample_gaussian: the gradient with respect to {name} is {'missing' if g is None else 'zero'}; "
                "the sample must be m + sqrt(v) * eps (torch.normal(m, s) returns zero gradients)."
            )
        assert_close(g, as_numpy(expected),
                     what=f"sample_gaussian: d(sum w*z)/d{name} by replay of eps = (z - m)/sqrt(v)", inputs=inputs,
                     rtol=1e-8, atol=1e-10)


@pytest.mark.stochastic
def test_sample_gaussian_standardized_noise_is_standard_normal(impl, device, rng):
    """(z - m)/sqrt(v) ~ N(0, 1), with m in [-5, 5] and v over 12 decades (1e-6 to 1e6); n = 2,500,000 draws,
    three exact tests at a third of the rate each: DKW (the whole distribution), chi-square (the variance),
    binomial (the count beyond 3 standard deviations, 2 Phi(-3) = 0.0027 of the draws).

    False-failure rate: 1e-6 (3.3e-7 each). Power, each with probability at least 1 - 1e-6: a sup-CDF error of
    0.0035 (a standard deviation 1.4% off), a variance 0.89% off either way (so a 1% variance error is caught),
    and a probability beyond 3 of 0.0024 or less, or 0.003 or more (noise truncated at 3 has none).
    """
    m, v = _params(rng, (2500, 1000), device, log10_v=(-6, 6))
    z = impl.sample_gaussian(m, v)
    check_tensor(z, name="sample_gaussian", shape=(2500, 1000), dtype=torch.float64)
    eps = as_numpy((z - m) / v.sqrt())
    what = "sample_gaussian: standardized noise (z - m)/sqrt(v) for v in [1e-6, 1e6], 2,500,000 draws"
    assert_true_cdf_equal_by_dkwm(eps, false_fail_rate=ALPHA_CHECK / 3, what=what)
    assert_true_variance_equal_by_chi2(eps, false_fail_rate=ALPHA_CHECK / 3, what=what)
    assert_true_tail_probability_equal_by_binomial(eps, threshold=3.0, false_fail_rate=ALPHA_CHECK / 3, what=what)


def test_sample_gaussian_fresh_noise_and_global_rng_stream(impl, device):
    """Two consecutive calls draw different noise (no module-level cache, no reseeding inside), and the global
    RNG stream after a call still depends on its state before it (a function that reseeds it makes every later
    draw of the program the same). A submission drawing from a generator of its own passes both."""
    m = torch.zeros(50, 7, dtype=torch.float64, device=device)
    v = torch.ones_like(m)
    after = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        first, second = impl.sample_gaussian(m, v), impl.sample_gaussian(m, v)
        after.append(torch.randn(8, dtype=torch.float64))
        if torch.equal(first, second):
            raise AssertionError("sample_gaussian: two consecutive calls with the same m and v returned the same draws "
                                 f"{fmt(as_numpy(first))}: each call must draw fresh noise (a module-level cache of the "
                                 "noise, or torch.manual_seed(...) inside the function, repeats it)")
    if torch.equal(after[0], after[1]):
        raise AssertionError("sample_gaussian reseeds torch's global RNG: after it is called, torch.randn draws the same "
                             f"numbers {fmt(as_numpy(after[0]))} whatever the seed before the call. A function must "
                             "never call torch.manual_seed (the caller's experiment loses its randomness)")


@pytest.mark.stochastic
@pytest.mark.parametrize("axis", ["batch", "elements"])
def test_sample_gaussian_noise_independent(impl, device, axis):
    """Noise independent across the batch (rows i, i + B/2) and across elements (cols j, j + D/2).

    False-failure rate: 1e-6 (80,000 pairs). Power: detects shared noise always, and a correlation of
    0.15 between paired noise values with probability at least 1 - 1e-6.
    """
    m = torch.zeros(4000, 40, dtype=torch.float64, device=device)
    z = as_numpy(impl.sample_gaussian(m, torch.ones_like(m)))
    if axis == "batch":
        a, b = z[:2000], z[2000:]
    else:
        a, b = z[:, :20], z[:, 20:]
    assert_independent_standard_pairs_by_dkwm(
        a, b, false_fail_rate=ALPHA_CHECK,
        what=f"sample_gaussian: noise of paired {axis} (m = 0, v = 1, shape (4000, 40))")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_sample_gaussian_extreme_variances(impl, device, rng, dtype):
    """Variances from 1e-6 to 1e6: finite samples at the right scale."""
    v = torch.tensor(10.0 ** np.linspace(-6, 6, 13), dtype=dtype, device=device).repeat(200, 1)
    m = torch.full_like(v, 3.0)
    z = impl.sample_gaussian(m, v)
    check_tensor(z, name="sample_gaussian", shape=tuple(v.shape), dtype=dtype, device=device.type)
    eps = as_numpy((z.double() - m.double()) / v.double().sqrt())
    if not np.all(np.isfinite(eps)) or np.abs(eps).max() > 8:
        col = np.argmax(np.max(np.abs(np.nan_to_num(eps, nan=np.inf)), axis=0))
        raise AssertionError(
            f"sample_gaussian: with v = {float(v[0, col]):.0e} ({dtype}) the standardized noise (z - m)/sqrt(v) "
            f"reaches {np.abs(eps[:, col]).max():.3g} (N(0, 1) noise stays within 8 with probability 1 - 1e-12)"
        )
