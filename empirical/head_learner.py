"""The linear (or MLP) head on frozen features: the default learner.

One cell (``science.md`` section 3; ``sampling.py`` for the candidates and the keep matrix):
standardise the features with the held-out population's statistics, train all M + 2 heads at once
(``heads.train_heads``: batched L-BFGS; λ on the *mean* loss), and store every model's
logit-scaled confidence on the candidates and on an RMIA reference population, with per-example
predictors and the held-out accuracy. Scores are not stored: the analysis derives them.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from mialaw.empirical import projection
from mialaw.empirical.cache import array_checksum
from mialaw.empirical.features import get_features
from mialaw.empirical.heads import train_heads
from mialaw.empirical.learner_base import Learner
from mialaw.empirical.sampling import candidate_pool, cell_record, paired_keep
from mialaw.empirical.statistics import attack_stats, atypicality, linear_gradient_norms

__all__ = [
    "LEARNER",
    "PreparedFeatures",
    "named_features",
    "prepare_features",
    "run_cell",
    "standardizer",
]

# Part of the identity of every head cell: bump when a change alters a head cell's arrays.
CODE_VERSION = "1"


@dataclass(frozen=True)
class PreparedFeatures:
    """The features of the largest class subset of a run, validated."""

    features: np.ndarray  # (n, F) float32
    labels: np.ndarray  # (n,) int64
    flipped: np.ndarray | None  # (n, F) or None
    key: str


def _content_key(x, y, flipped) -> str:

    given = {"features": x, "labels": y} | ({} if flipped is None else {"flipped": flipped})
    return "given-" + array_checksum(given)[:24]


def named_features(config, options: dict, *, flip: bool = False, split="train"):
    """The sweep's dataset through its backbone (first max(C) classes), from the feature cache."""

    return get_features(
        config.dataset,
        config.backbone,
        classes=max(config.classes),
        data_dir=config.data_dir,
        cache_dir=config.cache_dir,
        device=config.device,
        flip=flip,
        split=split,
        **options,
    )


def prepare_features(config, features=None) -> PreparedFeatures:
    """Load (or take) the features and check them against the sweep, before anything is written.

    ``features``: optional object with ``features``, ``labels`` and optionally ``flipped`` (e.g. a
    ``FeatureSet``); by default ``get_features(config.dataset, config.backbone, ...)``.
    """

    options, project_to = projection.split_options(config.dataset_options)
    if features is None:
        features = named_features(config, options, flip=config.flip)
    elif project_to is not None:
        raise ValueError(
            "the 'project' dataset option applies to named datasets, not to given features"
        )
    x = np.asarray(features.features)
    y = np.asarray(features.labels)
    flipped = getattr(features, "flipped", None)
    # Features handed in without a name are named by their content (a cell's identity
    # includes its features: two different arrays must never share stored cells).
    key = getattr(features, "key", None) or _content_key(x, y, flipped)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"features must be (n, F) with n labels; got {x.shape} and {y.shape}")
    if not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.all(np.isfinite(x), axis=1)))
        raise ValueError(f"features contain NaN or infinite values ({bad} of {x.shape[0]} rows)")
    if config.flip:
        if flipped is None:
            raise ValueError(
                f"--flip needs flipped-image features, which {config.dataset}/{config.backbone} "
                "does not provide"
            )
        flipped = np.asarray(flipped)
        if flipped.shape != x.shape or not np.all(np.isfinite(flipped)):
            raise ValueError("flipped features must be finite and shaped like the features")
    else:
        flipped = None
    counts = np.bincount(y, minlength=max(config.classes))
    for c in config.classes:
        if counts.size < c or np.any(counts[:c] == 0):
            raise ValueError(f"{config.dataset} has fewer than C={c} classes in its features")
        need = 2 * max(config.shots) + 10
        smallest = int(counts[:c].min())
        if smallest < need:
            raise ValueError(
                f"S={max(config.shots)} is larger than the class size allows: each class needs "
                f"2·S = {2 * max(config.shots)} candidates plus >= 10 held-out examples, but the "
                f"smallest of the first {c} classes of {config.dataset} has {smallest}; largest "
                f"allowed S is {(smallest - 10) // 2}"
            )
    if project_to is not None:  # onto the test split's principal directions (projection.py)
        mean, basis = projection.pca_basis(
            projection.fitting_features(config, options, named_features).features, project_to
        )
        x = projection.project(x, mean, basis)
        flipped = None if flipped is None else projection.project(flipped, mean, basis)
        key = f"{key}-pca{project_to}-" + array_checksum({"basis": basis})[:12]
    return PreparedFeatures(
        features=np.ascontiguousarray(x, dtype=np.float32),
        labels=y.astype(np.int64),
        flipped=None if flipped is None else np.ascontiguousarray(flipped, dtype=np.float32),
        key=key,
    )


# --------------------------------------------------------------------------- one cell
@contextmanager
def _torch_threads(threads: int):
    """The cell's own CPU thread count (float sums depend on it), whatever the worker's."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def standardizer(population: np.ndarray, enabled: bool):
    if not enabled:
        return lambda a: np.asarray(a, dtype=np.float64)
    mean = population.mean(0, dtype=np.float64)
    std = population.std(0, dtype=np.float64)
    # constant features (e.g. always-black border pixels) are centred but not scaled
    std = np.where(std > 1e-8 * max(float(std.max()), 1e-300), std, 1.0)
    return lambda a: (np.asarray(a, dtype=np.float64) - mean) / std


def run_cell(prepared: PreparedFeatures, config, classes: int, shots: int, seed: int):
    """Train and attack one (C, S, seed) cell; returns the dict of arrays stored in its npz."""

    y_all = prepared.labels
    pool, overlap = candidate_pool(y_all, shots, classes, seed, config.seeds)
    rng = np.random.default_rng(np.random.SeedSequence([seed, classes, shots]))
    population = np.setdiff1d(np.flatnonzero(y_all < classes), pool)
    if population.size > 20000:  # plenty for means, standard deviations and the covariance
        population = np.sort(rng.choice(population, 20000, replace=False))
    standardize = standardizer(prepared.features[population], config.standardize)
    x = standardize(prepared.features[pool])
    y = y_all[pool]
    keep = paired_keep(config.models, y, rng)

    start = time.perf_counter()
    options = dict(
        # λ on the mean loss is λ·n on the sum of losses that train_heads minimises.
        weight_decay=config.weight_decay * shots * classes,
        device=config.device,
        dtype=config.dtype,
        max_iter=config.max_iter,
        gtol=config.gtol,
    )
    if config.head == "mlp":
        options["hidden"] = config.hidden
    with _torch_threads(config.threads):
        heads = train_heads(
            config.head, x, y, keep, classes=classes, seed=int(rng.integers(2**31)), **options
        )
    train_seconds = time.perf_counter() - start
    arrays = cell_record(classes, shots, seed, keep, y, pool, overlap) | {
        "objective": np.asarray(heads.objective, dtype=np.float64),
        "iterations": np.asarray(heads.iterations, dtype=np.int64),
        "converged": np.asarray(heads.converged, dtype=bool),
        "train_seconds": np.float64(train_seconds),
    }
    # The attacks' scores are not stored: the analysis derives them from the statistics, so a
    # change to the scoring never leaves stale scores behind.
    return arrays | _statistics(prepared, config, heads, x, pool, population, standardize, rng)


def _statistics(prepared, config, heads, x, pool, population, standardize, rng) -> dict:
    """Statistics of every model on the candidates and on an RMIA population; per-example
    predictors; held-out accuracy."""

    y_all = prepared.labels
    y = y_all[pool]
    classes = int(y.max()) + 1

    def stats_of(indices, base):
        queries = [heads.logits(base, device=config.device)]
        if config.flip:
            flipped = standardize(prepared.flipped[indices])
            queries.append(heads.logits(flipped, device=config.device))
        return attack_stats(queries, y_all[indices]), queries[0]

    stats, logits = stats_of(pool, x)
    reference = np.sort(rng.permutation(population)[: config.rmia_population])
    pop_x = standardize(prepared.features[population])
    population_stats, _ = stats_of(reference, standardize(prepared.features[reference]))
    held_out = pop_x[: min(len(pop_x), 4000)]
    accuracy = (
        heads.logits(held_out, device=config.device).argmax(-1)
        == y_all[population][: len(held_out)]
    )
    if config.head == "linear":
        grad_norm = linear_gradient_norms(logits, x, y)
    else:  # no closed form for the MLP; not computed
        grad_norm = np.full(stats.shape[:2], np.nan)
    return {
        "stats": stats,
        "population_stats": population_stats,
        "grad_norm": grad_norm,
        # 4,000 population examples estimate the class means and covariance well enough for a
        # predictor (Ledoit–Wolf on all of them dominated the cost of a cell).
        "atypicality": atypicality(x, y, pop_x[:4000], y_all[population][:4000], classes=classes),
        "accuracy": accuracy.mean(1),
    }


LEARNER = Learner(
    name="head",
    version=CODE_VERSION,
    prepare=prepare_features,
    run_cell=run_cell,
    description="linear (or MLP) heads on frozen features, all models by batched L-BFGS",
)
