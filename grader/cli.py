"""``python -m verify grade PATH [PATH ...]``: grade submissions and write reports.

PATH is a submission (any form of docs/CONTRACT.md: a .py file, a notebook, a zip, a folder with
submission.py, a CS236 or XCS236 checkout, the package folder itself, a flat folder) or a folder of
submissions, one entry per student; the run says which it decided (--single / --class force it).
Relative paths are read against the current folder. Exit code 0 when every submission was graded
and the reports are written (whatever the scores), 2 for a usage error (a bad rubric, path or
--out, before any grading), 3 when some submission could not be graded completely (time limit, the
process running its checks died: its report says which checks were not run), 130 when interrupted
(Ctrl-C: the reports of the students finished by then are written).
"""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from verify import DEFAULT_SEED
from grader import reports, rubric as rubric_mod
from grader.options import FORMATS, GradeOptions
from grader.outdir import DEFAULT_OUT, output_folder, refusal
from grader.resume import fingerprint, grading_key, merged, reuser
from grader.runner import Interrupted, Result, grade

EXIT_USAGE, EXIT_UNGRADED, EXIT_INTERRUPTED = 2, 3, 130


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m verify grade", description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", metavar="PATH", help="submissions, or folders of submissions")
    p.add_argument("--format", action="append", choices=FORMATS, dest="formats",
                   help="report format (repeatable; default: all). text prints to the terminal")
    p.add_argument("--out", default=None, type=Path,
                   help="folder for the reports, checked before grading (default: ./grading-out, or "
                        "FOLDER-grading-out beside the graded FOLDER when ./grading-out would lie inside it)")
    p.add_argument("--resume", action="store_true",
                   help="keep the earlier results in --out of students whose files, rubric, seed and -k are "
                        "unchanged (after an interrupt, or to regrade only changed submissions)")
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
    p.add_argument("--no-zygote", dest="zygote", action="store_false",
                   help="start a fresh process per submission (the imports paid per student) instead of forking "
                        "one pre-imported process (a job of one submission always starts it fresh)")
    return p


def options(args: argparse.Namespace) -> GradeOptions:
    """The grading options of a parsed command line (no format given: every format)."""
    return GradeOptions(seed=args.seed, timeout=args.timeout, check_timeout=args.check_timeout,
                        memory_mb=args.worker_memory, in_process=args.in_process, select=args.select, layout=args.layout,
                        jobs=args.jobs, zygote=args.zygote, rubric=args.rubric, formats=tuple(args.formats or FORMATS),
                        out=args.out or DEFAULT_OUT)


def print_text(results: list, rub: rubric_mod.Rubric) -> None:
    """The ``text`` format: each submission's scores (and failures when there is one), then the summary."""
    for r in results:
        print(reports.text(r, detailed=len(results) == 1))
    if len(results) > 1:
        print()
        print(reports.summary_md(reports.summary(results, rub)))


def _usage_error(args: argparse.Namespace, opts: GradeOptions):
    """(rubric, reports folder or None for text only) or the usage error's message; nothing graded yet."""
    problem = opts.problem() or refusal(args.paths)
    if problem:
        return problem
    try:
        rub = rubric_mod.load(opts.rubric)
    except rubric_mod.RubricError as exc:
        return str(exc)
    if set(opts.formats) == {"text"}:
        return rub, None  # --format text alone: the terminal only, no files
    out, problem = output_folder(args.out, args.paths)
    return problem if problem else (rub, out)


def _write(results: list[Result], rub: rubric_mod.Rubric, out: Path, formats: tuple, key: str) -> int:
    """Write the reports of ``results`` and of the students graded earlier into ``out`` (a regrade
    merges into the gradebook); returns how many files."""
    everyone, notes = merged(results, out, key)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return len(reports.write_all(everyone, rub, out, formats))


def _warm_up_plots() -> None:
    """Import matplotlib (the histogram's, most of a second) in a thread while the checks run, not after."""
    def load():
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot  # noqa: F401
        except Exception:  # the reports import it again and say what is wrong
            pass

    threading.Thread(target=load, daemon=True, name="warm-up-plots").start()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    opts = options(args)
    checked = _usage_error(args, opts)
    if isinstance(checked, str):
        print(f"error: {checked}", file=sys.stderr)
        return EXIT_USAGE
    rub, out = checked
    if out is not None:
        _warm_up_plots()
    key = grading_key(rub.source, opts)
    interrupted = False
    try:
        results = grade(args.paths, rub, opts, reuse=reuser(out, key) if args.resume and out else None)
    except Interrupted as exc:
        results, interrupted = exc.results, True
        print(f"\ninterrupted: writing the reports of the {len(results)} students finished", file=sys.stderr)
    for r in results:
        r.fingerprint = r.fingerprint or fingerprint(Path(r.path), key)
    if out is not None:
        print(f"reports: {out.resolve()} ({_write(results, rub, out, opts.formats, key)} files)")
    if "text" in opts.formats:
        print_text(results, rub)
    ungraded = [r.label for r in results if r.incomplete]
    if ungraded:
        print(f"could not be graded completely: {', '.join(ungraded)} (see their reports)", file=sys.stderr)
    return EXIT_INTERRUPTED if interrupted else (EXIT_UNGRADED if ungraded else 0)
