"""What a student sees: Gradescope's ``results.json`` and ``feedback.md``, by Gradescope's rules.

Visibility (Gradescope's autograder specification): each test carries its rubric group's
visibility: ``visible`` now, ``after_due_date`` / ``after_published`` later, ``hidden`` never; when
some tests are not visible, Gradescope hides the total score. So the text students can read now
(results.json's top-level ``output``, ``feedback.md``) names and counts only the ``visible``
groups: no total, no table row, no failure of a group shown later or never. A ``hidden`` check's
own output is "Passed." or "Failed." only: no inputs, numbers, docstring or likely cause.

All-or-nothing groups (``partial_credit = false``) are one Gradescope test each, worth the group's
points, which lists its checks: every test's score is then what the student earns for it.
"""
from __future__ import annotations

from verify.problems import LIKELY, problems, render

SHOWN_NOW = "visible"


def points(x: float) -> str:
    """A score for display: rounded once, here (``56.666666`` -> ``56.6667``; ``89.99999999`` -> ``90``)."""
    return f"{round(x, 4):g}"


def _check_output(c) -> str:
    """One check's output for a student: a hidden check says only whether it passed."""
    if c.outcome == "passed":
        return "Passed."
    if c.visibility == "hidden":
        return "Failed."
    lines = [c.message or "Failed."]
    if c.diagnosis:
        lines.append(LIKELY.format(teaches=c.diagnosis["teaches"]))
    return "\n\n".join(lines)


def _shown_groups(result) -> dict:
    return {n: g for n, g in result.groups.items() if g.get("visibility", SHOWN_NOW) == SHOWN_NOW}


def overview(result, *, markdown_table: bool = True) -> list[str]:
    """The score and per-group table students may see now: the total only when every group is visible."""
    shown = _shown_groups(result)
    rows = ["| group | score | checks passed |", "|---|---:|---:|"] if markdown_table else []
    rows += [f"| {n} | {points(g['score'])} / {points(g['max_score'])} | {g['passed']} / {g['total']} |"
             for n, g in shown.items()]
    if len(shown) == len(result.groups):
        return [f"**Score: {points(result.score)} / {points(result.max_score)}**", "", *rows]
    got = sum(g["score"] for g in shown.values())
    top = sum(g["max_score"] for g in shown.values())
    return [f"**Checks shown now: {points(got)} / {points(top)}**", "", *rows, "",
            "Other checks are graded too; their results are not shown here."]


def _student_notes(result) -> list[str]:
    """The result's notes, except those that name a group not shown now."""
    unseen = [n for n in result.groups if n not in _shown_groups(result)]
    return [p for p in result.problems if not any(f"'{n}'" in p for n in unseen)]


def _test(c, number: str) -> dict:
    return {"name": f"{c.group or 'ungraded'}: {c.name}", "number": number, "score": c.score,
            "max_score": c.max_score, "status": "passed" if c.outcome == "passed" else "failed",
            "output": _check_output(c), "output_format": "text", "tags": list(c.targets) or ["ungraded"],
            "visibility": c.visibility}


def _group_test(name: str, line: dict, checks: list, number: str) -> dict:
    """An all-or-nothing group as one test worth its points, listing its checks."""
    passed = line["passed"] == line["total"] and line["total"] > 0
    body = [f"All or nothing: {line['passed']} of {line['total']} checks passed."]
    for c in checks:
        body.append(f"- {c.name}: {'passed' if c.outcome == 'passed' else 'FAILED'}")
        if c.outcome != "passed" and c.visibility != "hidden":
            body += ["  " + x for x in _check_output(c).splitlines()]
    tags = sorted({t for c in checks for t in c.targets}) or ["ungraded"]
    return {"name": f"{name} (all or nothing)", "number": number, "score": line["score"],
            "max_score": line["max_score"], "status": "passed" if passed else "failed", "output": "\n".join(body),
            "output_format": "text", "tags": tags, "visibility": checks[0].visibility if checks else SHOWN_NOW}


def tests(result) -> list[dict]:
    """Gradescope's tests: a check each, an all-or-nothing group as one; numbered group.check."""
    order = list(result.groups)
    by_group: dict = {}
    for c in result.checks:
        by_group.setdefault(c.group if c.group in order else None, []).append(c)
    out = []
    for gi, name in enumerate([*order, None], 1):
        checks = by_group.get(name, [])
        if name is not None and checks and not result.groups[name].get("partial_credit", True):
            out.append(_group_test(name, result.groups[name], checks, f"{gi}.1"))
            continue
        out += [_test(c, f"{gi}.{i}") for i, c in enumerate(checks, 1)]
    return out


def gradescope(result) -> dict:
    """results.json per Gradescope's autograder specification (see the module's docstring)."""
    lines = overview(result)
    notes = _student_notes(result)
    if notes:
        lines += ["", "Notes:", *[f"- {p}" for p in notes]]
    return {"score": result.score, "max_score": result.max_score, "execution_time": result.execution_time,
            "output": "\n".join(lines), "output_format": "md", "visibility": SHOWN_NOW,
            "stdout_visibility": "hidden", "tests": tests(result)}


def feedback_md(result) -> str:
    """The student's feedback: what they may see now, one block per distinct problem."""
    lines = [f"# Feedback: {result.label}", "", *overview(result), ""]
    shown = _shown_groups(result)
    failed = [c for c in result.checks if c.outcome != "passed" and (c.group in shown or c.group is None)]
    if failed:
        found = problems([(c.name, c.message, c.diagnosis) for c in failed if c.visibility != "hidden"])
        lines += ["## What to fix", "", *render(found, markdown=True)]
    else:
        lines += ["Every check shown here passed.", ""]
    notes = _student_notes(result)
    if notes:
        lines += ["## Notes", "", *[f"- {p}" for p in notes], ""]
    return "\n".join(lines)
