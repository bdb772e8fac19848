"""The course's metric files (XCS236 PS2 ``submission/*.pkl``) read without unpickling them
(grader/safe_pickle.py, grader/metrics.py): the official names and formats in every pickle
protocol, and refusals, with a message and without running anything, of pickles that would
import or call something, or that are malformed, truncated or too large."""
import io
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from grader import metrics as gm
from grader import safe_pickle as sp
from verify.__main__ import main as verify_main

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)
# (file, what submission/utils.write_to_file dumps, the canonical names and values it stands for)
COURSE_FILES = {
    "VAE.pkl": ({"NELBO": 100.5, "KL": 19.25, "Rec": 81.25}, {"nelbo": 100.5, "kl": 19.25, "rec": 81.25}),
    "GMVAE.pkl": ({"NELBO": 97.5, "KL": 17.75, "Rec": 79.75},
                  {"gmvae_nelbo": 97.5, "gmvae_kl": 17.75, "gmvae_rec": 79.75}),
    **{f"VAE_iwae_{iw}.pkl": ({"NIWAE": v}, {f"iwae_{iw}": v})
       for iw, v in [(1, 99.25), (10, 97.5), (100, 96.25), (1000, 95.5)]},
    **{f"GMVAE_iwae_{iw}.pkl": ({"NIWAE": v}, {f"gmvae_iwae_{iw}": v})
       for iw, v in [(1, 97.25), (10, 95.25), (100, 94.5), (1000, 93.75)]},
    "SSVAE_0.pkl": ({"accuracy": 0.75}, {"ssvae_gw0_accuracy": 0.75}),
    "SSVAE_1.pkl": ({"accuracy": 0.9375}, {"ssvae_gw1_accuracy": 0.9375}),
}


def _write(path, obj, protocol=pickle.DEFAULT_PROTOCOL):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def _as_tensors(d):
    """As the course writes them: 0-d float32 tensors (the values above are exact in float32)."""
    return {k: torch.tensor(v) for k, v in d.items()}


class RunsCode:
    """A pickle that would run ``os.system`` when unpickled: it would create ``self.path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class Plain:
    def __init__(self):
        self.nelbo = 97.0


# ----------------------------------------------------------------------------- accepted
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_course_files_in_every_protocol(tmp_path, protocol):
    for name, (content, expected) in COURSE_FILES.items():
        values, notes = gm.read_metrics(_write(tmp_path / name, _as_tensors(content), protocol))
        assert values == expected and notes == [], name


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tensors_of_other_dtypes_shapes_and_views(protocol):
    base = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    obj = {"view": base[:, 1], "half": torch.tensor(1.5).half(), "bf16": torch.tensor(-2.5).bfloat16(),
           "long": torch.tensor(7), "bool": torch.tensor(True), "matrix": base.t().contiguous(),
           "one": torch.tensor([3.25]), "grad": torch.tensor(2.0, requires_grad=True)}
    got = sp.loads(pickle.dumps(obj, protocol=protocol))
    assert got == {"view": [1.0, 4.0], "half": 1.5, "bf16": -2.5, "long": 7, "bool": True,
                   "matrix": [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]], "one": 3.25, "grad": 2.0}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_plain_values_and_numpy_scalars(protocol):
    obj = {"a": np.float32(0.5), "b": np.float64(-1.25), "c": np.int64(3), "d": [1, 2.5, None, True, "x", b"y"],
           "e": (1, (2, {"f": 3})), "g": {1, 2}, "h": frozenset({4}), "i": bytearray(b"z"), "j": 10**30}
    got = sp.loads(pickle.dumps(obj, protocol=protocol))
    assert got == {**obj, "a": 0.5, "b": -1.25, "c": 3, "i": b"z"}
    assert isinstance(got["a"], float) and isinstance(got["c"], int)


def test_shared_references_are_plain_data():
    x = [1.5]
    assert sp.loads(pickle.dumps({"a": x, "b": x})) == {"a": [1.5], "b": [1.5]}


def test_a_submission_folder_is_graded_by_the_course_rubric(tmp_path, capsys):
    sub = tmp_path / "submission"
    sub.mkdir()
    for name, (content, _) in COURSE_FILES.items():
        _write(sub / name, _as_tensors(content))
    (sub / "notes.txt").write_text("not a metric file")  # ignored: not one of the course's names
    out = tmp_path / "report.json"
    assert verify_main(["grade-metrics", str(sub), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "score: 16 / 16" in text and "GMVAE NIWAE-1000 (3d-3)" in text
    # one number off by more than the course's tolerance (NIWAE-1000: 93 +- 2.7) costs its point
    _write(sub / "GMVAE_iwae_1000.pkl", {"NIWAE": torch.tensor(95.75)})
    (sub / "SSVAE_1.pkl").unlink()
    assert verify_main(["grade-metrics", str(sub)]) == 0
    text = capsys.readouterr().out
    assert "score: 14 / 16" in text and "out of range" in text and "missing" in text


def test_single_files_grade_their_own_model(tmp_path, capsys):
    f = _write(tmp_path / "GMVAE.pkl", _as_tensors(COURSE_FILES["GMVAE.pkl"][0]))
    values, _ = gm.read_metrics(f)
    report = gm.grade_metrics(values, gm.load_rubric())  # the default rubric: the GMVAE lines only
    assert {line["name"] for line in report["lines"]} >= {"gmvae_nelbo", "gmvae_kl", "gmvae_rec"}
    assert all(gm.model_of(line["name"]) == "gmvae" or line["name"] in ("sum", "non_increasing")
               for line in report["lines"])
    assert any("not graded" in n and "vae" in n for n in report["notes"])
    forced = gm.grade_metrics(values, gm.load_rubric(), models={"gmvae", "ssvae"})
    assert {line["verdict"] for line in forced["lines"] if line["name"].startswith("ssvae")} == {"missing"}
    assert verify_main(["grade-metrics", str(f), "--models", "gmvae,flows"]) == 2
    assert "--models: expected some of" in capsys.readouterr().err


def test_eval_json_of_the_training_commands_names_its_model(tmp_path):
    f = tmp_path / "eval.json"
    f.write_text('{"model": "ssvae", "gen_weight": 1.0, "accuracy": 0.93, "accuracy_binarized": 0.9}')
    assert gm.read_metrics(f)[0] == {"ssvae_gw1_accuracy": 0.93}
    f.write_text('{"model": "gmvae", "nelbo": 97.1, "iwae_1000": 93.2, "course_subset": {"nelbo": 96.0}}')
    assert gm.read_metrics(f)[0] == {"gmvae_nelbo": 97.1, "gmvae_iwae_1000": 93.2}


@pytest.mark.parametrize("key, name", [
    ("gmvae_nelbo", "gmvae_nelbo"), ("GMVAE NIWAE-1000", "gmvae_iwae_1000"), ("GMVAE_KL", "gmvae_kl"),
    ("ssvae_gw0_accuracy", "ssvae_gw0_accuracy"), ("SSVAE_1 test accuracy", "ssvae_gw1_accuracy"),
    ("gmvae_accuracy", None), ("ssvae_gw1_nelbo", None), ("accuracy", None),
])
def test_model_names(key, name):
    assert gm.canonical(key) == name


# ------------------------------------------------------------------------------ refused
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_pickle_that_would_run_code_is_refused_and_not_run(tmp_path, protocol, capsys):
    sentinel = tmp_path / "ran"
    f = _write(tmp_path / "GMVAE.pkl", {"NELBO": RunsCode(sentinel), "KL": 1.0, "Rec": 2.0}, protocol)
    assert pickle.loads(pickle.dumps(0)) == 0  # (pickle itself works here: the refusal is ours)
    with pytest.raises(gm.MetricsError, match=r"refused: the pickle references (posix|nt)\.system"):
        gm.read_metrics(f)
    assert verify_main(["grade-metrics", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "refused" in err and "Traceback" not in err
    assert not sentinel.exists()
    # the same file, unpickled, would have run the command: the test's file is a real attack
    pickle.loads(f.read_bytes())
    assert sentinel.exists()


@pytest.mark.parametrize("obj, match", [
    ({"x": Plain()}, r"references (tests\.)?test_metric_files\.Plain|__main__\.Plain"),
    ({"x": eval}, r"references builtins\.eval"),
    ({"x": np.array([1.0, 2.0])}, r"references numpy\.(_core|core)\.multiarray\._reconstruct"),
    ({"x": torch.nn.Linear(1, 1)}, r"references torch\.nn"),
])
def test_objects_other_than_plain_data_are_refused(tmp_path, obj, match):
    with pytest.raises(gm.MetricsError, match=match):
        gm.read_metrics(_write(tmp_path / "m.pkl", obj))


@pytest.mark.parametrize("raw, match", [
    (b"\x80\x02\x82\x01.", "extension-registry object \\(EXT1\\)"),
    (b"\x80\x02X\x01\x00\x00\x00aQ.", "persistent id \\(BINPERSID\\)"),
    (b"Pabc\n.", "persistent id \\(PERSID\\)"),
    (b"(i__main__\nThing\n.", "INST"),
    (b"\x80\x02}q\x00}q\x01b.", "BUILD"),
    (b"\x80\x02ccollections\nOrderedDict\nq\x00X\x01\x00\x00\x00a\x85R.", "collections.OrderedDict with arguments"),
    (b"\x80\x05\x97.", "out-of-band buffer"),
    (b"\x80\x02ctorch\nFloatStorage\n.", "a bare torch.FloatStorage"),
])
def test_refused_opcodes(tmp_path, raw, match):
    (tmp_path / "m.pkl").write_bytes(raw)
    with pytest.raises(gm.MetricsError, match=match):
        gm.read_metrics(tmp_path / "m.pkl")


def _legacy_blob(inner_object_pickle):
    """torch's legacy storage bytes around an arbitrary pickle in the storage's place."""
    head = b"".join(pickle.dumps(x, protocol=2) for x in (sp.LEGACY_MAGIC, sp.LEGACY_PROTOCOL,
                                                          {"little_endian": True}))
    return head + inner_object_pickle + pickle.dumps(["0"], protocol=2) + struct.pack("<q", 1) + b"\0" * 4


def test_code_hidden_in_a_tensors_storage_is_refused(tmp_path):
    sentinel = tmp_path / "ran"
    blob = _legacy_blob(pickle.dumps(RunsCode(sentinel), protocol=2))
    outer = io.BytesIO()
    pickle.Pickler(outer, protocol=2).dump(_FakeTensor(blob))
    (tmp_path / "VAE.pkl").write_bytes(outer.getvalue())
    with pytest.raises(gm.MetricsError, match=r"refused: the pickle references (posix|nt)\.system"):
        gm.read_metrics(tmp_path / "VAE.pkl")
    assert not sentinel.exists()


class _FakeTensor:
    """Pickles as torch._utils._rebuild_tensor_v2(torch.storage._load_from_bytes(blob), ...)."""

    def __init__(self, blob):
        self.blob = blob

    def __reduce__(self):
        from torch._utils import _rebuild_tensor_v2
        from torch.storage import _load_from_bytes

        return (_rebuild_tensor_v2, (_Call(_load_from_bytes, (self.blob,)), 0, (), (), False, {}))


class _Call:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def test_malformed_truncated_and_huge_files(tmp_path):
    good = pickle.dumps(_as_tensors({"NIWAE": 93.5}))
    f = tmp_path / "GMVAE_iwae_1000.pkl"
    for cut in (1, 2, 20, len(good) // 2, len(good) - 1):
        f.write_bytes(good[:cut])
        with pytest.raises(gm.MetricsError, match="not a readable pickle"):
            gm.read_metrics(f)
    for raw, match in [(b"", "empty file"), (b"NELBO 97\n", "not a readable pickle"),
                       (b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01K\x02.", "unbalanced stack"),
                       (pickle.dumps([1.0, 2.0]), "must hold a dict")]:
        f.write_bytes(raw)
        with pytest.raises(gm.MetricsError, match=match):
            gm.read_metrics(f)
    f.write_bytes(pickle.dumps({"NIWAE": "x" * (1 << 20)}))
    with pytest.raises(gm.MetricsError, match="larger than 1024 KiB"):
        gm.read_metrics(f)


def test_self_reference_and_deep_nesting_are_refused():
    loop = []
    loop.append(loop)
    with pytest.raises(sp.PickleError, match="nested more than"):
        sp.loads(pickle.dumps({"x": loop}))
    deep = 0.0
    for _ in range(100):
        deep = [deep]
    with pytest.raises(sp.PickleError, match="nested more than"):
        sp.loads(pickle.dumps({"x": deep}))


def test_a_storage_that_lies_about_its_size_is_refused():
    t = pickle.dumps({"NIWAE": torch.tensor(93.5)}, protocol=2)
    i = t.index(b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00")  # numel 1, then the 4 bytes of 93.5
    lying = t[:i] + b"\x09" + t[i + 1:]
    with pytest.raises(sp.PickleError, match="storage of 9 elements"):
        sp.loads(lying)


def test_a_tensor_of_absurd_size_is_refused_without_building_it():
    """size (10^9, 0) has no element but would be 10^9 empty lists."""
    t = pickle.dumps({"x": torch.zeros(3, 0)}, protocol=2)
    i = t.index(b"K\x03K\x00\x86")  # the size tuple (3, 0)
    absurd = t[:i] + b"J\x00\xca\x9a;K\x00\x86" + t[i + 5:]
    with pytest.raises(sp.PickleError, match="a tensor of size"):
        sp.loads(absurd)
