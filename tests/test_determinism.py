"""With the default seed the suite is deterministic: the same failures with the same numbers;
``--verify-seed`` re-randomizes them."""
from conftest import run_suite
from grader.catalogue import plant


def _messages(run):
    return {k: [line for line in v.splitlines() if line.startswith("E ")] for k, v in run.failed.items()}


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path):
    sub = plant("sample_uniform_noise", tmp_path)
    args = ("-k", "sample_gaussian_standardized or sample_gaussian_noise")
    first, second = run_suite(sub, *args), run_suite(sub, *args)
    assert first.failed and _messages(first) == _messages(second)
    reseeded = run_suite(sub, *args, "--verify-seed", "12345")
    assert set(reseeded.failed) == set(first.failed)
    assert _messages(reseeded) != _messages(first)  # the messages quote the sampled statistics
