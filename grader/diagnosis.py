"""Name the known bugs a failing submission reproduces: one per output, only when a probe confirms it.

When a check fails, the calls it made to the submission were recorded (inputs, torch RNG state,
output; :meth:`verify.loader.Implementation.record`). Each output of a contract function (``nelbo``,
``kl`` and ``rec`` of a bound are three) is judged on its own: a catalogued bug of the check's target
is a *candidate* for an output when its replay from the same RNG state gives the submission's value
of that output on every recorded call, where the reference's does not. The checks' own inputs may
make two bugs coincide (with q = p(z), "a scalar rec in the weights" and "the mean of the
log-weights" give the same bound), so a candidate is named only after a *discriminating probe*
(:data:`PROBES`: generic inputs on which the catalogue's bugs of each output differ pairwise, as
``tests/test_diagnosis.py`` checks) confirms it: the submission, the reference and the candidates
run on the probe from one RNG state, and exactly one candidate must match there. So two bugs in two
outputs are both named, and a bug is never named on a coincidence. Classes (``AffineCoupling``)
are compared on a fixed probe only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from grader.catalogue import Bug, bugs_for

MAX_CALLS_COMPARED = 3
OUTPUT_LABELS = {"negative_elbo_bound": ("nelbo", "kl", "rec"), "negative_iwae_bound": ("niwae", "kl", "rec"),
                 "gmvae_negative_elbo_bound": ("nelbo", "kl", "rec"), "gmvae_negative_iwae_bound": ("niwae", "kl", "rec"),
                 "ssvae_negative_elbo_bound": ("nelbo", "kl_z", "kl_y", "rec")}
PROBE_SEED = 16


@dataclass(frozen=True)
class Finding:
    """A catalogued bug that explains one output of a contract name."""

    target: str
    output: str  # the output's label (``rec``), or the contract name for a single output
    bug: Bug

    def as_dict(self) -> dict:
        return {"bug": self.bug.name, "output": self.output, "teaches": self.bug.teaches, "fix": self.bug.fix}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.requires_grad != b.requires_grad:
            return False
        a, b = a.detach().double().cpu(), b.detach().double().cpu()
        return bool(torch.allclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return False


def _part(out, j):
    """Output ``j`` of a tuple-valued result (the whole result for a single output; None if absent)."""
    if j is None:
        return out
    return out[j] if isinstance(out, (tuple, list)) and len(out) > j else None


def _run(fn, args, kwargs, rng_state):
    torch.random.set_rng_state(rng_state)
    args = tuple(a.detach().clone().requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a
                 for a in args)
    try:
        return fn(*args, **kwargs)
    except Exception:  # a bug variant (or the submission) may not accept these inputs: it explains nothing
        return None


def _replay(fn, call):
    return _run(fn, call.args, call.kwargs, call.rng_state)


def _outputs_of(target):
    labels = OUTPUT_LABELS.get(target)
    return [(j, label) for j, label in enumerate(labels)] if labels else [(None, target)]


class _Replays:
    """Each function's outputs on the recorded calls and on the probe, computed once and only when
    asked (a bug that differs from the submission on the small probe is never replayed on the
    checks' inputs, which may hold millions of pixels)."""

    def __init__(self, target, calls, reference, submission):
        self.calls, self.reference = calls, reference
        self.probe = PROBES[target]()
        self.state = torch.Generator().manual_seed(PROBE_SEED).get_state()
        self._cache: dict = {}
        self.whole = _run(submission, self.probe, {}, self.state)  # the submission on the probe

    def on_probe(self, fn):
        return self._get(("probe", id(fn)), lambda: _run(fn, self.probe, {}, self.state))

    def on_call(self, fn, i):
        return self._get((i, id(fn)), lambda: _replay(fn, self.calls[i]))

    def reproduces_calls(self, fn, j) -> bool:
        """Does ``fn``'s output ``j`` equal the submission's on every recorded call?"""
        return all(_same(_part(self.on_call(fn, i), j), _part(c.output, j)) for i, c in enumerate(self.calls))

    def _get(self, key, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


def _explained(target, replays: _Replays, j):
    """The one catalogued bug that explains output ``j``, or None: it must reproduce the submission's
    output on every recorded call (where the reference does not) and on the discriminating probe
    (where the reference does not either); of several, the one that reproduces every output."""
    seen = _part(replays.whole, j)
    if seen is None or _same(_part(replays.on_probe(replays.reference), j), seen):
        return None
    on_probe = [b for b in bugs_for(target) if _same(_part(replays.on_probe(b.fn), j), seen)]
    if not on_probe or replays.reproduces_calls(replays.reference, j):
        return None
    matching = [b for b in on_probe if replays.reproduces_calls(b.fn, j)]
    if len(matching) > 1:  # the same value of this output: the one that explains every output, if one does
        matching = [b for b in matching if _same(replays.on_probe(b.fn), replays.whole)]
    return matching[0] if len(matching) == 1 else None


def explain_outputs(target: str, calls, reference, submission=None) -> list[Finding]:
    """The catalogued bugs of ``target`` that explain its outputs, one per output at most (see the module)."""
    calls = [c for c in calls if c.name == target][:MAX_CALLS_COMPARED]
    if not calls or submission is None or target not in PROBES:
        return []
    state = torch.random.get_rng_state()
    try:
        replays = _Replays(target, calls, reference, submission)
        findings = []
        for j, label in _outputs_of(target):
            found = _explained(target, replays, j)
            if found is not None:
                findings.append(Finding(target, label, found))
        return findings
    finally:
        torch.random.set_rng_state(state)


def explain_calls(target: str, calls, reference, submission=None) -> Bug | None:
    """The first bug :func:`explain_outputs` names (None if none)."""
    findings = explain_outputs(target, calls, reference, submission)
    return findings[0].bug if findings else None


# ------------------------------------------------------------------------------- the probes
def _g():
    return torch.Generator().manual_seed(PROBE_SEED)


def _normal(*shape, g, scale=1.0):
    return scale * torch.randn(*shape, generator=g, dtype=torch.float64)


def _variance(*shape, g):
    return 0.4 + 2 * torch.rand(*shape, generator=g, dtype=torch.float64)


def _probe_sample():
    g = _g()
    return _normal(3, 4, g=g).requires_grad_(True), _variance(3, 4, g=g).requires_grad_(True)


def _probe_log_normal():
    g = _g()
    return _normal(3, 4, g=g, scale=2), _normal(3, 4, g=g), _variance(3, 4, g=g)


def _probe_mixture():
    g = _g()
    m = _normal(3, 2, 4, g=g, scale=2)
    m[:, 1] += 60.0  # a far component: its log density is about -1e3
    return _normal(3, 4, g=g), m, _variance(3, 2, 4, g=g)


def _probe_kl():
    g = _g()
    return _normal(3, 4, g=g), _variance(3, 4, g=g), _normal(3, 4, g=g), _variance(3, 4, g=g)


def _probe_bernoulli():
    g = _g()
    x = (torch.rand(3, 4, generator=g) < 0.5).double()
    logits = _normal(3, 4, g=g, scale=3)
    x[0, 0], logits[0, 0] = 1.0, -800.0  # log sigmoid(-800) underflows when written as log(sigmoid)
    return x, logits


def _probe_log_mean_exp():
    g = _g()
    x = _normal(3, 4, g=g, scale=3)
    x[1] += 1e4
    return x, 1


def _probe_affine_flow():
    g = _g()
    return _normal(5, g=g, scale=3), torch.tensor([1.5, -0.5, 2.0, 0.7, -3.0], dtype=torch.float64), _normal(5, g=g)


def _probe_bound(iw=None):
    from verify.models import MLPDecoder, MLPEncoder

    g = _g()
    x = (torch.rand(3, 6, generator=g) < 0.5).double()
    x[0], x[1] = 1.0, 0.0  # a heterogeneous batch
    encoder = MLPEncoder(6, 2, seed=PROBE_SEED, spread=2.0)
    decoder = MLPDecoder(2, 6, seed=PROBE_SEED + 1)
    return (x, encoder, decoder) if iw is None else (x, encoder, decoder, iw)


def _probe_gmvae(iw=None):
    from verify.latent_models import mixture_prior

    x, encoder, decoder = _probe_bound()
    prior_m, prior_v = mixture_prior(3, 2, seed=PROBE_SEED)
    return (x, encoder, decoder, prior_m, prior_v) + (() if iw is None else (iw,))


def _probe_ssvae():
    from verify.latent_models import Classifier, LabelDecoder, LabelEncoder

    x = _probe_bound()[0]
    return (x, LabelEncoder(6, 3, 2, seed=PROBE_SEED), LabelDecoder(2, 3, 6, seed=PROBE_SEED + 1),
            Classifier(6, 3, seed=PROBE_SEED + 2))


PROBES = {
    "sample_gaussian": _probe_sample,
    "log_normal": _probe_log_normal,
    "log_normal_mixture": _probe_mixture,
    "kl_normal": _probe_kl,
    "log_bernoulli_with_logits": _probe_bernoulli,
    "log_mean_exp": _probe_log_mean_exp,
    "negative_elbo_bound": _probe_bound,
    "negative_iwae_bound": lambda: _probe_bound(4),
    "affine_flow_log_prob": _probe_affine_flow,
    "gmvae_negative_elbo_bound": _probe_gmvae,
    "gmvae_negative_iwae_bound": lambda: _probe_gmvae(4),
    "ssvae_negative_elbo_bound": _probe_ssvae,
}


def _probe_coupling(cls):
    """(y, log_det, inverse(y)) of ``cls`` on a fixed float64 probe, or None if it fails to run."""
    g = torch.Generator().manual_seed(5)
    dim = 6
    mask = torch.tensor([1.0, 0.0] * (dim // 2), dtype=torch.float64)
    w_s = torch.randn(dim, dim, generator=g, dtype=torch.float64) * 0.5
    w_t = torch.randn(dim, dim, generator=g, dtype=torch.float64) * 0.5
    x = torch.randn(5, dim, generator=g, dtype=torch.float64)

    def scale_net(h):
        return torch.tanh(h @ w_s)

    def shift_net(h):
        return h @ w_t

    try:
        layer = cls(mask, scale_net, shift_net)
        y, log_det = layer(x)
        return y.detach(), log_det.detach(), layer.inverse(y).detach()
    except Exception:
        return None


def explain_class(target: str, cls, reference) -> Bug | None:
    """The catalogued bug class of ``target`` that behaves like ``cls`` on the probe."""
    if target != "AffineCoupling":
        return None
    seen = _probe_coupling(cls)
    if seen is None or _same(_probe_coupling(reference), seen):
        return None
    for bug in bugs_for(target):
        out = _probe_coupling(bug.fn)
        if out is not None and _same(out, seen):
            return bug
    return None
