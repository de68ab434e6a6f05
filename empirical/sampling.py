"""Which examples a cell's models train on: the candidate pool of a seed and the keep matrix.

The rules (``mialaw/theory/science.md``, section 3): every seed draws 2·S candidates per class
from its own block of the class (disjoint pools while 2·S fits in a block, nested in S), and
M + 2 models are trained in complementary pairs, so that every example is IN for exactly half of
the models and every model is a target scored against the models outside its pair.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CODE_VERSION", "candidate_pool", "cell_record", "paired_keep"]

# Part of every cell's identity: bump when a change here changes which examples a cell uses.
CODE_VERSION = "1"


def paired_keep(models: int, labels, seed, *, return_partners: bool = False):
    """Bool (models × examples): complementary model pairs, each model on half of every class.

    Within each class the examples (an even number, 2·S) are paired at random; model 2k trains on
    one example of every pair, chosen at random, and model 2k + 1 on the other. Hence every model
    trains on exactly S examples per class, every example is IN for exactly models/2 models, and
    removing a model pair leaves every example one IN and one OUT model fewer (pair rotation).
    ``return_partners``: also return each example's partner (the other member of its pair).
    """
    if models % 2 or models < 4:
        raise ValueError(f"models must be an even number >= 4; got {models}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    keep = np.zeros((int(models), labels.size), dtype=bool)
    partners = np.empty(labels.size, dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if members.size % 2:
            raise ValueError(f"class {c} has an odd number of candidates ({members.size})")
        members = members[rng.permutation(members.size)]
        first, second = members[0::2], members[1::2]
        partners[first], partners[second] = second, first
        choose = rng.random((models // 2, first.size)) < 0.5
        keep[0::2, first], keep[0::2, second] = choose, ~choose
        keep[1::2, first], keep[1::2, second] = ~choose, choose
    return (keep, partners) if return_partners else keep


def candidate_pool(labels, shots: int, classes: int, seed: int, seeds: int):
    """(indices, overlap): 2·S candidates per class for seed k of K, from disjoint blocks.

    Every class is shuffled once (the same order for every seed) and cut into K blocks; seed k
    takes the first 2·S examples of its block (nested in S), wrapping into the next block when
    2·S exceeds a block. ``overlap`` is the fraction of the candidates that the next seed's pool
    shares (0 when the pools are disjoint).
    """
    labels = np.asarray(labels)
    chosen, overlap = [], 0.0
    for c in range(classes):
        order = np.random.default_rng(np.random.SeedSequence([0x5EED, c])).permutation(
            np.flatnonzero(labels == c)
        )
        need, block = 2 * shots, order.size // seeds
        start = seed * order.size // seeds
        chosen.append(np.sort(order[(start + np.arange(need)) % order.size]))
        if seeds > 1:
            overlap = max(overlap, max(0, need - block) / need)
    return np.concatenate(chosen).astype(np.int64), overlap


def cell_record(classes, shots, seed, keep, labels, indices, overlap) -> dict:
    """The arrays every learner's cell stores about its sampling: the coordinates, the keep
    matrix, the candidates' labels and indices into the input, and the pool overlap."""
    return {
        "classes": np.int64(classes),
        "shots": np.int64(shots),
        "seed": np.int64(seed),
        "keep": keep,
        "labels": labels,
        "indices": indices,
        "pool_overlap": np.float64(overlap),
    }
