"""The posterior-collapse experiment of docs/posterior-collapse.md: the CS236 VAE with a wider latent
space, trained plainly, with KL warm-up, with free bits and with both; active units and per-dimension
KL on the test set.

    python -m training.collapse_experiment [--z-dim 50] [--iters 10000] [--out out/collapse]

Each configuration is ``python -m training.train vae`` with the options shown in the table (same seed,
same data order); the table, in Markdown, is printed and written to ``OUT/table.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training import train

CONFIGS = [
    ("plain (CS236 objective)", []),
    ("KL warm-up", ["--kl-warmup", "{warmup}"]),
    ("free bits", ["--free-bits", "{free_bits}"]),
    ("warm-up + free bits", ["--kl-warmup", "{warmup}", "--free-bits", "{free_bits}"]),
]


def _table(rows, z_dim, threshold):
    out = [f"| configuration | options | active units (of {z_dim}) | KL | rec | NELBO | IWAE-150 | "
           f"dims with KL > 0.1 nat | train s |",
           "|---|---|---|---|---|---|---|---|---|"]
    for name, opts, r in rows:
        big = sum(k > 0.1 for k in r["kl_per_dim"])
        out.append(f"| {name} | `{' '.join(opts) or '-'}` | {r['active_units']} | {r['kl']:.2f} | {r['rec']:.2f} | "
                   f"{r['nelbo']:.2f} | {r.get('iwae_150', float('nan')):.2f} | {big} | {r['train_seconds']:.0f} |")
    out.append(f"\nActive: Var_x E_q[z_i] > {threshold} over the test set (Burda et al. 2016).")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m training.collapse_experiment", description=__doc__.split("\n\n")[0])
    p.add_argument("--z-dim", type=int, default=50, help="latent dimensions (default 50)")
    p.add_argument("--iters", type=int, default=10000, help="training iterations per configuration (default 10000)")
    p.add_argument("--warmup", type=int, default=5000, help="KL warm-up iterations (default 5000)")
    p.add_argument("--free-bits", type=float, default=0.25, help="free bits per dimension, nats (default 0.25)")
    p.add_argument("--out", default="out/collapse", help="output folder (default out/collapse)")
    p.add_argument("--data-dir", default=None, help="folder of the MNIST IDX files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-images", default="0", help="evaluate on the first N test images (default 0: all)")
    p.add_argument("--train-images", default="0", help="train on the first N training images (default 0: all)")
    args = p.parse_args(argv)
    out = Path(args.out)
    rows = []
    for i, (name, opts) in enumerate(CONFIGS):
        opts = [o.format(warmup=args.warmup, free_bits=args.free_bits) for o in opts]
        run = out / f"run{i}"
        argv_i = ["vae", "--z-dim", str(args.z_dim), "--iters", str(args.iters), "--out", str(run), "--seed",
                  str(args.seed), "--ll-samples", "0", "--quiet", "--test-images", args.test_images,
                  "--train-images", args.train_images] + opts
        if args.data_dir:
            argv_i += ["--data-dir", args.data_dir]
        print(f"== {name}: python -m training.train {' '.join(argv_i)}", flush=True)
        rc = train.main(argv_i)
        if rc:
            return rc
        rows.append((name, opts, json.loads((run / "eval.json").read_text())))
    text = _table(rows, args.z_dim, rows[0][2]["active_threshold"])
    (out / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
