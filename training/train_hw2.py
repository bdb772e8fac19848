"""The training commands of the GMVAE and the SSVAE (``python -m training.train gmvae|ssvae|eval-gmvae|eval-ssvae``):
the loop, checkpoints and figures of training/train.py around the models of training/hw2.py."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from impls.gmvae import GMVAE
from impls.ssvae import SSVAE
from training import data as mnist
from training import hw2
from training import loop as tr


# ------------------------------------------------------------------------------ shared
def _saver(run, kind, args):
    path = run.out / "checkpoint.pt"

    def save(it, seconds):
        tr._checkpoint(path, kind=kind, model=run.model.state_dict(), optimizer=run.opt.state_dict(),
                       batches=run.batches.state_dict(), data_g=run.data_g.get_state(),
                       torch_rng=torch.get_rng_state(), iteration=it, train_seconds=seconds, config=vars(args))

    return save


def _train(run, step, log, args, save, start, elapsed0, desc, show):
    """``tr._train_loop`` that stops cleanly on SIGINT / SIGTERM: the state after the last complete
    iteration is checkpointed and :class:`KeyboardInterrupt` raised (exit 130; ``--resume`` continues)."""
    last = {"seconds": elapsed0}
    with hw2.stop_on_signals() as flag:
        def guarded(it, elapsed):
            if flag["stop"]:
                raise hw2.Interrupted(it - 1)
            last["seconds"] = elapsed0 + elapsed
            return step(it, elapsed)

        try:
            _, seconds, _ = tr._train_loop(run, guarded, log, args, desc=desc, start=start, elapsed0=elapsed0,
                                           save=save, save_every=args.save_every, show=show)
        except hw2.Interrupted as stop:
            done = stop.args[0]
            save(done, last["seconds"])
            print(f"\ninterrupted after iteration {done}: {run.out / 'checkpoint.pt'} saved; "
                  f"--resume continues", file=sys.stderr)
            raise KeyboardInterrupt from None
    save(args.iters, seconds)
    return seconds


def _report_targets(metrics, targets, title, args, checked=None):
    """Print ``metrics`` beside the course's targets; with --check-homework, 1 unless ``checked``
    (default ``metrics``) meets every target within its tolerance."""
    print(hw2.targets_table(metrics, targets, title))
    if not args.check_homework:
        return 0
    misses = hw2.target_misses(metrics if checked is None else checked, targets)
    for k, ours, t, tol in misses:
        print(f"check: {k} = {'not computed' if ours is None else f'{ours:.4f}'} is not within {tol:g} of the "
              f"course's {t:g}", file=sys.stderr)
    if not misses:
        print("check: every course target met within its tolerance")
    return 1 if misses else 0


# ------------------------------------------------------------------------------ GMVAE
def train_gmvae(args):
    run = tr._setup(args, lambda: GMVAE(z_dim=args.z_dim, k=args.k, hidden=args.hidden))
    model, ckpt = run.model, run.out / "checkpoint.pt"
    start, elapsed0 = tr._resume(ckpt, run, "gmvae") if args.resume and ckpt.exists() else (0, 0.0)
    log = tr.CSVLog(run.out / "metrics.csv", ["iteration", "nelbo", "kl", "rec", "seconds"],
                    resume_at=start if args.resume else None)

    def step(it, elapsed):
        x = mnist.binarize_dynamic(run.train_x[run.batches.next()], generator=run.data_g)
        nelbo, kl, rec = model.negative_elbo_bound(x)
        return nelbo, {"nelbo": nelbo, "kl": kl, "rec": rec}, {}

    seconds = _train(run, step, log, args, _saver(run, "gmvae", args), start, elapsed0, "GMVAE",
                     lambda m: {k: f"{m[k]:.2f}" for k in ("nelbo", "kl", "rec")})
    tr._finish(run, log, args, args.iters, seconds,
               (["kl", "rec", "nelbo"], ["KL (Monte Carlo)", "reconstruction", "negative ELBO"],
                "GMVAE training (batch means, nats)"),
               (lambda: torch.sigmoid(model.dec(model.sample_z(100))), 10,
                "GMVAE samples: Bernoulli means of p(x|z), z ~ the mixture prior"))
    summary = {"model": "gmvae", "iterations": args.iters, "train_seconds": round(seconds, 1),
               "threads": torch.get_num_threads(), "config": vars(args)}
    code = 0
    if not args.no_eval:
        metrics = run_gmvae_eval(model, args, partial=run.out / "eval.partial.json")
        summary.update(metrics)
        code = _gmvae_targets(metrics, args)
    tr._save_json(run.out / "eval.json", summary)
    print(f"wrote {run.out / 'eval.json'}")
    return code


def run_gmvae_eval(model, args, partial=None):
    """The course's protocol on its test subset (first: it is cheap), then the test metrics;
    ``partial``: a JSON path that holds the metrics computed so far while the evaluation runs."""
    test_x, test_y = tr._load_split("test", args.data_dir)
    t0 = time.perf_counter()
    x = mnist.binarize_static(tr._limit(args.test_images, test_x), seed=args.eval_seed)
    first = {}
    if args.course_subset:
        first["course_subset"] = hw2.course_subset_protocol(model, test_x, test_y, iws=tuple(args.iwae_k))
        print(hw2.targets_table(first["course_subset"], hw2.GMVAE_TARGETS,
                                "the course's protocol (its 100-image test subset, repeated estimates)"))
    save = (lambda m: tr._save_json(partial, {"partial": True, **m, **first})) if partial else None
    metrics = hw2.evaluate_gmvae(model, x, iws=tuple(args.iwae_k), elbo_repeats=args.elbo_repeats,
                                 seed=args.eval_seed, progress=not args.quiet, big_iw_images=args.big_iw_images,
                                 on_result=save)
    metrics.update(binarization=f"static, seed {args.eval_seed}", **first,
                   eval_seconds=round(time.perf_counter() - t0, 1))
    print(f"(test set: {metrics['n_images']} images, statically binarized; evaluation {metrics['eval_seconds']} s)")
    return metrics


def _gmvae_targets(metrics, args):
    """The test-set table; --check-homework checks the course's protocol (its subset), what the
    course's targets are measured on, when it was run, else the test-set numbers."""
    return _report_targets(metrics, hw2.GMVAE_TARGETS, "GMVAE on the MNIST test set (nats)", args,
                           checked=metrics.get("course_subset"))


def _load_for_eval(path, kind):
    ck = tr._load_checkpoint(path)
    if ck.get("kind") != kind:
        raise tr.UsageError(f"{path} is not a {kind.upper()} checkpoint")
    return ck


def eval_gmvae(args):
    ck = _load_for_eval(args.checkpoint, "gmvae")
    cfg = ck["config"]
    model = GMVAE(z_dim=cfg["z_dim"], k=cfg["k"], hidden=cfg["hidden"])
    model.load_state_dict(ck["model"])
    out = Path(args.out) if args.out else Path(args.checkpoint).with_name("eval.json")
    metrics = run_gmvae_eval(model, args, partial=out.with_suffix(".partial.json"))
    code = _gmvae_targets(metrics, args)
    tr._save_json(out, {"model": "gmvae", "iterations": ck["iteration"], "train_seconds": ck["train_seconds"],
                        "config": cfg, **metrics})
    print(f"wrote {out}")
    return code


# ------------------------------------------------------------------------------ SSVAE
def _one_hot(y, classes=10):
    return torch.eye(classes)[y]


def train_ssvae(args):
    if args.out is None:
        args.out = f"out/ssvae_gw{args.gen_weight:g}"
    make = lambda: SSVAE(gen_weight=args.gen_weight, class_weight=args.class_weight, z_dim=args.z_dim,  # noqa: E731
                         hidden=args.hidden)
    run = tr._setup(args, make)
    model, ckpt = run.model, run.out / "checkpoint.pt"
    train_y = tr._limit(args.train_images, tr._load_split("train", args.data_dir)[1])
    try:
        labelled = hw2.per_class_subset(train_y, hw2.COURSE_TRAIN_INDEX if args.labelled == "course" else None,
                                        args.per_class)
    except ValueError as exc:
        raise tr.UsageError(f"labelled subset: {exc}") from None
    xl_grey, yl = run.train_x[labelled], _one_hot(train_y[labelled])

    def same_weights(cfg):
        if (cfg["gen_weight"], cfg["class_weight"]) != (args.gen_weight, args.class_weight):
            raise tr.UsageError(f"{ckpt} was trained with --gen-weight {cfg['gen_weight']:g} --class-weight "
                                f"{cfg['class_weight']:g}, not {args.gen_weight:g} and {args.class_weight:g}")

    start, elapsed0 = tr._resume(ckpt, run, "ssvae", same_weights) if args.resume and ckpt.exists() else (0, 0.0)
    gen = args.gen_weight > 0
    fields = ["iteration", "loss", "ce", "train_acc"] + (["nelbo", "kl_z", "kl_y", "rec"] if gen else []) + ["seconds"]
    log = tr.CSVLog(run.out / "metrics.csv", fields, resume_at=start if args.resume else None)

    def step(it, elapsed):
        idx = run.batches.next()
        x = mnist.binarize_dynamic(run.train_x[idx], generator=run.data_g)
        xl = mnist.binarize_dynamic(xl_grey, generator=run.data_g)
        loss, summaries = model.loss(x, xl, yl)
        with torch.no_grad():
            acc = (model.cls(x).argmax(-1) == train_y[idx]).float().mean()
        return loss, {"loss": loss, **summaries, "train_acc": acc}, {}

    show = (lambda m: {"ce": f"{m['ce']:.3f}", "acc": f"{m['train_acc']:.3f}",
                       **({"nelbo": f"{m['nelbo']:.1f}"} if gen else {})})
    seconds = _train(run, step, log, args, _saver(run, "ssvae", args), start, elapsed0,
                     f"SSVAE gw={args.gen_weight:g}", show)
    curve_keys = ["ce", "train_acc"] + (["kl_y", "kl_z", "rec", "nelbo"] if gen else [])
    labels = {"ce": "CE of labelled", "train_acc": "accuracy (batch)", "kl_y": "KL(q(y|x)||p(y))",
              "kl_z": "KL z", "rec": "reconstruction", "nelbo": "negative ELBO"}
    rows = torch.eye(10).repeat_interleave(10, 0)
    tr._finish(run, log, args, args.iters, seconds,
               (curve_keys, [labels[k] for k in curve_keys], f"SSVAE training, gen_weight {args.gen_weight:g}"),
               (lambda: torch.sigmoid(model.dec(torch.randn(100, model.z_dim), rows)), 10,
                "SSVAE samples: row y = Bernoulli means of p(x|y,z), z ~ N(0, I)"))
    summary = {"model": "ssvae", "gen_weight": args.gen_weight, "iterations": args.iters,
               "train_seconds": round(seconds, 1), "threads": torch.get_num_threads(), "config": vars(args)}
    code = 0
    if not args.no_eval:
        metrics = run_ssvae_eval(model, args)
        summary.update(metrics)
        code = _ssvae_targets(metrics, args.gen_weight, args)
    tr._save_json(run.out / "eval.json", summary)
    print(f"wrote {run.out / 'eval.json'}")
    return code


def _ssvae_targets(metrics, gen_weight, args):
    targets = hw2.SSVAE_TARGETS.get(gen_weight)
    if targets is None:
        print(f"test accuracy {metrics['accuracy']:.4f} (the course has targets for gen_weight 0 and 1 only)")
        if args.check_homework:
            raise tr.UsageError("--check-homework: the course has targets for --gen-weight 0 and 1 only")
        return 0
    return _report_targets(metrics, targets, f"SSVAE (gen_weight {gen_weight:g}) on the MNIST test set", args)


def run_ssvae_eval(model, args):
    test_x, test_y = tr._load_split("test", args.data_dir)
    n = args.test_images or len(test_x)
    metrics = hw2.evaluate_ssvae(model, test_x[:n], test_y[:n], seed=args.eval_seed)
    print(f"test accuracy {metrics['accuracy']:.4f} (grey levels, as the course), "
          f"{metrics['accuracy_binarized']:.4f} (statically binarized), {n} images")
    return metrics


def eval_ssvae(args):
    ck = _load_for_eval(args.checkpoint, "ssvae")
    cfg = ck["config"]
    model = SSVAE(gen_weight=cfg["gen_weight"], class_weight=cfg["class_weight"], z_dim=cfg["z_dim"],
                  hidden=cfg["hidden"])
    model.load_state_dict(ck["model"])
    metrics = run_ssvae_eval(model, args)
    code = _ssvae_targets(metrics, cfg["gen_weight"], args)
    out = Path(args.out) if args.out else Path(args.checkpoint).with_name("eval.json")
    tr._save_json(out, {"model": "ssvae", "gen_weight": cfg["gen_weight"], "iterations": ck["iteration"],
                        "train_seconds": ck["train_seconds"], "config": cfg, **metrics})
    print(f"wrote {out}")
    return code


# ------------------------------------------------------------------------------ CLI
def _train_options(p, iters, out):
    tr._common(p)
    p.add_argument("--out", default=out, help=f"output folder (default {out or 'out/ssvae_gw<W>'})")
    p.add_argument("--iters", type=tr._positive_int, default=iters, help=f"training iterations (default {iters})")
    p.add_argument("--batch", type=tr._positive_int, default=100, help="batch size (default 100)")
    p.add_argument("--lr", type=tr._positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--hidden", type=tr._positive_int, default=300, help="hidden units of the MLPs (default 300)")
    p.add_argument("--log-every", type=tr._positive_int, default=50, help="iterations per metrics.csv row (default 50)")
    p.add_argument("--save-every", type=tr._positive_int, default=1000,
                   help="iterations between checkpoints (default 1000; Ctrl-C also saves)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt when it exists")
    p.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation")
    p.add_argument("--check-homework", action="store_true",
                   help="exit 1 unless the course's targets are met within the course's tolerances")


def _gmvae_eval_options(p):
    p.add_argument("--iwae-k", type=tr._ks, default=list(hw2.GMVAE_IWS),
                   help="NIWAE bounds to report (default 1,10,100,1000)")
    p.add_argument("--elbo-repeats", type=tr._positive_int, default=10,
                   help="one-sample passes over the test set averaged in NELBO, KL, rec (default 10)")
    p.add_argument("--big-iw-images", type=tr._nonneg_int, default=1000,
                   help="NIWAE-iw for iw >= 1000 on the first N of the test images only (default 1000, ~6 min on one "
                        "core; 0: all 10,000, over an hour)")
    p.add_argument("--no-course-subset", dest="course_subset", action="store_false",
                   help="skip the course's protocol on its 100-image test subset")


def _eval_options(p):
    p.add_argument("--out", default=None, help="JSON to write (default: eval.json next to the checkpoint)")
    p.add_argument("--data-dir", default=None, help="folder of the MNIST IDX files")
    p.add_argument("--eval-seed", type=int, default=0, help="seed of the static binarization and estimates (default 0)")
    p.add_argument("--test-images", type=tr._nonneg_int, default=0, help="evaluate on the first N test images (0: all)")
    p.add_argument("--threads", type=tr._positive_int, default=1, help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--check-homework", action="store_true",
                   help="exit 1 unless the course's targets are met within the course's tolerances")


def add_parsers(sub):
    g = sub.add_parser("gmvae", help="train the CS236 GMVAE (mixture prior), then evaluate it on the test set")
    _train_options(g, 20000, "out/gmvae")
    g.add_argument("--z-dim", type=tr._positive_int, default=10, help="latent dimensions (default 10)")
    g.add_argument("--k", type=tr._positive_int, default=500, help="mixture components of the prior (default 500)")
    _gmvae_eval_options(g)

    s = sub.add_parser("ssvae", help="train the CS236 SSVAE (100 labels), then its test accuracy")
    _train_options(s, 30000, None)
    s.add_argument("--gen-weight", type=tr._nonneg_float, default=1.0,
                   help="weight of the negative ELBO of the unlabelled batch (course: 0 or 1; default 1)")
    s.add_argument("--class-weight", type=tr._nonneg_float, default=100.0,
                   help="weight of the labelled cross-entropy (default 100)")
    s.add_argument("--z-dim", type=tr._positive_int, default=64, help="latent dimensions (default 64)")
    s.add_argument("--labelled", choices=("course", "first"), default="course",
                   help="the labelled subset: the course's 10 training images per digit (default), or the first "
                        "--per-class images of each digit")
    s.add_argument("--per-class", type=tr._positive_int, default=hw2.PER_CLASS,
                   help="with --labelled first: labelled training images per digit (default 10)")

    e = sub.add_parser("eval-gmvae", help="evaluate a GMVAE checkpoint on the test set")
    e.add_argument("checkpoint", help="checkpoint.pt written by 'python -m training.train gmvae'")
    _eval_options(e)
    _gmvae_eval_options(e)

    c = sub.add_parser("eval-ssvae", help="the test accuracy of an SSVAE checkpoint")
    c.add_argument("checkpoint", help="checkpoint.pt written by 'python -m training.train ssvae'")
    _eval_options(c)


COMMANDS = {"gmvae": train_gmvae, "ssvae": train_ssvae, "eval-gmvae": eval_gmvae, "eval-ssvae": eval_ssvae}
