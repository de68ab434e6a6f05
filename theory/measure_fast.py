"""The bootstrap that ``measure.measure_tpr`` runs: the reference's replicates, cheaper passes.

``measure_kernel.bootstrap_tpr_reference`` (the plain definition) draws, per replicate, a
Poisson(1) weight per example (and per target model when ``by_model``; numba's generator seeded
per replicate), sets the ≤ α threshold on the weighted non-member scores and counts the
weighted members above it. It walks all T·N scores twice per replicate (the two totals) and the
members down to the threshold: at 64 models × 40,000 examples, seconds per 1000 replicates.

``bootstrap_tpr`` here draws the very same weights in the same order and returns the very same
replicates (every weight is a whole number, so every sum is exact in float64 whatever its order;
the tests check equality with the reference), with less work per replicate:

* **examples resampled** (the default): a score's weight is its example's, so a sum of weights
  over any fixed set of scores is Σ_n w_n · (how many of the set are example n's): one dot
  product of length N. The two totals are two; and for each α, everything above a *band* around
  the unweighted threshold (``BAND_SDS`` standard deviations of the threshold's bootstrap rank,
  from the data) is two more: the non-members' running weight at the band's start, and the
  members that are above any threshold inside the band. Only the band is walked score by score.
  A replicate whose threshold falls above the band is walked from the top, as the shared kernel
  does (rare, and the same result either way).
* **target models and examples resampled**: the non-members' total is read row by row from a 0/1
  matrix (contiguous, rows of weight zero skipped), the members' as the grand total minus it;
  members above a threshold are summed from whichever end of the sorted scores is nearer.
"""

from __future__ import annotations

import numba as nb
import numpy as np

BAND_SDS = 10.0  # half-width of a band, in standard deviations of the threshold's rank
BAND_MIN = 32  # and at least this many non-members


@nb.njit(inline="always")
def _draw_weights(seed, wt, wn, by_model):
    """The shared kernel's draws, in its order: models (if resampled) first, then examples."""
    np.random.seed(seed)  # noqa: NPY002 - numba: per-thread state, seeded per replicate
    for i in range(wt.size):
        wt[i] = np.random.poisson(1.0) if by_model else 1.0  # noqa: NPY002
    for i in range(wn.size):
        wn[i] = np.random.poisson(1.0)  # noqa: NPY002


@nb.njit(inline="always")
def _dot(a, b):
    total = 0.0
    for n in range(a.size):
        total += a[n] * b[n]
    return total


# --- examples resampled: banded walks --------------------------------------------------------


@nb.njit(inline="always")
def _last_in_band(neg_s, neg_n, run_end, wn, w_neg, alpha, head, head_weight, head_last):
    """(last, band used): the last operating point with weighted FPR <= α (the shared kernel's
    ``last``), walking from the band's start when the weight above it is within α."""
    if head_weight / w_neg <= alpha:
        last, c, j, band = head_last, head_weight, head, True
    else:  # the threshold lies above the band: walk from the top
        last, c, j, band = -1, 0.0, 0, False
    while j < neg_s.size:
        c += wn[neg_n[j]]
        if c / w_neg > alpha:
            break
        if run_end[j]:
            last = j
        j += 1
    return last, band


@nb.njit(parallel=True, cache=True)
def _replicates_examples(
    neg_s,
    neg_n,
    run_end,
    pos_s,
    pos_n,
    negatives_per_example,
    positives_per_example,
    alphas,
    neg_head,
    neg_head_counts,
    neg_head_last,
    pos_head,
    pos_head_counts,
    seeds,
):
    examples = negatives_per_example.size
    n_alpha = alphas.size
    out = np.empty((seeds.size, n_alpha))
    no_models = np.empty(0)
    for b in nb.prange(seeds.size):
        wn = np.empty(examples)
        _draw_weights(seeds[b], no_models, wn, False)
        w_neg = _dot(wn, negatives_per_example)
        w_pos = _dot(wn, positives_per_example)
        if w_neg == 0.0 or w_pos == 0.0:
            out[b, :] = np.nan
            continue
        for i in range(n_alpha):
            h = neg_head[i]
            head_weight = _dot(wn, neg_head_counts[i]) if h > 0 else 0.0
            last, band = _last_in_band(
                neg_s, neg_n, run_end, wn, w_neg, alphas[i], h, head_weight, neg_head_last[i]
            )
            nxt = last + 1
            cut = neg_s[nxt] if nxt < neg_s.size else -np.inf
            # With the band used the cut is at most the band's top score, so the members above
            # that score are above the cut whatever the replicate.
            tp, j = 0.0, 0
            if band and pos_head[i] > 0:
                tp, j = _dot(wn, pos_head_counts[i]), pos_head[i]
            while j < pos_s.size and pos_s[j] > cut:
                tp += wn[pos_n[j]]
                j += 1
            out[b, i] = tp / w_pos
    return out


def _bands(neg_s, neg_n, run_end, pos_s, pos_n, negatives_per_example, alphas):
    """Per α: the band's start h (a non-member position), the counts per example of the
    non-members above it, the last operating point above it, and the members above its top
    score (their number and counts per example)."""
    examples = negatives_per_example.size
    n_neg = neg_s.size
    n_alpha = alphas.size
    neg_head = np.zeros(n_alpha, dtype=np.int64)
    neg_head_last = np.full(n_alpha, -1, dtype=np.int64)
    pos_head = np.zeros(n_alpha, dtype=np.int64)
    neg_head_counts = np.zeros((n_alpha, examples))
    pos_head_counts = np.zeros((n_alpha, examples))
    ends = np.flatnonzero(run_end)
    for i, a in enumerate(alphas):
        k = min(int(a * n_neg), n_neg)
        # Rank spread of the weighted threshold by the delta method: sqrt(Σ_n (a_n − α c_n)²),
        # a_n = example n's non-members above the unweighted threshold, c_n = all of them.
        above = np.bincount(neg_n[:k], minlength=examples)
        spread = float(np.sqrt(np.sum((above - a * negatives_per_example) ** 2)))
        h = max(k - int(BAND_SDS * spread) - BAND_MIN, 0)
        if h == 0:
            continue  # no band: walk from the top (the shared kernel's walk)
        neg_head[i] = h
        neg_head_counts[i] = np.bincount(neg_n[:h], minlength=examples)
        before = ends[ends < h]
        neg_head_last[i] = before[-1] if before.size else -1
        g = int(np.searchsorted(-pos_s, -neg_s[h], side="left"))  # members above neg_s[h]
        pos_head[i] = g
        pos_head_counts[i] = np.bincount(pos_n[:g], minlength=examples)
    return neg_head, neg_head_counts, neg_head_last, pos_head, pos_head_counts


# --- target models and examples resampled ----------------------------------------------------


@nb.njit(inline="always")
def _negative_total(negative, wt, wn):
    """Σ_t w_t Σ_n w_n [(t, n) is a non-member], row by row."""
    total = 0.0
    for t in range(wt.size):
        if wt[t] == 0.0:
            continue
        row = 0.0
        for n in range(wn.size):
            row += wn[n] * negative[t, n]
        total += wt[t] * row
    return total


@nb.njit(inline="always")
def _cuts(neg_s, neg_t, neg_n, run_end, wt, wn, w_neg, alphas, cut):
    """The shared kernel's threshold: per α the score of the first non-member left out."""
    n_alpha = alphas.size
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
    for i in range(n_alpha):
        nxt = last[i] + 1
        cut[i] = neg_s[nxt] if nxt < neg_s.size else -np.inf


@nb.njit(inline="always")
def _members_above(pos_s, pos_t, pos_n, wt, wn, w_pos, cut, from_below, tp):
    """Weight of the members scoring above each cut: summed from the top for the cuts marked
    False in ``from_below``, as total minus the weight at or below the cut for the others."""
    n_alpha = cut.size
    lowest = np.inf  # top walk: down to the lowest of its cuts
    highest = -np.inf  # bottom walk: up to the highest of its cuts
    bottom = False
    for i in range(n_alpha):
        tp[i] = 0.0
        if from_below[i]:
            highest = max(highest, cut[i])
            bottom = True
        else:
            lowest = min(lowest, cut[i])
    for j in range(pos_s.size):
        s = pos_s[j]
        if s <= lowest:
            break
        w = wt[pos_t[j]] * wn[pos_n[j]]
        for i in range(n_alpha):
            if not from_below[i] and s > cut[i]:
                tp[i] += w
    for j in range(pos_s.size - 1, -1, -1):
        s = pos_s[j]
        if not bottom or s > highest:
            break
        w = wt[pos_t[j]] * wn[pos_n[j]]
        for i in range(n_alpha):
            if from_below[i] and s <= cut[i]:
                tp[i] += w
    for i in range(n_alpha):
        if from_below[i]:
            tp[i] = w_pos - tp[i]


@nb.njit(parallel=True, cache=True)
def _replicates_two_way(
    negative, neg_s, neg_t, neg_n, run_end, pos_s, pos_t, pos_n, alphas, from_below, seeds
):
    models, examples = negative.shape
    n_alpha = alphas.size
    out = np.empty((seeds.size, n_alpha))
    for b in nb.prange(seeds.size):
        wt = np.empty(models)
        wn = np.empty(examples)
        _draw_weights(seeds[b], wt, wn, True)
        w_neg = _negative_total(negative, wt, wn)
        w_pos = wt.sum() * wn.sum() - w_neg  # whole numbers: exact
        if w_neg == 0.0 or w_pos == 0.0:
            out[b, :] = np.nan
            continue
        cut = np.empty(n_alpha)
        _cuts(neg_s, neg_t, neg_n, run_end, wt, wn, w_neg, alphas, cut)
        tp = np.empty(n_alpha)
        _members_above(pos_s, pos_t, pos_n, wt, wn, w_pos, cut, from_below, tp)
        for i in range(n_alpha):
            out[b, i] = tp[i] / w_pos
    return out


def _from_below(pos_s: np.ndarray, neg_s: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Per α, whether the unweighted threshold leaves more than half the members above it (then
    the walk from the bottom is the shorter one); a guess for speed only, never for results."""
    k = np.floor(alphas * neg_s.size).astype(np.int64)
    cut = np.where(k < neg_s.size, neg_s[np.minimum(k, neg_s.size - 1)], -np.inf)
    above = np.searchsorted(-pos_s, -cut, side="left")  # members with score > cut
    return above > pos_s.size / 2


# --- entry point -------------------------------------------------------------------------------


def _descending(scores: np.ndarray, mask: np.ndarray, examples: int):
    """Scores of ``mask`` from the highest down with their model and example indices (int32:
    half the memory traffic of the walks). The order within a run of equal scores is free: only
    sums over whole runs decide a threshold, and sums of whole numbers are exact in any order."""
    flat = np.flatnonzero(mask.ravel())
    s = scores.ravel()[flat]
    order = np.argsort(-s)
    flat, s = flat[order], s[order]
    return s, (flat // examples).astype(np.int32), (flat % examples).astype(np.int32)


def bootstrap_tpr(
    scores, labels, alphas, resamples: int, seed: int, *, by_model: bool = False
) -> np.ndarray:
    """(resamples, len(alphas)) replicates of one experiment's pooled TPR at each α: equal to
    ``mialaw.theory.measure_kernel.bootstrap_tpr_reference`` with the same arguments (examples
    always resampled, target models too when ``by_model``)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if scores.ndim != 2 or labels.shape != scores.shape:
        raise ValueError(f"scores and labels must be (models, examples) alike; got {scores.shape}")
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if alphas.size == 0 or np.any(~(alphas > 0)) or np.any(alphas >= 1):
        raise ValueError(f"alphas must lie strictly between 0 and 1; got {alphas!r}")
    examples = scores.shape[1]
    neg_s, neg_t, neg_n = _descending(scores, ~labels, examples)
    pos_s, pos_t, pos_n = _descending(scores, labels, examples)
    run_end = np.r_[neg_s[1:] != neg_s[:-1], True]
    seeds = np.random.SeedSequence(int(seed)).generate_state(int(resamples), np.uint32)
    seeds = seeds.astype(np.int64)
    if by_model:
        negative = np.ascontiguousarray(~labels, dtype=np.uint8)
        below = _from_below(pos_s, neg_s, alphas)
        return _replicates_two_way(
            negative, neg_s, neg_t, neg_n, run_end, pos_s, pos_t, pos_n, alphas, below, seeds
        )
    negatives = (~labels).sum(0).astype(np.float64)
    positives = labels.sum(0).astype(np.float64)
    bands = _bands(neg_s, neg_n, run_end, pos_s, pos_n, negatives, alphas)
    return _replicates_examples(
        neg_s, neg_n, run_end, pos_s, pos_n, negatives, positives, alphas, *bands, seeds
    )
