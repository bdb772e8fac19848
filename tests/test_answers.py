"""Written answers (verify/answers/): equivalent forms pass, catalogued wrong forms get their explanation,
malicious strings are refused quickly, answers.py is never run, and the grader maps the checks."""
import os
import re
import time
from pathlib import Path

import pytest
import sympy as sp

from conftest import REPO, run_suite
from verify import answers as wa
from verify.contract import ANSWER_NAMES, MARKER
from verify.answers import catalogue, equivalence, source
from verify.answers.parser import MAX_DEPTH, MAX_LENGTH, ParseError
from verify.answers.questions import QUESTIONS
from grader import rubric

# ------------------------------------------------------------------------------ the reference


def _by_name(expr, like):
    """``expr`` with its symbols replaced by the symbols of ``like`` that have the same names."""
    names = {s.name: s for s in like.free_symbols}
    return expr.xreplace({s: names[s.name] for s in expr.free_symbols if s.name in names})


def test_reference_answers_are_the_derivations():
    import derivations
    from derivations import affine_flow

    kl = QUESTIONS["KL_GAUSSIAN"].parse(QUESTIONS["KL_GAUSSIAN"].reference_text)
    assert sp.simplify(_by_name(kl, derivations.KL_STANDARD.expr) - derivations.KL_STANDARD.expr) == 0
    density = QUESTIONS["AFFINE_FLOW_DENSITY"].parse(QUESTIONS["AFFINE_FLOW_DENSITY"].reference_text)
    assert sp.simplify(density - affine_flow.homework_density()) == 0
    coupling = QUESTIONS["COUPLING_LOG_DET"].parse(QUESTIONS["COUPLING_LOG_DET"].reference_text)
    assert sp.simplify(_by_name(coupling, derivations.COUPLING_LOG_DET.expr) - derivations.COUPLING_LOG_DET.expr) == 0
    assert all(wa.judge(n, t).ok for n, t in source.reference().values.items())


# ------------------------------------------------------------------------ equivalent forms pass
EQUIVALENT = {
    "KL_GAUSSIAN": [
        "(sigma**2 + mu**2 - 1)/2 - log(sigma)",
        "0.5*(sigma**2+mu**2-1-log(sigma**2))",
        r"\frac{\sigma^2 + \mu^2 - 1}{2} - \log(\sigma)",
        r"\frac{1}{2}\left(\sigma^{2}+\mu^{2}-1-\log\sigma^{2}\right)",
        r"$\tfrac12 (\sigma^2 + \mu^2 - 1) - \ln \sigma$",
        "-log(sigma) + sigma^2/2 + mu^2/2 - 1/2",
        "log(1/sigma) + (mu**2 + sigma**2 - 1)/2",
        "(mu**2 + sigma**2 - 1 - 2*log(sigma)) / 2",
        "0.5*(sigma**2 + mu**2 - 1) - 0.5*ln(sigma**2)",
        "-(1/2)*(1 + log(sigma**2) - mu**2 - sigma**2)",  # the VAE paper's -KL, negated
        "μ**2/2 + σ**2/2 - 1/2 - log(σ)",
    ],
    "AFFINE_FLOW_DENSITY": [
        "exp(-(x - 3)**2/(2*1.5**2)) / sqrt(2*pi*1.5**2)",
        "exp(-(x-3)**2/4.5)/(1.5*sqrt(2*pi))",
        "sqrt(2)*exp(-2*(x - 3)**2/9)/(3*sqrt(pi))",
        "(2/3) * exp(-((x - 3)/1.5)**2/2) / sqrt(2*pi)",
        "E**(-(x-3)**2/(2*2.25)) / sqrt(2*pi*2.25)",
        r"\frac{1}{1.5\sqrt{2\pi}} e^{-\frac{(x-3)^2}{2 \cdot 1.5^2}}",
        r"\frac{2}{3\sqrt{2\pi}}\exp\left(-\frac{2(x-3)^2}{9}\right)",
        r"\frac{1}{\sqrt{2\pi \cdot 2.25}}\exp\left[-\frac{(x-3)^{2}}{4.5}\right]",
    ],
    "COUPLING_LOG_DET": [
        "s1 + s2",
        "s2 + s1",
        "s_1 + s_2",
        "log(exp(s1)*exp(s2))",
        "log(exp(s1 + s2))",
        "s1 + s2 + s3",  # with three scale outputs: s1 + s2 + s3
        r"s_{1} + s_{2}",
        r"\log\left(e^{s_1} e^{s_2}\right)",
    ],
}


@pytest.mark.parametrize("name, text", [(n, t) for n, ts in EQUIVALENT.items() for t in ts])
def test_equivalent_forms_pass(name, text):
    verdict = wa.judge(name, text)
    assert verdict.ok, verdict.message
    assert "equivalent" in verdict.message


# -------------------------------------------------------------- wrong forms: the right feedback
COUPLING_TEXT = {  # the catalogue builds these from the symbols; how a student writes them for k = 2
    "coupling_det_not_log": "exp(s1 + s2)",
    "coupling_product": "s1*s2",
    "coupling_sum_of_exp": "exp(s1) + exp(s2)",
    "coupling_log_of_trace": "log(exp(s1) + exp(s2))",
    "coupling_negative_sum": "-s1 - s2",
    "coupling_mean": "(s1 + s2)/2",
    "coupling_abs": "Abs(s1) + Abs(s2)",
}
WRONG = [(q, wf.name, wf.form if isinstance(wf.form, str) else COUPLING_TEXT[wf.name], wf.explanation)
         for q, forms in catalogue.ALL.items() for wf in forms]


@pytest.mark.parametrize("question, form, text, explanation", WRONG, ids=[w[1] for w in WRONG])
def test_each_catalogued_wrong_form_fails_with_its_explanation(question, form, text, explanation):
    verdict = wa.judge(question, text)
    assert not verdict.ok and explanation in verdict.message, verdict.message


@pytest.mark.parametrize("name, text, expected", [
    ("AFFINE_FLOW_DENSITY", r"\frac{2}{3} \cdot \frac{1}{1.5\sqrt{2\pi}} e^{-\frac{(x-3)^2}{2 \cdot 1.5^2}}",
     ["your density integrates to 2/3, not 1", "applied twice"]),
    ("AFFINE_FLOW_DENSITY", "exp(-(x - 3)**2/(2*1.5**2)) / sqrt(2*pi)", ["your density integrates to 3/2, not 1"]),
    ("AFFINE_FLOW_DENSITY", "exp(-(x - 2)**2/4.5) / sqrt(4.5*pi)", ["with mean 2 and variance 9/4"]),
    ("AFFINE_FLOW_DENSITY", "x - 3", ["a density is never negative", "diverges"]),
    ("KL_GAUSSIAN", "log(sigma) - (sigma**2 + mu**2 - 1)/2", ["your KL is negative at mu = 0.5, sigma = 2"]),
    ("KL_GAUSSIAN", "(sigma**2 + mu**2 - 1)/2", ["missing the log sigma^2 term", "your KL is negative"]),
    ("KL_GAUSSIAN", r"\sigma^2 + \mu^2 - 1 - \log\sigma^2", ["off by a factor of 2"]),
    ("KL_GAUSSIAN", "((sigma**2 + mu**2 - 1)/2 - log(sigma))/2", ["off by a factor of 2: yours is half"]),
    ("KL_GAUSSIAN", "3*((sigma**2 + mu**2 - 1)/2 - log(sigma))", ["yours is 3 times the derived closed form"]),
    ("KL_GAUSSIAN", "(sigma**2 + mu**2 - 1)/2 - log(sigma) + log(2*pi)/2",
     ["off by an additive constant", "log(2*pi)/2", "where q = p and the KL is 0"]),
    ("KL_GAUSSIAN", "log(mu) + sigma", ["not a real number at mu = "]),
    ("KL_GAUSSIAN", "mu**3 + sigma", ["at mu = ", "the derived closed form is"]),
    ("COUPLING_LOG_DET", "s1", ["does not depend on s2"]),
    ("COUPLING_LOG_DET", "2*(s1 + s2)", ["off by a factor of 2"]),
    ("COUPLING_LOG_DET", "s1 + s3", ["does not depend on s2"]),
])
def test_feedback_says_how_the_answer_differs(name, text, expected):
    verdict = wa.judge(name, text)
    assert not verdict.ok
    for phrase in expected:
        assert phrase in verdict.message, verdict.message


def test_the_catalogue_covers_each_question_and_its_forms_are_really_wrong():
    assert set(catalogue.ALL) == set(wa.NAMES)
    assert {w.name for w in catalogue.COUPLING_LOG_DET} == set(COUPLING_TEXT)
    assert all(len(forms) >= 5 for forms in catalogue.ALL.values())
    from derivations.affine_flow import check_density_answer

    for wf in catalogue.AFFINE_FLOW_DENSITY:  # the derivations agree that none of them is the density
        assert not check_density_answer(QUESTIONS["AFFINE_FLOW_DENSITY"].parse(wf.form))[0], wf.name


# ------------------------------------------------------------------- malicious strings: refused
LONG = "x+" * (MAX_LENGTH // 2 + 10) + "x"
MALICIOUS = [
    ("KL_GAUSSIAN", "__import__('os').system('echo hacked')"),
    ("KL_GAUSSIAN", "__import__(\"os\").system(\"touch /tmp/dgm_answers_hacked\")"),
    ("KL_GAUSSIAN", "().__class__"),
    ("KL_GAUSSIAN", "().__class__.__bases__[0].__subclasses__()"),
    ("KL_GAUSSIAN", "mu.__class__"),
    ("KL_GAUSSIAN", "lambda: 1"),
    ("KL_GAUSSIAN", "(lambda mu: mu)(1)"),
    ("KL_GAUSSIAN", "[mu for mu in ()]"),
    ("KL_GAUSSIAN", "eval('1')"),
    ("KL_GAUSSIAN", "exec"),
    ("KL_GAUSSIAN", "open('/etc/passwd').read()"),
    ("KL_GAUSSIAN", "globals()"),
    ("KL_GAUSSIAN", "getattr(mu, 'real')"),
    ("KL_GAUSSIAN", "Symbol('mu')"),
    ("KL_GAUSSIAN", "sympy.var('mu')"),
    ("KL_GAUSSIAN", "mu if 1 else sigma"),
    ("KL_GAUSSIAN", "import os"),
    ("KL_GAUSSIAN", "mu; sigma"),
    ("KL_GAUSSIAN", "log(x=mu)"),
    ("KL_GAUSSIAN", "mu[0]"),
    ("KL_GAUSSIAN", "{mu: 1}"),
    ("KL_GAUSSIAN", "10**10**10**10"),
    ("KL_GAUSSIAN", "9**9**9**9"),
    ("KL_GAUSSIAN", "(10**30)**100"),
    ("KL_GAUSSIAN", "mu**(10**100)"),
    ("AFFINE_FLOW_DENSITY", "x**(10**100)"),
    ("AFFINE_FLOW_DENSITY", "x**10**10"),
    ("AFFINE_FLOW_DENSITY", "factorial(10**6)"),
    ("AFFINE_FLOW_DENSITY", "gamma(10**9)"),
    ("AFFINE_FLOW_DENSITY", "Integral(exp(x**2), x)"),
    ("AFFINE_FLOW_DENSITY", "exp(exp(exp(exp(x))))"),
    ("AFFINE_FLOW_DENSITY", "x**x**x**x"),
    ("AFFINE_FLOW_DENSITY", "2**(3**(4**(5**pi)))"),
    ("AFFINE_FLOW_DENSITY", "(" * 1000 + "x" + ")" * 1000),
    ("AFFINE_FLOW_DENSITY", "(" * (MAX_DEPTH + 5) + "x" + ")" * (MAX_DEPTH + 5)),
    ("AFFINE_FLOW_DENSITY", "-" * 400 + "x"),
    ("AFFINE_FLOW_DENSITY", LONG),
    ("AFFINE_FLOW_DENSITY", "1" * 5000),
    ("AFFINE_FLOW_DENSITY", "x*" + "9" * 100),
    ("AFFINE_FLOW_DENSITY", "1e999999*x"),
    ("AFFINE_FLOW_DENSITY", "x/0"),
    ("AFFINE_FLOW_DENSITY", r"\input{/etc/passwd}"),
    ("AFFINE_FLOW_DENSITY", r"\frac{1}{x}^{10^{10^{10}}}"),
    ("AFFINE_FLOW_DENSITY", r"e^{e^{e^{x}}}"),
    ("AFFINE_FLOW_DENSITY", r"\sum_{n=0}^{\infty} x^n"),
    ("AFFINE_FLOW_DENSITY", "{" * 500 + "x" + "}" * 500),
    ("COUPLING_LOG_DET", "s1.__class__.__mro__"),
    ("COUPLING_LOG_DET", "s1 + s_{__import__}"),
]


@pytest.mark.parametrize("name, text", MALICIOUS, ids=[f"{n}:{t[:40]}" for n, t in MALICIOUS])
def test_malicious_strings_are_refused_within_2_s(name, text):
    start = time.perf_counter()
    verdict = wa.judge(name, text)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"{elapsed:.2f} s"
    assert not verdict.ok and verdict.how in ("refused", "unreadable"), verdict.message
    assert "refused" in verdict.message or "could not read" in verdict.message
    assert not Path("/tmp/dgm_answers_hacked").exists()


def test_the_parser_never_hands_student_text_to_sympify(monkeypatch, tmp_path):
    """sympify / parse_expr of a string evaluates Python; grading never calls them with one (also not in
    the forked comparison, which inherits the patch and leaves a marker file if it does)."""
    import sympy.parsing.sympy_parser as sympy_parser

    marker = tmp_path / "sympify-called.txt"

    def no_strings(original):
        def guarded(a, *args, **kwargs):
            if isinstance(a, str):
                with open(marker, "a") as f:
                    f.write(a.replace("\n", " ") + "\n")
            return original(a, *args, **kwargs)

        return guarded

    monkeypatch.setattr(sp, "sympify", no_strings(sp.sympify))
    monkeypatch.setattr(sympy_parser, "parse_expr", no_strings(sympy_parser.parse_expr))
    for name, text in [("KL_GAUSSIAN", "(sigma**2 + mu**2 - 1)/2"),
                       ("AFFINE_FLOW_DENSITY", "exp(-(x-3)**2/3)/sqrt(3*pi)"),
                       ("AFFINE_FLOW_DENSITY", "(2/3)*exp(-(x-3)**2/4.5)/sqrt(4.5*pi)"),
                       ("COUPLING_LOG_DET", "exp(s1 + s2)"), ("KL_GAUSSIAN", EQUIVALENT["KL_GAUSSIAN"][3])]:
        wa.judge(name, text)
    # SymPy's integrate and nsimplify call sympify on their own numeric strings ('3/2'); never on an answer
    called = marker.read_text().splitlines() if marker.exists() else []
    assert all(re.fullmatch(r"[0-9eE.+\-*/() ]*", c) for c in called), called
    import ast

    names = {"sympify", "parse_expr", "parse_latex", "eval", "exec", "compile", "__import__", "S"}
    attributes = {"sympify", "parse_expr", "parse_latex", "eval", "exec", "import_module", "S"}  # re.compile is fine
    for path in (REPO / "verify" / "answers").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                f = node.func
                bad = ((isinstance(f, ast.Name) and f.id in names)
                       or (isinstance(f, ast.Attribute) and f.attr in attributes))
                assert not bad, f"{path.name}:{node.lineno} calls {ast.unparse(f)}"


# ---------------------------------------------------------------------------- the time bound
def test_a_job_past_the_time_limit_is_killed_and_what_it_said_is_kept():
    def job(emit):
        emit("numeric-differ", "first finding")
        time.sleep(60)

    start = time.perf_counter()
    messages, timed_out = equivalence.run_bounded(job, timeout=0.5)
    assert time.perf_counter() - start < 3
    assert timed_out and messages == [("numeric-differ", "first finding")]


def test_an_answer_that_cannot_be_compared_in_time_fails_with_the_reason():
    verdict = wa.judge("KL_GAUSSIAN", "(sigma**2 + mu**2 - 1)/2 - log(sigma)", timeout=1e-4)
    assert not verdict.ok and "could not be compared" in verdict.message and "within" in verdict.message


# -------------------------------------------------------------------- answers.py: read, never run
def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_answers_py_is_read_but_never_executed(tmp_path):
    marker = tmp_path / "executed.txt"
    _write(tmp_path / "submission.py", "from impls import *\n")
    _write(tmp_path / "answers.py", (
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('answers.py ran')\n"
        "KL_GAUSSIAN = '(sigma**2 + mu**2 - 1)/2 - log(sigma)'\n"
        "AFFINE_FLOW_DENSITY: str = ('exp(-(x-3)**2/4.5)'\n"
        "                            '/(1.5*sqrt(2*pi))')\n"
        "COUPLING_LOG_DET = str(sum([1, 2]))\n"
    ))
    found = wa.for_submission(tmp_path)
    assert not marker.exists()
    assert found.values["KL_GAUSSIAN"].startswith("(sigma**2")
    assert found.values["AFFINE_FLOW_DENSITY"] == "exp(-(x-3)**2/4.5)/(1.5*sqrt(2*pi))"
    assert "COUPLING_LOG_DET" not in found.values and "function call" in found.notes["COUPLING_LOG_DET"]
    run = run_suite(tmp_path, "-k", "written_answer")
    assert not marker.exists(), "answers.py was executed"
    assert not run.errors, run.errors
    assert sorted(n.split("::")[-1] for n in run.passed) == ["test_written_answer_AFFINE_FLOW_DENSITY",
                                                            "test_written_answer_KL_GAUSSIAN"]
    (failure,) = run.failed.values()
    assert "COUPLING_LOG_DET: not submitted" in failure and "only a string literal is read" in failure


def test_missing_answers_are_not_submitted(tmp_path):
    sub = _write(tmp_path / "alone" / "submission.py", "x = 1\n")
    with pytest.raises(AssertionError, match=r"KL_GAUSSIAN: not submitted \(no answers.py"):
        wa.check(wa.for_submission(sub), "KL_GAUSSIAN")
    _write(tmp_path / "some" / "answers.py", "KL_GAUSSIAN = '(sigma**2 + mu**2 - 1)/2 - log(sigma)'\n")
    some = wa.for_submission(tmp_path / "some")
    assert wa.check(some, "KL_GAUSSIAN").ok
    with pytest.raises(AssertionError, match=r"COUPLING_LOG_DET: not submitted \(answers.py defines no `COUPLING"):
        wa.check(some, "COUPLING_LOG_DET")
    assert wa.for_submission(tmp_path / "nowhere").values == {}


@pytest.mark.parametrize("text, expected", [
    ("KL_GAUSSIAN = (\n", "SyntaxError at line"),
    ("if True:\n    KL_GAUSSIAN = 'mu'\n", "outside a plain top-level"),
    ("KL_GAUSSIAN = f'{1}'\n", "an f-string"),
    ("KL_GAUSSIAN = 'mu' + 'sigma'\n", "an operation"),
    ("KL_GAUSSIAN = b'mu'\n", "a bytes literal"),
    ("KL_GAUSSIAN = 3\n", "a int literal"),
    ("KL_GAUSSIAN, X = 'mu', 1\n", "outside a plain top-level"),
])
def test_only_string_literals_are_read(tmp_path, text, expected):
    found = wa.read(_write(tmp_path / "answers.py", text))
    assert "KL_GAUSSIAN" not in found.values
    assert expected in found.missing_reason("KL_GAUSSIAN")


def test_answers_py_layouts_and_limits(tmp_path):
    for rel in ("answers.py", "src/submission/answers.py", "submission/answers.py", "codebase/answers.py"):
        d = tmp_path / rel.replace("/", "_")
        _write(d / rel, "KL_GAUSSIAN = 'mu'\nKL_GAUSSIAN = 'sigma'\n")
        assert wa.for_submission(d).values == {"KL_GAUSSIAN": "sigma"}, rel  # the last assignment wins
    _write(tmp_path / "big" / "answers.py", "# " + "x" * source.MAX_FILE_BYTES + "\n")
    assert "at most" in wa.for_submission(tmp_path / "big").missing_reason("KL_GAUSSIAN")
    (tmp_path / "bytes").mkdir()
    (tmp_path / "bytes" / "answers.py").write_bytes(b"KL_GAUSSIAN = '\xff'\n")
    assert "not UTF-8" in wa.for_submission(tmp_path / "bytes").missing_reason("KL_GAUSSIAN")
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "answers.py").symlink_to(tmp_path / "bytes" / "answers.py")
    assert "symbolic link" in wa.for_submission(tmp_path / "link").missing_reason("KL_GAUSSIAN")
    _write(tmp_path / "deep" / "answers.py", "KL_GAUSSIAN = " + "(" * 5000 + "'mu'" + ")" * 5000 + "\n")
    assert "could not be read" in wa.for_submission(tmp_path / "deep").missing_reason("KL_GAUSSIAN")


def test_example_class_answers():
    examples = REPO / "examples" / "class"
    results = {}
    for student in ("alice", "bob", "carol", "dave", "erin"):
        found = wa.for_submission(examples / student)
        results[student] = {n: n in found.values and wa.judge(n, found.values[n]).ok for n in wa.NAMES}
    assert all(results["alice"].values())
    assert sum(results["bob"].values()) == 1 and sum(results["carol"].values()) == 2
    assert not any(results["dave"].values()) and sum(results["erin"].values()) == 2
    assert not (examples / "dave" / "dave_was_here.txt").exists() and not Path("dave_was_here.txt").exists()


# ------------------------------------------------------------------------------ grader mapping
def test_written_answer_checks_have_their_group_and_tag():
    import verify.test_written_answers as checks

    r = rubric.load()
    for n in wa.NAMES:
        test = f"test_written_answer_{n}"
        marks = [m for m in getattr(checks, test).pytestmark if m.name == MARKER]
        assert [m.args for m in marks] == [(n,)]  # the answer's name is the check's target and tag
        group = r.group_of({"name": test.removeprefix("test_"), "targets": [n]})
        assert group is not None and group.name == "written answers" and group.partial_credit
    assert set(ANSWER_NAMES) == set(wa.NAMES)
    assert r.max_score == 100


def test_fork_is_used_where_available():
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork here: the thread fallback is used")
    pid = os.getpid()
    messages, timed_out = equivalence.run_bounded(lambda emit: emit("pid", str(os.getpid())), timeout=10)
    assert not timed_out and messages and messages[0][1] != str(pid)


def test_without_fork_a_thread_gives_the_same_verdicts(monkeypatch):
    import multiprocessing

    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert wa.judge("KL_GAUSSIAN", EQUIVALENT["KL_GAUSSIAN"][1]).ok
    verdict = wa.judge("COUPLING_LOG_DET", "exp(s1 + s2)")
    assert not verdict.ok and "the determinant itself" in verdict.message
    start = time.perf_counter()
    messages, timed_out = equivalence.run_bounded(lambda emit: time.sleep(30), timeout=0.3)
    assert timed_out and messages == [] and time.perf_counter() - start < 2  # the thread is abandoned


# --------------------------------------------------------------------------- issue 18: answers no one can game
@pytest.mark.parametrize("answer", ["\\frac{é}{2}", "x²", "é + 1", "\\mu^²", "٣", "\\sigma_{²}", "ß\\cdot 2"])
def test_every_parser_error_is_a_refusal_with_a_reason(answer):
    verdict = wa.judge("KL_GAUSSIAN", answer)
    assert not verdict.ok and verdict.how in ("refused", "unreadable"), verdict
    assert ": refused: " in verdict.message or "could not" in verdict.message, verdict.message


def test_an_answer_vanishing_at_the_fixed_points_is_caught():
    """The fixed points are in the source; the random ones are drawn per run and cannot be known."""
    q = QUESTIONS["COUPLING_LOG_DET"]
    fixed = q.points(sp.Integer(0))[:8]
    s1 = QUESTIONS["COUPLING_LOG_DET"].symbols["s1"]
    poly = " * ".join(f"(s1 - ({sp.sstr(p[s1])}))" for p in fixed)
    assert all(sp.Mul(*[p[s1] - f[s1] for f in fixed]) == 0 for p in fixed)
    verdict = wa.judge("COUPLING_LOG_DET", f"s1 + s2 + {poly}")
    assert not verdict.ok, verdict.message
    assert q.points(sp.Integer(0))[8:] != q.points(sp.Integer(0))[8:]  # drawn afresh


def test_simplification_proves_nothing_false():
    x = QUESTIONS["AFFINE_FLOW_DENSITY"].symbols["x"]
    assert not equivalence._proved(sp.log(x ** 2), 2 * sp.log(x))  # false for x < 0; force=True "proved" it
    sigma = QUESTIONS["KL_GAUSSIAN"].symbols["sigma"]
    assert equivalence._proved(sp.log(sigma ** 2), 2 * sp.log(sigma))  # true: sigma > 0


def test_a_classmates_answers_are_never_read(tmp_path):
    """In a class folder of single files, answers.py is not everyone's; a linked folder is not followed."""
    klass = tmp_path / "class"
    _write(klass / "answers.py", "KL_GAUSSIAN = '(sigma**2 + mu**2 - 1)/2 - log(sigma)'\n")
    _write(klass / "alice.py", "KL_GAUSSIAN = 'mu'\n")
    _write(klass / "mallory.py", "x = 1\n")
    assert wa.for_submission(klass / "mallory.py").values == {}
    assert wa.for_submission(klass / "alice.py").values == {"KL_GAUSSIAN": "mu"}  # its own constants
    _write(tmp_path / "alone" / "submission.py", "x = 1\n")
    _write(tmp_path / "alone" / "answers.py", "KL_GAUSSIAN = 'sigma'\n")
    assert wa.for_submission(tmp_path / "alone" / "submission.py").values == {"KL_GAUSSIAN": "sigma"}
    _write(tmp_path / "bob" / "src" / "submission" / "answers.py", "KL_GAUSSIAN = 'sigma'\n")
    (tmp_path / "eve").mkdir()
    (tmp_path / "eve" / "src").symlink_to(tmp_path / "bob" / "src")
    linked = wa.for_submission(tmp_path / "eve")
    assert linked.values == {} and "symbolic link" in linked.missing_reason("KL_GAUSSIAN")
    (tmp_path / "carol").symlink_to(tmp_path / "bob")
    assert "symbolic link" in wa.for_submission(tmp_path / "carol").missing_reason("KL_GAUSSIAN")
