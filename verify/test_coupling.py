"""Checks of ``AffineCoupling(mask, scale_net, shift_net)``, the RealNVP affine coupling layer.

Contract: ``forward(x) -> (y, log_det)`` with  y = mask * x + (1 - mask) * (x * exp(s) + t),
s = scale_net(mask * x), t = shift_net(mask * x), log_det = log|det dy/dx| of shape (B,);
``inverse(y) -> x``. The checks plug in their own small random networks (seeded, never zero:
a zero network makes the layer the identity and hides scale and sign bugs) and check
invertibility, the log-determinant against autograd's Jacobian, the Jacobian's block structure
(derivations/coupling.py), exact pass-through of the masked features, and that a 2-D flow of
couplings over a N(0, I) base has a density that integrates to 1.
"""
import contextlib
import math

import numpy as np
import pytest
import torch
from torch import nn

from verify import oracles
from verify.assertions import (as_numpy, assert_close, assert_gradients_close, assert_total_mass_one, backward_gradients,
                               check_tensor, fmt, oracle_gradients, trapezoid_mass)
from verify.contract import grades
from verify.lazy import OnFirstUse

derivation = OnFirstUse("derivations.coupling")  # SymPy: imported when first used

pytestmark = grades('AffineCoupling')

DTYPES = [pytest.param(torch.float64, id="float64"), pytest.param(torch.float32, id="float32")]
INVERSE_TOL = {torch.float64: 1e-10, torch.float32: 1e-4}
KINDS = ["vector", "image"]
BATCH = {"vector": 5, "image": 3}


# ------------------------------------------------------------------ the checks' own networks
class MLP(nn.Module):
    """(B, D) -> (B, D): one tanh hidden layer; weights drawn from a seeded generator."""

    def __init__(self, dim, hidden, seed, gain, dtype, device):
        super().__init__()
        g = torch.Generator().manual_seed(seed)

        def draw(*shape, std):
            return nn.Parameter((std * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype).to(device))

        self.w1, self.b1 = draw(dim, hidden, std=1 / math.sqrt(dim)), draw(hidden, std=0.5)
        self.w2, self.b2 = draw(hidden, dim, std=gain / math.sqrt(hidden)), draw(dim, std=0.3)

    def forward(self, x):
        return torch.tanh(x @ self.w1 + self.b1) @ self.w2 + self.b2


class ImageMLP(MLP):
    """(B, C, H, W) -> (B, C, H, W): the MLP on the flattened image, every pixel seeing every other.

    (A dense layer rather than a convolution: tiny multi-threaded conv2d calls are slow on a busy
    2-core machine, and the checks only need some smooth, non-trivial function of mask * x.)
    """

    def __init__(self, shape, hidden, seed, gain, dtype, device):
        super().__init__(math.prod(shape), hidden, seed, gain, dtype, device)

    def forward(self, x):
        return super().forward(x.flatten(1)).reshape(x.shape)


def make_case(kind, dtype, device, rng, seed=0):
    """(mask, scale_net, shift_net, x) for a vector (D = 6, an irregular mask) or image
    (C, H, W) = (2, 4, 4) (checkerboard) coupling; x has a batch of BATCH[kind]."""
    if kind == "vector":
        mask = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
        scale_net, shift_net = MLP(6, 8, seed + 1, 0.8, dtype, device), MLP(6, 8, seed + 2, 1.5, dtype, device)
    else:
        ij = torch.arange(4).view(4, 1) + torch.arange(4).view(1, 4)
        mask = (ij % 2 == 0).to(torch.float64).expand(2, 4, 4).clone()
        shape = tuple(mask.shape)
        scale_net = ImageMLP(shape, 8, seed + 3, 0.8, dtype, device)
        shift_net = ImageMLP(shape, 8, seed + 4, 1.5, dtype, device)
    x = torch.as_tensor(rng.normal(size=(BATCH[kind], *mask.shape)), dtype=dtype, device=device)
    return mask.to(dtype=dtype, device=device), scale_net, shift_net, x


def describe(kind, mask, x):
    if kind == "vector":
        shown = f"a vector coupling, mask = {mask.flatten().tolist()} (1 = pass-through)"
    else:
        shown = f"an image coupling, checkerboard mask of shape {tuple(mask.shape)} (1 = pass-through)"
    return (f"Inputs: {shown}, x of shape {tuple(x.shape)} ({str(x.dtype).replace('torch.', '')}), "
            f"x = {fmt(as_numpy(x))}; scale_net and shift_net are random tanh networks of the check "
            "(verify/test_coupling.py).")


def run_forward(layer, x, what, mask=None):
    """``layer(x)`` as (y, log_det); with ``mask``, also that y is not x on the transformed features (the
    checks' networks are never zero: an identity placeholder is not a coupling layer)."""
    before = x.detach().clone()
    out = layer(x)
    if not torch.equal(x.detach(), before):
        raise AssertionError(f"AffineCoupling.forward(x) modified its input x in place: a layer must leave its input "
                             f"unchanged (compute y on a copy). {what}")
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise AssertionError(f"AffineCoupling.forward returned {type(out).__name__}, expected a tuple (y, log_det). "
                             f"{what}")
    y = out[0]
    if mask is not None and isinstance(y, torch.Tensor) and y.shape == x.shape:
        free = (1 - mask).bool().expand_as(x)
        if torch.equal(y.detach()[free], x.detach()[free]):
            raise AssertionError("AffineCoupling.forward(x) returned x unchanged on the transformed (mask = 0) "
                                 "features: the layer must apply x * exp(s) + t there, with s and t from its networks "
                                 f"(an identity placeholder is not a coupling layer). {what}")
    return out


LEAK_ATOL = 1e-9  # |u^T (dy/dx)| from other examples that counts as a dependence (rounding: about 1e-13)


def example_jacobians(layer, x, rng, what):
    """(J, leak): J[b, i, j] = d y[b, i] / d x[b, j] (features flattened), and ``leak`` (B d, d), zero
    unless some output depends on another example's input; one forward and two vector-Jacobian products.

    The forward runs on x_r, each example repeated d times (B d rows). The product with the cotangent
    v[b d + i] = e_i gives at row b d + i of x_r the row i of J[b], if the examples are independent.
    The second product, on the same forward, has a standard normal cotangent u (from ``rng``); with
    independent examples its gradient at row k is u[k]^T J[b(k)], and ``leak`` is the difference.
    The difference is L u for a matrix L fixed before u is drawn, zero exactly when no output depends
    on another row's input (then J is exact). A cross derivative of size delta makes an entry of L u
    normal with standard deviation at least delta, inside +-LEAK_ATOL with probability at most
    sqrt(2/pi) LEAK_ATOL / delta (8e-7 for delta = 1e-3)."""
    n, d = x.shape[0], x[0].numel()
    xr = x.detach().repeat_interleave(d, dim=0).requires_grad_(True)
    y, _ = run_forward(layer, xr, what)
    check_tensor(y, name=f"AffineCoupling.forward(x)[0] (y), x of shape {tuple(xr.shape)}", shape=xr.shape,
                 dtype=x.dtype)
    eye = torch.eye(d, dtype=x.dtype, device=x.device).repeat(n, 1).reshape(xr.shape)
    u = torch.as_tensor(rng.normal(size=tuple(xr.shape)), dtype=x.dtype, device=x.device)
    rows, mixed = (_vjp(y, xr, v) for v in (eye, u))
    jac = rows.reshape(n, d, d)
    predicted = torch.einsum("bri,bij->brj", u.reshape(n, d, d), jac)  # replica r of example b: u^T J[b]
    return jac, as_numpy(mixed.reshape(n * d, d) - predicted.reshape(n * d, d))


def _vjp(y, x, cotangent):
    """cotangent^T dy/dx by autograd (zeros where y does not depend on x)."""
    if not y.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(y, x, cotangent, retain_graph=True, allow_unused=True)
    return torch.zeros_like(x) if g is None else g.detach()


def full_jacobian_blocks(layer, x):
    """J[b] = d y[b] / d x[b] from the whole Jacobian of the batch by autograd (one product per output
    entry): the log-determinant's reference when the examples are not independent."""
    jac = torch.autograd.functional.jacobian(lambda inp: layer(inp)[0], x)
    n, d = x.shape[0], x[0].numel()
    jac = jac.reshape(n, d, n, d)
    return torch.stack([jac[b, :, b, :] for b in range(n)])


def assert_no_leak(leak, d, inputs):
    """``leak`` (from :func:`example_jacobians`) is zero: no output depends on another example's input."""
    bad = np.abs(leak) > LEAK_ATOL
    if not bad.any():
        return
    at = sorted({(int(k) // d, int(j)) for k, j in np.argwhere(bad)})
    raise AssertionError(
        "d y[example b] / d x[example c], b != c, should be zero (examples are independent): with a random "
        "cotangent u on a batch that repeats each example, the gradient with respect to input (example, feature) "
        f"{at[:8]}{' ...' if len(at) > 8 else ''} differs from u^T (d y / d x) of its own example by up to "
        f"{float(np.abs(leak).max()):.3g} (beyond {LEAK_ATOL:g}): an output reads another example's input "
        f"(a batch statistic, a sum or mean over dim 0, a reshape that mixes examples). {inputs}")


# --------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_AffineCoupling_shapes(impl, device, rng, kind, dtype):
    mask, scale_net, shift_net, x = make_case(kind, dtype, device, rng)
    inputs = describe(kind, mask, x)
    layer = impl.AffineCoupling(mask, scale_net, shift_net)
    with torch.no_grad():
        y, log_det = run_forward(layer, x, inputs, mask)
        check_tensor(y, name=f"AffineCoupling.forward(x)[0] (y), x of shape {tuple(x.shape)}", shape=x.shape,
                     dtype=dtype, device=device)
        check_tensor(log_det, name=f"AffineCoupling.forward(x)[1] (log_det, one per example), x of shape "
                     f"{tuple(x.shape)}", shape=(x.shape[0],), dtype=dtype, device=device)
        x_back = layer.inverse(y)
        check_tensor(x_back, name=f"AffineCoupling.inverse(y), y of shape {tuple(y.shape)}", shape=x.shape,
                     dtype=dtype, device=device)


# ----------------------------------------------------------------------------- inverse
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_AffineCoupling_invertible(impl, device, rng, kind, dtype):
    mask, scale_net, shift_net, x = make_case(kind, dtype, device, rng)
    layer = impl.AffineCoupling(mask, scale_net, shift_net)
    tol = INVERSE_TOL[dtype]
    with torch.no_grad():
        y, _ = run_forward(layer, x, describe(kind, mask, x), mask)
        assert_close(layer.inverse(y), as_numpy(x), what="AffineCoupling: inverse(forward(x)[0]) should return x",
                     inputs=describe(kind, mask, x), rtol=0, atol=tol)
        y = torch.as_tensor(rng.normal(size=tuple(x.shape)), dtype=dtype, device=device)
        y_again, _ = run_forward(layer, layer.inverse(y), describe(kind, mask, y))
        assert_close(y_again, as_numpy(y), what="AffineCoupling: forward(inverse(y))[0] should return y",
                     inputs=describe(kind, mask, y).replace("x of shape", "y of shape").replace("x =", "y ="),
                     rtol=0, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_AffineCoupling_masked_coordinates_unchanged(impl, device, rng, kind, dtype):
    """mask == 1 features pass through forward and inverse bit for bit."""
    mask, scale_net, shift_net, x = make_case(kind, dtype, device, rng)
    layer = impl.AffineCoupling(mask, scale_net, shift_net)
    keep = mask.bool().expand_as(x)
    with torch.no_grad():
        y, _ = run_forward(layer, x, describe(kind, mask, x), mask)
        x_back = layer.inverse(x)
    for name, out in (("forward(x)[0]", y), ("inverse(x)", x_back)):
        check_tensor(out, name=f"AffineCoupling.{name}", shape=x.shape, dtype=dtype, device=device)
        changed = (out != x) & keep
        if changed.any():
            i = tuple(int(j) for j in changed.nonzero()[0])
            raise AssertionError(
                f"AffineCoupling.{name} changed {int(changed.sum())} of {int(keep.sum())} masked (mask = 1, "
                f"pass-through) features; they must be copied bit for bit. First at index {i}: observed "
                f"{out[i].item():.17g}, expected {x[i].item():.17g}. {describe(kind, mask, x)}"
            )


# --------------------------------------------------------------------- values and Jacobian
@pytest.mark.parametrize("kind", KINDS)
def test_AffineCoupling_forward_matches_contract(impl, device, rng, kind):
    """y = mask * x + (1 - mask) * (x exp(s) + t), log_det = sum of s over mask == 0 (float64)."""
    mask, scale_net, shift_net, x = make_case(kind, torch.float64, device, rng)
    inputs = describe(kind, mask, x)
    layer = impl.AffineCoupling(mask, scale_net, shift_net)
    with torch.no_grad():
        y, log_det = run_forward(layer, x, inputs)
        s, t = scale_net(mask * x), shift_net(mask * x)
    xn, mn, sn, tn = (as_numpy(a) for a in (x, mask, s, t))
    expected_y = mn * xn + (1 - mn) * (xn * np.exp(sn) + tn)
    assert_close(y, expected_y, what="AffineCoupling.forward(x)[0] vs mask*x + (1-mask)*(x*exp(s) + t), "
                 "s = scale_net(mask*x), t = shift_net(mask*x)", inputs=inputs, rtol=1e-10, atol=1e-10)
    assert_close(log_det, derivation.log_det(sn, mn),
                 what="AffineCoupling.forward(x)[1] vs log|det dy/dx| = sum of s over the mask == 0 features, per "
                 "example (derivations/coupling.py)", inputs=inputs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_AffineCoupling_log_det_matches_autograd_jacobian(impl, device, rng, kind):
    """log_det vs slogdet of the per-example Jacobian by autograd (:func:`example_jacobians`: one forward
    and two vector-Jacobian products; the whole batch's Jacobian only when examples are not independent)."""
    mask, scale_net, shift_net, x = make_case(kind, torch.float64, device, rng)
    inputs = describe(kind, mask, x)
    layer = impl.AffineCoupling(mask, scale_net, shift_net)
    _, log_det = run_forward(layer, x, inputs, mask)
    check_tensor(log_det, name="AffineCoupling.forward(x)[1] (log_det)", shape=(x.shape[0],), dtype=torch.float64,
                 device=device)
    blocks, leak = example_jacobians(layer, x, rng, inputs)
    if np.any(np.abs(leak) > LEAK_ATOL):  # the examples' blocks are not what the repeated batch gives
        blocks = full_jacobian_blocks(layer, x)
    _, expected = torch.linalg.slogdet(blocks)
    assert_close(log_det, as_numpy(expected),
                 what="AffineCoupling.forward(x)[1] vs torch.linalg.slogdet of the autograd Jacobian dy/dx, per "
                 "example", inputs=inputs, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("kind", KINDS)
def test_AffineCoupling_jacobian_structure(impl, device, rng, kind):
    """dy/dx per example: identity on the masked block, zero from transformed inputs to masked
    outputs, diag(exp(s)) on the transformed block; no dependence between examples
    (:func:`example_jacobians`, with the chance that a dependence escapes)."""
    mask, scale_net, shift_net, x = make_case(kind, torch.float64, device, rng)
    inputs = describe(kind, mask, x)
    layer = impl.AffineCoupling(mask, scale_net, shift_net)
    jac, leak = example_jacobians(layer, x, rng, inputs)
    assert_no_leak(leak, x[0].numel(), inputs)
    jac = as_numpy(jac)
    with torch.no_grad():
        s = as_numpy(scale_net(mask * x)).reshape(x.shape[0], -1)
    keep = as_numpy(mask).ravel() == 1
    p, t = np.flatnonzero(keep), np.flatnonzero(~keep)
    for b in range(x.shape[0]):
        block = jac[b]
        at = f"(example {b}; rows: outputs, columns: inputs, features flattened; masked features {p.tolist()})"
        assert_close(block[np.ix_(p, p)], np.eye(p.size),
                     what=f"d y[masked] / d x[masked] should be the identity {at}", inputs=inputs, rtol=0, atol=1e-12)
        assert_close(block[np.ix_(p, t)], np.zeros((p.size, t.size)),
                     what=f"d y[masked] / d x[transformed] should be zero (the block that makes dy/dx triangular) {at}",
                     inputs=inputs, rtol=0, atol=1e-12)
        assert_close(block[np.ix_(t, t)], np.diag(np.exp(s[b, t])),
                     what=f"d y[transformed] / d x[transformed] should be diag(exp(s)), s = scale_net(mask*x) {at}",
                     inputs=inputs, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------- density
def _flow_2d(impl, device):
    """[(mask, layer)]: three couplings on R^2 with masks [1, 0], [0, 1], [1, 0] and the checks' tanh networks."""
    layers = []
    for k, mask in enumerate(([1.0, 0.0], [0.0, 1.0], [1.0, 0.0])):
        m = torch.tensor(mask, dtype=torch.float64, device=device)
        scale_net = MLP(2, 8, 100 + k, 0.5, torch.float64, device)
        shift_net = MLP(2, 8, 200 + k, 1.0, torch.float64, device)
        layers.append((m, impl.AffineCoupling(m, scale_net, shift_net)))
    return layers


@contextlib.contextmanager
def one_torch_thread():
    """Several torch threads contending on a busy 2-core machine make the flow's layers on the grid's
    points slower than one thread does."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# The 2-D flow's density is integrated over BOX_2D, outside which the reference's density has 1.5e-17
# of its mass (measured with the trapezoid rule at step 0.05 over [-40, 40]^2), by the trapezoid rule at
# the steps STEPS_2D: 145 x 149 points, error 1.4e-13 on the reference's density (4.2e-8 at twice the
# steps: the error estimate, 2.4 times below MASS_ERROR_MAX).
BOX_2D = ((-10.0, 8.0), (-15.0, 22.0))
STEPS_2D = (0.125, 0.25)
MASS_ERROR_MAX = 1e-7  # a tenth of assert_total_mass_one's tolerance of 1e-6


def test_AffineCoupling_2d_flow_density_integrates_to_one(impl, device):
    """log p(x) = log N(f(x); 0, I) + sum of the layers' log_det integrates to 1 over R^2: the trapezoid
    rule (:func:`verify.assertions.trapezoid_mass`) on a grid of BOX_2D, every point in one call per
    layer; each layer must also change its transformed feature (an identity placeholder keeps N(0, I),
    whose mass is 1)."""
    layers = _flow_2d(impl, device)
    axes = [np.linspace(lo, hi, round((hi - lo) / h) + 1) for (lo, hi), h in zip(BOX_2D, STEPS_2D)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    box = " x ".join(f"[{lo:g}, {hi:g}]" for lo, hi in BOX_2D)
    inputs = ("Inputs: a flow of 3 couplings on R^2 (masks [1, 0], [0, 1], [1, 0], the checks' random tanh "
              f"networks), base N(0, I), float64; integrated over {box} (the reference's density has less than "
              f"1e-16 of its mass outside) by the trapezoid rule on {len(points)} points, steps {STEPS_2D}")
    x = torch.as_tensor(points, dtype=torch.float64, device=device)
    log_det = torch.zeros(x.shape[0], dtype=torch.float64, device=device)
    with torch.no_grad(), one_torch_thread():
        for mask, layer in layers:
            x, ld = run_forward(layer, x, inputs, mask)
            log_det = log_det + ld.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):  # reported below
        density = np.exp(oracles.log_standard_normal(as_numpy(x)) + as_numpy(log_det))
    if not np.all(np.isfinite(density)):
        i = int(np.flatnonzero(~np.isfinite(density))[0])
        raise AssertionError(f"the flow's density exp(log N(f(x); 0, I) + sum log_det) is {density[i]} at "
                             f"x = {points[i].tolist()} (sum log_det = {log_det[i].item()}). {inputs}")
    mass, error = trapezoid_mass(density.reshape(*(a.size for a in axes)), STEPS_2D)
    assert_total_mass_one(mass, what="the density of a flow of AffineCoupling layers",
                          how=f"(error estimate {error:.2g}, at most {MASS_ERROR_MAX:g} expected)",
                          converged=error <= MASS_ERROR_MAX, inputs=inputs,
                          hint=" log_det is not log|det dy/dx| (a wrong sign, a mean instead of a sum, or a wrong mask "
                               "makes the mass differ from 1).")


# ------------------------------------------------------------------------------- gradients
COUPLING_CAUSES = ("Usual causes: s or t detached (or computed under torch.no_grad()), so that the scale and shift "
                   "networks get no gradient, or the layer's output rebuilt from numpy.")


def _oracle_forward(mask, scale_net, shift_net, x):
    """y = mask x + (1 - mask)(x exp(s) + t), log_det = sum over mask == 0 of s; s, t from mask * x."""
    s, t = scale_net(mask * x), shift_net(mask * x)
    return mask * x + (1 - mask) * (x * torch.exp(s) + t), ((1 - mask) * s).flatten(1).sum(1)


def _oracle_inverse(mask, scale_net, shift_net, y):
    """x = mask y + (1 - mask)(y - t) exp(-s); s, t from mask * y."""
    s, t = scale_net(mask * y), shift_net(mask * y)
    return mask * y + (1 - mask) * (y - t) * torch.exp(-s)


@pytest.mark.parametrize("kind", KINDS)
def test_AffineCoupling_gradients(impl, device, rng, kind):
    """d y, d log_det (forward) and d x (inverse) with respect to the input and every weight of the scale and
    shift networks vs autograd of the float64 oracle."""
    mask, scale_net, shift_net, x = make_case(kind, torch.float64, device, rng)
    inputs = describe(kind, mask, x)
    layer = impl.AffineCoupling(mask, scale_net, shift_net)
    params = {f"scale_net.{n}": p for n, p in scale_net.named_parameters()}
    params.update({f"shift_net.{n}": p for n, p in shift_net.named_parameters()})
    x = x.detach().requires_grad_(True)
    y, log_det = run_forward(layer, x, inputs, mask)
    want_y, want_ld = _oracle_forward(mask, scale_net, shift_net, x)
    cases = [("forward(x)[0] (y)", y, want_y), ("forward(x)[1] (log_det)", log_det, want_ld)]
    y_in = torch.as_tensor(rng.normal(size=tuple(x.shape)), dtype=torch.float64, device=device).requires_grad_(True)
    cases.append(("inverse(y)", layer.inverse(y_in), _oracle_inverse(mask, scale_net, shift_net, y_in)))
    for label, got, want in cases:
        leaves = {("y" if label == "inverse(y)" else "x"): y_in if label == "inverse(y)" else x, **params}
        assert_close(got, as_numpy(want), what=f"AffineCoupling.{label} vs the contract's formula", inputs=inputs,
                     rtol=1e-10, atol=1e-10)
        weights = rng.normal(size=tuple(want.shape))
        assert_gradients_close(backward_gradients(got, leaves, weights), oracle_gradients(want, leaves, weights),
                               what=f"AffineCoupling.{label}: the gradient of a random projection", inputs=inputs,
                               causes=COUPLING_CAUSES)


@pytest.mark.parametrize("kind", KINDS)
def test_AffineCoupling_leaves_inputs_unchanged(impl, device, rng, kind):
    """forward(x) and inverse(y) leave x and y (and the mask they were built with) as they were."""
    mask, scale_net, shift_net, x = make_case(kind, torch.float64, device, rng)
    kept = {"mask": mask.clone(), "x": x.clone()}
    layer = impl.AffineCoupling(mask, scale_net, shift_net)
    with torch.no_grad():
        y, _ = run_forward(layer, x, describe(kind, mask, x))
        y_kept = y.clone()
        layer.inverse(y)
    for name, now, then in (("x (forward's input)", x, kept["x"]), ("y (inverse's input)", y, y_kept),
                            ("the mask given to the constructor", mask, kept["mask"])):
        if not torch.equal(now, then):
            raise AssertionError(f"AffineCoupling changed {name} in place: observed {fmt(as_numpy(now))}, it was "
                                 f"{fmt(as_numpy(then))}. {describe(kind, mask, kept['x'])}")


def test_AffineCoupling_scales_beyond_ten(impl, device, rng):
    """A scale network whose s reaches beyond +-10 (exp(s) from 1e-7 to 1e7): forward, log_det and inverse are
    still the contract's formulas (nothing clamps s)."""
    mask = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64, device=device)
    scale_net, shift_net = MLP(6, 8, 7, 12.0, torch.float64, device), MLP(6, 8, 8, 1.5, torch.float64, device)
    x = torch.as_tensor(rng.normal(size=(9, 6)), dtype=torch.float64, device=device)
    inputs = describe("vector", mask, x) + " The scale network is scaled so that |s| exceeds 10."
    layer = impl.AffineCoupling(mask, scale_net, shift_net)
    with torch.no_grad():
        s = scale_net(mask * x)
        assert float(s.abs().max()) > 10, "the check's own scale network must reach |s| > 10"
        y, log_det = run_forward(layer, x, inputs)
        want_y, want_ld = _oracle_forward(mask, scale_net, shift_net, x)
        y_in = torch.as_tensor(rng.normal(size=(9, 6)), dtype=torch.float64, device=device)
        back, want_back = layer.inverse(y_in), _oracle_inverse(mask, scale_net, shift_net, y_in)
    shown = f" s ranges over [{float(s.min()):.3g}, {float(s.max()):.3g}]."
    assert_close(y, as_numpy(want_y), what="AffineCoupling.forward(x)[0] with |s| > 10", inputs=inputs + shown,
                 rtol=1e-10, atol=1e-10)
    assert_close(log_det, as_numpy(want_ld), what="AffineCoupling.forward(x)[1] (log_det) with |s| > 10",
                 inputs=inputs + shown, rtol=1e-10, atol=1e-10)
    assert_close(back, as_numpy(want_back), what="AffineCoupling.inverse(y) with |s| > 10", inputs=inputs + shown,
                 rtol=1e-10, atol=1e-10)
