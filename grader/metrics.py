"""``python -m verify grade-metrics FILE... [--rubric R] [--models M]``: check a student's reported test-set numbers.

The homework reports trained-model numbers (negative ELBO, IWAE-k bounds, bits/dim); the CS236
grader accepts them within tolerances (NELBO 100 +- 2 and the like). FILE is a JSON object (nested
objects are flattened: ``{"iwae": {"5": 97.7}}`` is ``iwae_5``; ``python -m training.train`` writes
such an ``eval.json``), a CSV (``metric,value`` rows, or a header of metric names over rows of which
the last counts) or a text log of ``name: value`` pairs (the CS236 printout, ``NELBO: 99.4. KL: 19.3.
Rec: 80.1`` and ``Negative IWAE-5: 97.75``, included). Names are matched loosely: ``NELBO``,
``negative_elbo``, ``IWAE-5``, ``niwae_5``, ``Negative IWAE-5`` and ``iwae5`` all mean what they say.
A bound reported with the other sign (``ELBO: -99.4``) is negated, with a note.

The course's metric files are pickles (XCS236 PS2 ``submission/``: ``VAE.pkl`` and ``GMVAE.pkl``
hold ``{'NELBO', 'KL', 'Rec'}``, ``VAE_iwae_<iw>.pkl`` and ``GMVAE_iwae_<iw>.pkl`` ``{'NIWAE'}``
for iw = 1, 10, 100, 1000, ``SSVAE_0.pkl`` and ``SSVAE_1.pkl`` ``{'accuracy'}``; the values 0-d
torch tensors). They are read without unpickling (grader/safe_pickle.py: the opcodes are
interpreted, plain data and the tensors' bytes only; a pickle that would import or call anything
else is refused, naming it). FILE may be several files, or a folder holding the course's pickles;
their metrics are named by the file (``gmvae_nelbo``, ``gmvae_iwae_1000``, ``ssvae_gw1_accuracy``)
and graded by the course's own tolerances (grader/xcs236_metrics_rubric.toml) unless ``--rubric``
says otherwise. A model none of whose metrics is reported is left out of the score (a note says
so) unless ``--models`` names it; for a folder, every model of the rubric is graded.

The rubric is TOML (default ``grader/metrics_rubric.toml``; a class rubric may carry the same
tables beside its ``[[group]]`` ones):

    [[metric]]
    name = "nelbo"          # canonical name: nelbo, kl, rec, iwae_<k>, bpd, log_likelihood, active_units,
                            # gmvae_<nelbo|kl|rec|iwae_k>, ssvae_gw<W>_accuracy
    target = 100.0          # with tolerance: |value - target| <= tolerance
    tolerance = 2.0
    # or: min = ..., max = ...   (either or both)
    points = 10
    required = true         # false: a metric the file lacks earns nothing, and is not an error note

    [[relation]]
    kind = "non_increasing" # the listed metrics, in order, never increase (beyond slack)
    metrics = ["nelbo", "iwae_5", "iwae_50", "iwae_150"]
    slack = 0.1
    points = 5
    # kind = "sum": total = "nelbo", parts = ["kl", "rec"], tolerance = 0.1

Exit code 0 when the report is written (whatever the score), 2 for a usage error.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grader import safe_pickle

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

DEFAULT_RUBRIC = Path(__file__).with_name("metrics_rubric.toml")
COURSE_RUBRIC = Path(__file__).with_name("xcs236_metrics_rubric.toml")
# Metrics that are negative bounds (nats): a negative reported value is the bound itself.
_NEGATIVE_BOUNDS = re.compile(r"^(gmvae_)?(nelbo|iwae_\d+)$")
_MAX_BYTES = 1 << 20


class MetricsError(ValueError):
    """A metrics file or rubric that cannot be used; the message says what to fix."""


# ------------------------------------------------------------------------------- names
def canonical(name: str) -> str | None:
    """The canonical metric name of a reported key, or None when it names no known metric.

    The VAE's (and the flow's) metrics have bare names; the other models' carry the model:
    ``gmvae_nelbo``, ``gmvae_kl``, ``gmvae_rec``, ``gmvae_iwae_<k>`` and ``ssvae_gw<W>_accuracy``
    (the classifier's test accuracy of the SSVAE trained with gen_weight W)."""
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    m = _MODEL_PREFIX.fullmatch(key)
    if m is None:
        return _canonical_key(key)
    if m.group(1) == "gmvae":
        rest = _canonical_key(m.group(4))
        return f"gmvae_{rest}" if rest in ("nelbo", "kl", "rec") or (rest or "").startswith("iwae_") else None
    rest = re.sub(r"^(test|final)", "", m.group(4))
    return f"ssvae_gw{int(m.group(2) or m.group(3))}_accuracy" if rest in ("accuracy", "acc") else None


_MODEL_PREFIX = re.compile(r"(gmvae|ssvaegw(\d+)|ssvae(\d+))(.+)")


def _canonical_key(key: str) -> str | None:
    """canonical() of a bare key, lower-case letters and digits only."""
    key = re.sub(r"^(test|val|valid|validation|final|mean|avg|average)", "", key)
    key = re.sub(r"(test|mean)$", "", key)
    m = re.fullmatch(r"(?:negative|neg|n)?iwae(?:k|m|iw)?(\d+)(?:samples?)?", key)
    if m:
        return f"iwae_{int(m.group(1))}"
    aliases = {
        "nelbo": "nelbo", "negativeelbo": "nelbo", "negelbo": "nelbo", "elbo": "nelbo",
        "kl": "kl", "kldivergence": "kl", "klterm": "kl",
        "rec": "rec", "recon": "rec", "reconstruction": "rec", "reconstructionloss": "rec", "recloss": "rec",
        "bpd": "bpd", "bitsperdim": "bpd", "bitsperdimension": "bpd", "bitsdim": "bpd", "bitsperpixel": "bpd",
        "loglikelihood": "log_likelihood", "logpx": "log_likelihood", "ll": "log_likelihood",
        "activeunits": "active_units", "au": "active_units", "nactiveunits": "active_units",
    }
    return aliases.get(key)


def model_of(name: str) -> str:
    """The model a canonical metric name belongs to: 'gmvae', 'ssvae', or 'vae' (bare names)."""
    return name.split("_", 1)[0] if name.startswith(("gmvae_", "ssvae_")) else "vae"


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            v = float(value)
        except OverflowError:  # an int past the float range
            return None
    elif isinstance(value, str):
        s = value.strip()
        m = re.fullmatch(r"(?:tensor\()?\s*(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(?:,.*)?\)?", s)
        if not m:
            return None
        v = float(m.group(1))
    else:
        return None
    return v if math.isfinite(v) else None


# ------------------------------------------------------------------------------- files
def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}_{k}" if prefix else str(k))
    else:
        yield prefix, obj


def _pairs_json(text, path):
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MetricsError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MetricsError(f"{path}: the JSON must be an object of metric names and numbers, not a {type(obj).__name__}")
    return [(_json_prefix(obj) + k, v) for k, v in _flatten(obj)]


def _json_prefix(obj):
    """The model prefix of the metrics of an ``eval.json`` that names its model (``python -m
    training.train gmvae | ssvae`` write ``"model"`` and, for the SSVAE, ``"gen_weight"``)."""
    if obj.get("model") == "gmvae":
        return "gmvae_"
    g = obj.get("gen_weight")
    if obj.get("model") == "ssvae" and isinstance(g, (int, float)) and not isinstance(g, bool) and g == int(g):
        return f"ssvae_gw{int(g)}_"
    return ""


# The course's metric files (XCS236 PS2, submission/utils.write_to_file): pickles of
# {'NELBO', 'KL', 'Rec'} (VAE.pkl, GMVAE.pkl), {'NIWAE'} (<model>_iwae_<iw>.pkl) and {'accuracy'}
# (SSVAE_<gen_weight>.pkl), each value a 0-d torch tensor.
COURSE_PICKLE = re.compile(r"(?i)(?:(vae|gmvae)(?:_iwae_(\d+))?|ssvae_(\d+))\.(?:pkl|pickle)")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pk", ".p")


def _pairs_pickle(data, path):
    """(key, value) pairs of a metrics pickle, read by :mod:`grader.safe_pickle` (never unpickled);
    keys of the course's files get the model and the iw of the file's name."""
    try:
        obj = safe_pickle.loads(data, _MAX_BYTES)
    except safe_pickle.PickleError as exc:
        raise MetricsError(f"{path}: {exc}") from None
    if not isinstance(obj, dict):
        raise MetricsError(f"{path}: the pickle must hold a dict of metric names and numbers, not a {type(obj).__name__}")
    pairs = list(_flatten(obj))
    m = COURSE_PICKLE.fullmatch(Path(path).name)
    if m is None:
        return pairs
    if m.group(3) is not None:
        return [(f"ssvae_gw{int(m.group(3))}_{k}", v) for k, v in pairs]
    prefix = "gmvae_" if m.group(1).lower() == "gmvae" else ""
    if m.group(2) is not None:  # {'NIWAE': value}: the iw is in the file's name
        iw = int(m.group(2))
        return [(f"{prefix}iwae_{iw}" if re.sub(r"[^a-z]", "", str(k).lower()) in ("niwae", "iwae", "negativeiwae")
                 else prefix + str(k), v) for k, v in pairs]
    return [(prefix + str(k), v) for k, v in pairs]


def _pairs_csv(text, path):
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows:
        raise MetricsError(f"{path}: empty CSV")
    first = [c.strip() for c in rows[0]]
    if all(len(r) >= 2 for r in rows) and (
            first[0].lower() in ("metric", "name", "key") or _number(first[1]) is not None):
        body = rows[1:] if _number(first[1]) is None else rows
        return [(r[0], r[1]) for r in body]
    if len(rows) < 2:
        raise MetricsError(f"{path}: a CSV needs metric,value rows or a header of names over a row of values")
    last = rows[-1]
    return list(zip(first, last))


_TEXT_PAIR = re.compile(r"([A-Za-z][A-Za-z0-9 _\-]*?)\s*[:=]\s*(?:tensor\()?\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")


def _pairs_text(text):
    return [(m.group(1), m.group(2)) for m in _TEXT_PAIR.finditer(text)]


def _pairs_of(path: Path):
    """The (key, value) pairs of a metrics file, its format from the suffix, else from the content."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MetricsError(f"{path}: cannot be read: {exc}") from None
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES or data[:1] == b"\x80":
        return _pairs_pickle(data, path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MetricsError(f"{path}: not a text file (JSON, CSV or a text log) nor a pickle") from None
    stripped = text.lstrip()
    if suffix == ".json" or (suffix not in (".csv", ".txt", ".log") and stripped.startswith(("{", "["))):
        return _pairs_json(text, path)
    if suffix == ".csv":
        return _pairs_csv(text, path)
    return _pairs_text(text)


def read_metrics(path) -> tuple[dict, list]:
    """``({canonical name: value}, notes)`` from a JSON, CSV, text file or pickle (the format from
    the suffix, else from the content). Later occurrences of a name win; unknown names are ignored."""
    path = Path(path)
    if not path.is_file():
        raise MetricsError(f"metrics file not found: {path}")
    if path.stat().st_size > _MAX_BYTES:
        raise MetricsError(f"{path}: larger than {_MAX_BYTES // 1024} KiB: not a metrics file")
    pairs = _pairs_of(path)
    values, notes = {}, []
    for key, raw in pairs:
        name = canonical(key)
        if name is None:
            continue
        v = _number(raw)
        if v is None:
            notes.append(f"'{key}': {raw!r} is not a finite number; ignored")
            continue
        if _NEGATIVE_BOUNDS.match(name) and v < 0:
            notes.append(f"'{key}' = {v:g} read as the bound itself: negated to the negative bound {-v:g}")
            v = -v
        values[name] = v
    if not values:
        raise MetricsError(f"{path}: no known metric names found (e.g. nelbo, iwae_5, bpd); "
                           "see python -m verify grade-metrics --help")
    return values, notes


# ------------------------------------------------------------------------------ rubric
@dataclass(frozen=True)
class MetricRule:
    name: str
    points: float
    target: float | None = None
    tolerance: float | None = None
    min: float | None = None
    max: float | None = None
    required: bool = True
    label: str = ""

    def expected(self) -> str:
        if self.target is not None:
            return f"{self.target:g} +- {self.tolerance:g}"
        if self.min is not None and self.max is not None:
            return f"in [{self.min:g}, {self.max:g}]"
        return f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}"

    def accepts(self, v: float) -> bool:
        if self.target is not None and abs(v - self.target) > self.tolerance:
            return False
        return not ((self.min is not None and v < self.min) or (self.max is not None and v > self.max))


@dataclass(frozen=True)
class Relation:
    kind: str
    points: float
    metrics: tuple = ()
    total: str = ""
    parts: tuple = ()
    slack: float = 0.0
    tolerance: float = 0.0
    label: str = ""


@dataclass(frozen=True)
class MetricsRubric:
    name: str
    metrics: tuple
    relations: tuple = field(default=())
    source: str = ""

    @property
    def max_score(self) -> float:
        return sum(m.points for m in self.metrics) + sum(r.points for r in self.relations)


def _num(d, key, where, required=False):
    v = d.get(key)
    if v is None:
        if required:
            raise MetricsError(f"{where}: '{key}' is required")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise MetricsError(f"{where}: '{key}' must be a number, not {v!r}")
    return float(v)


def _metric_name(raw, where):
    name = canonical(raw) if isinstance(raw, str) else None
    if name is None:
        raise MetricsError(f"{where}: {raw!r} is not a known metric (nelbo, kl, rec, iwae_<k>, bpd, "
                           "log_likelihood, active_units; gmvae_<nelbo|kl|rec|iwae_k>, ssvae_gw<W>_accuracy)")
    return name


METRIC_KEYS = {"name", "points", "target", "tolerance", "min", "max", "required", "label"}
RELATION_KEYS = {"kind", "points", "metrics", "total", "parts", "slack", "tolerance", "label"}


def load_rubric(path=None) -> MetricsRubric:
    """The ``[[metric]]`` and ``[[relation]]`` tables of the TOML file at ``path`` (default:
    grader/metrics_rubric.toml), checked; MetricsError says what is wrong."""
    path = Path(path) if path is not None else DEFAULT_RUBRIC
    data = _read_toml(path)
    raw_metrics, raw_rel = data.get("metric", []), data.get("relation", [])
    if not isinstance(raw_metrics, list) or not isinstance(raw_rel, list) or not (raw_metrics or raw_rel):
        raise MetricsError(f"{path}: no [[metric]] tables (name, points, and target + tolerance or min / max)")
    metrics = [_metric_rule(m, _table_where(path, "metric", i, m, "name", METRIC_KEYS))
               for i, m in enumerate(raw_metrics, 1)]
    relations = [_relation(r, _table_where(path, "relation", i, r, "kind", RELATION_KEYS))
                 for i, r in enumerate(raw_rel, 1)]
    name = (data.get("metrics") or {}).get("name") or (data.get("rubric") or {}).get("name") or path.stem
    return MetricsRubric(str(name), tuple(metrics), tuple(relations), str(path))


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        raise MetricsError(f"rubric file not found: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MetricsError(f"{path}: not valid TOML: {exc}") from None


def _table_where(path: Path, kind: str, i: int, table: dict, title: str, keys: set) -> str:
    """How errors name the ``i``-th ``[[kind]]`` table (by its ``title`` key), once its keys are known ones."""
    where = f"{path}: {kind} {i} ({table.get(title, '?')})"
    unknown = set(table) - keys
    if unknown:
        raise MetricsError(f"{where}: unknown keys {sorted(unknown)}")
    return where


def _metric_rule(m: dict, where: str) -> MetricRule:
    """One ``[[metric]]`` table: a target with a tolerance, or bounds, or both."""
    name = _metric_name(m.get("name"), where)
    points = _num(m, "points", where, required=True)
    target, tol = _num(m, "target", where), _num(m, "tolerance", where)
    lo, hi = _num(m, "min", where), _num(m, "max", where)
    if (target is None) != (tol is None):
        raise MetricsError(f"{where}: 'target' and 'tolerance' go together")
    if target is None and lo is None and hi is None:
        raise MetricsError(f"{where}: give target + tolerance, or min and/or max")
    if points < 0 or (tol is not None and tol < 0) or (lo is not None and hi is not None and lo > hi):
        raise MetricsError(f"{where}: points and tolerance must be >= 0, and min <= max")
    required = m.get("required", True)
    if not isinstance(required, bool):
        raise MetricsError(f"{where}: 'required' must be true or false")
    return MetricRule(name, points, target, tol, lo, hi, required, str(m.get("label", "")))


def _relation(r: dict, where: str) -> Relation:
    """One ``[[relation]]`` table: ``non_increasing`` metrics, or a ``sum`` of parts."""
    points = _num(r, "points", where, required=True)
    kind = r.get("kind")
    if kind == "non_increasing":
        names = r.get("metrics")
        if not isinstance(names, list) or len(names) < 2:
            raise MetricsError(f"{where}: 'metrics' must list at least two metrics")
        return Relation(kind, points, tuple(_metric_name(n, where) for n in names),
                        slack=_num(r, "slack", where) or 0.0, label=str(r.get("label", "")))
    if kind == "sum":
        parts = r.get("parts")
        if not isinstance(parts, list) or not parts:
            raise MetricsError(f"{where}: 'parts' must list the metrics that add up to 'total'")
        return Relation(kind, points, total=_metric_name(r.get("total"), where),
                        parts=tuple(_metric_name(n, where) for n in parts),
                        tolerance=_num(r, "tolerance", where) or 0.0, label=str(r.get("label", "")))
    raise MetricsError(f"{where}: kind must be 'non_increasing' or 'sum', not {kind!r}")


# ----------------------------------------------------------------------------- grading
def grade_metrics(values: dict, rubric: MetricsRubric, notes=(), models=None) -> dict:
    """The graded report: one line per rubric metric and relation, the score and the notes.

    ``models``: the models graded ('vae', 'gmvae', 'ssvae': :func:`model_of`); by default those
    the report has a metric of. The rubric's lines of a model left out count for nothing, and a
    note says so."""
    notes = list(notes)
    graded = set(models) if models is not None else {model_of(n) for n in values}
    metrics = [m for m in rubric.metrics if model_of(m.name) in graded]
    relations = [r for r in rubric.relations if model_of((r.metrics or (r.total,))[0]) in graded]
    left = sorted({model_of(m.name) for m in rubric.metrics} - graded)
    if left:
        notes.append(f"not graded: {', '.join(left)} (no metric of {'it' if len(left) == 1 else 'them'} reported)")
    lines = [_metric_line(m, values) for m in metrics] + [_relation_line(r, values) for r in relations]
    score = sum((line["points"] for line in lines), 0.0)
    max_score = sum((line["max_points"] for line in lines), 0.0)
    return {"rubric": rubric.name, "score": score, "max_score": max_score, "lines": lines,
            "notes": notes, "values": values}


def _metric_line(m: MetricRule, values: dict) -> dict:
    """A metric's report line: reported, expected, verdict, points."""
    v = values.get(m.name)
    if v is None:
        ok, verdict = False, "missing" if m.required else "not reported"
    else:
        ok = m.accepts(v)
        verdict = "ok" if ok else "out of range"
    return {"name": m.name, "label": m.label or m.name, "reported": v, "expected": m.expected(),
            "verdict": verdict, "points": m.points if ok else 0.0, "max_points": m.points}


def _relation_line(r: Relation, values: dict) -> dict:
    """A relation's report line: ok, or the metrics it lacks, or how it is violated."""
    check = _non_increasing if r.kind == "non_increasing" else _sums_up
    label, missing, bad, expected = check(r, values)
    ok = not missing and not bad
    verdict = "ok" if ok else (f"missing {', '.join(missing)}" if missing else f"violated: {'; '.join(bad)}")
    return {"name": r.kind, "label": label, "reported": None, "expected": expected,
            "verdict": verdict, "points": r.points if ok else 0.0, "max_points": r.points}


def _non_increasing(r: Relation, values: dict) -> tuple[str, list, list, str]:
    """(label, missing metrics, violations, expected) of a ``non_increasing`` relation."""
    missing = [n for n in r.metrics if n not in values]
    bad = [f"{b} {values[b]:g} > {a} {values[a]:g}" for a, b in zip(r.metrics, r.metrics[1:])
           if a in values and b in values and values[b] > values[a] + r.slack]
    return r.label or " >= ".join(r.metrics), missing, bad, f"slack {r.slack:g}"


def _sums_up(r: Relation, values: dict) -> tuple[str, list, list, str]:
    """(label, missing metrics, violations, expected) of a ``sum`` relation."""
    missing = [n for n in (r.total, *r.parts) if n not in values]
    bad = []
    if not missing:
        s = sum(values[p] for p in r.parts)
        if abs(values[r.total] - s) > r.tolerance:
            bad = [f"{r.total} {values[r.total]:g} vs {' + '.join(r.parts)} = {s:g}"]
    return r.label or f"{r.total} = {' + '.join(r.parts)}", missing, bad, f"within {r.tolerance:g}"


def format_report(report: dict, source="") -> str:
    out = [f"{report['rubric']}" + (f": {source}" if source else "")]
    w = max([len(line["label"]) for line in report["lines"]] + [6])
    out.append(f"{'metric':{w}s}  {'reported':>16s}  {'expected':>18s}  {'points':>9s}  verdict")
    for line in report["lines"]:
        rep = line["reported"]
        rep = "-" if rep is None else (f"{rep:.4g}" if isinstance(rep, float) else str(rep))
        pts = f"{line['points']:g}/{line['max_points']:g}"
        out.append(f"{line['label']:{w}s}  {rep:>16s}  {line['expected']:>18s}  {pts:>9s}  {line['verdict']}")
    out.append(f"score: {report['score']:g} / {report['max_score']:g}")
    out += [f"note: {n}" for n in report["notes"]]
    return "\n".join(out)


def input_files(paths) -> tuple[list, bool, bool]:
    """The metrics files of the command line: files as given, and for a folder (a checkout's
    ``submission/``) the course's metric pickles in it. Also whether every file is one of the
    course's pickles (then the course's rubric is the default)."""
    files, folder = [], False
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and COURSE_PICKLE.fullmatch(f.name))
            if not found:
                raise MetricsError(f"{p}: a folder without the course's metric files (VAE.pkl, GMVAE.pkl, "
                                   "GMVAE_iwae_<iw>.pkl, SSVAE_<gw>.pkl, ...)")
            files += found
            folder = True
        else:
            files.append(p)
    return files, folder, all(COURSE_PICKLE.fullmatch(f.name) for f in files)


def read_all(files) -> tuple[dict, list]:
    """read_metrics of each file, merged (a name in two files: the later wins, with a note)."""
    values, notes = {}, []
    for f in files:
        v, n = read_metrics(f)
        notes += [f"{f.name}: {x}" for x in n] if len(files) > 1 else n
        notes += [f"{k} of {f.name} replaces an earlier file's" for k in v if k in values]
        values.update(v)
    return values, notes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m verify grade-metrics", description=__doc__.split("\n\n")[0],
                                epilog="Accepted files and the rubric format: see grader/metrics.py.")
    p.add_argument("file", metavar="FILE", nargs="+",
                   help="the student's metrics: JSON, CSV, a text log or a pickle; or a folder of the course's "
                        "metric pickles (submission/)")
    p.add_argument("--rubric", default=None,
                   help="TOML with [[metric]] tables (default: grader/metrics_rubric.toml; for the course's "
                        "pickles grader/xcs236_metrics_rubric.toml)")
    p.add_argument("--models", default=None,
                   help="comma-separated models to grade, missing metrics scoring 0 (vae, gmvae, ssvae; default: "
                        "those reported, and all for a folder)")
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT", help="also write the report as JSON")
    args = p.parse_args(argv)
    try:
        files, folder, course = input_files(args.file)
        rubric = load_rubric(args.rubric if args.rubric or not course else COURSE_RUBRIC)
        models = _models(args.models, rubric, folder)
        values, notes = read_all(files)
    except MetricsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = grade_metrics(values, rubric, notes, models)
    print(format_report(report, ", ".join(map(str, args.file))))
    if args.json_out:
        try:
            Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
        except OSError as exc:
            print(f"error: cannot write {args.json_out}: {exc}", file=sys.stderr)
            return 2
    return 0


def _models(option, rubric, folder):
    known = {model_of(m.name) for m in rubric.metrics}
    if option is None:
        return known if folder else None
    chosen = {m.strip().lower() for m in option.split(",") if m.strip()}
    if not chosen or chosen - known:
        raise MetricsError(f"--models: expected some of {', '.join(sorted(known))}, not {option!r}")
    return chosen


if __name__ == "__main__":
    sys.exit(main())
