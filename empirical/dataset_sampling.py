"""Sampling examples from a dataset (stratified S-shot samples, deterministic per-class pools) and
the theory's Gaussian model as a feature-space dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mialaw.theory.model import GaussianModel


def as_generator(seed) -> np.random.Generator:
    """A numpy Generator from an int seed (or the Generator given)."""
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
    rng = as_generator(seed)
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
    model: GaussianModel


def gaussian_features(
    *, dim: int, classes: int = 2, sigma: float = 1.0, n_per_class: int, seed, cov=None, means=None
):
    """Draw ``n_per_class`` examples of each class from x ~ N(m_c, Σ) (the theory's model).

    m_c = e_c (or the rows of ``means``) and Σ = σ²I unless ``cov`` is given (then x = m_c + L z
    with Σ = L Lᵀ). Draws are made in float64 and returned as float32, grouped by class; the same
    seed gives identical output.
    """
    model = GaussianModel(dim=dim, classes=classes, sigma=sigma, cov=cov, means=means)
    if (
        isinstance(n_per_class, bool)
        or not isinstance(n_per_class, (int, np.integer))
        or n_per_class < 1
    ):
        raise ValueError(f"n_per_class must be an integer >= 1; got {n_per_class!r}")
    rng = as_generator(seed)
    labels = np.repeat(np.arange(model.classes, dtype=np.int64), n_per_class)
    noise = rng.standard_normal((labels.size, model.dim))
    if model.isotropic:
        noise *= model.sigma
    else:
        noise = noise @ np.linalg.cholesky(model.covariance).T
    class_means = np.stack([model.mean(c) for c in range(model.classes)])
    features = (class_means[labels] + noise).astype(np.float32)
    return GaussianSample(features=features, labels=labels, model=model)
