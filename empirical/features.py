"""Frozen-backbone features, extracted once in batches and cached on disk.

:func:`get_features` loads a dataset (or a subset of it), runs a backbone over it in batches under
``torch.inference_mode`` on cpu or cuda, and caches the result under a key of everything that
determines the features: dataset, split, classes, the exact images (a hash of their bytes), the
backbone and its weights, resolution and normalisation, flipping and the code version. A cache
entry whose key or checksum does not match is rebuilt with a
:class:`~mialaw.empirical.cache.CacheWarning`, never used.

The ``gaussian`` dataset (the theory's model in feature space) needs no backbone and no cache.

Cost on CPU (EfficientNet-Lite0 at 224 px): about 10 ms of CPU time per image on the onnxruntime
engine (the default when ``onnxruntime`` and ``onnx`` are installed; see
:mod:`~mialaw.empirical.backbones`), 25-50 ms on the torch path (BatchNorm folded, channels-last;
``engine="torch"``). ``python -m mialaw.empirical.bench features`` measures both side by side. A
sweep needs a pool, not the whole dataset: ``max_per_class=1024`` (10,240 Fashion-MNIST images)
covers S <= 256 with 512 examples per class left over as a held-out population. Both engines use
``torch.get_num_threads()`` cores; on a shared machine ``torch.set_num_threads(1)`` avoids
spinning OpenMP threads on the torch path (2 threads ran 1.5-3x slower than 1 under a load of 4
on 2 cores). The engine is not part of the cache key: both give the same features up to float
rounding (about 1e-6 relative), and either engine's features are bit-identical across runs.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .backbones import Backbone, get_backbone
from .cache import CacheError, CacheWarning, default_cache_dir, key_digest, load_arrays, save_arrays
from .datasets import (
    ImageDataset,
    first_per_class,
    gaussian_features,
    is_image_dataset,
    load_dataset,
)

#: Bump when a change in this code changes the features computed for the same inputs.
FEATURE_CODE_VERSION = 2


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Features of a dataset (subset) under one backbone.

    ``indices`` index the dataset split after class selection (the images the features come from);
    ``labels`` are 0..C-1 with ``class_ids``/``class_names`` giving the original classes.
    ``flipped`` holds the features of the horizontally flipped images when requested.
    """

    features: np.ndarray
    labels: np.ndarray
    flipped: np.ndarray | None
    dataset: str
    backbone: str
    key: str
    indices: np.ndarray
    class_names: tuple[str, ...]
    class_ids: tuple[int, ...]
    split: str = "train"
    resolution: int | None = None
    preprocess_key: str = ""
    cache_path: str | None = None
    model: object | None = None  # the GaussianModel behind a "gaussian" FeatureSet

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def subset(self, idx) -> FeatureSet:
        """The rows ``idx`` (integer indices or a boolean mask into this set)."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return replace(
            self,
            features=self.features[idx],
            labels=self.labels[idx],
            flipped=None if self.flipped is None else self.flipped[idx],
            indices=self.indices[idx],
        )

    def select_classes(self, classes) -> FeatureSet:
        """Keep the given labels (an int C: the first C), renumbered 0..C-1 in the given order."""
        if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
            if not 2 <= classes <= self.num_classes:
                raise ValueError(f"classes must be between 2 and {self.num_classes}; got {classes}")
            classes = range(int(classes))
        classes = [int(c) for c in classes]
        if len(set(classes)) != len(classes) or len(classes) < 2:
            raise ValueError(f"classes must be at least 2 distinct labels; got {classes}")
        if not all(0 <= c < self.num_classes for c in classes):
            raise ValueError(f"classes must be labels in [0, {self.num_classes}); got {classes}")
        remap = np.full(self.num_classes, -1, dtype=np.int64)
        remap[classes] = np.arange(len(classes))
        keep = np.flatnonzero(remap[self.labels] >= 0)
        sub = self.subset(keep)
        return replace(
            sub,
            labels=remap[sub.labels],
            class_names=tuple(self.class_names[c] for c in classes),
            class_ids=tuple(self.class_ids[c] for c in classes),
        )


def check_features(features, name: str = "features") -> np.ndarray:
    """A finite float32 (n, f) copy of ``features``; ValueError naming the bad rows otherwise."""
    a = np.asarray(features)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(
            f"{name} must be a non-empty 2-d array (examples x features); got {a.shape}"
        )
    a = a.astype(np.float32)
    bad = ~np.isfinite(a).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"{name} contain NaN or inf in {rows.size} of {a.shape[0]} rows "
            f"(first: {rows[:5].tolist()})"
        )
    return a


def _sha(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _check_indices(indices, n: int) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError("indices must be a non-empty one-dimensional integer array")
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"indices must lie in [0, {n}); got range [{idx.min()}, {idx.max()}]")
    if np.unique(idx).size != idx.size:
        raise ValueError("indices must not repeat")
    return idx.astype(np.int64)


def _check_batch_size(batch_size) -> int:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    return int(batch_size)


def extract_features(
    backbone,
    images,
    *,
    batch_size: int = 256,
    progress: bool = True,
    desc: str = "",
    fast: bool = True,
):
    """Run ``backbone`` over ``images`` in batches; float32 (n, f) numpy array, finite-checked.

    ``fast=False`` runs the backbone's reference path (``extract_reference``: plain torch) instead
    of its fastest engine; the benchmark and the tests compare the two.
    """

    batch_size = _check_batch_size(batch_size)
    if not isinstance(fast, bool):
        raise ValueError(f"fast must be True or False; got {fast!r}")
    extract = backbone.extract if fast else backbone.extract_reference
    n = images.shape[0]
    chunks = []
    # MIALAW_NO_PROGRESS=1 (set by the command line's --no-progress, inherited by its workers)
    progress = progress and os.environ.get("MIALAW_NO_PROGRESS") != "1"
    with tqdm(
        total=n, desc=desc or backbone.name, unit="img", file=sys.stderr, disable=not progress
    ) as bar:
        for start in range(0, n, batch_size):
            batch = np.ascontiguousarray(images[start : start + batch_size])
            chunks.append(extract(batch).detach().to("cpu").numpy().astype(np.float32))
            bar.update(batch.shape[0])
    return check_features(np.concatenate(chunks), name=f"{backbone.name} features")


def _gaussian(backbone, classes, flip, options) -> FeatureSet:
    if backbone not in (None, "identity"):
        raise ValueError(
            "the 'gaussian' dataset lives in feature space: use backbone 'identity', "
            f"not {backbone!r}"
        )
    if flip:
        raise ValueError("flip is meaningless for the 'gaussian' dataset (it has no images)")
    allowed = {"dim", "sigma", "n_per_class", "seed", "cov", "means"}
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"gaussian options are {sorted(allowed)}; got unknown {sorted(unknown)}")
    missing = {"dim", "n_per_class", "seed"} - set(options)
    if missing:
        raise ValueError(f"the 'gaussian' dataset needs {sorted(missing)} (dim, n_per_class, seed)")
    classes = 2 if classes is None else classes
    sample = gaussian_features(classes=classes, **options)
    model = sample.model
    key = {
        "version": FEATURE_CODE_VERSION,
        "dataset": "gaussian",
        "dim": model.dim,
        "classes": model.classes,
        "sigma": model.sigma,
        "n_per_class": int(options["n_per_class"]),
        "data_sha": _sha(sample.features),
    }
    return FeatureSet(
        features=sample.features,
        labels=sample.labels,
        flipped=None,
        dataset="gaussian",
        backbone="identity",
        key=key_digest(key),
        indices=np.arange(sample.labels.size, dtype=np.int64),
        class_names=tuple(f"class {c}" for c in range(model.classes)),
        class_ids=tuple(range(model.classes)),
        split="train",
        preprocess_key="identity",
        model=model,
    )


def get_features(
    dataset,
    backbone="pixels",
    *,
    classes=None,
    data_dir=None,
    cache_dir=None,
    device="auto",
    resolution=None,
    flip: bool = False,
    batch_size: int = 256,
    indices=None,
    max_per_class: int | None = None,
    split: str = "train",
    weights=None,
    engine: str = "auto",
    use_cache: bool = True,
    progress: bool = True,
    **dataset_options,
) -> FeatureSet:
    """Features of ``dataset`` under ``backbone``, from the disk cache or extracted once.

    Parameters
    ----------
    dataset : str or ImageDataset
        A name from :data:`~mialaw.empirical.datasets.DATASETS`, or a loaded dataset. For
        "gaussian", pass ``dim``, ``n_per_class``, ``seed`` (and ``sigma``, ``cov``, ``means``) as
        keyword options and backbone "identity": features are drawn from the theory's model.
    backbone : str or Backbone
        A name from :data:`~mialaw.empirical.backbones.BACKBONES` or a built backbone.
    classes : None, int C (the first C classes) or a sequence of class ids/names.
    indices : int array, optional
        Extract only these examples (indices into the split after class selection).
    max_per_class : int, optional
        Extract only the first ``max_per_class`` examples of each class (a deterministic pool; the
        sweeps draw their S-shot samples from it). Exclusive with ``indices``.
    flip : bool
        Also extract features of the horizontally flipped images (``FeatureSet.flipped``).
    device : "auto" (cuda if available), "cpu" or "cuda".
    engine : "auto", "torch" or "onnxruntime"
        How a torch backbone runs on CPU (see :func:`~mialaw.empirical.backbones.get_backbone`):
        by default onnxruntime where installed. Not part of the cache key (same features up to
        float rounding).
    cache_dir : path, optional
        Default ``$MIALAW_CACHE`` or ``~/.cache/mialaw``. ``use_cache=False`` neither reads nor
        writes.
    """
    if isinstance(dataset, str) and not is_image_dataset(dataset):  # drawn, not extracted
        if indices is not None or max_per_class is not None:
            raise ValueError("the 'gaussian' dataset takes n_per_class, not indices/max_per_class")
        return _gaussian(backbone, classes, flip, dataset_options)
    ds = _image_dataset(dataset, classes, data_dir, split, dataset_options)
    batch_size = _check_batch_size(batch_size)
    select = _selection(ds, indices, max_per_class)
    bb = _built_backbone(backbone, device, weights, resolution, engine)
    if ds.images.dtype != np.uint8:
        raise ValueError(f"dataset images must be uint8; got {ds.images.dtype}")

    return _image_features(ds, bb, select, flip, cache_dir, use_cache, batch_size, progress)


def _image_features(ds, bb, select, flip, cache_dir, use_cache, batch_size, progress) -> FeatureSet:
    """The features of ``ds``'s ``select`` examples under ``bb``: from the cache where it holds
    them, else extracted (and cached, with ``use_cache``)."""
    images = ds.images[select]
    labels = np.ascontiguousarray(ds.labels[select], dtype=np.int64)
    key = _feature_key(ds, bb, flip, select, images, labels)
    digest = key_digest(key)
    path = _cache_path(ds.name, bb.name, digest, cache_dir) if use_cache else None
    arrays = None if path is None else _load_cached(path, key, select, labels, flip)
    if arrays is None:
        desc = f"{ds.name}/{bb.name}"
        extracted = _extract(bb, images, flip, batch_size=batch_size, progress=progress, desc=desc)
        arrays = {"features": extracted["features"], "labels": labels, "indices": select}
        arrays |= {"flipped": extracted["flipped"]} if flip else {}
        if path is not None:
            save_arrays(path, arrays, key)
    return FeatureSet(
        features=arrays["features"],
        labels=labels,
        flipped=arrays.get("flipped"),
        dataset=ds.name,
        backbone=bb.name,
        key=digest,
        indices=select,
        class_names=ds.class_names,
        class_ids=ds.class_ids,
        split=ds.split,
        resolution=bb.resolution,
        preprocess_key=bb.preprocess_key,
        cache_path=None if path is None else str(path),
    )


def _feature_key(ds, bb, flip: bool, select, images, labels) -> dict:
    """What the features depend on: the cache key (any change extracts them afresh)."""
    return {
        "version": FEATURE_CODE_VERSION,
        "dataset": ds.name,
        "split": ds.split,
        "class_ids": list(ds.class_ids),
        "backbone": bb.name,
        "preprocess": bb.preprocess_key,
        "flip": bool(flip),
        "n": int(select.size),
        "indices_sha": _sha(select),
        "data_sha": _sha(images, labels),
    }


def _extract(bb, images, flip: bool, *, batch_size: int, progress: bool, desc: str) -> dict:
    """{"features"} and, with ``flip``, {"flipped"}: the mirrored images' features."""
    arrays = {
        "features": extract_features(
            bb, images, batch_size=batch_size, progress=progress, desc=desc
        )
    }
    if flip:
        # Axis 2 is the image width for both (n, H, W) and (n, H, W, 3).
        mirrored = np.flip(images, axis=2)
        arrays["flipped"] = extract_features(
            bb, mirrored, batch_size=batch_size, progress=progress, desc=desc + " flipped"
        )
    return arrays


def _image_dataset(dataset, classes, data_dir, split, options) -> ImageDataset:
    """A loaded dataset as given, or the named one loaded with its class selection."""
    if isinstance(dataset, ImageDataset):
        if classes is not None or options:
            raise ValueError(
                "classes and dataset options apply to a dataset name, not a loaded dataset"
            )
        return dataset
    return load_dataset(dataset, data_dir=data_dir, classes=classes, split=split, **options)


def _selection(ds: ImageDataset, indices, max_per_class) -> np.ndarray:
    """The examples to extract: ``indices``, the first ``max_per_class`` per class, or all."""
    if indices is not None and max_per_class is not None:
        raise ValueError("give indices or max_per_class, not both")
    if indices is not None:
        return _check_indices(indices, len(ds))
    if max_per_class is not None:
        return first_per_class(ds.labels, max_per_class)
    return np.arange(len(ds), dtype=np.int64)


def _built_backbone(backbone, device, weights, resolution, engine):
    """A built backbone as given, or the named one built with these options."""

    if isinstance(backbone, Backbone):
        if resolution is not None or weights is not None or engine != "auto":
            raise ValueError(
                "resolution, weights and engine apply to a backbone name, not a built backbone"
            )
        return backbone
    options = {"device": device, "weights": weights, "resolution": resolution, "engine": engine}
    return get_backbone(backbone, **options)


def _cache_path(dataset: str, backbone: str, digest: str, cache_dir) -> Path:
    safe_backbone = re.sub(r"[^A-Za-z0-9._-]+", "_", backbone)
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return directory / f"{dataset}-{safe_backbone}-{digest[:24]}.npz"


def _load_cached(path: Path, key: dict, select, labels, flip: bool) -> dict | None:
    """The cached arrays for exactly this request, or None (missing; or stale or corrupt, with
    a warning: the caller rebuilds them)."""
    try:
        arrays = load_arrays(path, key)
        if arrays is not None:
            _check_cached(arrays, select, labels, flip)
        return arrays
    except CacheError as exc:
        # stacklevel 4: the warning points at get_features' caller.
        warnings.warn(f"feature cache {path} is {exc}; rebuilding it", CacheWarning, stacklevel=4)
        return None


def _check_cached(arrays: dict, select, labels, flip: bool) -> None:
    """The cached arrays must describe exactly the requested examples (else: stale)."""
    features = arrays.get("features")
    if features is None or features.ndim != 2 or features.shape[0] != select.size:
        raise CacheError("stale: cached features have the wrong shape")
    if not np.array_equal(arrays.get("indices"), select) or not np.array_equal(
        arrays.get("labels"), labels
    ):
        raise CacheError("stale: cached indices/labels differ from the requested ones")
    if flip and arrays.get("flipped") is None:
        raise CacheError("stale: flipped features requested but not cached")
    if not np.isfinite(features).all():
        raise CacheError("corrupt: cached features are not finite")
