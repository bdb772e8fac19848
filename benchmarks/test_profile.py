"""Where one grading's time goes, by phase (benchmarks/profile.py): ``heavy`` (seconds per call),
so it runs under ``pytest benchmarks/test_profile.py --benchmark-only`` and skips in the plain run."""
import pytest

from benchmarks.profile import ALICE, profile, render


@pytest.mark.heavy
@pytest.mark.parametrize("zygote", [True, False], ids=["zygotes", "fresh-processes"])
def test_profile_one_grading(benchmark, zygote):
    result = benchmark.pedantic(profile, args=(ALICE, None, () if zygote else ("--no-zygote",)),
                                rounds=1, iterations=1)
    print("\n" + render(result))
    assert result["score"] == 100  # alice: the example class's correct submission
    benchmark.extra_info.update(
        kernel="grade one submission, by phase", variant="zygotes" if zygote else "fresh processes (--no-zygote)",
        device="cpu", size="alice", wall_s=round(result["wall"], 2), cpu_s=round(result["cpu"], 2),
        phases={name: round(wall, 3) for name, wall, _, _ in result["rows"]},
        round_trips=result["round_trips"], load_average=[round(x, 2) for x in result["load_average"]])
