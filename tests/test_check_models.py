"""The checks' 1-D models (verify/models.py, verify/latent_models.py): their exact values on a grid
(the trapezoid rule, :func:`verify.models.integral_on_grid`) agree with adaptive quadrature."""
import math

import numpy as np
import pytest
from scipy import integrate

from verify.latent_models import BoundedMixtureModel
from verify.models import BoundedModel, integral_on_grid, log_prior


def _quad(f, points):
    return integrate.quad(f, -12, 12, points=points, epsabs=1e-13, epsrel=1e-12, limit=200)[0]


@pytest.mark.parametrize("pixels", [1, 4, 9])
def test_bounded_model_log_px_and_elbo_match_adaptive_quadrature(pixels):
    m = BoundedModel(pixels=pixels)
    log_px = math.log(_quad(lambda z: np.exp(m.log_px_given_z(z) + log_prior(z)), [1.0]))
    l1 = _quad(lambda z: m.log_px_given_z(z) * np.exp(log_prior(z)), [1.0])
    assert m.log_px == pytest.approx(log_px, rel=1e-11, abs=1e-11)
    assert m.expected_l1 == pytest.approx(l1, rel=1e-11, abs=1e-11)


@pytest.mark.parametrize("pixels", [1, 4, 9])
def test_bounded_mixture_log_px_and_elbo_match_adaptive_quadrature(pixels):
    m = BoundedMixtureModel(pixels=pixels)
    points = [-1.0, 0.0, 1.0, 1.5]
    log_px = math.log(_quad(lambda z: m._q(z) * np.exp(m.log_weight(z)), points))
    l1 = _quad(lambda z: m._q(z) * m.log_weight(z), points)
    assert m.log_px == pytest.approx(log_px, rel=1e-11, abs=1e-11)
    assert m.expected_l1 == pytest.approx(l1, rel=1e-11, abs=1e-11)


def test_the_grid_rule_says_when_it_has_not_converged():
    with pytest.raises(RuntimeError, match="not converged"):
        integral_on_grid(lambda z: np.where(z > 0.001, 1.0, 0.0), nodes=11)  # a step: no geometric convergence
