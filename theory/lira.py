"""LiRA and RMIA scoring over score arrays: pure functions shared by simulate and empirical.

The interchange format (``science.md`` in this folder, section 3): ``keep`` (models × examples,
bool: model m trained on example n) and ``stats`` (models × examples × queries, float64: e.g. the
logit-scaled confidence of each model on each query of each example).

**Evaluation without tilt.** A target model's scores must be judged against shadows that do not
include it, and for every example the shadows left must not depend on whether the target trained
on it. Two rotations are offered:

* ``rotation="pairs"`` (the default): the models come in complementary pairs, row 2k + 1 =
  ¬row 2k (``complementary_pairs`` checks it). Target t is scored against every model except t
  and its partner t ^ 1, which removes exactly one IN and one OUT model of every example: with
  M models in all, each example keeps M/2 − 1 IN and M/2 − 1 OUT shadows whatever the target's
  membership (``science.md`` counts M shadows per target, hence M + 2 models), and every model is
  a target, so nothing is trained for evaluation alone.
* ``rotation="loo"``: plain leave-one-out (every model but t). On a balanced keep matrix a member
  leaves one IN shadow fewer than a non-member, which tilts online LiRA towards "non-member" (at
  large S this alone pushes TPR below α); kept to reproduce earlier results and for dedicated
  target models (``targets`` past the shadows, e.g. ``lira_scores`` on stacked arrays).

LiRA (Carlini et al. 2022), per example and query, from the shadows' statistics:
  centre    "mean" or "median" of the IN (resp. OUT) statistics;
  variance  "per-example": the IN (resp. OUT) spread of this example;
            "global": the pooled within-example spread over all examples, separately for IN and
            OUT (never the spread between examples' means, never IN for OUT);
            "fixed": the reference code's ``fix_variance``: the spread of all IN statistics of all
            examples taken together (between-example spread included), used for IN *and* OUT
            (offline: of all OUT statistics);
  ddof      1 (sample variance, the default) or 0 (population variance, as ``np.std``);
  online    score = mean over queries of log N(s; μ_in, σ_in²) − log N(s; μ_out, σ_out²);
  offline   score = mean over queries of log Φ((s − μ_out)/σ_out): the published one-sided test
            that the target's statistic is larger than an OUT model's (large = member).
``LIRA_PRESETS["reference"]`` is the reference definition: median centre, population variance.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_expit, log_ndtr

_VARIANCES = ("per-example", "global", "fixed")
_CENTRES = ("mean", "median")
_ROTATIONS = ("pairs", "loo")
# Floor for variances, so that shadows that all agree give huge but finite scores, not NaN.
_MIN_VAR = 1e-300

#: Named option sets of ``lira_scores``: this project's default and the reference definition.
LIRA_PRESETS = {
    "mialaw": {"centre": "mean", "variance": "per-example", "ddof": 1},
    "reference": {"centre": "median", "variance": "per-example", "ddof": 0},
    "reference-fixed": {"centre": "median", "variance": "fixed", "ddof": 0},
}


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
    # NaN makes the minimum NaN and an infinity is the minimum or the maximum: two passes, no
    # temporary as large as the statistics.
    if stats.size and not (np.isfinite(stats.min()) and np.isfinite(stats.max())):
        raise ValueError("stats must be finite (no NaN or inf)")
    return keep, stats


def _check_targets(targets, models: int) -> np.ndarray:
    if targets is None:
        return np.arange(models)
    t = np.atleast_1d(np.asarray(targets))
    if not np.issubdtype(t.dtype, np.integer) or np.any(t < 0) or np.any(t >= models):
        raise ValueError(f"targets must be model indices in [0, {models}); got {targets!r}")
    return t


def complementary_pairs(keep) -> bool:
    """Whether the models come in complementary pairs: an even count and row 2k+1 = ¬row 2k."""
    keep = np.asarray(keep, dtype=bool)
    return keep.shape[0] % 2 == 0 and bool(np.all(keep[1::2] == ~keep[0::2]))


def _removed(keep: np.ndarray, targets: np.ndarray, rotation: str) -> list[np.ndarray]:
    """The models each target removes from its shadows: [targets] or [targets, partners]."""
    if rotation == "loo":
        return [targets]
    if not complementary_pairs(keep):
        raise ValueError(
            "rotation 'pairs' needs models in complementary pairs (an even number of models, "
            "row 2k+1 = not row 2k); build keep with pairs or use rotation='loo'"
        )
    return [targets, targets ^ 1]


def _shadow_counts(keep, removed, variance, online):
    """IN/OUT shadow counts per (target, example) once the removed models leave the pool."""
    n_in = keep.sum(0)[None, :] - sum(keep[r].astype(np.int64) for r in removed)
    n_out = (~keep).sum(0)[None, :] - sum((~keep[r]).astype(np.int64) for r in removed)
    # A within-example spread needs two values of an example ("fixed" pools across examples).
    need = 1 if variance == "fixed" else 2
    for name, n in (("IN", n_in), ("OUT", n_out)):
        if (online or name == "OUT") and n.min() < need:
            raise ValueError(
                f"every example needs >= {need} {name} shadow models per target for "
                f"{variance} variance; some have {int(n.min())} (use more models or a "
                "balanced keep matrix)"
            )
    return n_in, n_out


_BLOCK = 512  # examples per block of _centred: a block's (Q, M) deviations stay in cache


def _centred(keep, stats, removed=None, windows=False):
    """Sums over all models, computed once for the IN and the OUT fits.

    Deviations d from each example's mean over all models are laid out (N, Q, M), so every sum
    over models is one contiguous pass (einsum, no temporaries), and sums around the mean stay
    accurate when models are removed (no catastrophic cancellation). Since Σ_m d = 0, the OUT
    sum of d follows from the IN sum: Σ_out d = −Σ_in d. They are formed a block of examples at
    a time (each example's sums are the same bits however the examples are blocked), and only
    the deviations of the models that targets remove (``removed``; None: all) are kept, as
    columns ``col[model]`` of ``d``: one target costs one pass over the statistics.
    ``windows``: also each block's middle order statistics for the median centre (``_median``).
    """
    models, examples, queries = stats.shape
    every = removed is None or len(removed[0]) * len(removed) >= models
    kept = np.arange(models) if every else np.unique(np.concatenate(removed))
    col = np.zeros(models, dtype=np.int64)
    col[kept] = np.arange(len(kept))
    d_kept = np.empty((examples, queries, len(kept)))
    centre, s1_in, s2_in, s2_out = (np.empty((examples, queries)) for _ in range(4))
    order = _Windows(examples, queries) if windows else None
    for lo in range(0, examples, _BLOCK):
        block = slice(lo, lo + _BLOCK)
        d = np.moveaxis(stats[:, block], 0, -1).copy(order="C")
        keep_t = np.ascontiguousarray(keep[:, block].T)  # (n, M): bools transposed
        if order is not None:  # the raw values, before centring
            order.add(block, d, keep_t)
        centre[block] = d.mean(-1)
        d -= centre[block][..., None]
        w = keep_t.astype(np.float64)
        np.einsum("nqm,nm->nq", d, w, out=s1_in[block])
        np.einsum("nqm,nqm,nm->nq", d, d, w, out=s2_in[block])
        # Not Σd² − Σ_in d²: when the OUT values nearly agree that difference loses their spread.
        np.einsum("nqm,nqm,nm->nq", d, d, np.subtract(1.0, w, out=w), out=s2_out[block])
        d_kept[block] = d if every else d[:, :, kept]
    return {
        "centre": centre,
        "d": d_kept,
        "col": col,
        "keep": keep,
        "windows": None if order is None else order.by_side(),
        True: (s1_in, s2_in),
        False: (-s1_in, s2_out),
    }


class _Windows:
    """Per example and query, the middle order statistics of its IN and OUT values, filled a
    block at a time by ``mialaw.theory.median_kernel.block_windows`` on a second thread (the
    kernel runs without the GIL) while this one forms the block's sums."""

    def __init__(self, examples: int, queries: int):
        from concurrent.futures import ThreadPoolExecutor

        from . import median_kernel

        self.kernel = median_kernel.block_windows
        self.window = {side: np.empty((examples, queries, 3)) for side in (True, False)}
        self.base = {side: np.empty(examples, dtype=np.int64) for side in (True, False)}
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending = []

    def add(self, block: slice, values: np.ndarray, keep_t: np.ndarray) -> None:
        """Queue a block: ``values`` is copied (the caller centres it in place); ``keep_t`` must
        stay unchanged."""
        w, b = self.window, self.base
        outs = (w[True][block], b[True][block], w[False][block], b[False][block])
        self.pending.append(self.pool.submit(self.kernel, values.copy(), keep_t, *outs))

    def by_side(self) -> dict:
        try:
            for job in self.pending:
                job.result()  # raises what the kernel raised
        finally:
            self.pool.shutdown(wait=True)
        return {side: (self.window[side], self.base[side]) for side in (True, False)}


def _moments(centred, member, side, removed, counts, variance, ddof):
    """Mean and variance over the shadow models on ``side`` (IN: True), per target (T, N, Q)."""
    centre, d, col = centred["centre"], centred["d"], centred["col"]
    base1, base2 = centred[side]
    # (T, N, Q) arrays are updated in place: with thousands of targets, allocating fresh large
    # arrays costs more than the arithmetic.
    s1 = np.broadcast_to(base1, (len(removed[0]),) + base1.shape).copy()
    s2 = np.broadcast_to(base2, s1.shape).copy()
    for r in removed:  # the removed models' own contributions, where they are on this side
        own = np.where(member[r][:, :, None], np.moveaxis(d[:, :, col[r]], -1, 0), 0.0)
        s1 -= own
        np.square(own, out=own)
        s2 -= own
    cnt = counts[:, :, None].astype(np.float64)
    mean_d = np.divide(s1, cnt, out=s1)
    ss = np.square(mean_d)
    ss *= cnt
    np.subtract(s2, ss, out=ss)
    np.maximum(ss, 0.0, out=ss)  # within-example sum of squares
    if variance == "per-example":
        var = np.divide(ss, cnt - ddof, out=ss)
    elif variance == "global":  # pooled within-example variance, per target and query
        var = ss.sum(1, keepdims=True) / (cnt - ddof).sum(1, keepdims=True)
        var = np.broadcast_to(var, ss.shape)
    else:  # "fixed": all values of all examples together, spread between examples included
        total = cnt.sum(1, keepdims=True)
        grand = (cnt * (mean_d + centre)).sum(1, keepdims=True) / total
        # Σ (v − grand)² = Σ_n [ss_n + cnt_n (mean_n − grand)²]
        between = cnt * (mean_d + centre - grand) ** 2
        var = (ss + between).sum(1, keepdims=True) / (total - ddof)
        var = np.broadcast_to(var, ss.shape)
    mean_d += centre
    return mean_d, np.maximum(var, _MIN_VAR)


def _median(centred, values, side, removed, counts):
    """Median over the shadow models on ``side`` (IN: True), per target (T, N, Q), without
    sorting per target: under either rotation a target removes at most one value of each
    example's list (loo: the target itself; pairs: the target or its partner, whichever is on
    this side), so each example's few middle order statistics, selected once for both sides,
    give every target's median (``mialaw.theory.median_kernel``, compiled; the same values as
    sorting each list)."""
    from . import median_kernel

    # Contiguous arrays: one compiled specialisation of each kernel (cached on disk).
    keep = np.ascontiguousarray(centred["keep"])
    values = np.ascontiguousarray(values)
    window, base = centred["windows"][side]
    gone = np.stack([np.asarray(r, dtype=np.int64) for r in removed])
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    return median_kernel.rotated_medians(window, base, values, keep, side, gone, counts)


def _gaussian(stats, centred, member, side, removed, counts, variance, centre, ddof):
    mean, var = _moments(centred, member, side, removed, counts, variance, ddof)
    if centre == "median":
        mean = _median(centred, stats, side, removed, counts)
    return mean, var


def _check_options(variance, centre, rotation, ddof):
    if variance not in _VARIANCES:
        raise ValueError(f"variance must be one of {_VARIANCES}; got {variance!r}")
    if centre not in _CENTRES:
        raise ValueError(f"centre must be one of {_CENTRES}; got {centre!r}")
    if rotation not in _ROTATIONS:
        raise ValueError(f"rotation must be one of {_ROTATIONS}; got {rotation!r}")
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (population) or 1 (sample variance); got {ddof!r}")


def lira_scores(
    keep,
    stats,
    *,
    online: bool = True,
    variance: str = "per-example",
    centre: str = "mean",
    ddof: int = 1,
    rotation: str = "pairs",
    targets=None,
) -> np.ndarray:
    """LiRA scores of every target model on every example: (len(targets), examples), larger =
    member. See the module docstring for the rotations and the exact online and offline forms;
    ``LIRA_PRESETS`` holds named option sets (``**LIRA_PRESETS["reference"]``)."""
    _check_options(variance, centre, rotation, ddof)
    keep, stats = _check_arrays(keep, stats)
    if keep.shape[0] < 3:
        raise ValueError(f"LiRA needs >= 3 models (a target and >= 2 shadows); got {keep.shape[0]}")
    targets = _check_targets(targets, keep.shape[0])
    removed = _removed(keep, targets, rotation)
    n_in, n_out = _shadow_counts(keep, removed, variance, online)
    fixed_in = variance == "fixed" and online  # the reference uses IN's spread for OUT too
    # Shared by the IN and OUT fits (and their medians: the same pass over the statistics).
    centred = _centred(keep, stats, removed, windows=centre == "median")
    gaussian = dict(removed=removed, variance=variance, centre=centre, ddof=ddof)
    mu_out, var_out = _gaussian(stats, centred, ~keep, False, counts=n_out, **gaussian)
    s = stats[targets]
    if not online:
        return log_ndtr((s - mu_out) / np.sqrt(var_out)).mean(-1)
    mu_in, var_in = _gaussian(stats, centred, keep, True, counts=n_in, **gaussian)
    if fixed_in:
        var_out = var_in
    # log N(s; μ_in, v_in) − log N(s; μ_out, v_out), in place (see _moments).
    out = np.subtract(s, mu_out, out=mu_out)
    np.square(out, out=out)
    out /= var_out
    inn = np.subtract(s, mu_in, out=mu_in)
    np.square(inn, out=inn)
    inn /= var_in
    out -= inn
    out += np.log(var_out / var_in)
    out *= 0.5
    return out.mean(-1)


def _sigmoid_means(stats):
    """Per model and example, the mean over queries of p = sigmoid(s) and of q = 1 − p, each
    formed from log-sigmoids so that neither rounds: beyond a logit of ~37 sigmoid rounds to
    exactly 1, but q = sigmoid(−s) stays exact (and p likewise far below 0)."""
    return np.exp(log_expit(stats)).mean(-1), np.exp(log_expit(-stats)).mean(-1)


def _log_mean(p_bar, q_bar):
    """log p̄ from the means of p and of q = 1 − p, from whichever is accurate."""
    with np.errstate(divide="ignore"):
        return np.where(q_bar < 0.5, np.log1p(-np.minimum(q_bar, 0.5)), np.log(p_bar))


def _log_prior(p_bar, q_bar, a):
    """log Pr(x) = log(((1 + a)·p̄_out + (1 − a))/2), written as log1p(−(1 + a)/2·q̄) when p̄ is
    near 1 (no rounding to 1), else in log-sum form."""
    near_one = np.log1p(-0.5 * (1.0 + a) * np.minimum(q_bar, 0.5))
    if a < 1:
        with np.errstate(divide="ignore"):
            log_p = np.log(p_bar)
        general = np.logaddexp(np.log1p(a) - np.log(2) + log_p, np.log1p(-a) - np.log(2))
    else:
        general = _log_mean(p_bar, q_bar)
    return np.where(q_bar < 0.5, near_one, general)


def _out_means(p, q, out, removed):
    """Means of p and q over each target's OUT shadows (T, N): sums over all OUT models once,
    minus the removed models' own terms (sums of positive terms: no cancellation unless one
    removed model outweighs all the others together)."""
    sum_p, sum_q, count = (p * out).sum(0), (q * out).sum(0), out.sum(0)
    for r in removed:
        sum_p = sum_p - p[r] * out[r]
        sum_q = sum_q - q[r] * out[r]
        count = count - out[r]
    if np.min(count) < 1:
        raise ValueError("every example needs >= 1 OUT shadow model per target for RMIA")
    return sum_p / count, sum_q / count


def rmia_scores(
    keep,
    stats,
    population_stats,
    *,
    a: float = 0.3,
    gamma: float = 2.0,
    rotation: str = "pairs",
    targets=None,
) -> np.ndarray:
    """Offline RMIA (Zarifzadeh et al. 2024): (targets, examples), larger = member.

    ``stats`` (M, N[, Q]) are logit-scaled confidences of every model on the candidates;
    ``population_stats`` (M, P[, Q]) those of every model on P population examples that no model
    trained on (held out, not the target's own candidates). With p = sigmoid(stat) averaged over
    queries and the OUT shadows' mean p̄_out(x), Pr(x) = ((1 + a)·p̄_out(x) + (1 − a))/2 (for a
    population example every shadow is OUT) and log ratio(x) = log p_target(x) − log Pr(x), all in
    log space. The score of x is the fraction of the population z with
    ratio(x)/ratio(z) >= gamma (``gamma`` = 2 as in Zarifzadeh et al.'s experiments), made
    continuous between counts (``_interpolated_fraction``) so that scores do not tie.
    """
    if not 0 <= a <= 1:
        raise ValueError(f"a must lie in [0, 1]; got {a!r}")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0; got {gamma!r}")
    if rotation not in _ROTATIONS:
        raise ValueError(f"rotation must be one of {_ROTATIONS}; got {rotation!r}")
    keep, stats = _check_arrays(keep, stats)
    pop = np.asarray(population_stats, dtype=np.float64)
    pop = pop[:, :, None] if pop.ndim == 2 else pop
    if pop.ndim != 3 or pop.shape[0] != keep.shape[0] or pop.shape[2] != stats.shape[2]:
        raise ValueError(
            f"population_stats must be (models={keep.shape[0]}, P, queries={stats.shape[2]}); "
            f"got {np.shape(population_stats)}"
        )
    if pop.shape[1] < 1 or not np.all(np.isfinite(pop)):
        raise ValueError("population_stats must hold >= 1 finite population example")
    if keep.shape[0] < 2:
        raise ValueError(f"RMIA needs >= 2 models (a target and >= 1 shadow); got {keep.shape[0]}")
    targets = _check_targets(targets, keep.shape[0])
    removed = _removed(keep, targets, rotation)
    p, q = _sigmoid_means(stats)  # (M, N)
    p_pop, q_pop = _sigmoid_means(pop)  # (M, P): every model is OUT for the population
    log_ratio_x = _log_mean(p[targets], q[targets]) - _log_prior(
        *_out_means(p, q, ~keep, removed), a
    )
    everyone = np.ones(p_pop.shape, dtype=bool)
    log_ratio_z = _log_mean(p_pop[targets], q_pop[targets]) - _log_prior(
        *_out_means(p_pop, q_pop, everyone, removed), a
    )
    log_ratio_z.sort(axis=1)
    return np.stack(
        [_interpolated_fraction(z, x - np.log(gamma)) for z, x in zip(log_ratio_z, log_ratio_x)]
    )


def _interpolated_fraction(z, v):
    """RMIA's count k = #{z <= v} of sorted population values z, made continuous: (k + u)/(P + 1)
    with u in [0, 1) placing v between its neighbours z[k−1] and z[k] (beyond the ends,
    1/(1 + distance) below z[0] and 1 − 1/(1 + distance) above z[P−1]). Equal counts are then
    ordered by the likelihood ratio itself instead of tying: the counts alone tie heavily, and a
    threshold between tied scores cannot reach α. The order of distinct counts is unchanged."""
    k = np.searchsorted(z, v, side="right")
    lo = z[np.clip(k - 1, 0, z.size - 1)]
    hi = z[np.clip(k, 0, z.size - 1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = (v - lo) / (hi - lo)  # 0 < k < P: z[k−1] <= v < z[k]
    below = 1.0 / (1.0 + (z[0] - v))
    above = 1.0 - 1.0 / (1.0 + (v - z[-1]))
    u = np.where(k == 0, below, np.where(k == z.size, above, inside))
    return (k + np.clip(u, 0.0, 1.0)) / (z.size + 1)
