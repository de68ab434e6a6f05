"""Image datasets from local files: the registry of dataset names, class subsets and loading.

Nothing here downloads: every loader (``mialaw.empirical.image_loaders``) reads files that are
already on disk and a missing dataset raises :class:`DatasetNotFoundError` saying how to get it.
Images are returned as uint8 arrays (n, H, W) for grayscale or (n, H, W, 3) for colour, labels as
int64 in 0..C-1 for the selected classes (``class_ids`` keeps the original class numbers).

Every dataset is one registered name (:data:`DATASETS`); the sweeps, the feature cache and the
command line treat them alike. Fashion-MNIST's class groups (``fashion-mnist-tops``, ``-shoes``,
``-other``; the rule is in ``image_loaders``) are separate transfer tasks, and ``digits`` runs
through any backbone (its 8×8 images are resized like Fashion-MNIST's 28×28 ones).

The ``gaussian`` dataset lives in feature space (draws from the theory's Gaussian model, the bridge
between theory and practice); it has no images, so it is reached through
:func:`gaussian_features` or ``get_features("gaussian", "identity", ...)``. Sampling (stratified
S-shot samples, per-class pools) lives in ``dataset_sampling``; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .dataset_sampling import (
    GaussianSample,
    as_generator,
    first_per_class,
    gaussian_features,
    stratified_shots,
)
from .image_loaders import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_GROUPS,
    FASHION_MNIST_SYSTEM_DIR,
    IMAGE_SUFFIXES,
    LOADERS,
    DatasetNotFoundError,
    parse_idx,
    read_idx,
)

__all__ = [
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_GROUPS",
    "FASHION_MNIST_SYSTEM_DIR",
    "FEATURE_SPACE",
    "IMAGE_SUFFIXES",
    "SPLITS",
    "DatasetNotFoundError",
    "GaussianSample",
    "ImageDataset",
    "as_generator",
    "check_dataset_name",
    "first_per_class",
    "gaussian_features",
    "is_image_dataset",
    "load_dataset",
    "parse_idx",
    "read_idx",
    "stratified_shots",
]

SPLITS = ("train", "test", "all")


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images with integer labels 0..C-1 over the selected classes.

    ``class_ids[k]`` is the original class number of label k (for a Fashion-MNIST group: its
    number within the group) and ``class_names[k]`` its name.
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


#: Every dataset name with a one-line description; "gaussian" lives in feature space.
DATASETS = {
    "fashion-mnist": "Fashion-MNIST 28x28 grayscale, 10 classes "
    "(apt-get install dataset-fashion-mnist)",
    "digits": "scikit-learn digits 8x8 grayscale, 10 classes, 1797 images",
    "cifar10": "CIFAR-10 32x32 colour, 10 classes (local python batches via --data-dir)",
    "cifar100": "CIFAR-100 32x32 colour, 100 classes (local python batches via --data-dir)",
    "imagefolder": "--data-dir DIR/<class>/*.png|jpg, one folder per class",
    "fashion-mnist-tops": "Fashion-MNIST's upper-body garments: T-shirt/top, Pullover, Coat, "
    "Shirt (4 classes)",
    "fashion-mnist-shoes": "Fashion-MNIST's footwear: Sandal, Sneaker, Ankle boot (3 classes)",
    "fashion-mnist-other": "Fashion-MNIST's other items: Trouser, Dress, Bag (3 classes)",
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
    """The dataset's registered (lower-case) name; ValueError naming the allowed ones."""
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
    images, labels, names, source = LOADERS[name](data_dir, split, dict(options))
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
