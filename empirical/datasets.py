"""Image datasets from local files, class subsets and stratified S-shot sampling.

Nothing here downloads: every loader reads files that are already on disk and a missing dataset
raises :class:`DatasetNotFoundError` saying how to get it. Images are returned as uint8 arrays
(n, H, W) for grayscale or (n, H, W, 3) for colour, labels as int64 in 0..C-1 for the selected
classes (``class_ids`` keeps the original class numbers).

The ``gaussian`` dataset lives in feature space (draws from the theory's Gaussian model, the bridge
between theory and practice); it has no images, so it is reached through
:func:`gaussian_features` or ``get_features("gaussian", "identity", ...)``.
"""

from __future__ import annotations

import gzip
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("train", "test", "all")

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
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not on disk; the message says how to get them."""


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images with integer labels 0..C-1 over the selected classes.

    ``class_ids[k]`` is the original class number of label k and ``class_names[k]`` its name.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    class_ids: tuple[int, ...]
    split: str = "train"
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


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
    if env:
        roots.append(Path(env).expanduser())
    return roots


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    return None


def _load_fashion_mnist(data_dir, split: str, options: dict):
    _no_options("fashion-mnist", options)
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
    _no_options("digits", options)
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
    _no_options("cifar10", options)
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
    _no_options("cifar100", options)
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
    _no_options("imagefolder", options)
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


def _no_options(name: str, options: dict) -> None:
    if options:
        raise ValueError(f"dataset {name!r} takes no options {sorted(options)}")


_LOADERS = {
    "fashion-mnist": _load_fashion_mnist,
    "digits": _load_digits,
    "cifar10": _load_cifar10,
    "cifar100": _load_cifar100,
    "imagefolder": _load_imagefolder,
}

#: Every dataset name with a one-line description; "gaussian" lives in feature space.
DATASETS = {
    "fashion-mnist": "Fashion-MNIST 28x28 grayscale, 10 classes "
    "(apt-get install dataset-fashion-mnist)",
    "digits": "scikit-learn digits 8x8 grayscale, 10 classes, 1797 images",
    "cifar10": "CIFAR-10 32x32 colour, 10 classes (local python batches via --data-dir)",
    "cifar100": "CIFAR-100 32x32 colour, 100 classes (local python batches via --data-dir)",
    "imagefolder": "--data-dir DIR/<class>/*.png|jpg, one folder per class",
    "gaussian": "draws from the theory's Gaussian model in feature space (backbone 'identity')",
}


#: Datasets that live in feature space (no images, no backbone but "identity"): their features
#: are drawn, not extracted, and they are not standardised by default (their origin is part of
#: the model). Every other dataset is an image dataset.
FEATURE_SPACE = frozenset({"gaussian"})


def is_image_dataset(name: str) -> bool:
    """Whether ``name`` (a known dataset) has images (else it lives in feature space)."""
    return check_dataset_name(name) not in FEATURE_SPACE


def check_dataset_name(name) -> str:
    if not isinstance(name, str) or name.lower() not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    return name.lower()


def _select_classes(classes, names: Sequence[str], dataset: str) -> tuple[int, ...]:
    """Original class ids for ``classes``: None (all), an int C (the first C) or ids/names."""
    total = len(names)
    if classes is None:
        return tuple(range(total))
    if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
        if not 2 <= classes <= total:
            raise ValueError(f"{dataset} classes must be between 2 and {total}; got {classes}")
        return tuple(range(int(classes)))
    if isinstance(classes, (str, bool)) or not hasattr(classes, "__iter__"):
        raise ValueError(
            f"classes must be an int C or a sequence of class ids/names; got {classes!r}"
        )
    ids = []
    for c in classes:
        if isinstance(c, str):
            if c not in names:
                raise ValueError(f"unknown {dataset} class {c!r}; allowed: {', '.join(names)}")
            ids.append(names.index(c))
        elif isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < total:
            ids.append(int(c))
        else:
            raise ValueError(f"{dataset} class ids must be integers in [0, {total}); got {c!r}")
    if len(set(ids)) != len(ids) or len(ids) < 2:
        raise ValueError(f"classes must name at least 2 distinct classes; got {list(classes)!r}")
    return tuple(ids)


def load_dataset(
    name: str, *, data_dir=None, classes=None, split: str = "train", seed=None, **options
):
    """Load an image dataset from local files.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS` except "gaussian" (use :func:`gaussian_features`).
    data_dir : path, optional
        Where to look first; ``$MIALAW_DATA`` is searched next (and, for Fashion-MNIST, the Debian
        package's /usr/share/datasets/fashion-mnist when no ``data_dir`` is given).
    classes : None, int or sequence
        None for all classes, an int C for the first C classes (2 <= C <= all), or a sequence of
        class ids or names. Labels are renumbered 0..C-1 in the given order.
    split : {"train", "test", "all"}
    seed : ignored for image datasets (their content is fixed); accepted for a uniform API.
    **options : per-dataset options (cifar100: ``label_kind``; imagefolder: ``image_size``).
    """
    del seed  # image datasets are deterministic
    name = check_dataset_name(name)
    if not is_image_dataset(name):
        raise ValueError(
            "the 'gaussian' dataset lives in feature space and has no images: use "
            "get_features('gaussian', 'identity', dim=..., sigma=..., classes=..., "
            "n_per_class=..., seed=...) or gaussian_features(...)"
        )
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    images, labels, names, source = _LOADERS[name](data_dir, split, dict(options))
    ids = _select_classes(classes, names, name)
    if ids != tuple(range(len(names))):
        remap = np.full(len(names), -1, dtype=np.int64)
        remap[list(ids)] = np.arange(len(ids))
        keep = remap[labels] >= 0
        images, labels = images[keep], remap[labels[keep]]
    images = np.ascontiguousarray(images)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return ImageDataset(
        name=name,
        images=images,
        labels=labels,
        class_names=tuple(names[i] for i in ids),
        class_ids=ids,
        split=split,
        source=source,
    )


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int or a numpy Generator; got {seed!r}")
    return np.random.default_rng(int(seed))


def stratified_shots(
    labels,
    shots: int | None = None,
    *,
    classes=None,
    seed,
    n_per_class: int | None = None,
    exclude=None,
) -> np.ndarray:
    """Indices of a stratified sample: ``2 * shots`` (or ``n_per_class``) examples of each class.

    The pool of 2·S examples per class is what a balanced keep matrix needs: every example is IN
    for half of the models, so each model trains on about S examples per class.

    For each class (in the order given, default: sorted labels) the class's indices are permuted
    with the seeded generator and the first ``need`` are taken, so pools for growing S under one
    seed are nested. The result is grouped by class (class order as given) and sorted within each
    class. ``exclude`` (indices) removes examples from the candidates, e.g. a held-out population.
    Raises ValueError when a class has fewer than ``need`` examples (S too large for the class).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError("labels must be a one-dimensional integer array")
    if (shots is None) == (n_per_class is None):
        raise ValueError("give exactly one of shots (2*shots per class) or n_per_class")
    count = 2 * shots if shots is not None else n_per_class
    what = "shots" if shots is not None else "n_per_class"
    value = shots if shots is not None else n_per_class
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be an integer >= 1; got {value!r}")
    present = np.unique(labels)
    if classes is None:
        classes = present
    elif isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
        if not 1 <= classes <= present.size:
            raise ValueError(f"classes must be between 1 and {present.size}; got {classes}")
        classes = present[: int(classes)]
    classes = [int(c) for c in classes]
    if len(set(classes)) != len(classes) or not set(classes) <= set(present.tolist()):
        raise ValueError(f"classes must be distinct labels present in the data {present.tolist()}")
    rng = _rng(seed)
    allowed = np.ones(labels.shape[0], dtype=bool)
    if exclude is not None:
        allowed[np.asarray(exclude, dtype=np.int64)] = False
    chosen = []
    for c in classes:
        members = np.flatnonzero((labels == c) & allowed)
        if members.size < count:
            raise ValueError(
                f"S too large for class size: class {c} has {members.size} available examples, "
                f"{what}={value} needs {count}"
            )
        chosen.append(np.sort(members[rng.permutation(members.size)[:count]]))
    return np.concatenate(chosen).astype(np.int64)


def first_per_class(labels, max_per_class: int) -> np.ndarray:
    """Indices of the first ``max_per_class`` examples of every class, in dataset order.

    A deterministic pool (no seed): the datasets used here are stored in random order, so the
    first examples of a class are a uniform sample of it; classes with fewer keep all.
    """
    labels = np.asarray(labels)
    if isinstance(max_per_class, bool) or not isinstance(max_per_class, (int, np.integer)):
        raise ValueError(f"max_per_class must be an integer >= 1; got {max_per_class!r}")
    if max_per_class < 1:
        raise ValueError(f"max_per_class must be an integer >= 1; got {max_per_class!r}")
    # Rank of each example within its class, in dataset order.
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size) - starts
    return np.flatnonzero(rank < max_per_class).astype(np.int64)


# --------------------------------------------------------------------------------------------
# The theory's Gaussian model as a feature-space dataset
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GaussianSample:
    features: np.ndarray  # (n, dim) float32
    labels: np.ndarray  # (n,) int64, grouped by class
    model: object  # mialaw.theory.model.GaussianModel


def gaussian_features(
    *, dim: int, classes: int = 2, sigma: float = 1.0, n_per_class: int, seed, cov=None, means=None
):
    """Draw ``n_per_class`` examples of each class from x ~ N(m_c, Σ) (the theory's model).

    m_c = e_c (or the rows of ``means``) and Σ = σ²I unless ``cov`` is given (then x = m_c + L z
    with Σ = L Lᵀ). Draws are made in float64 and returned as float32, grouped by class; the same
    seed gives identical output.
    """
    from mialaw.theory.model import GaussianModel

    model = GaussianModel(dim=dim, classes=classes, sigma=sigma, cov=cov, means=means)
    if (
        isinstance(n_per_class, bool)
        or not isinstance(n_per_class, (int, np.integer))
        or n_per_class < 1
    ):
        raise ValueError(f"n_per_class must be an integer >= 1; got {n_per_class!r}")
    rng = _rng(seed)
    labels = np.repeat(np.arange(model.classes, dtype=np.int64), n_per_class)
    noise = rng.standard_normal((labels.size, model.dim))
    if model.isotropic:
        noise *= model.sigma
    else:
        noise = noise @ np.linalg.cholesky(model.covariance).T
    class_means = np.stack([model.mean(c) for c in range(model.classes)])
    features = (class_means[labels] + noise).astype(np.float32)
    return GaussianSample(features=features, labels=labels, model=model)
