"""Loaders of the image datasets: each reads files already on disk (nothing is downloaded).

A loader takes (data_dir, split, options) and returns (images, labels, class names, source):
uint8 images (n, H, W) or (n, H, W, 3), int64 labels 0..K-1 over all of the dataset's classes.
:func:`mialaw.empirical.datasets.load_dataset` selects classes and wraps the result. A missing
dataset raises :class:`DatasetNotFoundError` saying how to get it.

Fashion-MNIST's class groups are datasets of their own (transfer tasks of different difficulty,
issue 21). The grouping rule was fixed before any of their results were seen: the ten classes are
split by what the item is, (1) upper-body garments ("tops": T-shirt/top, Pullover, Coat, Shirt),
(2) footwear ("shoes": Sandal, Sneaker, Ankle boot) and (3) the rest ("other": Trouser, Dress,
Bag); within a group the classes keep Fashion-MNIST's order, so C = k takes the group's first k.
"""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: Fashion-MNIST's class groups (see the module docstring for the rule), each a dataset
#: ``fashion-mnist-<group>``.
FASHION_MNIST_GROUPS = {
    "tops": ("T-shirt/top", "Pullover", "Coat", "Shirt"),
    "shoes": ("Sandal", "Sneaker", "Ankle boot"),
    "other": ("Trouser", "Dress", "Bag"),
}
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not on disk; the message says how to get them."""


# --------------------------------------------------------------------------------------------
# IDX files (MNIST / Fashion-MNIST format)
# --------------------------------------------------------------------------------------------

# IDX type byte -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes) -> np.ndarray:
    """Decode the bytes of an IDX file: 0, 0, type byte, ndim, ndim big-endian uint32 dims, data."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError("not an IDX file: the magic number must start with two zero bytes")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"unknown IDX data type 0x{type_code:02x}; allowed: 0x08-0x0e")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError("truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"IDX payload has {len(data) - header} bytes, shape {shape} needs {expected} "
            "(truncated or corrupt file)"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path) -> np.ndarray:
    """Read an IDX file, gzip-compressed (``.gz``) or not."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return parse_idx(f.read())


# --------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------


def _data_roots(data_dir) -> list[Path]:
    """Directories to search, in order: ``data_dir``, then ``$MIALAW_DATA``."""
    roots = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    env = os.environ.get("MIALAW_DATA")
    if env and Path(env).expanduser() not in roots:  # the same folder is searched (and named) once
        roots.append(Path(env).expanduser())
    return roots


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    return None


def _load_fashion_mnist(data_dir, split: str, options: dict):
    no_options("fashion-mnist", options)
    candidates = []
    for root in _data_roots(data_dir):
        candidates += [root, root / "fashion-mnist", root / "fashion_mnist", root / "FashionMNIST"]
        candidates += [root / "FashionMNIST" / "raw"]
    if data_dir is None and not os.environ.get("MIALAW_DATA"):
        # A folder the user names (even an empty one) replaces the system copy.
        candidates.append(FASHION_MNIST_SYSTEM_DIR)
    parts = ("train", "t10k") if split == "all" else ("train" if split == "train" else "t10k",)
    for directory in candidates:
        files = [
            (
                _find_idx(directory, f"{p}-images-idx3-ubyte"),
                _find_idx(directory, f"{p}-labels-idx1-ubyte"),
            )
            for p in parts
        ]
        if all(img is not None and lab is not None for img, lab in files):
            images = np.concatenate([read_idx(img) for img, _ in files])
            labels = np.concatenate([read_idx(lab) for _, lab in files]).astype(np.int64)
            if images.ndim != 3 or images.shape[0] != labels.shape[0]:
                raise ValueError(f"Fashion-MNIST files in {directory} have inconsistent shapes")
            return images.astype(np.uint8), labels, FASHION_MNIST_CLASSES, str(directory)
    searched = ", ".join(str(c) for c in candidates) or "(nowhere)"
    raise DatasetNotFoundError(
        "Fashion-MNIST IDX files (train-images-idx3-ubyte.gz, ...) not found; searched "
        f"{searched}. Install them with `apt-get install dataset-fashion-mnist` "
        "(files in /usr/share/datasets/fashion-mnist) or pass --data-dir / set MIALAW_DATA "
        "to a directory holding them."
    )


def _load_digits(data_dir, split: str, options: dict):
    no_options("digits", options)
    if split == "test":
        raise ValueError("digits has a single split; use split='train' or 'all' (both: all 1797)")
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - scikit-learn is an empirical dependency
        raise DatasetNotFoundError(
            "digits needs scikit-learn: `pip install scikit-learn` "
            "(or `pip install mialaw[empirical]`)"
        ) from exc
    bunch = load_digits()
    # Pixel values are integers 0..16; scale to the 0..255 range every backbone expects.
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    names = tuple(str(n) for n in bunch.target_names)
    return images, bunch.target.astype(np.int64), names, "sklearn.datasets.load_digits"


def _unpickle(path: Path) -> dict:
    # The CIFAR archives are Python pickles; only load files the user placed locally.
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _cifar_dir(data_dir, folder: str, name: str, url: str) -> Path:
    candidates = []
    for root in _data_roots(data_dir):
        candidates += [root / folder, root, root / name / folder]
    for directory in candidates:
        if (directory / ("batches.meta" if name == "cifar10" else "meta")).is_file():
            return directory
    searched = ", ".join(str(c) for c in candidates) or "(no --data-dir or MIALAW_DATA given)"
    raise DatasetNotFoundError(
        f"{name} python batches ({folder}/) not found; searched {searched}. Download and unpack "
        f"{url} on a machine with internet and pass its directory with --data-dir "
        "(or set MIALAW_DATA); mialaw never downloads."
    )


def _cifar_images(raw) -> np.ndarray:
    return np.asarray(raw, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()


def _load_cifar10(data_dir, split: str, options: dict):
    no_options("cifar10", options)
    directory = _cifar_dir(
        data_dir,
        "cifar-10-batches-py",
        "cifar10",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    )
    files = []
    if split in ("train", "all"):
        files += [directory / f"data_batch_{i}" for i in range(1, 6)]
    if split in ("test", "all"):
        files.append(directory / "test_batch")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DatasetNotFoundError(f"cifar10 batch files missing: {', '.join(missing)}")
    batches = [_unpickle(f) for f in files]
    images = np.concatenate([_cifar_images(b[b"data"]) for b in batches])
    labels = np.concatenate([np.asarray(b[b"labels"], dtype=np.int64) for b in batches])
    meta = _unpickle(directory / "batches.meta")
    names = tuple(n.decode() for n in meta[b"label_names"])
    return images, labels, names, str(directory)


def _load_cifar100(data_dir, split: str, options: dict):
    label_kind = options.pop("label_kind", "fine")
    no_options("cifar100", options)
    if label_kind not in ("fine", "coarse"):
        raise ValueError(f"cifar100 label_kind must be 'fine' or 'coarse'; got {label_kind!r}")
    directory = _cifar_dir(
        data_dir,
        "cifar-100-python",
        "cifar100",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    )
    parts = ["train", "test"] if split == "all" else [split]
    missing = [str(directory / p) for p in parts if not (directory / p).is_file()]
    if missing:
        raise DatasetNotFoundError(f"cifar100 files missing: {', '.join(missing)}")
    batches = [_unpickle(directory / p) for p in parts]
    key = b"fine_labels" if label_kind == "fine" else b"coarse_labels"
    images = np.concatenate([_cifar_images(b[b"data"]) for b in batches])
    labels = np.concatenate([np.asarray(b[key], dtype=np.int64) for b in batches])
    meta = _unpickle(directory / "meta")
    names = tuple(
        n.decode()
        for n in meta[b"fine_label_names" if label_kind == "fine" else b"coarse_label_names"]
    )
    return images, labels, names, str(directory)


def _load_imagefolder(data_dir, split: str, options: dict):
    image_size = options.pop("image_size", None)
    no_options("imagefolder", options)
    if data_dir is None:
        raise DatasetNotFoundError(
            "imagefolder needs --data-dir DIR laid out as DIR/<class name>/*.png|jpg "
            "(optionally DIR/train/<class>/ and DIR/test/<class>/)"
        )
    root = Path(data_dir).expanduser()
    if split != "all" and (root / split).is_dir():
        root = root / split
    elif split == "test":
        raise DatasetNotFoundError(f"imagefolder split 'test' needs the directory {root / 'test'}")
    if not root.is_dir():
        raise DatasetNotFoundError(f"imagefolder directory {root} does not exist")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if split == "all" and set(classes) >= {"train", "test"}:
        raise ValueError("imagefolder split 'all' is ambiguous with train/ and test/ subfolders")
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("imagefolder needs Pillow: `pip install pillow`") from exc
    images, labels = [], []
    for label, cls in enumerate(classes):
        for path in sorted((root / cls).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            with Image.open(path) as im:
                im = im.convert("RGB")
                if image_size is not None:
                    size = (int(image_size), int(image_size))
                    im = im.resize(size, Image.Resampling.BILINEAR)
                images.append(np.asarray(im, dtype=np.uint8))
            labels.append(label)
    if len(classes) < 2 or not images:
        raise DatasetNotFoundError(
            f"imagefolder {root} needs at least two class folders with images"
        )
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(
            f"imagefolder images have different sizes {sorted(shapes)[:3]}...; "
            "pass image_size=N to resize them to N x N"
        )
    return np.stack(images), np.asarray(labels, dtype=np.int64), tuple(classes), str(root)


def no_options(name: str, options: dict) -> None:
    """Refuse options a dataset does not take."""
    if options:
        raise ValueError(f"dataset {name!r} takes no options {sorted(options)}")


def fashion_mnist_group(group: str):
    """The loader of the Fashion-MNIST class group ``group`` (labels 0..k-1 in the group's
    order; the images keep Fashion-MNIST's order)."""
    names = FASHION_MNIST_GROUPS[group]
    ids = np.array([FASHION_MNIST_CLASSES.index(n) for n in names], dtype=np.int64)

    def load(data_dir, split: str, options: dict):
        no_options(f"fashion-mnist-{group}", options)
        images, labels, _, source = _load_fashion_mnist(data_dir, split, {})
        remap = np.full(len(FASHION_MNIST_CLASSES), -1, dtype=np.int64)
        remap[ids] = np.arange(ids.size)
        keep = remap[labels] >= 0
        return images[keep], remap[labels[keep]], names, source

    return load


LOADERS = {
    "fashion-mnist": _load_fashion_mnist,
    "digits": _load_digits,
    "cifar10": _load_cifar10,
    "cifar100": _load_cifar100,
    "imagefolder": _load_imagefolder,
} | {f"fashion-mnist-{group}": fashion_mnist_group(group) for group in FASHION_MNIST_GROUPS}
