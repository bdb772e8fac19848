"""A tiny reader for MNIST's IDX files (gzip or plain), until impls/data.py provides the loader."""
import gzip
import struct
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO.parent / "shared" / "data" / "mnist"
TEST_IMAGES = MNIST_DIR / "t10k-images-idx3-ubyte.gz"

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """The array stored in an IDX file: magic 0x0000TTNN (TT the element type, NN the number of
    dimensions), NN big-endian uint32 sizes, then the data in row-major order."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, type_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or type_code not in _DTYPES:
        raise ValueError(f"{path}: not an IDX file (magic {raw[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=_DTYPES[type_code], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {data.size} values for shape {shape}")
    return data.reshape(shape)
