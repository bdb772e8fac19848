"""Hypothesis strategies for the closed-form checks (float64 numpy arrays of matching shapes)."""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

shapes = st.tuples(st.integers(1, 4), st.integers(1, 6))


def reals(shape, lo=-10.0, hi=10.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, allow_nan=False, allow_infinity=False))


def variances(shape, lo=1e-3, hi=1e3):
    """Log-uniform-ish positive variances in [lo, hi]."""
    return hnp.arrays(np.float64, shape, elements=st.floats(np.log10(lo), np.log10(hi))).map(lambda a: 10.0**a)


@st.composite
def gaussian_args(draw, n=2):
    """(shape, [mean, variance] * n) with one shared shape."""
    shape = draw(shapes)
    out = []
    for _ in range(n):
        out += [draw(reals(shape)), draw(variances(shape))]
    return shape, out
