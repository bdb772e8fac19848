"""Written answers (answers.py): each closed form equivalent to the derived one.

The file is read as text and never run; each answer is parsed by a parser that cannot run code and
compared with the derivation by simplification and by high-precision evaluation at random points,
in a child process with a time limit. A wrong answer is told how it differs (verify/answers/).
"""
from verify.contract import grades
from verify.answers import check
from verify.answers.fixture import answers  # noqa: F401  (the fixture)


@grades('KL_GAUSSIAN')
def test_written_answer_KL_GAUSSIAN(answers):  # noqa: F811
    """KL_GAUSSIAN: KL(N(mu, sigma^2) || N(0, 1)) in mu, sigma, equivalent to the derived closed form."""
    check(answers, "KL_GAUSSIAN")


@grades('AFFINE_FLOW_DENSITY')
def test_written_answer_AFFINE_FLOW_DENSITY(answers):  # noqa: F811
    """AFFINE_FLOW_DENSITY: the density of x = 1.5 z + 3, z ~ N(0, 1), equivalent to N(x; 3, 1.5^2)."""
    check(answers, "AFFINE_FLOW_DENSITY")


@grades('COUPLING_LOG_DET')
def test_written_answer_COUPLING_LOG_DET(answers):  # noqa: F811
    """COUPLING_LOG_DET: log|det dy/dx| of the affine coupling in s1, ..., sk, equivalent to their sum."""
    check(answers, "COUPLING_LOG_DET")
