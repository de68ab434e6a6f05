"""The membership game in plain vectorised numpy (``numpy.random.Generator``).

The same samplers as ``samplers`` (see its docstring for the distributions), written the obvious
way: the baseline of the benchmark and an independent implementation for the tests (the two
engines agree in distribution, not in bits: they use different generators).
"""

from __future__ import annotations

import numpy as np

from mialaw.theory.scores import logit_confidence

from .samplers import LOGIT


def draw_isotropic_targets(rng: np.random.Generator, n: int, classes: int, dim: int, sigma: float):
    """Features (proj (n, C), sqnorm, quad) of n targets x ~ N(e_0, σ²I) by the (u, v) reduction."""
    proj = sigma * rng.standard_normal((n, classes))
    proj[:, 0] += 1.0
    rest = sigma**2 * rng.chisquare(dim - classes, n) if dim > classes else np.zeros(n)
    sqnorm = (proj**2).sum(1) + rest
    return proj, sqnorm, sigma**2 * sqnorm


def draw_full_targets(rng: np.random.Generator, n: int, means: np.ndarray, chol: np.ndarray):
    """n targets x = m_0 + Lε in d dimensions: (n, d)."""
    return means[0] + rng.standard_normal((n, means.shape[1])) @ chol.T


def draw_keep(rng: np.random.Generator, models: int, targets: int) -> np.ndarray:
    """Balanced keep matrix: each column a random arrangement of models/2 True values."""
    column = np.arange(models) < models // 2
    return rng.permuted(np.tile(column, (targets, 1)), axis=1).T.copy()


def draw_pair_keep(rng: np.random.Generator, models: int, targets: int) -> np.ndarray:
    """Keep matrix of complementary pairs: row 2k+1 = not row 2k, a fair coin per pair, target."""
    first = rng.random((models // 2, targets)) < 0.5
    keep = np.empty((models, targets), dtype=bool)
    keep[0::2], keep[1::2] = first, ~first
    return keep


def fast_stats(rng, proj, sqnorm, quad, keep, shots, statistic):
    """Statistics (models × targets) of the fast sampler, O(C) normals per entry."""
    s = float(shots)
    z0_in = (
        sqnorm
        + (s - 1.0) * proj[:, 0]
        + np.sqrt((s - 1.0) * quad) * rng.standard_normal(keep.shape)
    ) / s
    z0_out = proj[:, 0] + np.sqrt(quad / s) * rng.standard_normal(keep.shape)
    z0 = np.where(keep, z0_in, z0_out)
    if statistic != LOGIT:
        return z0
    classes = proj.shape[1]
    others = proj[:, 1:] + np.sqrt(quad / s)[:, None] * rng.standard_normal(
        keep.shape + (classes - 1,)
    )
    logits = np.concatenate([z0[..., None], others], axis=-1)
    return logit_confidence(logits, np.zeros(keep.shape, dtype=np.int64))


def full_stats(rng, x, means, chol, keep, shots, statistic):
    """Statistics drawing all training examples in d dimensions, entry by entry (slow, literal)."""
    models, targets = keep.shape
    classes = means.shape[0] if statistic == LOGIT else 1
    out = np.empty((models, targets))
    for m in range(models):
        for n in range(targets):
            z = np.empty(max(classes, 2))
            for c in range(classes):
                member = c == 0 and keep[m, n]
                fresh = shots - 1 if member else shots
                examples = means[c] + rng.standard_normal((fresh, x.shape[1])) @ chol.T
                total = examples.sum(0) + (x[n] if member else 0.0)
                z[c] = x[n] @ total / shots
            if statistic == LOGIT:
                out[m, n] = logit_confidence(z[:classes], 0)
            else:
                out[m, n] = z[0]
    return out
