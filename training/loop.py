"""What the training commands share (training/train.py, training/train_hw2.py): the usage error,
batch order, metrics CSV, checkpoints, the training loop with its progress bar, the figures at the
end, and the command-line number types."""
from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from training import data as mnist
from training import evaluate as ev

class UsageError(Exception):
    """A mistake in the options or the environment: printed as one message, exit code 2."""


# ------------------------------------------------------------------------------ helpers
class Batches:
    """Index batches of a fixed size from epoch-wise random permutations (the last, partial batch
    of an epoch is dropped); resumable through ``state_dict``."""

    def __init__(self, n, batch, generator):
        if batch > n:
            raise UsageError(f"--batch {batch} is larger than the training set ({n} images)")
        self.n, self.batch, self.g = n, batch, generator
        self.perm, self.pos = None, n

    def next(self):
        if self.pos + self.batch > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.g), 0
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return idx

    def state_dict(self):
        return {"g": self.g.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, s):
        self.g.set_state(s["g"])
        self.perm, self.pos = s["perm"], s["pos"]


class CSVLog:
    """The metrics CSV: one row per logging interval, means over the interval."""

    def __init__(self, path, fields, resume_at=None):
        self.path, self.fields = Path(path), list(fields)
        self.rows = []
        if resume_at is not None and self.path.exists():
            with self.path.open() as f:
                self.rows = [{k: int(float(v)) if k == "iteration" else float(v) for k, v in r.items()}
                             for r in csv.DictReader(f)
                             if int(float(r["iteration"])) <= resume_at]
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, self.fields)
            w.writeheader()
            w.writerows(self.rows)

    def add(self, row):
        self.rows.append(row)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.fields).writerow(row)


def _load_split(split, data_dir):
    try:
        return mnist.load_mnist(split, data_dir)
    except mnist.MNISTNotFoundError as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:
        raise UsageError(f"MNIST files unreadable: {exc}") from None


def _limit(n_images, images):
    return images if not n_images else images[:n_images]


def _save_json(path, obj):
    Path(path).write_text(json.dumps(obj, indent=2) + "\n")


def _checkpoint(path, **state):
    tmp = Path(str(path) + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _adam(params, lr):
    """Adam, with the fused CPU kernel where this torch has it (same update, less overhead)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


def _load_checkpoint(path):
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise UsageError(f"{path}: not a checkpoint of training.train ({type(exc).__name__}: {exc})") from None


# ------------------------------------------------------------------------ the training loop
@dataclass
class _Run:
    """A training run: its output folder, training images, model, optimizer, batch order and the
    generator of the data's noise (dynamic binarization, dequantization)."""

    out: Path
    train_x: torch.Tensor
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    batches: Batches
    data_g: torch.Generator


def _resume(path, run, kind, config_check=None):
    """Model, optimizer, batch order and random states from the ``kind`` checkpoint at ``path`` (its
    ``config`` first passed to ``config_check``, if given): (iteration, training seconds) it was saved at."""
    ck = _load_checkpoint(path)
    if ck.get("kind") != kind:
        raise UsageError(f"{path} is a {ck.get('kind')} checkpoint, not a {kind}'s")
    if config_check:
        config_check(ck["config"])
    run.model.load_state_dict(ck["model"])
    run.opt.load_state_dict(ck["optimizer"])
    run.batches.load_state_dict(ck["batches"])
    run.data_g.set_state(ck["data_g"])
    torch.set_rng_state(ck["torch_rng"])
    return ck["iteration"], ck["train_seconds"]


def _setup(args, make_model):
    """The run of ``args``: --out created, the training images loaded, then ``make_model()``, Adam,
    the batch order and the noise generator, seeded from --seed (+ 0, 1, 2)."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_x = _limit(args.train_images, _load_split("train", args.data_dir)[0])
    torch.manual_seed(args.seed)
    model = make_model()
    opt = _adam(model.parameters(), args.lr)
    batches = Batches(len(train_x), args.batch, torch.Generator().manual_seed(args.seed + 1))
    return _Run(out, train_x, model, opt, batches, torch.Generator().manual_seed(args.seed + 2))


def _train_loop(run, step, log, args, *, desc, show, start=0, elapsed0=0.0, budget=math.inf, clip=0.0,
                log_final=True, save=None, save_every=0):
    """Iterations start + 1 .. --iters of ``step(it, elapsed) -> (loss, means, extra)``, one optimizer
    step on ``loss`` each (its gradient norm clipped at ``clip`` when set), stopping early once
    ``budget`` seconds have passed. Every --log-every iterations (and at the last when ``log_final``)
    ``log`` gets a row: the float64 means over the interval of the scalar tensors ``means`` (4
    decimals), ``extra`` of the row's iteration, the iteration and the seconds; ``show(means)`` is
    the progress bar's postfix. ``save(it, seconds)`` every ``save_every`` iterations but the last.
    Returns (iterations done, training seconds with ``elapsed0`` before, whether the budget stopped it)."""
    run.model.train()
    t0 = time.perf_counter()
    acc, count, it, stopped = 0.0, 0, start, False
    bar = tqdm(total=args.iters, initial=start, desc=desc, disable=args.quiet, mininterval=1.0)
    while it < args.iters:
        elapsed = time.perf_counter() - t0
        if elapsed >= budget:
            stopped = True
            break
        it += 1
        loss, means, extra = step(it, elapsed)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), clip)
        run.opt.step()
        acc, count = acc + torch.stack([m.detach() for m in means.values()]).double(), count + 1
        bar.update(1)
        if it % args.log_every == 0 or (log_final and it == args.iters):
            mean = dict(zip(means, (acc / count).tolist()))
            log.add({"iteration": it, **{k: round(m, 4) for k, m in mean.items()}, **extra,
                     "seconds": round(elapsed0 + time.perf_counter() - t0, 2)})
            bar.set_postfix(show(mean), refresh=False)
            acc, count = 0.0, 0
        if save is not None and it % save_every == 0 and it != args.iters:
            save(it, elapsed0 + time.perf_counter() - t0)
    bar.close()
    return it, elapsed0 + time.perf_counter() - t0, stopped


def _finish(run, log, args, iterations, seconds, curves, samples):
    """curves.png of the metrics (``curves``: keys, labels, title), samples.png (``samples``: draw,
    grid rows, title; drawn in eval mode without gradients, seeded from --seed), and a line saying so."""
    if log.rows:
        ev.plot_curves(log.rows, run.out / "curves.png", *curves)
    run.model.eval()
    draw, nrow, title = samples
    torch.manual_seed(args.seed)
    with torch.no_grad():
        images = draw()
    ev.save_grid(images, run.out / "samples.png", nrow, title)
    print(f"trained {iterations} iterations in {seconds:.0f} s ({torch.get_num_threads()} threads); "
          f"wrote {run.out}/metrics.csv, checkpoint.pt, curves.png, samples.png")


# --------------------------------------------------------------------------------- CLI
def _number(convert, ok, expected, expected_value=None):
    """An argparse type: ``convert(s)`` if that parses and the value is ``ok``; otherwise the
    message 'expected <expected>' (or <expected_value> for a number out of range), not s."""

    def parse(s):
        try:
            v = convert(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, not {s!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {expected_value or expected}, not {s!r}")
        return v

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_nonneg_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_nonneg_float = _number(float, lambda v: v >= 0 and math.isfinite(v), "a number >= 0", "a finite number >= 0")


def _positive_float(s):
    v = _nonneg_float(s)
    if v == 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, not {s!r}")
    return v


def _ks(s):
    try:
        ks = [int(k) for k in s.split(",") if k.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, not {s!r}") from None
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, not {s!r}")
    return ks


def _common(p):
    p.add_argument("--data-dir", default=None,
                   help=f"folder of the MNIST IDX files (default: ${mnist.ENV_VAR}, then ../shared/data/mnist)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, batches and noise (default 0)")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="torch threads (default 1: small batches gain little from more, and lose much on a busy machine)")
    p.add_argument("--train-images", type=_nonneg_int, default=0, help="use only the first N training images (0: all)")
    p.add_argument("--test-images", type=_nonneg_int, default=0, help="evaluate on the first N test images (0: all 10,000)")
    p.add_argument("--eval-seed", type=int, default=0,
                   help="seed of the test set's static binarization / dequantization and of the estimates (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
