"""Is a written answer equivalent to the derived closed form? If not, how does it differ?

1. The answer is parsed in this process by the safe parser (:mod:`verify.answers.parser`): bounded,
   linear-time, no code runs. Refusals are immediate.
2. Everything costly runs in a **forked child process with a time limit** (:func:`run_bounded`,
   :data:`TIMEOUT` seconds an answer, then the child is killed; nothing is left behind), under a
   memory limit (:data:`MEMORY_LIMIT` bytes more than the parent's address space). The child
   reports as it goes, so a verdict reached before the limit is kept:

   * **numbers**: the answer and the closed form at 8 points fixed per question (where the feedback
     says they differ) and 8 more drawn per run from the operating system's randomness over a
     continuous range (exact rationals with random denominators: no answer can be made to vanish
     at points it cannot know), evaluated to :data:`PRECISION` significant digits by
     SymPy's ``evalf`` (mpmath); equal at every point to a relative 1e-30 means equivalent;
   * **simplification**: ``simplify`` of the difference (logs expanded where the symbols' assumptions
     mu real, sigma > 0, x real, s_i real allow it: never ``force=True``, which "proves" false
     identities such as log(x**2) = 2 log(x)), then of the ratio; a proof when it reaches 0 (or 1);
   * when they differ, the **diagnosis**: a catalogued wrong form (:mod:`verify.answers.catalogue`)
     equal to the answer at every point; else a constant factor or an additive constant; then the
     question's own observations (a negative KL, a KL that is not 0 at q = p, a negative density,
     its total mass by ``derivations.affine_flow.total_mass``, its mean and variance, a coupling
     answer that ignores some s_i).

   Where ``fork`` is not available the same work runs in a daemon thread that is abandoned at
   the time limit (it cannot be killed; the verdict is the same).
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
import warnings
from dataclasses import dataclass, field

import sympy as sp

from .parser import ParseError
from .questions import QUESTIONS

TIMEOUT = 10.0
PRECISION = 50
TOLERANCE = sp.Float("1e-30", PRECISION)
MEMORY_LIMIT = 2 << 30


# ------------------------------------------------------------------------------------- numbers
def evaluate(expr, point):
    """``expr`` at ``point`` to PRECISION digits: a real sympy Float, or None (complex, undefined)."""
    try:
        value = sp.N(expr.xreplace(point), PRECISION)
    except (ValueError, TypeError, ZeroDivisionError, OverflowError, ArithmeticError):
        return None
    if value.free_symbols or value.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        return None
    re_, im_ = value.as_real_imag()
    try:
        re_, im_ = sp.Float(re_, PRECISION), sp.Float(im_, PRECISION)
    except (TypeError, ValueError):
        return None
    if abs(im_) > TOLERANCE * max(1, abs(re_)):
        return None
    return re_


def close(a, b) -> bool:
    return a is not None and b is not None and abs(a - b) <= TOLERANCE * max(1, abs(a), abs(b))


def num(value) -> str:
    """A number for a message: integers and short decimals exactly, 2/3 as a fraction, else 4 digits."""
    if isinstance(value, (int, float)):
        value = sp.nsimplify(value)
    if isinstance(value, sp.Rational):
        if value.q == 1:
            return str(value)
        q = int(value.q)
        while q % 2 == 0:
            q //= 2
        while q % 5 == 0:
            q //= 5
        if q == 1 and len(str(value)) <= 10:  # a finite decimal: 1/2 -> 0.5
            return f"{float(value):g}"
        if len(str(value)) <= 8:
            return str(value)
    f = sp.Float(value, PRECISION)
    if abs(f) < 10**12 and f == sp.Float(round(f), PRECISION):  # an integer: -3, not -3.000
        return str(int(round(f)))
    if 1e-300 < abs(f) < 1e300:
        return f"{float(f):.4g}"
    return str(sp.Float(f, 4))


def where(point) -> str:
    return ", ".join(f"{k} = {num(v)}" for k, v in sorted(point.items(), key=lambda kv: str(kv[0])))


# ---------------------------------------------------------------------------------- the analysis
def analyse(question, expr, emit) -> None:
    """Compare ``expr`` with the question's closed form; ``emit(kind, text)`` reports each finding.

    kinds: ``numeric-equal`` / ``numeric-differ`` (first, always), ``proved`` / ``not-proved``,
    ``explain`` (a catalogued or generic explanation), ``observe`` (an observation), ``error``.
    """
    reference = question.reference(expr)
    points = question.points(expr)
    ours = [evaluate(reference, p) for p in points]
    theirs = [evaluate(expr, p) for p in points]
    bad = next((p for p, v in zip(points, theirs) if v is None), None)
    if bad is not None:
        emit("numeric-differ", f"it is not a real number at {where(bad)}")
    elif all(close(a, b) for a, b in zip(ours, theirs)):
        emit("numeric-equal", f"equal to the closed form at {len(points)} random points to {PRECISION - 20} digits")
        emit("proved" if _proved(expr, reference) else "not-proved", "")
        return
    else:
        i = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if not close(a, b))
        emit("numeric-differ",
             f"at {where(points[i])} it is {num(theirs[i])}, the derived closed form is {num(ours[i])}")
    _diagnose(question, expr, reference, points, theirs, ours, emit)


def _proved(expr, reference) -> bool:
    """A proof that ``expr`` equals ``reference`` by simplification under the symbols' assumptions only."""
    diff = sp.expand_log(expr - reference)
    if sp.simplify(diff) == 0:
        return True
    if reference != 0:
        ratio = sp.simplify(sp.powsimp(sp.expand_log(expr / reference)))
        return ratio == 1
    return False


def _diagnose(question, expr, reference, points, theirs, ours, emit) -> None:
    if all(v is not None for v in theirs):
        found = False
        for name, form, explanation in question.wrong_forms(expr):
            if all(close(evaluate(form, p), v) for p, v in zip(points, theirs)):
                emit("explain", explanation)
                found = True
                break
        if not found:
            generic = _factor_or_shift(theirs, ours)
            if generic:
                emit("explain", generic)
    for text in OBSERVATIONS[question.name](expr, points, theirs):
        emit("observe", text)


def _constant(values):
    """The common value of ``values`` (all close), nsimplified when it is recognisable; else None."""
    if any(v is None for v in values) or not all(close(values[0], v) for v in values[1:]):
        return None
    c = values[0]
    nice = sp.nsimplify(c, [sp.pi, sp.E], tolerance=sp.Float("1e-25", PRECISION), rational=False)
    return nice if len(str(nice)) <= 24 else c


def _factor_or_shift(theirs, ours) -> str | None:
    if all(o is not None and abs(o) > TOLERANCE for o in ours):
        factor = _constant([t / o for t, o in zip(theirs, ours)])
        if factor is not None:
            if close(factor, sp.Integer(-1)):
                return "the sign is flipped: yours is minus the derived closed form"
            if close(factor, sp.Integer(2)):
                return "off by a factor of 2: yours is twice the derived closed form"
            if close(factor, sp.Rational(1, 2)):
                return "off by a factor of 2: yours is half the derived closed form"
            return f"off by a constant factor: yours is {num(factor)} times the derived closed form"
    shift = _constant([t - o for t, o in zip(theirs, ours)])
    if shift is not None:
        return f"off by an additive constant: yours is the derived closed form plus {num(shift)}"
    return None


# ----------------------------------------------------------------------- per-question observations
KL_GRID_MU = (sp.Rational(1, 2), 0, 1, 2, -1)
KL_GRID_SIGMA = (2, sp.Rational(1, 2), 1, 3, sp.Rational(1, 4))


def _kl_observations(expr, points, theirs):
    from .questions import MU, SIGMA

    at_p = evaluate(expr, {MU: sp.Integer(0), SIGMA: sp.Integer(1)})
    if at_p is not None and not close(at_p, sp.Integer(0)):
        yield f"your KL is {num(at_p)} at mu = 0, sigma = 1, where q = p and the KL is 0"
    for s in KL_GRID_SIGMA:
        for m in KL_GRID_MU:
            v = evaluate(expr, {MU: sp.nsimplify(m), SIGMA: sp.nsimplify(s)})
            if v is not None and v < -TOLERANCE:
                yield (f"your KL is negative at mu = {num(sp.nsimplify(m))}, sigma = {num(sp.nsimplify(s))} "
                       f"({num(v)}), and a KL divergence is never negative")
                return


DENSITY_GRID = (3, 0, sp.Rational(3, 2), sp.Rational(9, 2), 6, -1, 8, 1, 5)


def _density_observations(expr, points, theirs):
    from derivations.affine_flow import total_mass

    from .questions import X

    for x in DENSITY_GRID:
        v = evaluate(expr, {X: sp.nsimplify(x)})
        if v is not None and v < -TOLERANCE:
            yield f"a density is never negative, and yours is {num(v)} at x = {num(sp.nsimplify(x))}"
            break
    mass = total_mass(expr)
    if isinstance(mass, sp.Integral) or mass.has(sp.Integral):
        return
    if mass.has(sp.oo, -sp.oo, sp.zoo, sp.nan):
        yield "your density does not integrate to 1: its integral over the real line diverges"
        return
    if not _quadrature_agrees(expr, mass):  # SymPy's integrate can be wrong (exp(x**100) "integrates to 0")
        return
    if mass != 1:
        yield f"your density integrates to {_show(mass)}, not 1"
        return
    moments = _mean_and_variance(expr)
    if moments is None:
        return
    mean, variance = moments
    yield (f"yours is a density (it integrates to 1) with mean {mean} and variance {variance}; "
           f"x = 1.5 z + 3 has mean 3 and variance 1.5^2 = 9/4")


def _mean_and_variance(expr):
    """Mean and variance of the density ``expr`` by quadrature (SymPy's integrate is slow on shifted
    Gaussians), recognised as exact numbers where they are short (3, 9/4); else None."""
    import mpmath

    from .questions import X

    try:
        f = sp.lambdify(X, expr, modules="mpmath")
        with mpmath.workdps(30):
            cuts = [-mpmath.inf, -6, -3, 0, 3, 6, 9, mpmath.inf]
            mass = mpmath.quad(f, cuts)
            mean = mpmath.quad(lambda t: t * f(t), cuts) / mass
            variance = mpmath.quad(lambda t: (t - mean) ** 2 * f(t), cuts) / mass
            shown = []
            for value in (mean, variance):
                v = sp.Float(value, 30)
                nice = sp.nsimplify(v, tolerance=sp.Float("1e-15", 30), rational=True)
                shown.append(str(nice) if len(str(nice)) <= 8 else num(v))
            return tuple(shown)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, ArithmeticError):
        return None


def _quadrature_agrees(expr, mass) -> bool:
    """Does numerical quadrature (mpmath, 20 digits) confirm SymPy's total mass?"""
    import mpmath

    from .questions import X

    try:
        f = sp.lambdify(X, expr, modules="mpmath")
        with mpmath.workdps(20):
            value = mpmath.quad(f, [-mpmath.inf, 0, 3, 6, mpmath.inf])
            target = mpmath.mpf(sp.Float(mass, 20))
            return bool(abs(value - target) <= mpmath.mpf("1e-8") * max(1, abs(target)))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, ArithmeticError):
        return False


def _show(value) -> str:
    s = str(value)
    return s if len(s) <= 24 else num(value)


def _coupling_observations(expr, points, theirs):
    from .questions import QUESTIONS as Q

    variables = Q["COUPLING_LOG_DET"].variables(expr)
    missing = [str(s) for s in variables if s not in expr.free_symbols]
    if missing and len(missing) < len(variables):
        yield (f"it does not depend on {', '.join(missing)}: every transformed coordinate contributes its own "
               "s_i to the log-determinant")
    elif len(missing) == len(variables):
        yield "it does not depend on any scale output s_i"


OBSERVATIONS = {
    "KL_GAUSSIAN": _kl_observations,
    "AFFINE_FLOW_DENSITY": _density_observations,
    "COUPLING_LOG_DET": _coupling_observations,
}


# ------------------------------------------------------------------------------ the time bound
def _address_space() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _child(job, conn):
    try:
        import resource

        used = _address_space()
        if used is not None:
            limit = used + MEMORY_LIMIT
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard == resource.RLIM_INFINITY or hard > limit:
                resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass
    try:
        job(lambda kind, text: conn.send((kind, text)))
    except MemoryError:
        conn.send(("error", f"the comparison ran out of memory ({MEMORY_LIMIT >> 30} GiB)"))
    except BaseException as exc:  # noqa: BLE001 - the verdict reports it
        conn.send(("error", f"the comparison failed: {type(exc).__name__}: {str(exc)[:300]}"))
    finally:
        try:
            conn.send(("done", ""))
        finally:
            conn.close()


def run_bounded(job, timeout: float = TIMEOUT) -> tuple[list, bool]:
    """Run ``job(emit)`` with a time limit; returns (the (kind, text) messages it emitted, timed out?).

    In a forked child process killed at the limit; where fork is unavailable, in a daemon thread
    that is abandoned at the limit.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return _run_in_thread(job, timeout)
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Python >= 3.12 warns about fork in a multi-threaded process
        proc = ctx.Process(target=_child, args=(job, send), daemon=True)
        proc.start()
    send.close()
    messages, deadline, finished = [], time.monotonic() + timeout, False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not receive.poll(left):
                break
            try:
                kind, text = receive.recv()
            except (EOFError, OSError):
                finished = True  # the child ended (or was killed) without saying "done"
                break
            if kind == "done":
                finished = True
                break
            messages.append((kind, text))
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        receive.close()
    return messages, not finished


def _run_in_thread(job, timeout):
    messages, done = [], threading.Event()

    def target():
        try:
            job(lambda kind, text: messages.append((kind, text)))
        except Exception as exc:  # noqa: BLE001
            messages.append(("error", f"the comparison failed: {type(exc).__name__}: {str(exc)[:300]}"))
        finally:
            done.set()

    threading.Thread(target=target, daemon=True).start()
    finished = done.wait(timeout)
    return list(messages), not finished


# ----------------------------------------------------------------------------------- the verdict
@dataclass
class Verdict:
    name: str
    answer: str | None
    ok: bool
    message: str
    how: str = ""  # "simplification", "numbers", "refused", "unreadable", "not submitted", "timeout"
    findings: list = field(default_factory=list)


def _quote(answer: str) -> str:
    a = " ".join(answer.split())
    return repr(a if len(a) <= 160 else a[:150] + " ... " + a[-6:])


def judge(name: str, answer: str, timeout: float = TIMEOUT) -> Verdict:
    """The verdict on the answer text ``answer`` to question ``name`` (never raises for bad input)."""
    question = QUESTIONS[name]
    try:
        expr = question.parse(answer)
    except ParseError as exc:
        how = "refused" if str(exc).startswith("refused") else "unreadable"
        return Verdict(name, answer, False, f"{name} = {_quote(answer)}: {exc}", how)
    except RecursionError:  # cannot happen with the parser's depth limit; a refusal all the same
        return Verdict(name, answer, False, f"{name} = {_quote(answer)}: refused: nested too deeply", "refused")
    except Exception as exc:  # noqa: BLE001 - a parser bug: the answer is refused with the reason, never a crash
        return Verdict(name, answer, False, f"{name} = {_quote(answer)}: refused: the answer could not be read "
                                            f"({type(exc).__name__})", "refused")
    messages, timed_out = run_bounded(lambda emit: analyse(question, expr, emit), timeout)
    kinds = [k for k, _ in messages]
    head = f"{name} = {_quote(answer)}"
    if "numeric-equal" in kinds:
        return Verdict(name, answer, True, *_equivalent(head, messages, timeout), messages)
    if "numeric-differ" not in kinds:
        return Verdict(name, answer, False, *_not_compared(head, messages, timeout), messages)
    message = _difference(head, question, messages, timed_out, timeout)
    return Verdict(name, answer, False, message, "numbers", messages)


def _equivalent(head: str, messages: list, timeout: float) -> tuple[str, str]:
    """(message, how) for an answer equal to the closed form at every point: proved, or by the numbers."""
    kinds = [k for k, _ in messages]
    if "proved" in kinds:
        return (f"{head}: equivalent to the derived closed form (SymPy simplifies the difference to 0)",
                "simplification")
    detail = dict(messages)["numeric-equal"]
    why = ("SymPy's simplification did not reach 0" if "not-proved" in kinds
           else f"SymPy's simplification did not finish within {timeout:g} s")
    return f"{head}: equivalent to the derived closed form ({detail}; {why})", "numbers"


def _not_compared(head: str, messages: list, timeout: float) -> tuple[str, str]:
    """(message, how) for an answer that could not be evaluated: the error, or the time limit."""
    error = next((t for k, t in messages if k == "error"), None)
    reason = error or f"it could not be evaluated within {timeout:g} s; write it in a simpler form"
    return (f"{head} could not be compared with the derived closed form: {reason}",
            "timeout" if error is None else "error")


def _difference(head: str, question, messages: list, timed_out: bool, timeout: float) -> str:
    """The message for an answer that differs: the explanations and observations (else where it differs)."""
    explanations = [t for k, t in messages if k == "explain"]
    observations = [t for k, t in messages if k == "observe"]
    numeric = dict(messages)["numeric-differ"]
    parts = explanations + observations + ([numeric] if not explanations else [])
    if timed_out:
        parts.append(f"(the diagnosis did not finish within {timeout:g} s)")
    return f"{head} is not equivalent to the derived closed form of {question.title}: " + "; ".join(parts)
