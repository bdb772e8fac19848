"""Fused fast paths of the reference kernels: the same signatures, the same results, fewer passes.

Eager PyTorch runs a formula such as the Gaussian KL as a chain of elementwise kernels, each of
which reads and writes a whole tensor: about ten passes over memory for one pass worth of data.
Here each formula is handed to ``torch.compile`` (TorchInductor), which fuses the chain into one
loop that reads every input once and writes only the (reduced) output.

What is fused and what is not:

- ``log_normal``, ``kl_normal``, ``log_bernoulli_with_logits``, ``log_mean_exp``: the whole formula.
- ``sample_gaussian``: the noise is drawn eagerly with ``torch.randn`` (the same random stream as
  :func:`impls.sample_gaussian`, so both give identical samples under the same seed); only
  ``m + sqrt(v) * eps`` is fused.
- ``negative_elbo_bound`` and ``negative_iwae_bound``: the reference algorithms (the IWAE bound
  chunked over the samples exactly as in :mod:`impls.bounds`, drawing the same noise in the same
  order) with the elementwise parts fused; the encoder and decoder are called as given.

Every function agrees with its reference in :mod:`impls` to float64 rounding (tests/test_fused.py
checks rtol 1e-10). The formulas are the references' formulas, written in the forms that Inductor
vectorizes (``softplus`` and ``logsumexp`` spelled out: their float64 lowerings are not vectorized).

Where ``torch.compile`` is unavailable (no C++ compiler, an unsupported platform, or
``TORCHDYNAMO_DISABLE=1``), each function falls back to the same formula run eagerly, with one
warning; :func:`backend` says which is in use. Compilation (seconds) happens on the first call
for each dtype, device and rank of the arguments; the batch dims are symbolic, so other batch
sizes reuse the compiled kernel. Call once to warm up before timing.
"""
import functools
import math
import os
import types
import warnings

import torch

from impls.bounds import IWAE_CHUNK_ELEMENTS

LOG_2PI = math.log(2 * math.pi)

__all__ = [
    "sample_gaussian",
    "log_normal",
    "kl_normal",
    "log_bernoulli_with_logits",
    "log_mean_exp",
    "negative_elbo_bound",
    "negative_iwae_bound",
    "backend",
]

_status = {}  # fused function name -> "inductor" or "eager (<reason>)", once it has run


def backend():
    """How the fused functions ran so far: ``"inductor"``, ``"not compiled yet"``, or the
    functions that fell back to eager with the reasons."""
    eager = {name: st for name, st in _status.items() if st != "inductor"}
    if eager:
        return "; ".join(f"{name}: {st}" for name, st in sorted(eager.items()))
    return "inductor" if _status else "not compiled yet"


def _compile_disabled():
    return os.environ.get("TORCHDYNAMO_DISABLE", "") not in ("", "0")


def _fresh_copy(fn):
    """``fn`` with a code object of its own: torch.compile keeps its graphs (and counts them
    against its recompile limit) per code object, so each copy gets its own budget."""
    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


def _is_recompile_limit(exc):
    return "recompile" in type(exc).__name__.lower() or "recompile_limit" in str(exc)


def _leading_dims_dynamic(a):
    """A view of ``a`` whose leading (batch, sample) dims the compiler treats as symbolic, so one
    graph serves every batch size, while the last dim, the one reduced over, stays static: the
    kernel keeps a fixed-length vectorized inner loop (fully dynamic graphs run float64 at about
    half the speed on CPU)."""
    if not isinstance(a, torch.Tensor) or a.dim() < 2:
        return a
    view = a.view(a.shape)  # mark the view, not the caller's tensor
    for d in range(a.dim() - 1):
        if a.shape[d] > 1:
            torch._dynamo.maybe_mark_dynamic(view, d)
    return view


def _fused(fn):
    """``fn`` compiled with torch.compile: one graph for the whole formula, batch dims symbolic.

    One compiled copy per dtypes, device types, ranks and grad mode of the tensor arguments, so
    the shapes a program meets never exhaust the compiler's recompile limit. If compiling fails,
    the call runs ``fn`` eagerly instead: a failing call is re-run eagerly, and if that raises too
    the error is the caller's (a bad argument) and propagates; otherwise the compiler is given up
    for ``fn`` (one warning). The fused formulas are pure (no random draws inside), so re-running
    is harmless.
    """
    name = fn.__name__.lstrip("_")
    compiled = {}
    state = {"broken": _compile_disabled()}
    if state["broken"]:
        _status[name] = "eager (TORCHDYNAMO_DISABLE is set)"

    def key(args):
        return torch.is_grad_enabled(), tuple(
            (a.dtype, a.device.type, a.dim(), a.requires_grad) if isinstance(a, torch.Tensor) else a for a in args)

    @functools.wraps(fn)
    def run(*args):
        if state["broken"]:
            return fn(*args)
        k = key(args)
        try:
            if k not in compiled:
                compiled[k] = torch.compile(_fresh_copy(fn), dynamic=False, fullgraph=True)
            out = compiled[k](*[_leading_dims_dynamic(a) for a in args])
        except Exception as exc:
            out = fn(*args)  # raises here if the arguments themselves are bad
            if _is_recompile_limit(exc):  # a rare shape pattern: eager for this call only
                return out
            state["broken"] = True
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            _status[name] = f"eager ({reason})"
            warnings.warn(f"benchmarks.fused: torch.compile failed, running {fn.__name__} eagerly ({reason})",
                          RuntimeWarning, stacklevel=2)
            return out
        _status.setdefault(name, "inductor")
        return out

    return run


# ------------------------------------------------------------------------- fused formulas
@_fused
def _reparameterize(m, v, eps):
    return m + torch.sqrt(v) * eps


@_fused
def _log_normal(x, m, v):
    return -0.5 * (LOG_2PI + torch.log(v) + (x - m) ** 2 / v).sum(-1)


@_fused
def _kl_normal(qm, qv, pm, pv):
    return 0.5 * (torch.log(pv) - torch.log(qv) + (qv + (qm - pm) ** 2) / pv - 1).sum(-1)


def _softplus(l):
    """log(1 + exp(l)) = max(l, 0) + log1p(exp(-|l|)), exact for every finite l."""
    return torch.clamp(l, min=0) + torch.log1p(torch.exp(-torch.abs(l)))


@_fused
def _log_bernoulli_with_logits(x, logits):
    return (x * logits - _softplus(logits)).sum(-1)


def _logsumexp(x, dim):
    """torch.logsumexp spelled out: shift by the maximum (0 where it is infinite).

    Inductor (CPU) runs this as a loop over all rows for the max, then one for the shifted
    exp-sum: ``x`` is read from memory twice. Returning only the two reductions (the log and
    the shift done eagerly) gets them into one loop per row, but measured single-threaded it is
    no faster at 10240 x 784 (float32; 10% in float64: the exp, not memory, bounds the kernel)
    and 40 us slower at 100 x 784 (three more eager calls), so the whole formula stays here.
    """
    top = x.amax(dim, keepdim=True)
    top = torch.where(torch.isinf(top), torch.zeros_like(top), top)
    return torch.log(torch.exp(x - top).sum(dim)) + top.squeeze(dim)


@_fused
def _log_mean_exp(x, dim: int):
    return _logsumexp(x, dim) - math.log(x.size(dim))


@_fused
def _iwae_log_weights(x, logits, z, m, v):
    """Per sample and example: log p(x|z) and log w = log p(x|z) + log N(z; 0, I) - log N(z; m, v)."""
    log_px_z = (x * logits - _softplus(logits)).sum(-1)
    log_pz = -0.5 * (LOG_2PI + z**2).sum(-1)
    log_qz = -0.5 * (LOG_2PI + torch.log(v) + (z - m) ** 2 / v).sum(-1)
    return log_px_z + log_pz - log_qz, log_px_z


@_fused
def _kl_standard_normal(m, v):
    """KL(N(m, v) || N(0, I)), the reference formula with pm = 0, pv = 1."""
    return 0.5 * (-torch.log(v) + v + m**2 - 1).sum(-1)


# ------------------------------------------------------------------- the contract's names
def sample_gaussian(m, v):
    """As :func:`impls.sample_gaussian` (same noise under the same seed), with the affine map fused."""
    eps = torch.randn(torch.broadcast_shapes(m.shape, v.shape), dtype=m.dtype, device=m.device)
    return _reparameterize(m, v, eps)


def log_normal(x, m, v):
    """As :func:`impls.log_normal`, one fused pass."""
    return _log_normal(x, m, v)


def kl_normal(qm, qv, pm, pv):
    """As :func:`impls.kl_normal`, one fused pass."""
    return _kl_normal(qm, qv, pm, pv)


def log_bernoulli_with_logits(x, logits):
    """As :func:`impls.log_bernoulli_with_logits`, one fused pass."""
    return _log_bernoulli_with_logits(x, logits)


def log_mean_exp(x, dim):
    """As :func:`impls.log_mean_exp`, fused (the max and the exp-sum in one kernel per row)."""
    return _log_mean_exp(x, dim % x.dim())


def negative_elbo_bound(x, encoder, decoder):
    """As :func:`impls.negative_elbo_bound` (same noise under the same seed), elementwise parts fused."""
    m, v = encoder(x)
    z = sample_gaussian(m, v)
    rec = -log_bernoulli_with_logits(x, decoder(z)).mean()
    kl = _kl_standard_normal(m, v).mean()
    return kl + rec, kl, rec


def negative_iwae_bound(x, encoder, decoder, iw, chunk_elements=IWAE_CHUNK_ELEMENTS):
    """As :func:`impls.negative_iwae_bound`: the same chunks, the same noise in the same order;
    per chunk one fused kernel computes log p(x|z) and the log-weights from the decoder's logits."""
    m, v = encoder(x)
    chunk = max(1, min(iw, chunk_elements // max(1, x.numel())))
    log_sum_w = torch.full(m.shape[:-1], -math.inf, dtype=m.dtype, device=m.device)
    log_px_z_sum = torch.zeros_like(log_sum_w)
    for start in range(0, iw, chunk):
        k = min(chunk, iw - start)
        z = sample_gaussian(m.expand(k, *m.shape), v.expand(k, *v.shape))  # (k, B, D)
        log_w, log_px_z = _iwae_log_weights(x, decoder(z), z, m, v)  # (k, B) each
        log_sum_w = torch.logaddexp(log_sum_w, torch.logsumexp(log_w, 0))
        log_px_z_sum = log_px_z_sum + log_px_z.sum(0)
    iwae = log_sum_w - math.log(iw)
    kl = _kl_standard_normal(m, v).mean()
    rec = -(log_px_z_sum / iw).mean()
    return -iwae.mean(), kl, rec
