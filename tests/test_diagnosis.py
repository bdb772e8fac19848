"""The diagnosis's probes discriminate: a bug is named only where no other bug gives the same output."""
import itertools

import pytest
import torch

from grader.catalogue import BUGS, bugs_for
from grader.diagnosis import PROBE_SEED, PROBES, _outputs_of, _part, _run, _same, explain_outputs
from verify import loader
from verify.models import BoundedModel

# bugs that are one behaviour seen from outside (both return the sample detached): never named
INDISTINGUISHABLE = {frozenset({"sample_detached", "sample_distribution_sample"})}


def _state():
    return torch.Generator().manual_seed(PROBE_SEED).get_state()


@pytest.mark.parametrize("target", sorted(PROBES))
def test_probe_tells_the_bugs_of_each_output_apart(target):
    """On the probe, two bugs that give one output the same wrong value differ in another output."""
    reference = loader.load(None).raw(target)
    whole = {b.name: _run(b.fn, PROBES[target](), {}, _state()) for b in bugs_for(target)}
    for j, label in _outputs_of(target):
        truth = _part(_run(reference, PROBES[target](), {}, _state()), j)
        wrong = {n: o for n, o in whole.items() if o is not None and not _same(_part(o, j), truth)}
        for a, b in itertools.combinations(sorted(wrong), 2):
            if _same(_part(wrong[a], j), _part(wrong[b], j)) and _same(wrong[a], wrong[b]):
                assert frozenset({a, b}) in INDISTINGUISHABLE, f"{target} {label}: {a} and {b} coincide on the probe"


def test_every_function_target_has_a_probe():
    assert {b.target for b in BUGS.values()} - {"AffineCoupling"} <= set(PROBES)


def _recorded(fn, args):
    """A recorded call of ``fn`` on ``args`` from a fixed RNG state (as the loader records one)."""
    from verify.loader import RecordedCall

    state = torch.Generator().manual_seed(3).get_state()
    return RecordedCall("negative_iwae_bound", args, {}, state, _run(fn, args, {}, state))


def test_coinciding_bugs_are_told_apart_by_the_probe():
    """With q = p(z) (the statistical checks' model) "a scalar rec in the weights" and "the mean of the
    log-weights" give the same bound; the diagnosis names the one the probe confirms."""
    model = BoundedModel()
    args = (model.x(3), model.encoder, model.decoder, 4)
    scalar, mean = BUGS["iwae_scalar_rec_in_weights"].fn, BUGS["iwae_mean_of_log_weights"].fn
    call = _recorded(scalar, args)
    assert _same(_part(_run(mean, args, {}, call.rng_state), 0), _part(call.output, 0))  # they coincide here
    reference = loader.load(None).raw("negative_iwae_bound")
    found = explain_outputs("negative_iwae_bound", [call], reference, scalar)
    assert [(f.output, f.bug.name) for f in found] == [("niwae", "iwae_scalar_rec_in_weights")]
    assert explain_outputs("negative_iwae_bound", [call], reference, None) == []  # no probe, no name
