"""Checks of ``affine_flow_log_prob(x, scale, shift)``: the log density of x = a z + b, z ~ N(0, 1).

By change of variables it is log N(x; b, a^2) (derivations/affine_flow.py). The checks compare it
with the derivation's float64 oracle on generated inputs, integrate its density with the trapezoid rule on one
grid of points in a single call (it must be 1: a density missing or doubling the Jacobian factor 1/|a|
integrates to |a| or 1/|a|) and compare it with ``scipy.stats.norm(b, |a|)``.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from verify import oracles
from verify.assertions import (assert_close, assert_gradients_match_oracle, assert_total_mass_one, check_tensor, fmt,
                               trapezoid_mass)
from verify.contract import grades
from verify.lazy import OnFirstUse

stats, derivation = OnFirstUse("scipy.stats"), OnFirstUse("derivations.affine_flow")  # imported when first used

pytestmark = grades('affine_flow_log_prob')

finite = dict(allow_nan=False, allow_infinity=False)
locations = st.floats(-50.0, 50.0, **finite)
scales = st.builds(lambda m, neg: -m if neg else m, st.floats(0.01, 100.0, **finite), st.booleans())

# (a, b): the homework's x = 1.5 z + 3, and a negative scale (the same density as |a|).
FLOWS = [pytest.param(1.5, 3.0, id="homework_a1.5_b3"), pytest.param(-0.5, -2.0, id="negative_scale")]


def _log_prob(impl, x, a, b, device):
    """impl.affine_flow_log_prob on float64 tensors, as a numpy array."""
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64), device=device)
    at = torch.full_like(xt, a)
    bt = torch.full_like(xt, b)
    out = impl.affine_flow_log_prob(xt, at, bt)
    check_tensor(out, name="affine_flow_log_prob", shape=xt.shape, dtype=torch.float64, device=device)
    return out.detach().cpu().numpy()


def _mass_hint(mass, a):
    """Names the usual mistake when the total mass is |a|, 1/|a| or a^2."""
    a = abs(a)
    twice = "the Jacobian factor 1/|a| is counted twice (for a = 1.5: the '(2/3) N(3, 1.5)' answer)"
    for value, why in ((1 / a, twice),
                       (a, "the Jacobian term -log|a| is missing"),
                       (a * a, "the Jacobian term has the wrong sign (+log|a|)"),
                       (1 / (a * a), "the map is inverted (z = a x + b instead of z = (x - b) / a)")):
        if math.isclose(mass, value, rel_tol=1e-4):
            return f" It integrates to {value:.6g}: {why}."
    return ""


@given(x=locations, a=scales, b=locations)
def test_affine_flow_log_prob_matches_derivation(impl, device, x, a, b):
    observed = _log_prob(impl, [x], a, b, device)
    expected = derivation.log_density(np.array([x]), a, b)
    assert_close(observed, expected, what="affine_flow_log_prob vs log N(x; b, a^2) (derivations/affine_flow.py)",
                 inputs=f"Inputs: x = {x!r}, scale = {a!r}, shift = {b!r} (float64).", rtol=1e-10, atol=1e-10)


def _density_grid(a, b):
    """(x, h): a uniform grid with an odd number of points that covers every density the check expects
    to meet: N(b, a^2) and its wrong scalings (widths |a| and 1/|a|, centred at b or, for the inverted
    map z = a x + b, at -b/a), 40 widths max(|a|, 1/|a|, 1) beyond both centres, so that each puts less
    than exp(-800) of its mass outside; spacing h at most min(|a|, 1/|a|, 1) / 2, half the narrowest
    width, where the trapezoid rule's error is below 1e-30 of the mass (and 1e-8 at twice that spacing)."""
    wide, narrow = max(abs(a), 1 / abs(a), 1.0), min(abs(a), 1 / abs(a), 1.0)
    lo, hi = min(b, -b / a) - 40 * wide, max(b, -b / a) + 40 * wide
    n = 2 * math.ceil((hi - lo) / narrow) + 1
    return np.linspace(lo, hi, n), (hi - lo) / (n - 1)


@pytest.mark.parametrize("a, b", FLOWS)
def test_affine_flow_log_prob_density_integrates_to_one(impl, device, a, b):
    """exp(log_prob) integrates to 1 within 1e-6 (the trapezoid rule on a uniform grid, all points in one
    call: :func:`_density_grid`; its error estimate must be below 1e-7, a tenth of the tolerance)."""
    x, step = _density_grid(a, b)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow or a NaN shows in the mass
        mass, error = trapezoid_mass(np.exp(_log_prob(impl, x, a, b, device)), (step,))
    assert_total_mass_one(mass, what="affine_flow_log_prob: exp(log_prob)",
                          how=f"over [{x[0]:.4g}, {x[-1]:.4g}] (trapezoid rule on {x.size} points, step {step:.3g}; "
                              f"error estimate {error:.2g})",
                          converged=error <= 1e-7, hint=_mass_hint(mass, a),
                          inputs=f"Inputs: scale a = {a}, shift b = {b}, float64; the density of x = a z + b is "
                                 "N(x; b, a^2).")


@pytest.mark.parametrize("a, b", FLOWS)
def test_affine_flow_log_prob_equals_normal_b_abs_a(impl, device, a, b):
    x = np.linspace(b - 8 * abs(a), b + 8 * abs(a), 33)
    expected = stats.norm(b, abs(a)).logpdf(x)
    assert_close(_log_prob(impl, x, a, b, device), expected,
                 what=f"affine_flow_log_prob vs scipy.stats.norm({b}, {abs(a)}).logpdf",
                 inputs=f"Inputs: x = {fmt(x)}, scale = {a}, shift = {b} (float64).", rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_affine_flow_log_prob_broadcasts_elementwise(impl, device, dtype, rng):
    x = torch.as_tensor(rng.normal(size=(5, 3)), dtype=dtype, device=device)
    a = torch.as_tensor([1.5, -0.3, 2.0], dtype=dtype, device=device)
    b = torch.as_tensor([3.0, 0.0, -1.0], dtype=dtype, device=device)
    out = impl.affine_flow_log_prob(x, a, b)
    check_tensor(out, name="affine_flow_log_prob(x (5, 3), scale (3,), shift (3,))", shape=(5, 3), dtype=dtype,
                 device=device)
    xn = x.double().cpu().numpy()
    expected = derivation.log_density(xn, a.double().cpu().numpy(), b.double().cpu().numpy())
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert_close(out, expected, what="affine_flow_log_prob, elementwise with broadcast scale and shift",
                 inputs=f"Inputs: x = {fmt(xn)}, scale = {a.tolist()}, shift = {b.tolist()} ({dtype}).",
                 rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(7,), (5, 3), (2, 3, 5)], ids=["1d", "2d", "3d"])
def test_affine_flow_log_prob_gradients(impl, device, rng, shape):
    """d/dx, d/dscale, d/dshift vs autograd of the float64 oracle, negative scales included."""
    x = rng.normal(size=shape) * 5
    scale = rng.choice([-1.0, 1.0], size=shape) * 10.0 ** rng.uniform(-2, 2, size=shape)
    shift = rng.normal(size=shape) * 3
    assert_gradients_match_oracle(
        impl.affine_flow_log_prob, oracles.torch_affine_flow_log_prob, dict(x=x, scale=scale, shift=shift),
        cotangent_rng=rng, device=device, what=f"affine_flow_log_prob(x, scale, shift) on inputs of shape {shape}",
        inputs=f"Inputs: x = {fmt(x)}, scale = {fmt(scale)}, shift = {fmt(shift)}",
        causes="Usual causes: log|a| computed with math.log or numpy, or a term detached.")
