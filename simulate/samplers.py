"""Numba samplers of the membership game (theory/science.md, section 2), parallel over trials.

The target is (x, y = 0): by the symmetry of orthonormal means and isotropic noise, class 0 stands
for every class. All that the released class means reveal about x enters through

    z_c = <x, m̂_c>,  c = 0..C-1,   m̂_c = (1/S)·Σ_j x_j over the S training examples of class c,

and <x, Σ_j x_j> given x is Gaussian, so a trial needs O(1) draws (the *fast* sampler):

    OUT:  z_0 = <x, m_0> + sqrt(q/S)·Z
    IN:   z_0 = (|x|² + (S-1)<x, m_0> + sqrt((S-1)·q)·Z)/S      (x is one of the S examples)
    c≥1:  z_c = <x, m_c> + sqrt(q/S)·Z                          (other classes: never the target)

with q = xᵀΣx and independent standard normals Z. A target is therefore summarised by its
*features* proj = (<x, m_c>)_c, sqnorm = |x|² and quad = q. For Σ = σ²I, x = m_0 + ε is itself
drawn in O(C) draws: <x, m_c> = [c = 0] + σ·N(0, 1) and the rest of |ε|² is σ²·χ²_{d-C}.

The *full-data* sampler draws every training example in d dimensions (S·d normals per class and
trial; slow and literal) and exists to validate the fast one.

Statistics: ``SCORE`` is the true-class score s = z_0; ``LOGIT`` is the logit-scaled confidence of
softmax(z), log p_0 − log Σ_{c≥1} p_c = z_0 − logsumexp_{c≥1} z_c (needs C >= 2).

Kernels take a keep matrix (models × targets, bool): entry (m, n) says whether model m trained on
target n; every (m, n) is an independent game (fresh other training examples per model). Work is
split into fixed-size blocks of entries with their own random streams (see ``rng``), so results are
bit-identical whatever the number of threads.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .rng import BLOCK, chisquare, normal, seed_state, uniform

SCORE = 0
LOGIT = 1
STATISTICS = {"score": SCORE, "logit": LOGIT}

# Streams of one seed: independent draws for the targets, the keep matrix and the statistics.
STREAM_TARGETS = 1
STREAM_KEEP = 2
STREAM_STATS = 3
KEEP_BLOCK = 256  # keep-matrix columns per stream (each costs M draws)
FULL_BLOCK = 8  # entries per stream in the full-data sampler (each costs S·d·C normals)


@nb.njit(parallel=True, cache=True)
def draw_isotropic_targets(n, classes, dim, sigma, seed):
    """Features of n targets x ~ N(e_0, σ²I) in O(C) draws each: (proj (n, C), sqnorm, quad)."""
    proj = np.empty((n, classes))
    sqnorm = np.empty(n)
    quad = np.empty(n)
    blocks = (n + BLOCK - 1) // BLOCK
    rest_dof = float(dim - classes)
    for b in nb.prange(blocks):
        state = np.empty(4, dtype=np.uint64)
        seed_state(state, seed, STREAM_TARGETS, b)
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            total = sigma * sigma * chisquare(state, rest_dof)
            for c in range(classes):
                a = sigma * normal(state)
                if c == 0:
                    a += 1.0
                proj[i, c] = a
                total += a * a
            sqnorm[i] = total
            quad[i] = sigma * sigma * total
    return proj, sqnorm, quad


@nb.njit(parallel=True, cache=True)
def draw_full_targets(n, means, chol, seed):
    """n targets x = m_0 + Lε in d dimensions (L the Cholesky factor of Σ): (n, d)."""
    dim = means.shape[1]
    x = np.empty((n, dim))
    blocks = (n + BLOCK - 1) // BLOCK
    for b in nb.prange(blocks):
        state = np.empty(4, dtype=np.uint64)
        eps = np.empty(dim)
        seed_state(state, seed, STREAM_TARGETS, b)
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            for k in range(dim):
                eps[k] = normal(state)
            for k in range(dim):
                acc = means[0, k]
                for j in range(k + 1):
                    acc += chol[k, j] * eps[j]
                x[i, k] = acc
    return x


@nb.njit(parallel=True, cache=True)
def draw_keep(models, targets, seed):
    """Balanced keep matrix (models × targets): each target IN for exactly half of the models.

    Column n is a uniformly random arrangement of models/2 True values (Fisher–Yates), drawn from
    the stream of the block of KEEP_BLOCK columns that holds n.
    """
    keep = np.empty((models, targets), dtype=np.bool_)
    half = models // 2
    blocks = (targets + KEEP_BLOCK - 1) // KEEP_BLOCK
    for b in nb.prange(blocks):
        state = np.empty(4, dtype=np.uint64)
        col = np.empty(models, dtype=np.bool_)
        seed_state(state, seed, STREAM_KEEP, b)
        for n in range(b * KEEP_BLOCK, min(targets, (b + 1) * KEEP_BLOCK)):
            for m in range(models):
                col[m] = m < half
            for m in range(models - 1, 0, -1):
                j = int(_below(state, m + 1))
                col[m], col[j] = col[j], col[m]
            for m in range(models):
                keep[m, n] = col[m]
    return keep


@nb.njit(parallel=True, cache=True)
def draw_pair_keep(models, targets, seed):
    """Keep matrix of complementary model pairs (models × targets): row 2k+1 = not row 2k.

    Each pair holds each target exactly once (a fair coin per pair and target says which of the
    two models trained on it), so every target is IN for exactly models/2 models and the pair
    rotation of ``lira_kernel.lira_pairs`` can remove one IN and one OUT model per target.
    Column n draws from the stream of the block of KEEP_BLOCK columns that holds n.
    """
    keep = np.empty((models, targets), dtype=np.bool_)
    pairs = models // 2
    blocks = (targets + KEEP_BLOCK - 1) // KEEP_BLOCK
    for b in nb.prange(blocks):
        state = np.empty(4, dtype=np.uint64)
        seed_state(state, seed, STREAM_KEEP, b)
        for n in range(b * KEEP_BLOCK, min(targets, (b + 1) * KEEP_BLOCK)):
            for k in range(pairs):
                first = uniform(state) < 0.5
                keep[2 * k, n] = first
                keep[2 * k + 1, n] = not first
    return keep


@nb.njit(inline="always")
def _below(state, k):
    """A uniform integer in [0, k) from 53 random bits (bias below k / 2**53, negligible)."""
    return int(uniform(state) * k)


@nb.njit(inline="always")
def _logit_confidence(z, classes):
    """z_0 − logsumexp(z_1..z_{C-1}), with the maximum factored out (stable)."""
    top = z[1]
    for c in range(2, classes):
        if z[c] > top:
            top = z[c]
    acc = 0.0
    for c in range(1, classes):
        acc += math.exp(z[c] - top)
    return z[0] - (top + math.log(acc))


def fast_stats(proj, sqnorm, quad, keep, shots, statistic, seed):
    """Statistics (models × targets) of the fast sampler: O(C) normals per entry.

    Streams are blocks of BLOCK consecutive targets within one model's row.
    """
    s = float(shots)
    # Per-target OUT mean and scale, and what membership adds to them: a draw is then one FMA,
    # with membership selecting by arithmetic rather than by an unpredictable branch.
    out_mean = np.ascontiguousarray(proj[:, 0])
    out_sd = np.sqrt(quad / s)
    shift = (sqnorm + (s - 1.0) * out_mean) / s - out_mean
    widen = np.sqrt((s - 1.0) * quad) / s - out_sd
    keep = np.ascontiguousarray(keep, dtype=np.bool_)
    if statistic == LOGIT:
        return _fast_logit(out_mean, out_sd, shift, widen, np.ascontiguousarray(proj), keep, seed)
    return _fast_score(out_mean, out_sd, shift, widen, keep, seed)


@nb.njit(parallel=True, cache=True)
def _fast_score(out_mean, out_sd, shift, widen, keep, seed):
    models, targets = keep.shape
    out = np.empty((models, targets))
    per_row = (targets + BLOCK - 1) // BLOCK
    for b in nb.prange(models * per_row):
        m = b // per_row
        lo = (b - m * per_row) * BLOCK
        hi = min(targets, lo + BLOCK)
        state = np.empty(4, dtype=np.uint64)
        seed_state(state, seed, STREAM_STATS, b)
        # The block's normals in a tight loop, then their transformation (vectorisable).
        buf = np.empty(hi - lo)
        for j in range(hi - lo):
            buf[j] = normal(state)
        for n in range(lo, hi):
            k = 1.0 * keep[m, n]
            out[m, n] = out_mean[n] + k * shift[n] + (out_sd[n] + k * widen[n]) * buf[n - lo]
    return out


@nb.njit(parallel=True, cache=True)
def _fast_logit(out_mean, out_sd, shift, widen, proj, keep, seed):
    models, targets = keep.shape
    classes = proj.shape[1]
    out = np.empty((models, targets))
    per_row = (targets + BLOCK - 1) // BLOCK
    for b in nb.prange(models * per_row):
        m = b // per_row
        lo = (b - m * per_row) * BLOCK
        hi = min(targets, lo + BLOCK)
        state = np.empty(4, dtype=np.uint64)
        seed_state(state, seed, STREAM_STATS, b)
        z = np.empty(classes)
        for n in range(lo, hi):
            k = 1.0 * keep[m, n]
            z[0] = out_mean[n] + k * shift[n] + (out_sd[n] + k * widen[n]) * normal(state)
            for c in range(1, classes):
                z[c] = proj[n, c] + out_sd[n] * normal(state)
            out[m, n] = _logit_confidence(z, classes)
    return out


@nb.njit(parallel=True, cache=True)
def full_stats(x, means, chol, keep, shots, statistic, seed):
    """Statistics (models × targets) drawing every training example in d dimensions.

    For each entry and class c the training set is S examples m_c + Lε_j (for class 0 and a member
    target, x itself and S − 1 fresh ones); m̂_c is their mean and z_c = <x, m̂_c>. Since
    Σ_j Lε_j = L·Σ_j ε_j, the noise vectors are summed before the one product with L.
    """
    models, targets = keep.shape
    classes = means.shape[0] if statistic == LOGIT else 1
    dim = x.shape[1]
    out = np.empty((models, targets))
    total = models * targets
    blocks = (total + FULL_BLOCK - 1) // FULL_BLOCK
    for b in nb.prange(blocks):
        state = np.empty(4, dtype=np.uint64)
        eps_sum = np.empty(dim)
        z = np.empty(max(classes, 2))
        seed_state(state, seed, STREAM_STATS, b)
        for e in range(b * FULL_BLOCK, min(total, (b + 1) * FULL_BLOCK)):
            m = e // targets
            n = e - m * targets
            for c in range(classes):
                member = c == 0 and keep[m, n]
                fresh = shots - 1 if member else shots
                for k in range(dim):
                    eps_sum[k] = 0.0
                for _ in range(fresh):
                    for k in range(dim):
                        eps_sum[k] += normal(state)
                acc = 0.0  # <x, Σ_j x_j>
                for k in range(dim):
                    noise = 0.0
                    for j in range(k + 1):
                        noise += chol[k, j] * eps_sum[j]
                    total_k = fresh * means[c, k] + noise
                    if member:
                        total_k += x[n, k]
                    acc += x[n, k] * total_k
                z[c] = acc / shots
            out[m, n] = _logit_confidence(z, classes) if statistic == LOGIT else z[0]
    return out
