"""Hypothesis strategies for the closed-form checks (float64 numpy arrays of matching shapes)."""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

shapes = st.tuples(st.integers(1, 4), st.integers(1, 6))
nd_shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)  # 1-D to 4-D, odd sizes too


def reals(shape, lo=-10.0, hi=10.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, allow_nan=False, allow_infinity=False))


def variances(shape, lo=1e-6, hi=1e6):
    """Log-uniform-ish positive variances in [lo, hi] (default 1e-6 .. 1e6, the contract's range)."""
    return hnp.arrays(np.float64, shape, elements=st.floats(np.log10(lo), np.log10(hi))).map(lambda a: 10.0**a)


@st.composite
def gaussian_args(draw, n=2):
    """(shape, [mean, variance] * n) with one shared shape, 1-D to 4-D."""
    shape = draw(nd_shapes)
    out = []
    for _ in range(n):
        out += [draw(reals(shape)), draw(variances(shape))]
    return shape, out


# ---------------------------------------------------------- numpy draws over the whole contract
# (for the checks that draw from the check's ``rng`` fixture rather than hypothesis)
SHAPES_1D_TO_4D = {"1d": (7,), "2d": (3, 5), "3d": (2, 3, 5), "4d": (3, 1, 2, 5)}  # odd sizes, a size-1 dim


def wide_variances(rng, shape, lo=1e-6, hi=1e6):
    """Variances log-uniform over [lo, hi] (default 1e-6 .. 1e6, the contract's range)."""
    return 10.0 ** rng.uniform(np.log10(lo), np.log10(hi), size=shape)


def points_around(rng, m, v, far=50.0):
    """x = m + sqrt(v) * d with d standard normal, and the last entry of each row ``far`` standard
    deviations out (the tails, where a log of an underflowed exp is -inf)."""
    d = rng.normal(size=np.shape(m))
    d[..., -1] = far * np.sign(d[..., -1] + 1e-300)
    return m + np.sqrt(v) * d


def unit_interval(rng, shape):
    """x in [0, 1], not only 0 and 1 (the Bernoulli likelihood's contract: any x in [0, 1])."""
    x = rng.uniform(size=shape)
    flat = x.reshape(-1)
    flat[: flat.size // 4] = np.round(flat[: flat.size // 4])  # some exact 0s and 1s too
    return x
