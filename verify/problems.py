"""Failures as a student reads them: one block per distinct problem, with the fix.

A submission that cannot be loaded fails every check with the same reason; a missing function fails
each of its checks; a bug fails several parametrizations of one check. :func:`problems` folds the
failed checks into one :class:`Problem` each (the load error once, each missing name once, each
diagnosed bug once, each check once whatever its parametrizations), in the order first seen.
:func:`scrub` takes the grader's own paths out of a message. Used by ``python -m verify``'s
summary and by the grader's ``feedback.md``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from verify import SUITE

LOADING = "could not be loaded: "
LIKELY = "Likely cause: your output equals what you get by {teaches}."
_SANDBOX_COPY = re.compile(r"/\S*?/dgm-sandbox-[^/\s]+/submission/")


@dataclass
class Problem:
    title: str  # one line: what is wrong
    detail: str  # the first failure's message (a load error: the reason and the source line)
    fix: str  # what to do about it
    checks: list = field(default_factory=list)  # the failed checks it explains (names)


def scrub(text: str, submission: str | Path | None = None) -> str:
    """``text`` without the grader's absolute paths: the repository's, the sandbox's private copy,
    and the folder the submission was graded from (the student's own file names stay)."""
    text = text.replace(str(SUITE.parent) + "/", "")
    text = _SANDBOX_COPY.sub("", text)
    if submission:
        sub = Path(submission).expanduser()
        full = str(sub.resolve()) if sub.exists() else str(sub)
        for prefix in {full, str(submission)}:
            text = text.replace(prefix, sub.name or str(submission))
    return text


def base_name(check: str) -> str:
    """A check's name without its parametrization: ``kl_normal_matches_closed_form[float32]`` ->
    ``kl_normal_matches_closed_form``."""
    return check.split("[", 1)[0]


def _key(name: str, message: str, bug: str | None) -> tuple:
    """What makes two failures the same problem."""
    first = (message.splitlines() or [""])[0]
    if LOADING in message:
        return ("load",)
    if bug:
        return ("bug", bug)
    if re.match(r"^\w+: (not submitted|not run again|`\w+` in .* is a )", first) or first.startswith("not run: "):
        return ("line", first)
    return ("check", base_name(name))


def _new_problem(key: tuple, name: str, message: str, diagnosis: dict | None) -> Problem:
    if key[0] == "load":
        reason = message.split(LOADING, 1)[1]
        return Problem("Your submission could not be loaded", reason,
                       "Fix the error shown (the line quoted is where Python stopped), then run the checks again: "
                       "every check failed only because of it.")
    if key[0] == "bug":
        return Problem(LIKELY.format(teaches=diagnosis["teaches"]), message,
                       "Fix: change your code so that it no longer computes that; the check's message shows "
                       "the inputs and the expected output.")
    if key[0] == "line":
        what = "Define it in your submission with the contract's signature." if "not submitted" in message else \
            "Fix the cause stated; the checks after the first one were not run again."
        return Problem(key[1], message, what)
    return Problem(f"`{base_name(name)}` failed", message,
                   "Fix: compare your output with the expected one on the inputs shown.")


def problems(failures: list[tuple[str, str, dict | None]]) -> list[Problem]:
    """One problem per distinct cause, from failed checks given as (name, message, diagnosis or None)."""
    found: dict[tuple, Problem] = {}
    for name, message, diagnosis in failures:
        key = _key(name, message, (diagnosis or {}).get("bug"))
        if key not in found:
            found[key] = _new_problem(key, name, message, diagnosis)
        found[key].checks.append(name)
    return list(found.values())


def render(found: list[Problem], *, markdown: bool = False) -> list[str]:
    """Lines describing each problem: title, message (once), which checks it failed, the fix."""
    lines = []
    for i, p in enumerate(found, 1):
        shown = sorted(set(p.checks), key=p.checks.index)
        many = f"{len(shown)} checks: " if len(shown) > 1 else "check: "
        listed = ", ".join(shown[:6]) + (f", and {len(shown) - 6} more" if len(shown) > 6 else "")
        if markdown:
            lines += [f"### {i}. {p.title}", "", "```", p.detail, "```", "", f"Failed {many}{listed}.", "",
                      f"**{p.fix}**", ""]
        else:
            detail = "\n".join("     " + x for x in p.detail.splitlines()[:12])
            lines += [f"{i}. {p.title}", detail, f"   failed {many}{listed}", f"   -> {p.fix}", ""]
    return lines
