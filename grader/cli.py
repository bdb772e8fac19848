"""``python -m verify grade PATH [PATH ...]``: grade submissions and write reports.

PATH is a submission (any form of docs/CONTRACT.md: a .py file, a notebook, a zip, a folder with
submission.py, a CS236 or XCS236 checkout, the package folder itself, a flat folder) or a folder of
submissions, one entry per student; the run says which it decided (--single / --class force it).
Relative paths are read against the current folder. Exit code 0 when the reports are written (whatever
the scores), 2 for a usage error (e.g. an unreadable rubric).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from verify import DEFAULT_SEED
from grader import reports, rubric as rubric_mod
from grader.runner import grade


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m verify grade", description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", metavar="PATH", help="submissions, or folders of submissions")
    p.add_argument("--format", action="append", choices=reports.FORMATS, dest="formats",
                   help="report format (repeatable; default: all). text prints to the terminal")
    p.add_argument("--out", default="grading-out", type=Path, help="folder for the reports (default: grading-out)")
    p.add_argument("--rubric", default=None, help="TOML rubric (default: the homework's, 100 points)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of every check (default {DEFAULT_SEED})")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    p.add_argument("--timeout", type=float, default=600, help="seconds allowed per submission (default 600)")
    p.add_argument("--check-timeout", type=float, default=120,
                   help="seconds one check may spend in the submission's sandboxed code (default 120)")
    p.add_argument("-k", dest="select", default=None, metavar="EXPR",
                   help="grade only the checks matching this pytest -k expression (e.g. 'iwae or elbo')")
    p.add_argument("--worker-memory", type=int, default=4096, metavar="MIB",
                   help="address-space limit of each sandboxed submission, MiB (default 4096)")
    layout = p.add_mutually_exclusive_group()  # issue 15: one submission or a class (grader/discovery.py)
    layout.add_argument("--single", dest="layout", action="store_const", const="single", default="auto",
                        help="grade each PATH as one submission, whatever it holds")
    layout.add_argument("--class", dest="layout", action="store_const", const="class",
                        help="grade each PATH as a class: every entry is a student")
    p.add_argument("--in-process", action="store_true",
                   help="no sandbox: import submissions into the checks' process (trusted code only, faster)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        rub = rubric_mod.load(args.rubric)
    except rubric_mod.RubricError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.jobs < 1 or args.timeout <= 0 or args.check_timeout <= 0 or args.worker_memory < 1024:
        print("error: --jobs must be at least 1, --timeout and --check-timeout positive, --worker-memory at least "
              "1024 (MiB; importing torch alone needs some 700)", file=sys.stderr)
        return 2
    formats = tuple(args.formats or reports.FORMATS)
    results = grade(args.paths, rub, seed=args.seed, jobs=args.jobs, timeout=args.timeout,
                    check_timeout=args.check_timeout, in_process=args.in_process, memory_mb=args.worker_memory,
                    select=args.select, layout=args.layout)
    written = reports.write_all(results, rub, args.out, formats)
    if "text" in formats:
        for r in results:
            print(reports.text(r, detailed=len(results) == 1))
        if len(results) > 1:
            print()
            print(reports.summary_md(reports.summary(results, rub)))
    print(f"reports: {args.out.resolve()} ({len(written)} files)")
    return 0
