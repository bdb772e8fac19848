"""Training and evaluation on MNIST (training/train.py, training/evaluate.py, training/mnist_flow.py).

Short training runs on the real data (skipped when it is absent) keep the training path from
rotting; the objectives, the bits/dim computation and the usage errors are tested without data."""
import csv
import json
import math
import subprocess
import sys

import pytest
import torch

from training import data as mnist
from training import evaluate as ev
from training import mnist_flow as mf
from training import train
from impls.bounds import negative_elbo_bound
from impls.gaussian import kl_normal
from impls.vae import VAE
from grader import metrics as gm


def _have_mnist():
    try:
        mnist.find_mnist()
        return True
    except mnist.MNISTNotFoundError:
        return False


needs_mnist = pytest.mark.skipif(not _have_mnist(), reason="MNIST not found (see training/data.py for where it is looked for)")


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------ objectives (no data)
def test_vae_objective_plain_is_the_reference_elbo():
    torch.manual_seed(0)
    model = VAE()
    x = torch.bernoulli(torch.full((8, 784), 0.3))
    torch.manual_seed(1)
    ref = negative_elbo_bound(x, model.enc, model.dec)
    torch.manual_seed(1)
    loss, nelbo, kl, rec = train.vae_objective(model, x)
    assert torch.equal(loss, ref[0]) and torch.equal(nelbo, ref[0]) and torch.equal(kl, ref[1]) and torch.equal(rec, ref[2])


def test_vae_objective_warmup_and_free_bits():
    torch.manual_seed(0)
    model = VAE()
    x = torch.bernoulli(torch.full((8, 784), 0.3))
    torch.manual_seed(1)
    _, ref_kl, ref_rec = negative_elbo_bound(x, model.enc, model.dec)  # the same z: same rec
    torch.manual_seed(1)
    loss, nelbo, kl, rec = train.vae_objective(model, x, beta=0.3, free_bits=0.05)
    m, v = model.enc(x)
    kl_i = torch.stack([kl_normal(m[:, i:i + 1], v[:, i:i + 1], torch.zeros(1), torch.ones(1)).mean() for i in range(10)])
    assert torch.allclose(kl, ref_kl, atol=1e-5) and torch.equal(rec, ref_rec)
    assert torch.allclose(nelbo, ref_kl + ref_rec, atol=1e-4)
    assert kl_i.min() < 0.05 < kl_i.max()  # the floor binds for some dimensions only
    assert torch.allclose(loss, rec + 0.3 * torch.clamp(kl_i, min=0.05).sum(), atol=1e-5)
    assert not torch.allclose(loss, rec + 0.3 * kl, atol=1e-5)


def test_free_bits_above_every_kl_leave_only_the_reconstruction_gradient():
    torch.manual_seed(0)
    model = VAE()
    x = torch.bernoulli(torch.full((8, 784), 0.3))
    torch.manual_seed(1)
    train.vae_objective(model, x, free_bits=1e3)[0].backward()
    g_free = [p.grad.clone() for p in model.enc.parameters()]
    model.zero_grad()
    torch.manual_seed(1)
    train.vae_objective(model, x, free_bits=1e3)[3].backward()  # rec alone
    assert all(torch.allclose(a, b) for a, b in zip(g_free, [p.grad for p in model.enc.parameters()]))


def test_active_units_and_kl_per_dim():
    class Enc(torch.nn.Module):
        def forward(self, x):  # unit 0 follows x, unit 1 barely, unit 2 not at all
            m = torch.stack([x[:, 0], 0.05 * x[:, 0], torch.zeros_like(x[:, 0])], -1)
            return m, torch.full_like(m, 0.5)

    x = torch.randn(4000, 784)
    d = ev.posterior_diagnostics(Enc(), x)
    assert d["active_units"] == 1  # Var(0.05 x) = 0.0025 < 0.01
    assert abs(d["activity_per_dim"][0] - 1) < 0.1
    kl0 = 0.5 * (0.5 + 1 - 1 - math.log(0.5))  # E[m^2] = 1
    assert abs(d["kl_per_dim"][0] - kl0) < 0.06 and abs(d["kl_per_dim"][2] - 0.5 * (0.5 - 1 - math.log(0.5))) < 1e-3


def test_homework_check():
    assert train.homework_misses(dict(ev.HOMEWORK), 1.0) == []
    off = {**ev.HOMEWORK, "iwae_50": ev.HOMEWORK["iwae_50"] + 1.5}
    assert train.homework_misses(off, 1.0) == [("iwae_50", off["iwae_50"], 96.59)]
    text = ev.homework_table({**ev.HOMEWORK, "kl": 19.0, "rec": 80.4})
    assert "99.42" in text and "96.30" in text and "+0.00" in text


# ------------------------------------------------------------------------ flow (no data)
def test_flow_bits_per_dim_against_the_autograd_jacobian():
    """log p(x + e) of the whole pipeline (logit transform, ActNorm, couplings, 256 scaling) equals
    log N(z) + log|det dz/du| - D log 256 with the 784 x 784 Jacobian from autograd."""
    torch.manual_seed(0)
    model = mf.MNISTRealNVP(n_layers=3, hidden=16).double()
    for layer in model.layers:  # not the identity
        torch.nn.init.normal_(layer.net.head.weight, std=0.05)
        torch.nn.init.normal_(layer.net.head.bias, std=0.05)
    images = torch.randint(0, 256, (16, 784), dtype=torch.uint8)
    images[:, :300] = 0  # MNIST-like: many zeros
    u = mf.dequantize(images, torch.Generator().manual_seed(0)).double()
    model(mf.logit_transform(u)[0])  # ActNorm's data-dependent initialisation
    lp = model.log_prob_dequantized(u[:2])

    def to_z(v):
        return model(mf.logit_transform(v.unsqueeze(0))[0])[0].squeeze(0)

    for i in range(2):
        jac = torch.autograd.functional.jacobian(to_z, u[i], vectorize=True)
        z = to_z(u[i])
        ref = (-0.5 * (math.log(2 * math.pi) + z**2)).sum() + torch.linalg.slogdet(jac)[1] - 784 * math.log(256)
        assert torch.allclose(lp[i], ref, rtol=1e-9, atol=1e-6), (float(lp[i]), float(ref))
    bpd = mf.bits_per_dim(model, u[:2])
    assert torch.allclose(bpd, -lp / (784 * math.log(2)))


def test_flow_inverse_and_samples():
    torch.manual_seed(0)
    model = mf.MNISTRealNVP(n_layers=4, hidden=16).double()
    for layer in model.layers:
        torch.nn.init.normal_(layer.net.head.weight, std=0.05)
    u = mf.dequantize(torch.randint(0, 256, (4, 784), dtype=torch.uint8)).double()
    y = mf.logit_transform(u)[0]
    z, _ = model(y)
    assert torch.allclose(model.inverse(z), y, atol=1e-8)
    assert torch.allclose(mf.inverse_logit(y), u, atol=1e-9)
    s = model.sample(5, temperature=0.5)
    assert s.shape == (5, 784) and float(s.min()) >= 0 and float(s.max()) <= 1


def test_flow_masks_alternate():
    masks = mf.coupling_masks(6)
    assert all(m.shape == (784,) and set(m.unique().tolist()) == {0.0, 1.0} for m in masks)
    assert torch.equal(masks[0] + masks[1], torch.ones(784))  # checkerboards of both parities
    assert torch.equal(masks[2][:392], torch.ones(392)) and torch.equal(masks[5][:392], torch.zeros(392))


# --------------------------------------------------------------------- usage errors
def test_missing_data_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "no-mnist-here"
    assert train.main(["vae", "--data-dir", str(missing), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: MNIST not found") and str(missing) in err and "Traceback" not in err
    assert train.main(["realnvp", "--data-dir", str(missing), "--out", str(tmp_path / "o"), "--quiet"]) == 2


@pytest.mark.parametrize("argv, match", [
    (["vae", "--iters", "0"], "expected a positive integer"),
    (["vae", "--lr", "-1"], "expected a finite number >= 0"),
    (["vae", "--iwae-k", "5,x"], "comma-separated positive integers"),
    (["realnvp", "--hidden", "many"], "expected a positive integer"),
    (["fit"], "invalid choice"),
])
def test_bad_arguments(argv, match, capsys):
    with pytest.raises(SystemExit) as exit_:
        train.main(argv)
    assert exit_.value.code == 2 and match in capsys.readouterr().err


@pytest.mark.parametrize("argv, match", [
    (["realnvp", "--alpha", "0.7"], "--alpha must be in"),
    (["vae", "--no-eval", "--check-homework", "1"], "--check-homework needs"),
    (["eval-vae", "absent.pt"], "checkpoint not found"),
])
def test_usage_errors(argv, match, capsys, tmp_path):
    assert train.main(argv + (["--out", str(tmp_path / "o")] if argv[0] != "eval-vae" else [])) == 2
    assert match in capsys.readouterr().err


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert train.main(["vae", "--out", str(blocker / "sub"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "a-file" in err and "Traceback" not in err


def test_not_a_checkpoint(tmp_path, capsys):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    assert train.main(["eval-vae", str(bad)]) == 2
    assert "not a checkpoint" in capsys.readouterr().err


def test_entry_point_prints_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "training.train", "vae", "--data-dir", str(tmp_path), "--quiet"],
                       capture_output=True, text=True, cwd=train.mnist.REPO, timeout=120)
    assert r.returncode == 2 and "MNIST not found" in r.stderr and "Traceback" not in r.stderr


# --------------------------------------------------------------- short training runs
@needs_mnist
def test_short_vae_training_and_evaluation(tmp_path, capsys):
    out = tmp_path / "vae"
    assert train.main(["vae", "--iters", "300", "--out", str(out), "--test-images", "500", "--iwae-k", "1,5,50",
                       "--ll-samples", "0", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "homework" in printed and "IWAE-5" in printed
    for name in ("metrics.csv", "checkpoint.pt", "curves.png", "samples.png", "eval.json"):
        assert (out / name).stat().st_size > 0, name
    rows = _rows(out / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == list(range(50, 301, 50))
    assert float(rows[0]["nelbo"]) > float(rows[-1]["nelbo"]) + 50  # learning: ~540 at init
    res = json.loads((out / "eval.json").read_text())
    assert res["n_images"] == 500 and res["iterations"] == 300
    assert 100 < res["nelbo"] < 170
    assert res["iwae_50"] < res["iwae_5"] < res["iwae_1"] + 0.5  # the bounds tighten with k
    assert abs(sum(res["kl_per_dim"]) - res["kl"]) < 0.05 and abs(res["kl"] + res["rec"] - res["nelbo"]) < 1e-3
    assert 0 <= res["active_units"] <= 10
    values, _ = gm.read_metrics(out / "eval.json")  # the grader reads what training writes
    assert values["nelbo"] == res["nelbo"] and values["iwae_50"] == res["iwae_50"]
    # the checkpoint evaluates to the same numbers (deterministic evaluation, each bound on its own
    # random stream whatever other bounds are asked for)
    again = tmp_path / "again.json"
    assert train.main(["eval-vae", str(out / "checkpoint.pt"), "--out", str(again), "--test-images", "500",
                       "--iwae-k", "5", "--ll-samples", "0", "--quiet"]) == 0
    again = json.loads(again.read_text())
    assert again["iwae_5"] == res["iwae_5"] and again["nelbo"] == res["nelbo"] and "iwae_1" not in again


@needs_mnist
def test_vae_training_is_deterministic_and_resumable(tmp_path):
    common = ["--no-eval", "--quiet", "--train-images", "3000", "--log-every", "10", "--kl-warmup", "30",
              "--free-bits", "0.1"]
    assert train.main(["vae", "--iters", "40", "--out", str(tmp_path / "a")] + common) == 0
    assert train.main(["vae", "--iters", "20", "--out", str(tmp_path / "b")] + common) == 0
    assert train.main(["vae", "--iters", "40", "--out", str(tmp_path / "b"), "--resume"] + common) == 0
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert a["iteration"] == b["iteration"] == 40
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    rows_a, rows_b = _rows(tmp_path / "a" / "metrics.csv"), _rows(tmp_path / "b" / "metrics.csv")
    assert [r["nelbo"] for r in rows_a] == [r["nelbo"] for r in rows_b]
    assert [float(r["beta"]) for r in rows_a] == [0.3333, 0.6667, 1.0, 1.0]  # KL warm-up over 30 iterations


@needs_mnist
def test_short_realnvp_training(tmp_path, capsys):
    out = tmp_path / "flow"
    assert train.main(["realnvp", "--minutes", "0", "--iters", "60", "--hidden", "64", "--layers", "3",
                       "--warmup", "10", "--train-images", "6000", "--test-images", "500", "--log-every", "20",
                       "--out", str(out), "--quiet"]) == 0
    assert "test bits/dim" in capsys.readouterr().out
    for name in ("metrics.csv", "checkpoint.pt", "curves.png", "samples.png", "eval.json"):
        assert (out / name).stat().st_size > 0, name
    rows = _rows(out / "metrics.csv")
    assert len(rows) == 3 and float(rows[-1]["bpd"]) < float(rows[0]["bpd"])
    res = json.loads((out / "eval.json").read_text())
    # a diagonal Gaussian in logit space (the flow at initialisation) scores about 2.6 bits/dim
    assert res["n_test_images"] == 500 and 1.0 < res["test_bpd"] < 2.6


@needs_mnist
def test_collapse_experiment_runs(tmp_path, capsys):
    from training import collapse_experiment

    assert collapse_experiment.main(["--iters", "20", "--warmup", "10", "--z-dim", "4", "--test-images", "200",
                                     "--train-images", "2000", "--out", str(tmp_path)]) == 0
    table = (tmp_path / "table.md").read_text()
    assert sum(line.startswith("| ") for line in table.splitlines()) == 5  # header + 4 configurations
    assert "active units (of 4)" in table
    assert "`--kl-warmup 10 --free-bits 0.25`" in table
    warm = json.loads((tmp_path / "run1" / "eval.json").read_text())
    assert warm["config"]["kl_warmup"] == 10 and len(warm["kl_per_dim"]) == 4
