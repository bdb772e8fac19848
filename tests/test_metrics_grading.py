"""Grading a student's reported test-set numbers: ``python -m verify grade-metrics FILE``
(grader/metrics.py): the file formats, loose names, the rubric's tolerances and relations,
and clear errors for bad files and rubrics."""
import json

import pytest

from verify.__main__ import main as verify_main
from grader import metrics as gm

GOOD = {"nelbo": 99.6, "kl": 19.3, "rec": 80.3, "iwae_5": 97.54, "iwae_50": 96.24, "iwae_150": 95.92}


def grade_file(path, rubric=None):
    values, notes = gm.read_metrics(path)
    return gm.grade_metrics(values, gm.load_rubric(rubric), notes)


def verdicts(report):
    return {line["name"] if line["name"] not in ("non_increasing", "sum") else line["label"]: line["verdict"]
            for line in report["lines"]}


@pytest.mark.parametrize("key, name", [
    ("NELBO", "nelbo"), ("negative_elbo", "nelbo"), ("Negative ELBO", "nelbo"), ("test_nelbo", "nelbo"),
    ("IWAE-5", "iwae_5"), ("niwae_50", "iwae_50"), ("Negative IWAE-150", "iwae_150"), ("iwae5000", "iwae_5000"),
    ("KL", "kl"), ("Rec", "rec"), ("test bits/dim", "bpd"), ("bpd", "bpd"), ("active_units", "active_units"),
    ("iteration", None), ("loss", None), ("accuracy", None),
])
def test_canonical_names(key, name):
    assert gm.canonical(key) == name


def test_reference_eval_json_passes(tmp_path):
    """The JSON that python -m training.train vae writes (flat metrics plus nested config) earns every
    VAE point; the optional flow metric is 'not reported'."""
    f = tmp_path / "eval.json"
    f.write_text(json.dumps({**GOOD, "model": "vae", "kl_per_dim": [1.0] * 10, "config": {"lr": 0.001}}))
    report = grade_file(f)
    v = verdicts(report)
    assert all(v[k] == "ok" for k in ("nelbo", "iwae_5", "iwae_50", "iwae_150"))
    assert v["bpd"] == "not reported"
    assert report["score"] == report["max_score"] - 5 == 30


def test_tolerance_boundaries(tmp_path):
    f = tmp_path / "m.json"
    f.write_text(json.dumps({**GOOD, "nelbo": 102.0, "iwae_5": 99.76}))  # 100 +- 2 in; 97.75 +- 2 out
    v = verdicts(grade_file(f))
    assert v["nelbo"] == "ok" and v["iwae_5"] == "out of range"
    f.write_text(json.dumps({**GOOD, "nelbo": 97.99}))
    assert verdicts(grade_file(f))["nelbo"] == "out of range"


def test_nested_json_and_sign_flip(tmp_path):
    f = tmp_path / "m.json"
    f.write_text(json.dumps({"elbo": -99.5, "iwae": {"5": -97.9, "50": 96.6, "150": 96.4}, "bpd": 1.9}))
    values, notes = gm.read_metrics(f)
    assert values == {"nelbo": 99.5, "iwae_5": 97.9, "iwae_50": 96.6, "iwae_150": 96.4, "bpd": 1.9}
    assert len(notes) == 2 and all("negated" in n for n in notes)
    report = gm.grade_metrics(values, gm.load_rubric(), notes)
    assert report["score"] == report["max_score"]


def test_bound_ordering_violation(tmp_path):
    f = tmp_path / "m.json"
    f.write_text(json.dumps({**GOOD, "iwae_50": 97.0, "iwae_150": 97.3}))  # in tolerance, but L_150 < L_50
    report = grade_file(f)
    line = next(line for line in report["lines"] if line["name"] == "non_increasing")
    assert line["verdict"].startswith("violated") and "iwae_150 97.3 > iwae_50 97" in line["verdict"]
    assert line["points"] == 0
    assert verdicts(report)["iwae_150"] == "ok"


@pytest.mark.parametrize("text", [
    "metric,value\nNELBO,99.6\nIWAE-5,97.54\nIWAE-50,96.24\nIWAE-150,95.92\n",
    "nelbo,99.6\niwae_5,97.54\niwae_50,96.24\niwae_150,95.92\n",
    "epoch,nelbo,iwae_5,iwae_50,iwae_150\n1,120,118,117,116\n2,99.6,97.54,96.24,95.92\n",
])
def test_csv_formats(tmp_path, text):
    f = tmp_path / "m.csv"
    f.write_text(text)
    values, _ = gm.read_metrics(f)
    assert values == {"nelbo": 99.6, "iwae_5": 97.54, "iwae_50": 96.24, "iwae_150": 95.92}


def test_cs236_printout(tmp_path):
    f = tmp_path / "log.txt"
    f.write_text("****\nNELBO: tensor(99.61). KL: 19.3. Rec: 80.3\nNegative IWAE-5: 97.5\n"
                 "Negative IWAE-50: 96.2\nNegative IWAE-150: 95.9\nk = 5 : 1.0\n")
    values, _ = gm.read_metrics(f)
    assert values == {"nelbo": 99.61, "kl": 19.3, "rec": 80.3, "iwae_5": 97.5, "iwae_50": 96.2, "iwae_150": 95.9}


def test_sum_relation_and_custom_rubric(tmp_path):
    r = tmp_path / "r.toml"
    r.write_text('[[metric]]\nname = "bpd"\nmax = 2.0\npoints = 3\n\n[[metric]]\nname = "kl"\nmin = 15\npoints = 1\n'
                 '[[relation]]\nkind = "sum"\ntotal = "nelbo"\nparts = ["kl", "rec"]\ntolerance = 0.1\npoints = 2\n')
    f = tmp_path / "m.json"
    f.write_text(json.dumps({"nelbo": 99.6, "kl": 19.3, "rec": 80.0, "bpd": 2.01}))
    report = grade_file(f, r)
    assert report["max_score"] == 6 and report["score"] == 1
    v = verdicts(report)
    assert v["bpd"] == "out of range" and v["kl"] == "ok" and v["nelbo = kl + rec"].startswith("violated")


def test_missing_required_metric(tmp_path):
    f = tmp_path / "m.json"
    f.write_text(json.dumps({"nelbo": 100.0}))
    v = verdicts(grade_file(f))
    assert v["iwae_5"] == "missing" and v["NELBO >= IWAE-5 >= IWAE-50 >= IWAE-150"].startswith("missing")


@pytest.mark.parametrize("content, suffix, match", [
    ("[1, 2]", ".json", "must be an object"),
    ("{nope", ".json", "not valid JSON"),
    ('{"accuracy": 0.9}', ".json", "no known metric names"),
    ("", ".csv", "empty CSV"),
])
def test_bad_metrics_files(tmp_path, content, suffix, match):
    f = tmp_path / ("m" + suffix)
    f.write_text(content)
    with pytest.raises(gm.MetricsError, match=match):
        gm.read_metrics(f)


def test_non_numbers_are_noted(tmp_path):
    f = tmp_path / "m.json"
    f.write_text(json.dumps({"nelbo": "about 100", "iwae_5": "97.5", "iwae_50": float("nan")}))
    values, notes = gm.read_metrics(f)
    assert values == {"iwae_5": 97.5}
    assert len(notes) == 2 and all("not a finite number" in n for n in notes)


@pytest.mark.parametrize("toml, match", [
    ('[[metric]]\nname = "nelbo"\ntarget = 100\npoints = 1\n', "'target' and 'tolerance' go together"),
    ('[[metric]]\nname = "accuracy"\nmax = 1\npoints = 1\n', "not a known metric"),
    ('[[metric]]\nname = "nelbo"\nmax = 1\npoints = 1\ncolour = "red"\n', "unknown keys"),
    ('[[metric]]\nname = "nelbo"\npoints = 1\n', "give target"),
    ('[[relation]]\nkind = "bigger"\npoints = 1\n', "kind must be"),
    ('[[group]]\nname = "x"\npoints = 1\nchecks = ["kl_normal"]\n', "no \\[\\[metric\\]\\] tables"),
    ("not toml [", "not valid TOML"),
])
def test_bad_rubrics(tmp_path, toml, match):
    r = tmp_path / "r.toml"
    r.write_text(toml)
    with pytest.raises(gm.MetricsError, match=match):
        gm.load_rubric(r)


def test_cli(tmp_path, capsys):
    f = tmp_path / "eval.json"
    f.write_text(json.dumps(GOOD))
    out = tmp_path / "report.json"
    assert verify_main(["grade-metrics", str(f), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "score: 30 / 35" in text and "negative IWAE, k = 150" in text
    assert json.loads(out.read_text())["score"] == 30
    assert verify_main(["grade-metrics", str(tmp_path / "absent.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: metrics file not found") and "Traceback" not in err
    assert verify_main(["grade-metrics", str(f), "--rubric", str(tmp_path / "none.toml")]) == 2
    assert "rubric file not found" in capsys.readouterr().err


def test_class_rubric_may_carry_metric_tables(tmp_path):
    """A class rubric with [[group]] tables and [[metric]] tables serves both graders."""
    from grader import rubric as rubric_mod

    r = tmp_path / "class.toml"
    r.write_text('[rubric]\ntotal = 10\n[[group]]\nname = "KL"\npoints = 10\nchecks = ["kl_normal"]\n\n'
                 '[[metric]]\nname = "nelbo"\ntarget = 100\ntolerance = 2\npoints = 10\n')
    assert rubric_mod.load(r).max_score == 10
    assert gm.load_rubric(r).max_score == 10
