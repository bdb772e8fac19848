"""Written answers (answers.py): each closed form equivalent to the derived one.

The file is read as text and never run; each answer is parsed by a parser that cannot run code and
compared with the derivation by simplification and by high-precision evaluation at random points,
in a child process with a time limit. A wrong answer is told how it differs (verify/answers/).
"""
import pytest

from verify.contract import grades


@pytest.fixture(scope="session")
def answers(request):
    """The submission's written answers, read as text (verify/answers/fixture.py)."""
    from verify.answers.fixture import answers_of  # SymPy: imported when a written answer is first checked

    return answers_of(request.config)


def check(answers, name):
    """verify.answers.check: fail with the feedback unless ``name`` is a correct answer."""
    __tracebackhide__ = True
    from verify.answers import check as judge_and_explain

    return judge_and_explain(answers, name)


@grades('KL_GAUSSIAN')
def test_written_answer_KL_GAUSSIAN(answers):
    """KL_GAUSSIAN: KL(N(mu, sigma^2) || N(0, 1)) in mu, sigma, equivalent to the derived closed form."""
    check(answers, "KL_GAUSSIAN")


@grades('AFFINE_FLOW_DENSITY')
def test_written_answer_AFFINE_FLOW_DENSITY(answers):
    """AFFINE_FLOW_DENSITY: the density of x = 1.5 z + 3, z ~ N(0, 1), equivalent to N(x; 3, 1.5^2)."""
    check(answers, "AFFINE_FLOW_DENSITY")


@grades('COUPLING_LOG_DET')
def test_written_answer_COUPLING_LOG_DET(answers):
    """COUPLING_LOG_DET: log|det dy/dx| of the affine coupling in s1, ..., sk, equivalent to their sum."""
    check(answers, "COUPLING_LOG_DET")
