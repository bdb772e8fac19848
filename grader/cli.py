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
from grader.options import FORMATS, GradeOptions
from grader.runner import grade


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m verify grade", description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", metavar="PATH", help="submissions, or folders of submissions")
    p.add_argument("--format", action="append", choices=FORMATS, dest="formats",
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
    layout = p.add_mutually_exclusive_group()  # one submission or a class (grader/discovery.py)
    layout.add_argument("--single", dest="layout", action="store_const", const="single", default="auto",
                        help="grade each PATH as one submission, whatever it holds")
    layout.add_argument("--class", dest="layout", action="store_const", const="class",
                        help="grade each PATH as a class: every entry is a student")
    p.add_argument("--in-process", action="store_true",
                   help="no sandbox: import submissions into the checks' process (trusted code only, faster)")
    return p


def options(args: argparse.Namespace) -> GradeOptions:
    """The grading options of a parsed command line (no format given: every format)."""
    return GradeOptions(seed=args.seed, timeout=args.timeout, check_timeout=args.check_timeout,
                        memory_mb=args.worker_memory, in_process=args.in_process, select=args.select, layout=args.layout,
                        jobs=args.jobs, rubric=args.rubric, formats=tuple(args.formats or FORMATS),
                        out=args.out)


def print_text(results: list, rub: rubric_mod.Rubric) -> None:
    """The ``text`` format: each submission's scores (and failures when there is one), then the summary."""
    for r in results:
        print(reports.text(r, detailed=len(results) == 1))
    if len(results) > 1:
        print()
        print(reports.summary_md(reports.summary(results, rub)))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    opts = options(args)
    try:
        rub = rubric_mod.load(opts.rubric)
    except rubric_mod.RubricError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if opts.problem() is not None:
        print(f"error: {opts.problem()}", file=sys.stderr)
        return 2
    results = grade(args.paths, rub, opts)
    written = reports.write_all(results, rub, opts.out, opts.formats)
    if "text" in opts.formats:
        print_text(results, rub)
    print(f"reports: {opts.out.resolve()} ({len(written)} files)")
    return 0
