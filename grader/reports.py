"""Reports of graded submissions.

Per submission (``OUT/<name>/``): ``results.json`` (Gradescope), ``junit.xml``, ``feedback.md``,
``report.json``. Per class (``OUT/``): ``gradebook.csv``, ``summary.md``, ``summary.json``,
``histogram.png``. Student-facing text (Gradescope, feedback.md) never shows a hidden check's
inputs or numbers. With a fixed seed every file is identical between runs apart from timing fields
(``execution_time``, JUnit ``time``).

Every text a report holds may come from a student (an exception's message, a written answer, a
file name): it is written whatever it holds (:func:`clean`: lone surrogates, undecodable bytes and
control characters are escaped), under a label that is unique and never a class report's name
(:mod:`grader.labels`).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import re
import statistics
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from grader.feedback import feedback_md, gradescope  # student-facing: Gradescope's visibility rules
from grader.labels import unique_labels
from grader.rubric import Rubric
from grader.runner import Check, Result

LIKELY = "Likely cause: your output equals what you get by {teaches}."
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def clean(value):
    """``value`` with every string made writable in every format (UTF-8, XML 1.0, CSV, Markdown): a
    lone surrogate (an undecodable byte) or a control character becomes its escape, ``\\udcff``,
    ``\\x1b``. Lists, tuples, dicts and dataclasses are cleaned throughout; other values are kept."""
    if isinstance(value, str):
        return _UNWRITABLE.sub(lambda m: m.group(0).encode("unicode_escape", "backslashreplace").decode("ascii"),
                               value)
    if isinstance(value, (list, tuple)):
        return type(value)(clean(v) for v in value)
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: clean(getattr(value, f.name)) for f in dataclasses.fields(value)
                                             if f.init})
    return value


def _cell(value) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = clean(str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def junit(result: Result) -> ET.ElementTree:
    failures = sum(c.outcome == "failed" for c in result.checks)
    skipped = sum(c.outcome == "skipped" for c in result.checks)
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name=result.label, tests=str(len(result.checks)),
                          failures=str(failures), errors="0", skipped=str(skipped), time=f"{result.execution_time:.3f}")
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="score", value=f"{result.score:g}")
    ET.SubElement(props, "property", name="max_score", value=f"{result.max_score:g}")
    for c in result.checks:
        case = ET.SubElement(suite, "testcase", classname=f"{result.label}.{c.group or 'ungraded'}", name=c.name,
                             time=f"{c.duration:.3f}")
        if c.outcome == "failed":
            text = c.message + (("\n\n" + LIKELY.format(teaches=c.diagnosis["teaches"])) if c.diagnosis else "")
            failure = ET.SubElement(case, "failure", message=(c.message.splitlines() or ["failed"])[0][:300])
            failure.text = text
        elif c.outcome == "skipped":
            ET.SubElement(case, "skipped", message=c.message[:300])
    ET.indent(suites)
    return ET.ElementTree(suites)


def report_json(result: Result) -> dict:
    return {
        "label": result.label, "path": result.path, "score": result.score, "max_score": result.max_score,
        "execution_time": result.execution_time, "groups": result.groups, "problems": result.problems,
        "sandbox": result.sandbox, "incomplete": result.incomplete, "fingerprint": result.fingerprint,
        "checks": [c.__dict__ for c in result.checks],
    }


def gradebook(results: list[Result], rubric: Rubric, path: Path):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", *[g.name for g in rubric.groups], "total", "max_score"])
        for r in results:
            w.writerow([_cell(r.label), *[f"{r.groups[g.name]['score']:g}" for g in rubric.groups], f"{r.score:g}",
                        f"{r.max_score:g}"])


def summary(results: list[Result], rubric: Rubric) -> dict:
    scores = [r.score for r in results]
    fails = Counter(name for r in results for name in {c.name.split("[")[0] for c in r.checks if c.outcome == "failed"})
    causes = Counter(c.diagnosis["bug"] for r in results for c in r.checks if c.diagnosis)
    bins = [0] * 10
    for s in scores:
        bins[min(9, int(10 * s / rubric.max_score))] += 1 if rubric.max_score else 0
    return {
        "rubric": rubric.name, "submissions": len(results), "max_score": rubric.max_score,
        "mean": round(statistics.fmean(scores), 4) if scores else None,
        "median": statistics.median(scores) if scores else None,
        "min": min(scores, default=None), "max": max(scores, default=None),
        "histogram": {f"{10 * i}-{10 * (i + 1)}%": n for i, n in enumerate(bins)},
        "most_frequent_failures": fails.most_common(10),
        "most_frequent_causes": causes.most_common(10),
        "scores": {r.label: r.score for r in results},
    }


def summary_md(s: dict) -> str:
    width = max(s["histogram"].values(), default=0) or 1
    lines = [f"# Grading summary: {s['rubric']}", "",
             f"{s['submissions']} submissions; mean {s['mean']}, median {s['median']}, min {s['min']}, "
             f"max {s['max']} (of {s['max_score']:g}).", "", "## Score histogram", "", "```"]
    for band, n in s["histogram"].items():
        lines.append(f"{band:>9s} | {'#' * round(30 * n / width)} {n}")
    lines += ["```", "", "## Most frequent failures", "", "| check | submissions failing |", "|---|---:|"]
    lines += [f"| `{name}` | {n} |" for name, n in s["most_frequent_failures"]]
    if s["most_frequent_causes"]:
        lines += ["", "## Most frequent diagnosed bugs", "", "| bug | checks |", "|---|---:|"]
        lines += [f"| `{name}` | {n} |" for name, n in s["most_frequent_causes"]]
    return clean("\n".join(lines) + "\n")


def histogram_figure(results: list[Result], rubric: Rubric):
    """The score histogram as a matplotlib figure (counts on whole-number ticks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.hist([r.score for r in results], bins=10, range=(0, rubric.max_score or 1), color="#4c72b0", edgecolor="white")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # a count of submissions: no 0.5 ticks
    ax.set_xlabel(f"score (of {rubric.max_score:g})")
    ax.set_ylabel("submissions")
    ax.set_title(f"{len(results)} submissions")
    fig.tight_layout()
    return fig


def histogram_png(results: list[Result], rubric: Rubric, path: Path):
    import matplotlib.pyplot as plt

    fig = histogram_figure(results, rubric)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def text(result: Result, detailed: bool) -> str:
    head = f"{result.label}: {result.score:g} / {result.max_score:g}  (" + ", ".join(
        f"{n} {g['score']:g}/{g['max_score']:g}" for n, g in result.groups.items()) + ")"
    if not detailed:
        return clean(head)
    out = [head]
    for c in result.failed():
        out.append(f"  FAILED {c.name}: {c.message.splitlines()[0] if c.message else ''}")
        if c.diagnosis:
            out.append(f"         {LIKELY.format(teaches=c.diagnosis['teaches'])}")
    out += [f"  note: {p.splitlines()[0]}" for p in result.problems]
    return clean("\n".join(out))


def write_all(results: list[Result], rubric: Rubric, out: Path, formats: tuple) -> list[Path]:
    """Write the chosen formats under ``out``; returns the files written. Every text is :func:`clean`
    and every submission's folder is its own (:func:`grader.labels.unique_labels`)."""
    labels = unique_labels([r.label for r in results])
    results = [clean(dataclasses.replace(r, label=label)) for r, label in zip(results, labels)]
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put(path: Path, content: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)

    for r in results:
        d = out / r.label
        if "gradescope" in formats:
            put(d / "results.json", json.dumps(gradescope(r), indent=2) + "\n")
        if "junit" in formats:
            d.mkdir(parents=True, exist_ok=True)
            junit(r).write(d / "junit.xml", encoding="utf-8", xml_declaration=True)
            written.append(d / "junit.xml")
        if "md" in formats:
            put(d / "feedback.md", feedback_md(r))
        if "json" in formats:
            put(d / "report.json", json.dumps(report_json(r), indent=2) + "\n")
    if "csv" in formats:
        gradebook(results, rubric, out / "gradebook.csv")
        written.append(out / "gradebook.csv")
    s = summary(results, rubric)
    put(out / "summary.md", summary_md(s))
    put(out / "summary.json", json.dumps(s, indent=2) + "\n")
    if results:
        histogram_png(results, rubric, out / "histogram.png")
        written.append(out / "histogram.png")
    return written
