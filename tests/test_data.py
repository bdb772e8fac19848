"""The MNIST loader (training/data.py): IDX parsing on tiny files the tests write (raw and .gz), the
search order and its error message, the binarizations; the real files when present."""
import gzip
import struct

import numpy as np
import pytest
import torch

from training import data


def write_idx(path, array, gz=None):
    """An IDX file of ``array`` (uint8 or int32), gzip when the name ends in .gz."""
    array = np.asarray(array)
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    raw = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    gz = str(path).endswith(".gz") if gz is None else gz
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(raw)
    return path


def tiny_mnist(folder, split="test", n=3, gz=True, seed=0):
    """``n`` random 28 x 28 images and labels in ``folder`` under the split's standard names."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    img, lab = data.FILES[split]
    ext = ".gz" if gz else ""
    write_idx(folder / (img + ext), images)
    write_idx(folder / (lab + ext), labels)
    return images, labels


@pytest.fixture
def no_defaults(monkeypatch, tmp_path):
    """No environment variable, and default places that do not exist."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "DEFAULT_DIRS", (tmp_path / "nowhere-a", tmp_path / "nowhere-b"))


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_load_tiny_idx(tmp_path, gz, no_defaults):
    images, labels = tiny_mnist(tmp_path / "mnist", n=3, gz=gz)
    x, y = data.load_mnist("test", tmp_path / "mnist")
    assert x.dtype == torch.uint8 and x.shape == (3, 784)
    assert y.dtype == torch.int64 and y.tolist() == labels.tolist()
    assert np.array_equal(x.numpy(), images.reshape(3, 784))  # row-major pixels


def test_torchvision_layout_and_env_var(tmp_path, monkeypatch, no_defaults):
    tiny_mnist(tmp_path / "root" / "MNIST" / "raw", split="train", n=2)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "root"))
    assert data.find_mnist(splits="train") == tmp_path / "root" / "MNIST" / "raw"
    x, _ = data.load_mnist("train")
    assert x.shape == (2, 784)
    with pytest.raises(data.MNISTNotFoundError):  # the test split is not there
        data.load_mnist("test")


def test_default_places_searched_in_order(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    tiny_mnist(b, n=2)
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "DEFAULT_DIRS", (a, b))
    assert data.find_mnist(splits="test") == b
    tiny_mnist(a, n=1)
    assert data.find_mnist(splits="test") == a


def test_missing_data_lists_every_place(tmp_path, monkeypatch, no_defaults):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "from-env"))
    with pytest.raises(data.MNISTNotFoundError) as err:
        data.load_mnist("test")
    msg = str(err.value)
    for place in (tmp_path / "from-env", tmp_path / "from-env" / "MNIST" / "raw", *data.DEFAULT_DIRS):
        assert str(place) in msg
    assert "t10k-images-idx3-ubyte" in msg and data.ENV_VAR in msg and "--data-dir" in msg
    with pytest.raises(data.MNISTNotFoundError) as err:  # an explicit folder: only it is searched
        data.find_mnist(tmp_path / "given")
    assert str(tmp_path / "given") in str(err.value) and str(tmp_path / "from-env") not in str(err.value)


def test_default_search_includes_shared_data():
    assert data.REPO.parent / "shared" / "data" / "mnist" in data.DEFAULT_DIRS


@pytest.mark.parametrize("content, match", [
    (b"\x01\x02\x03\x04", "not an IDX file"),
    (b"\x00\x00", "not an IDX file"),
    (struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">3I", 2, 28, 28) + b"\x00" * 100, "truncated or corrupt"),
])
def test_bad_idx_files(tmp_path, content, match):
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(content)
    with pytest.raises(ValueError, match=match):
        data.read_idx(bad)
    not_gzip = tmp_path / "plain.gz"
    not_gzip.write_bytes(b"hello")
    with pytest.raises(ValueError, match="gzip"):
        data.read_idx(not_gzip)


def test_read_idx_big_endian_int32(tmp_path):
    a = np.array([[1, -2, 70000], [3, 4, 5]], dtype=">i4")
    assert data.read_idx(write_idx(tmp_path / "a.idx", a)).tolist() == a.tolist()


def test_mismatched_labels_and_shapes(tmp_path, no_defaults):
    d = tmp_path / "m"
    tiny_mnist(d, n=3)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.zeros(2, dtype=np.uint8))
    with pytest.raises(ValueError, match="expected 3 labels"):
        data.load_mnist("test", d)
    write_idx(d / "t10k-images-idx3-ubyte.gz", np.zeros((2, 27, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"shape \(N, 28, 28\)"):
        data.load_mnist("test", d)
    with pytest.raises(ValueError, match="split"):
        data.load_mnist("validation", d)


def test_binarizations():
    x = torch.tensor([[0, 255, 128, 64]], dtype=torch.uint8).repeat(4000, 1)
    s1, s2, s3 = data.binarize_static(x, 0), data.binarize_static(x, 0), data.binarize_static(x, 1)
    assert torch.equal(s1, s2) and not torch.equal(s1, s3)
    assert set(s1.unique().tolist()) <= {0.0, 1.0} and s1.dtype == torch.float32
    assert s1[:, 0].sum() == 0 and s1[:, 1].sum() == 4000  # intensities 0 and 1 are deterministic
    assert abs(s1[:, 2].mean() - 128 / 255) < 0.03 and abs(s1[:, 3].mean() - 64 / 255) < 0.03
    g = torch.Generator().manual_seed(5)
    d1, d2 = data.binarize_dynamic(x, g), data.binarize_dynamic(x, g)
    assert not torch.equal(d1, d2)  # a fresh draw per call
    assert torch.equal(d1, data.binarize_dynamic(x, torch.Generator().manual_seed(5)))
    assert torch.equal(data.binarize_static(x.float() / 255, 0), s1)  # floats in [0, 1] alike


real = pytest.mark.skipif(not any((d / "t10k-images-idx3-ubyte.gz").exists() or (d / "t10k-images-idx3-ubyte").exists()
                                  for d in data.DEFAULT_DIRS), reason="MNIST not in the default places")


@real
def test_real_mnist():
    x, y = data.load_mnist("test")
    assert x.shape == (10000, 784) and x.dtype == torch.uint8 and int(x.max()) == 255
    assert torch.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    x, y = data.load_mnist("train")
    assert x.shape == (60000, 784) and y[:5].tolist() == [5, 0, 4, 1, 9]
