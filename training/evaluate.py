"""Evaluating the trained models on the MNIST test set: the homework's table, posterior-collapse
diagnostics, bits per dimension, and the figures (training curves, sample grids).

Every number comes from the reference formulas (impls/bounds.py, impls/gaussian.py, impls/flows.py).
"""
from __future__ import annotations

import math
import time

import torch
from tqdm import tqdm

from impls.bounds import kl_per_dimension, negative_elbo_bound, negative_iwae_bound

# The homework's numbers on the 10,000 MNIST test images (negative bounds, nats).
HOMEWORK = {"nelbo": 99.42, "iwae_5": 97.75, "iwae_50": 96.59, "iwae_150": 96.30}
IWAE_KS = (1, 5, 50, 150)
LL_SAMPLES = 5000
ACTIVE_THRESHOLD = 0.01  # Burda et al. (2016): unit u active when Cov_x(E_q[z_u]) > 1e-2


@torch.no_grad()
def posterior_diagnostics(encoder, x, batch=1000, threshold=ACTIVE_THRESHOLD):
    """Per-dimension KL (mean over ``x``), the activity Var_x(E_q[z_i]) of each unit and the number
    of active units (activity above ``threshold``)."""
    ms, kls = [], []
    for xb in x.split(batch):
        m, v = encoder(xb)
        ms.append(m)
        kls.append(kl_per_dimension(m, v))
    m, kl = torch.cat(ms), torch.cat(kls)
    activity = m.double().var(0, unbiased=False)
    return {
        "kl_per_dim": [round(float(k), 4) for k in kl.double().mean(0)],
        "activity_per_dim": [float(a) for a in activity],
        "active_units": int((activity > threshold).sum()),
        "active_threshold": threshold,
    }


@torch.no_grad()
def evaluate_vae(model, x, iwae_ks=IWAE_KS, ll_samples=LL_SAMPLES, batch=100, elbo_repeats=10, seed=0,
                 progress=True):
    """The homework's test metrics of ``model`` on the binary images ``x`` (N, 784), batch means
    averaged over the set (nats): ``nelbo``, ``kl``, ``rec`` (``elbo_repeats`` one-sample passes),
    ``iwae_<k>`` for k in ``iwae_ks``, ``iwae_<ll_samples>`` (the log-likelihood estimate,
    -log p(x) >= ...; 0 skips it), and the posterior-collapse diagnostics. Deterministic in ``seed``,
    each number whatever else is asked for."""
    model.eval()
    torch.manual_seed(seed)
    n = len(x)
    out = {"n_images": n}
    t0 = time.perf_counter()
    sums = torch.zeros(3, dtype=torch.float64)
    for _ in range(elbo_repeats):
        for xb in x.split(batch):
            sums += torch.stack(negative_elbo_bound(xb, model.enc, model.dec)).double() * len(xb)
    out["nelbo"], out["kl"], out["rec"] = (float(s) / (n * elbo_repeats) for s in sums)
    ks = [k for k in iwae_ks] + ([ll_samples] if ll_samples else [])
    for k in ks:
        torch.manual_seed(seed * 1_000_003 + k)  # each estimate's own stream: independent of the other ks
        total = 0.0
        bar = tqdm(x.split(batch), desc=f"IWAE-{k}", leave=False, disable=not progress or k < 1000)
        for xb in bar:
            total += float(negative_iwae_bound(xb, model.enc, model.dec, k)[0]) * len(xb)
        out[f"iwae_{k}"] = total / n
    if ll_samples:
        out["log_likelihood"] = -out[f"iwae_{ll_samples}"]
    out.update(posterior_diagnostics(model.enc, x))
    out["eval_seconds"] = round(time.perf_counter() - t0, 1)
    return out


def homework_table(metrics, iwae_ks=IWAE_KS, ll_samples=LL_SAMPLES):
    """The test metrics beside the homework's numbers, as printable text."""
    rows = [("NELBO", "nelbo")] + [(f"IWAE-{k}", f"iwae_{k}") for k in iwae_ks]
    if ll_samples and f"iwae_{ll_samples}" in metrics:
        rows.append((f"IWAE-{ll_samples} (-log p(x))", f"iwae_{ll_samples}"))
    rows += [("KL", "kl"), ("Rec", "rec")]
    lines = [f"{'metric (nats, test set)':28s} {'homework':>9s} {'ours':>9s} {'ours - hw':>10s}"]
    for label, key in rows:
        ours = metrics.get(key)
        hw = HOMEWORK.get(key)
        lines.append(f"{label:28s} {'-' if hw is None else f'{hw:9.2f}':>9s} "
                     f"{'-' if ours is None else f'{ours:9.2f}':>9s} "
                     f"{'' if hw is None or ours is None else f'{ours - hw:+10.2f}':>10s}")
    if "active_units" in metrics:
        lines.append(f"{'active units':28s} {'-':>9} {metrics['active_units']:9d} "
                     f"{'':10s} (of {len(metrics['kl_per_dim'])}; Var_x E_q[z_i] > {metrics['active_threshold']})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- flows
def bits_per_dim(log_px, dims):
    """bits/dim from log-densities in nats of data scaled to [0, 256)^dims: -log2 p / dims."""
    return -log_px / (dims * math.log(2))


# --------------------------------------------------------------------------- figures
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_grid(images, path, nrow, title=None):
    """A nrow x ncol grid of 28 x 28 images (values in [0, 1]) as a PNG."""
    plt = _pyplot()
    images = images.detach().float().clamp(0, 1).reshape(-1, 28, 28).cpu()
    ncol = math.ceil(len(images) / nrow)
    canvas = torch.ones(nrow * 30 - 2, ncol * 30 - 2)
    for i, im in enumerate(images):
        r, c = divmod(i, ncol)
        canvas[r * 30:r * 30 + 28, c * 30:c * 30 + 28] = im
    fig = plt.figure(figsize=(ncol * 0.6 + 0.4, nrow * 0.6 + (0.6 if title else 0.4)))
    ax = fig.add_axes([0.02, 0.02, 0.96, 0.9 if title else 0.96])
    ax.imshow(canvas.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(rows, path, keys, labels, title):
    """One panel per key against the iteration: the training curves of the metrics CSV."""
    plt = _pyplot()
    its = [r["iteration"] for r in rows]
    fig, axes = plt.subplots(len(keys), 1, figsize=(6, 2.2 * len(keys)), sharex=True, squeeze=False)
    for ax, key, label in zip(axes[:, 0], keys, labels):
        values = [r[key] for r in rows]
        ax.plot(its, values, lw=1)
        lo, hi = min(values), max(values[len(values) // 20:])  # not scaled by the first steps
        ax.set_ylim(lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("iteration")
    axes[0, 0].set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
