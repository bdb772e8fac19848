"""MNIST from the standard IDX files, and the two binarizations the homework uses.

The four files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each raw or ``.gz``) are looked for, in order, in

1. ``data_dir`` (the ``--data-dir`` option) when one is given, and nowhere else;
2. otherwise ``$DGM_MNIST_DIR``, then ``<repo>/../shared/data/mnist``, then ``<repo>/data/mnist``.

Each directory may hold the files directly or in torchvision's layout (``DIR/MNIST/raw/`` or
``DIR/raw/``). When they are missing, :class:`MNISTNotFoundError` lists every place looked.

Binarization: :func:`binarize_dynamic` draws fresh Bernoulli pixels (probability intensity / 255)
each time it is called, as CS236 trains; :func:`binarize_static` draws them once from a fixed seed
(the evaluation set).
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
ENV_VAR = "DGM_MNIST_DIR"
DEFAULT_DIRS = (REPO.parent / "shared" / "data" / "mnist", REPO / "data" / "mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SIZES = {"train": 60000, "test": 10000}
_SUBDIRS = (".", "MNIST/raw", "raw")
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

__all__ = ["MNISTNotFoundError", "find_mnist", "load_mnist", "read_idx", "binarize_dynamic",
           "binarize_static", "ENV_VAR"]


class MNISTNotFoundError(FileNotFoundError):
    """The MNIST IDX files are not in any place looked; the message lists them all."""


def read_idx(path) -> np.ndarray:
    """The array stored in an IDX file (raw or gzip): magic 0x0000TTNN (TT the element type, NN the
    number of dimensions), NN big-endian uint32 sizes, then the data in row-major order."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path}: cannot be read as {'gzip' if path.suffix == '.gz' else 'a file'}: {exc}") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file ({len(raw)} bytes)")
    zero, type_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or type_code not in _DTYPES or ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: not an IDX file (magic {raw[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_DTYPES[type_code])
    body = len(raw) - 4 - 4 * ndim
    if body != int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(f"{path}: {body} bytes of data for shape {shape} of {dtype} (truncated or corrupt file)")
    return np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(shape)


def _candidates(data_dir):
    """[(directory, where it comes from)] in search order."""
    if data_dir is not None:
        return [(Path(data_dir).expanduser(), "--data-dir")]
    out = []
    env = os.environ.get(ENV_VAR)
    if env:
        out.append((Path(env).expanduser(), f"${ENV_VAR}"))
    out += [(d, "default") for d in DEFAULT_DIRS]
    return out


def _file_in(directory: Path, stem: str):
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def find_mnist(data_dir=None, splits=("train", "test")) -> Path:
    """The directory holding the IDX files of ``splits`` (raw or .gz), searched as the module says.

    Raises :class:`MNISTNotFoundError` naming every directory looked in and the files expected.
    """
    splits = (splits,) if isinstance(splits, str) else tuple(splits)
    for s in splits:
        if s not in FILES:
            raise ValueError(f"split must be 'train' or 'test', not {s!r}")
    stems = [stem for s in splits for stem in FILES[s]]
    looked = []
    for base, origin in _candidates(data_dir):
        for sub in _SUBDIRS:
            d = (base / sub) if sub != "." else base
            looked.append(f"  {d}  ({origin})")
            if all(_file_in(d, stem) for stem in stems):
                return d
    hint = (f"pass --data-dir DIR, or set {ENV_VAR}=DIR" if data_dir is None
            else "check the --data-dir path, or leave it out to search the default places")
    raise MNISTNotFoundError(
        "MNIST not found: no directory holds " + ", ".join(f"{s}[.gz]" for s in stems) + ".\nLooked in:\n"
        + "\n".join(looked)
        + f"\nDownload the IDX files (e.g. from https://ossci-datasets.s3.amazonaws.com/mnist/) and {hint}.")


def load_mnist(split: str, data_dir=None):
    """``(images, labels)`` of MNIST's ``split`` ('train': 60,000, 'test': 10,000 images).

    ``images`` is a uint8 tensor (N, 784), row-major 28 x 28 pixels, 0..255; ``labels`` an int64
    tensor (N,). A file that is not the expected IDX array raises ``ValueError`` saying why.
    """
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    d = find_mnist(data_dir, splits=(split,))
    img_path, lab_path = (_file_in(d, stem) for stem in FILES[split])
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(f"{img_path}: expected uint8 images of shape (N, 28, 28), found {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{lab_path}: expected {len(images)} labels for {img_path.name}, found shape {labels.shape}")
    return (torch.from_numpy(images.reshape(len(images), 784).copy()),
            torch.from_numpy(labels.astype(np.int64)))


def _intensity(images):
    x = torch.as_tensor(images)
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def binarize_dynamic(images, generator=None):
    """Fresh Bernoulli pixels with probability intensity (uint8 / 255, or floats in [0, 1]):
    call once per batch during training."""
    return torch.bernoulli(_intensity(images), generator=generator)


def binarize_static(images, seed=0):
    """The same Bernoulli draw every time for a given ``seed``: the fixed evaluation set."""
    return torch.bernoulli(_intensity(images), generator=torch.Generator().manual_seed(seed))
