"""Score what was finished when the grader wrote no results (``run_autograder``'s fallback).

    python -m grader.gradescope.fallback --reason TEXT --search DIR --out FILE [--rubric R]

Reads the result lines the grading worker left (``checks.jsonl`` files under ``--search``: the
grader's TMPDIR) and scores them with the runner's own scoring
(:func:`grader.runner.score`): a check with no line fails with ``not run: REASON``.
Writes Gradescope's results.json (:func:`grader.reports.gradescope`) to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def finished_checks(search: Path) -> list[dict]:
    """The result lines of every ``checks.jsonl`` under ``search`` (unreadable lines are skipped)."""
    lines = []
    for path in sorted(search.rglob("checks.jsonl")) if search.is_dir() else []:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict):
                lines.append(d)
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader.gradescope.fallback", description=__doc__.split("\n\n")[0])
    p.add_argument("--reason", required=True, help="why the grader wrote no results (shown on each check not run)")
    p.add_argument("--search", type=Path, required=True, help="folder holding the worker's checks.jsonl files")
    p.add_argument("--out", type=Path, required=True, help="results.json to write")
    p.add_argument("--rubric", default=None, help="TOML rubric (default: the homework's)")
    p.add_argument("--submission", default="submission", help="the submission's path (for the report)")
    p.add_argument("--seconds", type=float, default=0.0, help="time spent grading so far")
    args = p.parse_args(argv)

    from grader import reports, rubric as rubric_mod
    from grader.runner import score

    rub = rubric_mod.load(args.rubric)
    lines = finished_checks(args.search)
    result = score("submission", args.submission, lines, rub, args.reason, args.seconds)
    data = reports.gradescope(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    done = sum(1 for d in lines if "nodeid" in d)
    print(f"fallback: {done} finished checks scored, {len(result.checks) - done} not run; score {result.score:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
