"""LiRA and RMIA scoring over score arrays: pure functions shared by simulate and empirical.

The interchange format (science.md, section 3): ``keep`` (models × examples, bool: model m trained
on example n) and ``stats`` (models × examples × queries, float64: e.g. the logit-scaled confidence
of each model on each query of each example).

Evaluation by leave-one-out rotation: each model in turn is the target and all other models are
its shadows. Row t of a score array holds every example's score against target model t, larger
meaning "more likely member"; the matching labels are ``keep[targets]``.

LiRA (Carlini et al. 2022), per example and query, from the shadows' statistics:
  centre  "mean" or "median" of the IN (resp. OUT) statistics;
  scale   "per-example": the IN (resp. OUT) sample standard deviation (ddof = 1) of this example;
          "global": the pooled within-example standard deviation over all examples, computed
          separately for IN and OUT (never the spread between examples' means, never IN for OUT).
  online  score = mean over queries of log N(s; μ_in, σ_in²) − log N(s; μ_out, σ_out²);
  offline score = mean over queries of log Φ((s − μ_out)/σ_out): the one-sided test that the
          target's statistic is larger than an OUT model's (log of the OUT CDF, so large = member).
The "median" centre changes only the location; the scale is always the standard deviation.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_ndtr

_VARIANCES = ("per-example", "global")
_CENTRES = ("mean", "median")
# Floor for variances, so that shadows that all agree give huge but finite scores, not NaN.
_MIN_VAR = 1e-300


def _check_arrays(keep, stats) -> tuple[np.ndarray, np.ndarray]:
    keep = np.asarray(keep)
    if keep.dtype != bool:
        raise ValueError(
            f"keep must be a boolean array (models × examples); got dtype {keep.dtype}"
        )
    if keep.ndim != 2:
        raise ValueError(f"keep must be 2-D (models × examples); got shape {keep.shape}")
    stats = np.asarray(stats, dtype=np.float64)
    if stats.ndim == 2:
        stats = stats[:, :, None]
    if stats.ndim != 3 or stats.shape[:2] != keep.shape:
        raise ValueError(
            f"stats must be (models, examples[, queries]) matching keep {keep.shape}; "
            f"got {stats.shape}"
        )
    if not np.all(np.isfinite(stats)):
        raise ValueError("stats must be finite (no NaN or inf)")
    return keep, stats


def _check_targets(targets, models: int) -> np.ndarray:
    if targets is None:
        return np.arange(models)
    t = np.atleast_1d(np.asarray(targets))
    if not np.issubdtype(t.dtype, np.integer) or np.any(t < 0) or np.any(t >= models):
        raise ValueError(f"targets must be model indices in [0, {models}); got {targets!r}")
    return t


def _loo_counts(keep: np.ndarray, targets: np.ndarray, variance: str, what: str):
    """IN/OUT shadow counts per (target, example) when the target leaves the pool."""
    n_in = keep.sum(0)[None, :] - keep[targets]
    n_out = (~keep).sum(0)[None, :] - (~keep[targets])
    need = 2 if variance == "per-example" else 1
    for name, n in (("IN", n_in), ("OUT", n_out)):
        if what == "both" or name == "OUT":
            if n.min() < need:
                raise ValueError(
                    f"every example needs >= {need} {name} shadow models per target for "
                    f"{variance} variance; some have {int(n.min())} (use more models or a "
                    "balanced keep matrix)"
                )
    return n_in, n_out


def _loo_moments(values, member, targets, counts, variance):
    """Leave-one-out mean and variance over models of ``values`` where ``member`` (per query).

    values (M, N, Q), member (M, N) bool; returns (mean, var) of shape (T, N, Q) where row t
    excludes model targets[t]. Sums are taken around each example's overall mean so that removing
    one model stays accurate (no catastrophic cancellation).
    """
    w = member[:, :, None]
    centre = values.mean(0, keepdims=True)
    d = values - centre
    total = np.where(w, d, 0.0).sum(0)[None]
    total_sq = np.where(w, d * d, 0.0).sum(0)[None]
    own = np.where(w[targets], d[targets], 0.0)
    cnt = counts[:, :, None].astype(np.float64)
    s1 = total - own
    s2 = total_sq - own * own
    mean_d = s1 / cnt
    ss = np.maximum(s2 - s1 * mean_d, 0.0)  # within-example sum of squares
    if variance == "per-example":
        var = ss / (cnt - 1.0)
    else:  # pooled within-example variance, per target and query
        var = ss.sum(1, keepdims=True) / (cnt - 1.0).sum(1, keepdims=True)
        var = np.broadcast_to(var, ss.shape)
    return mean_d + centre, np.maximum(var, _MIN_VAR)


def _loo_median(values, member, targets, counts):
    """Leave-one-out median over the models where ``member``, without re-sorting per target.

    Sort each example's member values once; removing the element of rank r from a sorted list v
    of length k leaves w[j] = v[j] (j < r) or v[j + 1] (j >= r), whose median is read off directly.
    """
    masked = np.where(member[:, :, None], values, np.inf)
    order = np.argsort(masked, axis=0, kind="stable")
    v = np.take_along_axis(masked, order, axis=0)  # (M, N, Q), member values first
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(values.shape[0])[:, None, None], axis=0)
    removed = member[targets][:, :, None]  # the target was one of the member values
    r = np.where(removed, rank[targets], values.shape[0])  # rank past the end: nothing removed
    k = np.broadcast_to(counts[:, :, None], r.shape)

    def pick(j):
        return _gather(v, np.where(j >= r, j + 1, j))

    return 0.5 * (pick((k - 1) // 2) + pick(k // 2))


def _gather(v: np.ndarray, j: np.ndarray) -> np.ndarray:
    """v[(M, N, Q)] gathered at model positions j (T, N, Q) -> (T, N, Q)."""
    n_idx = np.arange(v.shape[1])[None, :, None]
    q_idx = np.arange(v.shape[2])[None, None, :]
    return v[j, n_idx, q_idx]


def _fit(keep, stats, targets, variance, centre, online):
    n_in, n_out = _loo_counts(keep, targets, variance, "both" if online else "out")
    out = _loo_moments(stats, ~keep, targets, n_out, variance)
    if centre == "median":
        out = (_loo_median(stats, ~keep, targets, n_out), out[1])
    if not online:
        return None, out
    inn = _loo_moments(stats, keep, targets, n_in, variance)
    if centre == "median":
        inn = (_loo_median(stats, keep, targets, n_in), inn[1])
    return inn, out


def _log_normal(s, mean, var):
    return -0.5 * (s - mean) ** 2 / var - 0.5 * np.log(var)


def _check_options(variance, centre):
    if variance not in _VARIANCES:
        raise ValueError(f"variance must be one of {_VARIANCES}; got {variance!r}")
    if centre not in _CENTRES:
        raise ValueError(f"centre must be one of {_CENTRES}; got {centre!r}")


def lira_scores(
    keep,
    stats,
    *,
    online: bool = True,
    variance: str = "per-example",
    centre: str = "mean",
    targets=None,
) -> np.ndarray:
    """LiRA scores by leave-one-out rotation: (len(targets), examples), larger = member.

    See the module docstring for the exact online and offline forms.
    """
    _check_options(variance, centre)
    keep, stats = _check_arrays(keep, stats)
    if keep.shape[0] < 3:
        raise ValueError(f"LiRA needs >= 3 models (a target and >= 2 shadows); got {keep.shape[0]}")
    targets = _check_targets(targets, keep.shape[0])
    inn, (mu_out, var_out) = _fit(keep, stats, targets, variance, centre, online)
    s = stats[targets]
    if online:
        mu_in, var_in = inn
        per_query = _log_normal(s, mu_in, var_in) - _log_normal(s, mu_out, var_out)
    else:
        per_query = log_ndtr((s - mu_out) / np.sqrt(var_out))
    return per_query.mean(-1)


def rmia_scores(keep, stats, *, a: float = 0.3, gamma: float = 1.0, targets=None) -> np.ndarray:
    """Offline RMIA (Zarifzadeh et al. 2024) by leave-one-out rotation: (targets, examples).

    ``stats`` are logit-scaled confidences; p = sigmoid(stat) is the probability of the true class,
    averaged over queries. With the OUT shadows' mean p_out(x), the offline estimate of Pr(x) is
    ((1 + a)·p_out(x) + (1 − a))/2 and ratio(x) = p_target(x)/Pr(x). The score of x is the
    fraction of the population z (the examples OUT of the target model, other than x) with
    ratio(x)/ratio(z) >= gamma, found by sorting the population's ratios once per target.
    """
    if not 0 <= a <= 1:
        raise ValueError(f"a must lie in [0, 1]; got {a!r}")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0; got {gamma!r}")
    keep, stats = _check_arrays(keep, stats)
    if keep.shape[0] < 2:
        raise ValueError(f"RMIA needs >= 2 models (a target and >= 1 shadow); got {keep.shape[0]}")
    targets = _check_targets(targets, keep.shape[0])
    p = expit(stats).mean(-1)  # (M, N)
    out = ~keep
    n_out = out.sum(0)[None, :] - out[targets]
    if n_out.min() < 1:
        raise ValueError("every example needs >= 1 OUT shadow model per target for RMIA")
    sum_out = np.where(out, p, 0.0).sum(0)[None, :] - np.where(out[targets], p[targets], 0.0)
    p_x = 0.5 * ((1.0 + a) * sum_out / n_out + (1.0 - a))
    ratio = p[targets] / p_x  # (T, N)
    scores = np.empty_like(ratio)
    for row, t in enumerate(targets):
        population = out[t]
        z = np.sort(ratio[row, population])
        if z.size < 2:
            raise ValueError("RMIA needs >= 2 population examples OUT of each target model")
        count = np.searchsorted(z, ratio[row] / gamma, side="right").astype(np.float64)
        # An OUT example is part of its own population: it must not be compared with itself.
        self_hit = population & (ratio[row] <= ratio[row] / gamma)
        scores[row] = (count - self_hit) / (z.size - population)
    return scores
