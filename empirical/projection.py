"""Features projected onto their first d principal components (the capacity experiment).

``dataset_options={"project": d}`` gives a sweep the run's features projected onto the top d
principal directions of the same backbone's features of the dataset's *test* split (images outside
every candidate pool and every RMIA population of the sweep, so the projection knows nothing of the
examples it is used on). The head then has d inputs instead of the backbone's F: the experiment
that asks whether real slopes are steep while the head can separate its training set (S·C ≲ d).
The projected set's key names the source features and the basis, so projected cells never share an
address with the full features' cells.
"""

from __future__ import annotations

import numpy as np

from mialaw.empirical.datasets import is_image_dataset

__all__ = ["PROJECT_OPTION", "pca_basis", "project", "split_options"]

PROJECT_OPTION = "project"


def split_options(options: dict) -> tuple[dict, int | None]:
    """(the dataset options without the projection, the projected dimension or None)."""
    options = dict(options)
    dim = options.pop(PROJECT_OPTION, None)
    if dim is None:
        return options, None
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dataset option {PROJECT_OPTION!r} must be an integer >= 1; got {dim!r}")
    return options, int(dim)


def pca_basis(features, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean (F,), basis (F, dim)): the top ``dim`` principal directions of ``features`` (n, F),
    in float64, signs fixed so that each direction's largest component is positive."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (n, F); got shape {x.shape}")
    n, f = x.shape
    if not 1 <= dim <= min(n - 1, f):
        raise ValueError(
            f"a projection to d = {dim} needs 1 <= d <= min(n - 1, F) = {min(n - 1, f)} "
            f"(n = {n} fitting examples, F = {f} features)"
        )
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    basis = vt[:dim].T
    signs = np.sign(basis[np.abs(basis).argmax(0), np.arange(dim)])
    return mean, basis * np.where(signs == 0, 1.0, signs)


def project(features, mean, basis) -> np.ndarray:
    """(features − mean)·basis as float32."""
    x = np.asarray(features, dtype=np.float64)
    return np.ascontiguousarray((x - mean) @ basis, dtype=np.float32)


def fitting_features(config, options: dict, load):
    """The features the basis is fitted on: the test split's, first C classes, same backbone;
    ``load(config, options, split=...)`` is the sweep's own feature loader."""

    if not is_image_dataset(config.dataset):
        raise ValueError(
            f"dataset option {PROJECT_OPTION!r} needs an image dataset with a test split; "
            f"{config.dataset!r} lives in feature space (draw it with the dimension you want)"
        )
    options = {k: v for k, v in options.items() if k != "max_per_class"}
    return load(config, options, split="test")
