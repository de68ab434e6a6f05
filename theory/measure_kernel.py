"""The bootstrap of ``measure.measure_tpr`` by its plain definition: threshold-then-count under
random weights, compiled. ``measure_fast`` computes the very same replicates with cheaper passes
(the tests hold the two equal); this is the reference it is checked against.

One replicate draws a Poisson(1) weight for every example and, optionally, every target model
(the weight of score (t, n) is their product), sets the ≤ α threshold on the weighted non-member
scores and counts the weighted members above it. Scores are sorted once; a replicate is two
linear passes.
Every replicate seeds its own generator, so results do not depend on the number of threads.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def weighted_tpr(neg_s, neg_t, neg_n, run_end, pos_s, pos_t, pos_n, wt, wn, alphas, out):
    """TPR at each α of the scores weighted wt[t]·wn[n] (≤ α rule), written into ``out``.

    Scores are sorted in decreasing order, members and non-members apart, with their target-model
    and example indices; ``run_end`` marks the last non-member of each run of equal scores (the
    only operating points).
    """
    n_alpha = alphas.size
    w_neg = 0.0
    for j in range(neg_s.size):
        w_neg += wt[neg_t[j]] * wn[neg_n[j]]
    w_pos = 0.0
    for j in range(pos_s.size):
        w_pos += wt[pos_t[j]] * wn[pos_n[j]]
    if w_neg == 0.0 or w_pos == 0.0:
        out[:] = np.nan
        return
    # The last operating point with weighted FPR <= α: the largest TPR allowed.
    top_alpha = alphas.max()
    last = np.full(n_alpha, -1)
    c = 0.0
    for j in range(neg_s.size):
        c += wt[neg_t[j]] * wn[neg_n[j]]
        if c / w_neg > top_alpha:
            break
        if run_end[j]:
            for i in range(n_alpha):
                if c / w_neg <= alphas[i]:
                    last[i] = j
    # A member counts if its score beats the first non-member left out.
    cut = np.empty(n_alpha)
    lowest = np.inf
    for i in range(n_alpha):
        nxt = last[i] + 1
        cut[i] = neg_s[nxt] if nxt < neg_s.size else -np.inf
        lowest = min(lowest, cut[i])
    tp = np.zeros(n_alpha)
    for j in range(pos_s.size):
        s = pos_s[j]
        if s <= lowest:
            break
        w = wt[pos_t[j]] * wn[pos_n[j]]
        for i in range(n_alpha):
            if s > cut[i]:
                tp[i] += w
    for i in range(n_alpha):
        out[i] = tp[i] / w_pos


@nb.njit(parallel=True, cache=True)
def _replicates(
    neg_s, neg_t, neg_n, run_end, pos_s, pos_t, pos_n, models, examples, alphas, seeds, by_model
):
    out = np.empty((seeds.size, alphas.size))
    for b in nb.prange(seeds.size):
        np.random.seed(seeds[b])  # noqa: NPY002 - numba: per-thread state, seeded per replicate
        wt = np.empty(models)
        for i in range(models):
            wt[i] = np.random.poisson(1.0) if by_model else 1.0  # noqa: NPY002
        wn = np.empty(examples)
        for i in range(examples):
            wn[i] = np.random.poisson(1.0)  # noqa: NPY002
        weighted_tpr(neg_s, neg_t, neg_n, run_end, pos_s, pos_t, pos_n, wt, wn, alphas, out[b])
    return out


def sorted_scores(scores, labels):
    """The arrays ``weighted_tpr`` takes: (neg_s, neg_t, neg_n, run_end, pos_s, pos_t, pos_n)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    examples = scores.shape[1]
    neg_s, neg_t, neg_n = _descending(scores, ~labels, examples)
    pos_s, pos_t, pos_n = _descending(scores, labels, examples)
    run_end = np.r_[neg_s[1:] != neg_s[:-1], True]
    return neg_s, neg_t, neg_n, run_end, pos_s, pos_t, pos_n


def _descending(scores: np.ndarray, mask: np.ndarray, examples: int):
    flat = np.flatnonzero(mask.ravel())
    s = scores.ravel()[flat]
    order = np.argsort(-s, kind="stable")
    flat, s = flat[order], s[order]
    return s, (flat // examples).astype(np.int64), (flat % examples).astype(np.int64)


def bootstrap_tpr_reference(
    scores, labels, alphas, resamples: int, seed: int, *, by_model: bool = False
) -> np.ndarray:
    """(resamples, len(alphas)) bootstrap replicates of one experiment's pooled TPR at each α.

    Examples always get Poisson(1) weights; target models too when ``by_model``.
    """
    models, examples = np.shape(scores)
    seeds = np.random.SeedSequence(int(seed)).generate_state(int(resamples), np.uint32)
    return _replicates(
        *sorted_scores(scores, labels),
        models,
        examples,
        np.asarray(alphas, dtype=np.float64),
        seeds.astype(np.int64),
        bool(by_model),
    )
