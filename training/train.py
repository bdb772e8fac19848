"""Train the reference models on MNIST and evaluate them on the test set.

    python -m training.train vae     [--iters 20000] [--out out/vae] [--data-dir DIR] ...
    python -m training.train realnvp [--iters 4000] [--minutes 19] [--out out/realnvp] ...
    python -m training.train eval-vae out/vae/checkpoint.pt [--ll-samples 5000]
    python -m training.train gmvae | ssvae --gen-weight 0|1 | eval-gmvae | eval-ssvae   (training/train_hw2.py)

``vae``: the CS236 configuration (z = 10, 784-300-300 ELU MLPs, Adam 1e-3, batch 100, 20,000
iterations, dynamic binarization), optionally with KL warm-up and free bits. Writes, under ``--out``:
``metrics.csv`` (the training curves), ``checkpoint.pt``, ``curves.png`` (KL, rec and NELBO
against iterations), ``samples.png`` (8 x 8 samples), ``eval.json`` (test metrics, statically
binarized test set) and prints them beside the homework's numbers.

``realnvp``: a RealNVP of affine couplings with binary masks on dequantized, logit-transformed
MNIST (training/mnist_flow.py). Writes ``metrics.csv``, ``checkpoint.pt``, ``curves.png``,
``samples.png`` (4 x 4) and ``eval.json`` (test bits/dim).

Every run is deterministic in ``--seed`` (on one machine and thread count). Exit code 2 for a usage
error (bad option, missing data), with a message and no traceback.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from training import data as mnist
from training import evaluate as ev
from training.loop import (  # noqa: F401  (re-exported: the commands' shared pieces)
    UsageError, Batches, CSVLog, _Run, _adam, _checkpoint, _common, _finish, _ks, _limit, _load_checkpoint,
    _load_split, _nonneg_float, _nonneg_int, _number, _positive_float, _positive_int, _resume, _save_json, _setup,
    _train_loop)
from impls.bounds import elbo_terms, negative_elbo_bound
from impls.vae import VAE


# --------------------------------------------------------------------------------- VAE
def vae_objective(model, x, beta=1.0, free_bits=0.0):
    """The training loss and the true (nelbo, kl, rec) batch means.

    With ``beta == 1`` and no free bits the loss is the reference negative ELBO
    (impls/bounds.py). Otherwise loss = rec + beta * sum_i max(free_bits, KL_i), KL_i the batch-mean
    KL of latent dimension i (KL warm-up: beta rising from 0 to 1; free bits: Kingma et al. 2016,
    per dimension), with the same one-sample reconstruction term: both terms are the reference's
    (:func:`impls.bounds.elbo_terms`)."""
    if beta == 1.0 and free_bits == 0.0:
        nelbo, kl, rec = negative_elbo_bound(x, model.enc, model.dec)
        return nelbo, nelbo, kl, rec
    rec, kl_dims = elbo_terms(x, model.enc, model.dec)
    rec, kl_dims = rec.mean(), kl_dims.mean(0)
    kl = kl_dims.sum()
    loss = rec + beta * torch.clamp(kl_dims, min=free_bits).sum()
    return loss, kl + rec, kl, rec


def train_vae(args):
    run = _setup(args, lambda: VAE(z_dim=args.z_dim, hidden=args.hidden))
    model, ckpt_path = run.model, run.out / "checkpoint.pt"
    start, elapsed0 = _resume(ckpt_path, run, "vae") if args.resume and ckpt_path.exists() else (0, 0.0)
    log = CSVLog(run.out / "metrics.csv", ["iteration", "loss", "nelbo", "kl", "rec", "beta", "seconds"],
                 resume_at=start if args.resume else None)

    def save(it, seconds):
        _checkpoint(ckpt_path, kind="vae", model=model.state_dict(), optimizer=run.opt.state_dict(),
                    batches=run.batches.state_dict(), data_g=run.data_g.get_state(), torch_rng=torch.get_rng_state(),
                    iteration=it, train_seconds=seconds, config=vars(args))

    def step(it, elapsed):
        beta = min(1.0, it / args.kl_warmup) if args.kl_warmup else 1.0
        x = mnist.binarize_dynamic(run.train_x[run.batches.next()], generator=run.data_g)
        loss, nelbo, kl, rec = vae_objective(model, x, beta, args.free_bits)
        return loss, {"loss": loss, "nelbo": nelbo, "kl": kl, "rec": rec}, {"beta": round(beta, 4)}

    _, train_seconds, _ = _train_loop(run, step, log, args, desc="VAE", start=start, elapsed0=elapsed0, save=save,
                                      save_every=args.save_every,
                                      show=lambda m: {k: f"{m[k]:.2f}" for k in ("nelbo", "kl", "rec")})
    save(args.iters, train_seconds)
    _finish(run, log, args, args.iters, train_seconds,
            (["kl", "rec", "nelbo"], ["KL", "reconstruction", "negative ELBO"], "VAE training (batch means, nats)"),
            (lambda: torch.sigmoid(model.dec(model.sample_z(64))), 8,
             "VAE samples: Bernoulli means of p(x|z), z ~ N(0, I)"))
    summary = {"model": "vae", "iterations": args.iters, "train_seconds": round(train_seconds, 1),
               "threads": torch.get_num_threads(), "config": vars(args)}
    if not args.no_eval:
        summary.update(run_vae_eval(model, args))
    _save_json(run.out / "eval.json", summary)
    print(f"wrote {run.out / 'eval.json'}")
    return summary


def homework_misses(metrics, nats):
    """The homework numbers that ``metrics`` misses by more than ``nats``: [(key, ours, homework)]."""
    return [(k, metrics.get(k), hw) for k, hw in ev.HOMEWORK.items()
            if metrics.get(k) is None or abs(metrics[k] - hw) > nats]


def _check_homework(metrics, args):
    """Exit code of ``--check-homework NATS``: 0 when every homework number is matched within NATS."""
    if args.check_homework is None:
        return 0
    misses = homework_misses(metrics, args.check_homework)
    for k, ours, hw in misses:
        print(f"check: {k} = {'not computed' if ours is None else f'{ours:.2f}'} is not within "
              f"{args.check_homework} of the homework's {hw}", file=sys.stderr)
    if not misses:
        print(f"check: every homework number matched within {args.check_homework} nats")
    return 1 if misses else 0


def run_vae_eval(model, args):
    test_x, _ = _load_split("test", args.data_dir)
    x = mnist.binarize_static(_limit(args.test_images, test_x), seed=args.eval_seed)
    ks = tuple(args.iwae_k)
    metrics = ev.evaluate_vae(model, x, iwae_ks=ks, ll_samples=args.ll_samples, seed=args.eval_seed,
                              progress=not args.quiet)
    metrics["binarization"] = f"static, seed {args.eval_seed}"
    print(ev.homework_table(metrics, ks, args.ll_samples))
    print(f"(test set: {metrics['n_images']} images, statically binarized; evaluation {metrics['eval_seconds']} s)")
    return metrics


def eval_vae(args):
    ck = _load_checkpoint(args.checkpoint)
    if ck.get("kind") != "vae":
        raise UsageError(f"{args.checkpoint} is not a VAE checkpoint")
    cfg = ck["config"]
    model = VAE(z_dim=cfg["z_dim"], hidden=cfg["hidden"])
    model.load_state_dict(ck["model"])
    metrics = run_vae_eval(model, args)
    out = Path(args.out) if args.out else Path(args.checkpoint).with_name("eval.json")
    _save_json(out, {"model": "vae", "iterations": ck["iteration"], "train_seconds": ck["train_seconds"],
                     "config": cfg, **metrics})
    print(f"wrote {out}")
    return metrics


# ------------------------------------------------------------------------------ RealNVP
def _realnvp_lr(args, it, elapsed, budget):
    """The learning rate of iteration ``it``: cosine decay to 0 at the last iteration, or earlier
    when the time cap comes first (the run is deterministic in --seed unless the cap is reached:
    eval.json says so), after a linear warm-up over --warmup iterations."""
    frac = min(1.0, max(it / args.iters, elapsed / budget))
    lr = args.lr * 0.5 * (1 + math.cos(math.pi * frac)) if args.cosine else args.lr
    return lr * it / args.warmup if it <= args.warmup else lr


def train_realnvp(args):
    from training import mnist_flow as mf

    run = _setup(args, lambda: mf.MNISTRealNVP(n_layers=args.layers, hidden=args.hidden, alpha=args.alpha))
    test_x = _limit(args.test_images, _load_split("test", args.data_dir)[0])
    budget = args.minutes * 60 if args.minutes else math.inf
    log = CSVLog(run.out / "metrics.csv", ["iteration", "bpd", "lr", "seconds"])

    def step(it, elapsed):
        lr = _realnvp_lr(args, it, elapsed, budget)
        for group in run.opt.param_groups:
            group["lr"] = lr
        u = mf.dequantize(run.train_x[run.batches.next()], generator=run.data_g)
        bpd = mf.bits_per_dim(run.model, u).mean()
        return bpd, {"bpd": bpd}, {"lr": f"{lr:.3g}"}

    it, train_seconds, stopped_by_time = _train_loop(run, step, log, args, desc="RealNVP", budget=budget,
                                                     clip=args.clip, log_final=False,
                                                     show=lambda m: {"bpd": f"{m['bpd']:.3f}"})
    _checkpoint(run.out / "checkpoint.pt", kind="realnvp", model=run.model.state_dict(), iteration=it,
                train_seconds=train_seconds, config=vars(args))
    _finish(run, log, args, it, train_seconds, (["bpd"], ["bits/dim (train batches)"], "RealNVP training"),
            (lambda: run.model.sample(16, temperature=args.temperature), 4,
             f"RealNVP samples (temperature {args.temperature})"))
    t1 = time.perf_counter()
    test_bpd = mf.evaluate_bpd(run.model, test_x, seed=args.eval_seed)
    summary = {"model": "realnvp", "iterations": it, "stopped_by_time_cap": stopped_by_time,
               "train_seconds": round(train_seconds, 1),
               "threads": torch.get_num_threads(), "test_bpd": test_bpd, "n_test_images": len(test_x),
               "eval_seconds": round(time.perf_counter() - t1, 1), "config": vars(args)}
    _save_json(run.out / "eval.json", summary)
    print(f"test bits/dim: {test_bpd:.4f} ({len(test_x)} images, uniform dequantization seed {args.eval_seed}); "
          f"wrote {run.out / 'eval.json'}")
    return summary


# --------------------------------------------------------------------------------- CLI
def _vae_eval_options(p):
    p.add_argument("--iwae-k", type=_ks, default=list(ev.IWAE_KS), help="IWAE bounds to report (default 1,5,50,150)")
    p.add_argument("--ll-samples", type=_nonneg_int, default=ev.LL_SAMPLES,
                   help="samples of the IWAE log-likelihood estimate (default 5000, about 8 min on 2 cores; 0 skips)")
    p.add_argument("--check-homework", type=_nonneg_float, default=None, metavar="NATS",
                   help="exit 1 unless NELBO and IWAE-5/50/150 are each within NATS of the homework's numbers")


def parser():
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="{vae,gmvae,ssvae,realnvp,eval-vae,eval-gmvae,eval-ssvae}")
    v = sub.add_parser("vae", help="train the CS236 VAE, then evaluate it on the test set")
    _common(v)
    v.add_argument("--out", default="out/vae", help="output folder (default out/vae)")
    v.add_argument("--iters", type=_positive_int, default=20000, help="training iterations (default 20000)")
    v.add_argument("--batch", type=_positive_int, default=100, help="batch size (default 100)")
    v.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    v.add_argument("--z-dim", type=_positive_int, default=10, help="latent dimensions (default 10)")
    v.add_argument("--hidden", type=_positive_int, default=300, help="hidden units of the MLPs (default 300)")
    v.add_argument("--kl-warmup", type=_nonneg_int, default=0,
                   help="KL annealing: the KL weight rises linearly from 0 to 1 over N iterations (default 0: off)")
    v.add_argument("--free-bits", type=_nonneg_float, default=0.0,
                   help="free bits: each latent dimension's batch-mean KL counts at least LAMBDA nats (default 0: off)")
    v.add_argument("--log-every", type=_positive_int, default=50, help="iterations per metrics.csv row (default 50)")
    v.add_argument("--save-every", type=_positive_int, default=5000, help="iterations between checkpoints (default 5000)")
    v.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt when it exists")
    v.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation")
    _vae_eval_options(v)

    e = sub.add_parser("eval-vae", help="evaluate a VAE checkpoint on the test set")
    e.add_argument("checkpoint", help="checkpoint.pt written by 'python -m training.train vae'")
    e.add_argument("--out", default=None, help="JSON to write (default: eval.json next to the checkpoint)")
    e.add_argument("--data-dir", default=None, help="folder of the MNIST IDX files")
    e.add_argument("--eval-seed", type=int, default=0, help="seed of the static binarization and estimates (default 0)")
    e.add_argument("--test-images", type=_nonneg_int, default=0, help="evaluate on the first N test images (0: all)")
    e.add_argument("--threads", type=_positive_int, default=1, help="torch threads (default 1)")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    _vae_eval_options(e)

    r = sub.add_parser("realnvp", help="train a RealNVP on dequantized, logit-transformed MNIST; test bits/dim")
    _common(r)
    r.add_argument("--out", default="out/realnvp", help="output folder (default out/realnvp)")
    r.add_argument("--iters", type=_positive_int, default=4000, help="training iterations (default 4000)")
    r.add_argument("--minutes", type=_nonneg_float, default=19.0,
                   help="time cap: stop (the learning rate decayed to 0) after this many minutes of training "
                        "if --iters are not done yet (default 19; 0: no cap)")
    r.add_argument("--batch", type=_positive_int, default=100, help="batch size (default 100)")
    r.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    r.add_argument("--no-cosine", dest="cosine", action="store_false", help="constant learning rate (default: cosine decay)")
    r.add_argument("--warmup", type=_nonneg_int, default=200, help="linear learning-rate warm-up iterations (default 200)")
    r.add_argument("--clip", type=_nonneg_float, default=100.0, help="gradient-norm clipping (default 100; 0: off)")
    r.add_argument("--layers", type=_positive_int, default=8, help="coupling layers (default 8)")
    r.add_argument("--hidden", type=_positive_int, default=512, help="hidden units of each coupling's MLP (default 512)")
    r.add_argument("--alpha", type=_positive_float, default=1e-6,
                   help="logit transform y = logit(alpha + (1 - 2 alpha) u) (default 1e-6)")
    r.add_argument("--temperature", type=_positive_float, default=1.0, help="sampling temperature (default 1)")
    r.add_argument("--log-every", type=_positive_int, default=50, help="iterations per metrics.csv row (default 50)")
    from training import train_hw2  # the GMVAE and SSVAE commands

    train_hw2.add_parsers(sub)
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help()
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.command in ("vae", "eval-vae"):
            if args.check_homework is not None and (getattr(args, "no_eval", False)
                                                    or not {5, 50, 150} <= set(args.iwae_k)):
                raise UsageError("--check-homework needs the evaluation with --iwae-k including 5, 50 and 150")
            result = train_vae(args) if args.command == "vae" else eval_vae(args)
            return _check_homework(result, args)
        elif args.command in ("gmvae", "ssvae", "eval-gmvae", "eval-ssvae"):
            from training import train_hw2

            return train_hw2.COMMANDS[args.command](args)
        else:
            if args.alpha >= 0.5:
                raise UsageError(f"--alpha must be in (0, 0.5), not {args.alpha}")
            train_realnvp(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an output folder that cannot be written, a full disk
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
