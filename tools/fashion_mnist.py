"""The Fashion-MNIST IDX files, as the scripts in tools/ and bench/ read them.

The files come from Debian's `dataset-fashion-mnist` package (/usr/share/datasets/fashion-mnist,
gzipped; override with FASHION_MNIST_DIR) and are read with gzip + numpy only, never with the
code under test. Import it from a sibling script (`import fashion_mnist`); from bench/, put
tools/ on sys.path first.
"""
import gzip
import os

import numpy as np

DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    """An unsigned-byte IDX file (gzipped if its name ends in .gz) as a read-only uint8 array."""
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    assert data[:3] == b"\x00\x00\x08", f"{path}: not an unsigned-byte IDX file"
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _path(name):
    path = os.path.join(DIR, name + ".gz")
    return path if os.path.exists(path) or not os.path.exists(path[:-3]) else path[:-3]


def load(split, limit=None):
    """(images uint8 [N, 28, 28], labels uint8 [N]) of split "train" (60000) or "test" (10000)."""
    prefix = {"train": "train", "test": "t10k"}[split]
    images = read_idx(_path(f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_path(f"{prefix}-labels-idx1-ubyte"))
    return (images, labels) if limit is None else (images[:limit], labels[:limit])


def tensors(split, limit=None, mean=0.5, std=0.5):
    """x float32 [N, 1, 28, 28] as ToTensor() + Normalize((mean,), (std,)); y int64 [N]."""
    import torch

    images, labels = load(split, limit)
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    x = (x - mean) / std
    return x, torch.from_numpy(labels.astype(np.int64))
