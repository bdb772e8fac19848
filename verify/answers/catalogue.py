"""Known wrong written answers, as data: each is a closed form that students write and what it teaches.

An answer that equals one of these (numerically, at the random points of its question; see
:mod:`verify.answers.equivalence`) is told the explanation. The forms are written in the answers'
own syntax and read by the same safe parser as the students' answers (coupling forms depend on
how many scale outputs s1, ..., sk the answer uses, so they are built from the symbols).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import sympy as sp


@dataclass(frozen=True)
class WrongForm:
    name: str
    form: Union[str, Callable]  # SymPy-syntax text, or a function of the list of symbols s1..sk
    explanation: str


KL_GAUSSIAN = (
    WrongForm("kl_no_log_term", "(sigma**2 + mu**2 - 1)/2",
              "missing the log sigma^2 term, which comes from the ratio of the two densities' normalizing "
              "constants"),
    WrongForm("kl_log_sigma_not_squared", "(sigma**2 + mu**2 - 1 - log(sigma))/2",
              "the log term has log sigma where log sigma^2 belongs (sigma is the standard deviation; the "
              "variance is sigma^2)"),
    WrongForm("kl_log_sign_flipped", "(sigma**2 + mu**2 - 1)/2 + log(sigma)",
              "the log sigma term has the wrong sign"),
    WrongForm("kl_sigma_as_variance", "(sigma + mu**2 - 1 - log(sigma))/2",
              "sigma is used as the variance: in N(mu, sigma^2) sigma is the standard deviation and the "
              "variance is sigma^2"),
    WrongForm("kl_no_minus_one", "(sigma**2 + mu**2)/2 - log(sigma)",
              "missing the -1/2: the KL must be 0 when q = p (mu = 0, sigma = 1)"),
    WrongForm("kl_no_mean_term", "(sigma**2 - 1)/2 - log(sigma)",
              "missing the mu^2/2 term: the mean of q contributes (mu - 0)^2 / 2"),
    WrongForm("kl_no_half", "sigma**2 + mu**2 - 1 - log(sigma**2)",
              "off by a factor of 2: yours is twice the KL (the 1/2 in front is missing)"),
    WrongForm("kl_sign_flipped", "log(sigma) - (sigma**2 + mu**2 - 1)/2",
              "the sign is flipped: this is -KL"),
    WrongForm("kl_reversed", "log(sigma) + (1 + mu**2)/(2*sigma**2) - 1/2",
              "this is the reverse KL, KL(N(0, 1) || N(mu, sigma^2)); the question asks for "
              "KL(N(mu, sigma^2) || N(0, 1))"),
    WrongForm("kl_cross_entropy_only", "(sigma**2 + mu**2 + log(2*pi))/2",
              "this is the cross-entropy E_q[-log p] alone; the KL also subtracts the entropy of q, "
              "(1/2) log(2 pi e sigma^2)"),
)

# x = 1.5 z + 3, z ~ N(0, 1): p(x) = N(x; 3, 1.5^2) = phi((x - 3)/1.5) / 1.5
AFFINE_FLOW_DENSITY = (
    WrongForm("density_jacobian_twice", "(2/3) * exp(-(x - 3)**2/(2*1.5**2)) / sqrt(2*pi*1.5**2)",
              "the Jacobian factor |dz/dx| = 1/1.5 = 2/3 is applied twice: N(3, 1.5^2) already contains it "
              "(the \"(2/3) N(3, 1.5)\" answer)"),
    WrongForm("density_no_jacobian", "exp(-(x - 3)**2/(2*1.5**2)) / sqrt(2*pi)",
              "the Jacobian factor |dz/dx| = 1/1.5 of the change of variables is missing"),
    WrongForm("density_jacobian_inverted", "1.5 * exp(-(x - 3)**2/(2*1.5**2)) / sqrt(2*pi)",
              "the Jacobian factor is inverted: |dx/dz| = 1.5 where |dz/dx| = 1/1.5 belongs"),
    WrongForm("density_scale_as_variance", "exp(-(x - 3)**2/(2*1.5)) / sqrt(2*pi*1.5)",
              "this is N(3, 1.5) with 1.5 as the variance: x = 1.5 z + 3 has standard deviation 1.5, so "
              "variance 1.5^2 = 2.25"),
    WrongForm("density_jacobian_on_variance_form", "(2/3) * exp(-(x - 3)**2/(2*1.5)) / sqrt(2*pi*1.5)",
              "(2/3) N(3, 1.5) with 1.5 as the variance: the Jacobian factor 2/3 is applied to what is "
              "already a density, and the variance of x is 1.5^2 = 2.25, not 1.5"),
    WrongForm("density_forward_map", "1.5 * exp(-(1.5*x + 3)**2/2) / sqrt(2*pi)",
              "the flow x = 1.5 z + 3 is applied to x; the change of variables evaluates p_z at the inverse, "
              "z = (x - 3)/1.5"),
    WrongForm("density_forward_map_scaled", "exp(-(1.5*x + 3)**2/2) / (1.5*sqrt(2*pi))",
              "the flow x = 1.5 z + 3 is applied to x; the change of variables evaluates p_z at the inverse, "
              "z = (x - 3)/1.5"),
    WrongForm("density_mean_sign", "exp(-(x + 3)**2/(2*1.5**2)) / sqrt(2*pi*1.5**2)",
              "the mean is -3: the inverse is z = (x - 3)/1.5, so x has mean +3"),
    WrongForm("density_inverse_wrong", "exp(-(x/1.5 - 3)**2/2) / (1.5*sqrt(2*pi))",
              "the inverse map is z = (x - 3)/1.5, not x/1.5 - 3"),
    WrongForm("density_no_normalizer", "exp(-(x - 3)**2/(2*1.5**2)) / 1.5",
              "the normalizing constant 1/sqrt(2 pi) of the standard normal density is missing"),
)


def _sum(s):
    return sp.Add(*s)


COUPLING_LOG_DET = (
    WrongForm("coupling_det_not_log", lambda s: sp.exp(_sum(s)),
              "this is the determinant itself, exp(s1 + ... + sk); the question asks for its log"),
    WrongForm("coupling_product", lambda s: sp.Mul(*s),
              "the product of the s_i: the determinant is the product of the diagonal entries exp(s_i), so its "
              "log is a sum"),
    WrongForm("coupling_sum_of_exp", lambda s: sp.Add(*(sp.exp(si) for si in s)),
              "the sum of the diagonal entries exp(s_i) (the trace); the determinant of a triangular matrix is "
              "their product, and the question asks for its log"),
    WrongForm("coupling_log_of_trace", lambda s: sp.log(sp.Add(*(sp.exp(si) for si in s))),
              "the log of the trace (the sum of the exp(s_i)); the determinant of a triangular matrix is the "
              "product of its diagonal entries"),
    WrongForm("coupling_negative_sum", lambda s: -_sum(s),
              "the sign is flipped: -(s1 + ... + sk) is the log-determinant of the inverse map"),
    WrongForm("coupling_mean", lambda s: _sum(s) / len(s),
              "the mean of the s_i, not their sum: every transformed coordinate contributes its whole s_i"),
    WrongForm("coupling_abs", lambda s: sp.Add(*(sp.Abs(si) for si in s)),
              "|s_i| where s_i belongs: the diagonal entries exp(s_i) are positive, so log|det| is the plain "
              "sum of the s_i"),
)

ALL = {"KL_GAUSSIAN": KL_GAUSSIAN, "AFFINE_FLOW_DENSITY": AFFINE_FLOW_DENSITY, "COUPLING_LOG_DET": COUPLING_LOG_DET}
