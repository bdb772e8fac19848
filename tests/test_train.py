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


# ------------------------------------------------------------ GMVAE and SSVAE (issue 20)
def test_course_subsets_are_the_starters():
    from training import hw2

    for table in (hw2.COURSE_TRAIN_INDEX, hw2.COURSE_TEST_INDEX):
        assert len(table) == 10 and all(len(row) == 10 for row in table)
    labels = torch.arange(10).repeat(7000)  # digit c at positions c, c + 10, ...: the k-th c is at 10 k + c
    idx = hw2.per_class_subset(labels, hw2.COURSE_TRAIN_INDEX)
    assert idx.tolist()[:3] == [27320, 26070, 16530] and idx.tolist()[10] == 59241
    assert labels[idx].tolist() == [c for c in range(10) for _ in range(10)]
    assert len(set(idx.tolist())) == 99  # the course's table repeats one image of a 4
    assert hw2.per_class_subset(labels, per_class=3).tolist()[:4] == [0, 10, 20, 1]
    with pytest.raises(ValueError, match="class 0 has 600 examples; the subset needs position 5874"):
        hw2.per_class_subset(torch.arange(10).repeat(600), hw2.COURSE_TRAIN_INDEX)


def test_course_static_binarization_is_numpys_seed_0():
    from training import hw2
    import numpy as np

    images = torch.randint(0, 256, (20, 784), dtype=torch.uint8)
    state = np.random.get_state()
    np.random.seed(0)
    expected = np.random.binomial(1, images.numpy().astype(np.float32) / np.float32(255))
    np.random.set_state(state)
    assert torch.equal(hw2.course_static_binarize(images), torch.from_numpy(expected).float())


def test_gmvae_evaluation_is_deterministic_and_the_bounds_tighten():
    from training import hw2
    from impls.gmvae import GMVAE

    torch.manual_seed(0)
    model = GMVAE(z_dim=2, k=5, hidden=16)
    x = torch.bernoulli(torch.full((30, 784), 0.2))
    a = hw2.evaluate_gmvae(model, x, iws=(1, 10, 100), elbo_repeats=3, batch=7, progress=False)
    b = hw2.evaluate_gmvae(model, x, iws=(100,), elbo_repeats=3, batch=7, progress=False)
    assert a["iwae_100"] == b["iwae_100"] and a["nelbo"] == b["nelbo"]  # each estimate on its own stream
    assert a["iwae_100"] < a["iwae_10"] < a["iwae_1"] and abs(a["nelbo"] - a["kl"] - a["rec"]) < 1e-3
    assert hw2.target_misses({**{k: t for k, (t, _) in hw2.GMVAE_TARGETS.items()}, "iwae_1000": 95.8},
                             hw2.GMVAE_TARGETS) == [("iwae_1000", 95.8, 93.0, 2.7)]


def test_ssvae_accuracy_and_per_class():
    from training import hw2
    from impls.ssvae import SSVAE

    model = SSVAE(hidden=8)
    with torch.no_grad():  # a classifier that reads the label off pixel 0 (grey level 25.5 c / 255 = c / 10)
        net = model.cls.net
        for layer in (net[0], net[2], net[4]):
            layer.weight.zero_(), layer.bias.zero_()
        net[0].weight[0, 0], net[2].weight[0, 0] = 1.0, 1.0
        net[4].weight[:, 0] = torch.arange(10.0) * 10
        net[4].bias.copy_(-(torch.arange(10.0) ** 2) / 2)
    y = torch.arange(10).repeat(5)
    x = torch.zeros(50, 784, dtype=torch.uint8)
    x[:, 0] = (y * 25.5).round().to(torch.uint8)
    out = hw2.evaluate_ssvae(model, x, y)
    assert out["accuracy"] == 1.0 and out["accuracy_per_class"] == [1.0] * 10
    out = hw2.evaluate_ssvae(model, x, (y + 1) % 10)
    assert out["accuracy"] == 0.0


@pytest.mark.parametrize("argv, match", [
    (["ssvae", "--gen-weight", "0.5", "--check-homework", "--iters", "1", "--labelled", "first",
      "--train-images", "600", "--test-images", "10"], "targets for --gen-weight 0 and 1 only"),
    (["eval-gmvae", "absent.pt"], "checkpoint not found"),
    (["ssvae", "--labelled", "first", "--per-class", "100", "--train-images", "500"], "labelled subset"),
])
@needs_mnist
def test_hw2_usage_errors(argv, match, capsys, tmp_path):
    assert train.main(argv + (["--out", str(tmp_path / "o"), "--quiet"] if argv[0] == "ssvae" else [])) == 2
    assert match in capsys.readouterr().err


@needs_mnist
def test_short_gmvae_training_and_evaluation(tmp_path, capsys):
    out = tmp_path / "gmvae"
    assert train.main(["gmvae", "--iters", "40", "--out", str(out), "--train-images", "2000", "--test-images", "100",
                       "--iwae-k", "1,10", "--elbo-repeats", "2", "--log-every", "20", "--k", "50", "--quiet",
                       "--check-homework"]) == 1  # 40 iterations are far from the course's numbers
    captured = capsys.readouterr()
    assert "the course's protocol" in captured.out and "97 +- 3" in captured.out
    assert "check: nelbo = " in captured.err and "check: iwae_100 = not computed" in captured.err
    for name in ("metrics.csv", "checkpoint.pt", "curves.png", "samples.png", "eval.json"):
        assert (out / name).stat().st_size > 0, name
    rows = _rows(out / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == [20, 40] and float(rows[0]["nelbo"]) > float(rows[1]["nelbo"])
    res = json.loads((out / "eval.json").read_text())
    assert res["model"] == "gmvae" and res["n_images"] == 100 and res["course_subset"]["n_images"] == 100
    assert res["iwae_10"] < res["iwae_1"] and abs(res["nelbo"] - res["kl"] - res["rec"]) < 1e-3
    values, _ = gm.read_metrics(out / "eval.json")  # the grader reads what training writes, as the GMVAE's
    assert values["gmvae_nelbo"] == res["nelbo"] and "nelbo" not in values
    again = tmp_path / "again.json"
    assert train.main(["eval-gmvae", str(out / "checkpoint.pt"), "--out", str(again), "--test-images", "100",
                       "--iwae-k", "10", "--elbo-repeats", "2", "--no-course-subset", "--quiet"]) == 0
    again = json.loads(again.read_text())
    assert again["iwae_10"] == res["iwae_10"] and again["nelbo"] == res["nelbo"] and "course_subset" not in again
    assert train.main(["eval-ssvae", str(out / "checkpoint.pt"), "--quiet"]) == 2  # the wrong kind
    assert "not a SSVAE checkpoint" in capsys.readouterr().err


@needs_mnist
def test_gmvae_training_resumes_exactly_after_an_interrupt(tmp_path, monkeypatch):
    """SIGINT in the middle of a run: the state after the last complete iteration is saved (exit
    130), and --resume then ends where an uninterrupted run does."""
    import signal

    common = ["--no-eval", "--quiet", "--train-images", "2000", "--log-every", "5", "--k", "20", "--iters", "30"]
    assert train.main(["gmvae", "--out", str(tmp_path / "a")] + common) == 0
    calls = {"n": 0}
    real = train.mnist.binarize_dynamic

    def binarize(images, generator=None):
        calls["n"] += 1
        if calls["n"] == 12:
            signal.raise_signal(signal.SIGINT)  # arrives during iteration 12, which still completes
        return real(images, generator=generator)

    monkeypatch.setattr(train.mnist, "binarize_dynamic", binarize)
    assert train.main(["gmvae", "--out", str(tmp_path / "b")] + common) == 130
    stopped = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert stopped["iteration"] == 12
    monkeypatch.setattr(train.mnist, "binarize_dynamic", real)
    assert train.main(["gmvae", "--out", str(tmp_path / "b"), "--resume"] + common) == 0
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert a["iteration"] == b["iteration"] == 30
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    rows_a, rows_b = _rows(tmp_path / "a" / "metrics.csv"), _rows(tmp_path / "b" / "metrics.csv")
    assert [r["iteration"] for r in rows_a] == [r["iteration"] for r in rows_b]
    assert [r["nelbo"] for r in rows_a][:2] + [r["nelbo"] for r in rows_a][3:] == \
        [r["nelbo"] for r in rows_b][:2] + [r["nelbo"] for r in rows_b][3:]  # row 15 averages 3, not 5, iterations


@needs_mnist
@pytest.mark.parametrize("gen_weight", ["0", "1"])
def test_short_ssvae_training_and_resume(tmp_path, capsys, gen_weight):
    common = ["--gen-weight", gen_weight, "--quiet", "--train-images", "3000", "--labelled", "first",
              "--log-every", "5", "--hidden", "64", "--z-dim", "8", "--test-images", "500"]
    out = tmp_path / "s"
    assert train.main(["ssvae", "--iters", "10", "--out", str(out)] + common) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and ("0.735 +- 0.03" if gen_weight == "0" else "0.92 +- 0.035") in printed
    for name in ("metrics.csv", "checkpoint.pt", "curves.png", "samples.png", "eval.json"):
        assert (out / name).stat().st_size > 0, name
    header = _rows(out / "metrics.csv")[0].keys()
    assert ("nelbo" in header and "kl_y" in header) == (gen_weight == "1") and "ce" in header
    res = json.loads((out / "eval.json").read_text())
    assert res["n_images"] == 500 and 0.1 < res["accuracy"] <= 1 and len(res["accuracy_per_class"]) == 10
    assert gm.read_metrics(out / "eval.json")[0] == {f"ssvae_gw{gen_weight}_accuracy": res["accuracy"]}
    assert train.main(["ssvae", "--iters", "5", "--out", str(tmp_path / "r"), "--no-eval"] + common) == 0
    assert train.main(["ssvae", "--iters", "10", "--out", str(tmp_path / "r"), "--resume"] + common) == 0
    a = torch.load(out / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    other = "1" if gen_weight == "0" else "0"
    assert train.main(["ssvae", "--iters", "12", "--out", str(out), "--resume"] + common[:1] + [other] + common[2:]) == 2
    assert "was trained with --gen-weight" in capsys.readouterr().err
