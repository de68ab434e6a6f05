"""Compiled LiRA scoring for the Numba engine.

``lira_pairs`` and ``lira_loo`` compute, for one query per example and the "mean" centre, exactly
what ``mialaw.theory.lira.lira_scores`` computes with ``rotation="pairs"`` (models in
complementary pairs; target t scored against all models but t and t ^ 1: no tilt) and
``rotation="loo"`` (leave-one-out; tilted towards "non-member" on a balanced keep matrix, kept to
reproduce earlier runs): online or offline, per-example or global variance, the same centring,
ddof = 1 and variance floor, in one fused pass per example instead of a dozen array passes; the
tests hold them equal to rounding.
``lira_dedicated`` scores dedicated target models against all shadows. Pooled TPRs are measured
by the shared code (``mialaw.theory.measure``, through ``measure``), not here.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from mialaw.theory.lira import complementary_pairs

_MIN_VAR = 1e-300  # as in mialaw.theory.lira
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@nb.njit(inline="always")
def _log_ndtr(z):
    """log Φ(z): erfc while it does not underflow, the asymptotic series far in the left tail."""
    if z > -20.0:
        return math.log(0.5 * math.erfc(-z / math.sqrt(2.0)))
    w = 1.0 / (z * z)
    series = 1.0 - w * (1.0 - 3.0 * w * (1.0 - 5.0 * w * (1.0 - 7.0 * w * (1.0 - 9.0 * w))))
    return -0.5 * z * z - math.log(-z) - _LOG_SQRT_2PI + math.log(series)


CHUNK = 256  # examples per work item: rows of a chunk are contiguous in memory


@nb.njit(inline="always")
def _chunk_sums(keep, stats, lo, hi, centre, tot_in, sq_in, cnt_in, tot_out, sq_out, cnt_out):
    """Per example of [lo, hi): the mean over all models (the centre, as the reference takes it)
    and the IN and OUT sums of (stat - centre), of its square, and the counts."""
    models = keep.shape[0]
    w = hi - lo
    for j in range(w):
        centre[j] = 0.0
        tot_in[j] = 0.0
        sq_in[j] = 0.0
        cnt_in[j] = 0.0
        tot_out[j] = 0.0
        sq_out[j] = 0.0
        cnt_out[j] = 0.0
    for m in range(models):
        for j in range(w):
            centre[j] += stats[m, lo + j]
    for j in range(w):
        centre[j] /= models
    for m in range(models):
        for j in range(w):
            d = stats[m, lo + j] - centre[j]
            if keep[m, lo + j]:
                tot_in[j] += d
                sq_in[j] += d * d
                cnt_in[j] += 1.0
            else:
                tot_out[j] += d
                sq_out[j] += d * d
                cnt_out[j] += 1.0


@nb.njit(inline="always")
def _leave_out(total, total_sq, count, d, own):
    """(mean of d, within sum of squares, count) after removing d if ``own`` (the target model)."""
    s1 = total - d * own
    s2 = total_sq - d * d * own
    c = count - own
    mean_d = s1 / c
    return mean_d, max(s2 - s1 * mean_d, 0.0), c


@nb.njit(parallel=True, cache=True)
def _pooled_ss(keep, stats):
    """Global variance ingredients per target model t: Σ_n ss and Σ_n (count - 1), IN and OUT."""
    models, examples = keep.shape
    chunks = (examples + CHUNK - 1) // CHUNK
    part = np.zeros((chunks, 4, models))
    for b in nb.prange(chunks):
        lo = b * CHUNK
        hi = min(examples, lo + CHUNK)
        w = hi - lo
        centre = np.empty(w)
        tin, qin, cin = np.empty(w), np.empty(w), np.empty(w)
        tout, qout, cout = np.empty(w), np.empty(w), np.empty(w)
        _chunk_sums(keep, stats, lo, hi, centre, tin, qin, cin, tout, qout, cout)
        for t in range(models):
            for j in range(w):
                d = stats[t, lo + j] - centre[j]
                own = 1.0 * keep[t, lo + j]
                _, ss, c = _leave_out(tin[j], qin[j], cin[j], d, own)
                part[b, 0, t] += ss
                part[b, 1, t] += c - 1.0
                _, ss, c = _leave_out(tout[j], qout[j], cout[j], d, 1.0 - own)
                part[b, 2, t] += ss
                part[b, 3, t] += c - 1.0
    return part  # summed over chunks by the caller: a fixed order, whatever the threads


@nb.njit(inline="always")
def _loo_var(total, total_sq, count, d, own, per_example, var_global):
    """(LOO mean of d, variance) after removing d if ``own``; the variance is the per-example
    one (per_example = 1.0) or ``var_global`` (per_example = 0.0), chosen by arithmetic so that
    the calling loop stays branch-free."""
    s1 = total - d * own
    s2 = total_sq - d * d * own
    c = count - own
    mean_d = s1 / c
    var = per_example * max(s2 - s1 * mean_d, 0.0) / (c - 1.0) + (1.0 - per_example) * var_global
    return mean_d, max(var, _MIN_VAR)


@nb.njit(parallel=True, cache=True)
def _scores_online(keep, stats, per_example, var_in_global, var_out_global):
    """Leave-one-out online LiRA scores (models × examples); see ``lira_loo``.

    A row of a chunk is one branch-free loop (vectorisable); the logarithms, which are calls,
    run in a second loop over a buffer.
    """
    models, examples = keep.shape
    out = np.empty((models, examples))
    chunks = (examples + CHUNK - 1) // CHUNK
    for b in nb.prange(chunks):
        lo = b * CHUNK
        hi = min(examples, lo + CHUNK)
        w = hi - lo
        centre = np.empty(w)
        tin, qin, cin = np.empty(w), np.empty(w), np.empty(w)
        tout, qout, cout = np.empty(w), np.empty(w), np.empty(w)
        ratio = np.empty(w)
        _chunk_sums(keep, stats, lo, hi, centre, tin, qin, cin, tout, qout, cout)
        for t in range(models):
            g_in = var_in_global[t]
            g_out = var_out_global[t]
            for j in range(w):
                d = stats[t, lo + j] - centre[j]
                own = 1.0 * keep[t, lo + j]
                mean_o, var_o = _loo_var(
                    tout[j], qout[j], cout[j], d, 1.0 - own, per_example, g_out
                )
                mean_i, var_i = _loo_var(tin[j], qin[j], cin[j], d, own, per_example, g_in)
                a = d - mean_i
                e = d - mean_o
                out[t, lo + j] = -0.5 * a * a / var_i + 0.5 * e * e / var_o
                ratio[j] = var_o / var_i
            for j in range(w):
                out[t, lo + j] += 0.5 * math.log(ratio[j])
    return out


@nb.njit(parallel=True, cache=True)
def _scores_offline(keep, stats, per_example, var_out_global):
    """Leave-one-out offline LiRA scores (models × examples); see ``lira_loo``."""
    models, examples = keep.shape
    out = np.empty((models, examples))
    chunks = (examples + CHUNK - 1) // CHUNK
    for b in nb.prange(chunks):
        lo = b * CHUNK
        hi = min(examples, lo + CHUNK)
        w = hi - lo
        centre = np.empty(w)
        tin, qin, cin = np.empty(w), np.empty(w), np.empty(w)
        tout, qout, cout = np.empty(w), np.empty(w), np.empty(w)
        z = np.empty(w)
        _chunk_sums(keep, stats, lo, hi, centre, tin, qin, cin, tout, qout, cout)
        for t in range(models):
            g_out = var_out_global[t]
            for j in range(w):
                d = stats[t, lo + j] - centre[j]
                own = 1.0 * keep[t, lo + j]
                mean_o, var_o = _loo_var(
                    tout[j], qout[j], cout[j], d, 1.0 - own, per_example, g_out
                )
                z[j] = (d - mean_o) / math.sqrt(var_o)
            for j in range(w):
                out[t, lo + j] = _log_ndtr(z[j])
    return out


def lira_loo(keep, stats, *, online: bool = True, variance: str = "per-example") -> np.ndarray:
    """LiRA scores (models × examples) by leave-one-out rotation, one query, "mean" centre.

    Same contract as ``mialaw.theory.lira.lira_scores(keep, stats, rotation="loo", online=...,
    variance=...)`` with all models as targets; inputs are assumed valid (the simulator builds
    them). On a balanced keep matrix this rotation is tilted (a member target leaves M/2 − 1 IN
    and M/2 OUT shadows, a non-member the reverse); ``lira_pairs`` is not.
    """
    if variance not in ("per-example", "global"):
        raise ValueError(f"variance must be 'per-example' or 'global'; got {variance!r}")
    keep = np.ascontiguousarray(keep, dtype=np.bool_)
    stats = np.ascontiguousarray(stats, dtype=np.float64)
    if variance == "per-example":
        var_in = var_out = np.zeros(keep.shape[0])
        per_example = 1.0
    else:
        ss_in, dof_in, ss_out, dof_out = _pooled_ss(keep, stats).sum(0)
        var_in, var_out = ss_in / dof_in, ss_out / dof_out
        per_example = 0.0
    if online:
        return _scores_online(keep, stats, per_example, var_in, var_out)
    return _scores_offline(keep, stats, per_example, var_out)


@nb.njit(inline="always")
def _pick(own, a, b):
    """a if own == 1.0 else b, by arithmetic (exact for own in {0, 1}: no branch in the loop)."""
    return own * a + (1.0 - own) * b


@nb.njit(parallel=True, cache=True)
def _pair_pooled_ss(keep, stats):
    """Global variance ingredients per model pair k (its two targets share their shadows):
    Σ_n ss and Σ_n (count - 1), IN and OUT, once the pair's IN and OUT model leave the pool."""
    models, examples = keep.shape
    chunks = (examples + CHUNK - 1) // CHUNK
    part = np.zeros((chunks, 4, models // 2))
    for b in nb.prange(chunks):
        lo = b * CHUNK
        hi = min(examples, lo + CHUNK)
        w = hi - lo
        centre = np.empty(w)
        tin, qin, cin = np.empty(w), np.empty(w), np.empty(w)
        tout, qout, cout = np.empty(w), np.empty(w), np.empty(w)
        _chunk_sums(keep, stats, lo, hi, centre, tin, qin, cin, tout, qout, cout)
        for k in range(models // 2):
            for j in range(w):
                d0 = stats[2 * k, lo + j] - centre[j]
                d1 = stats[2 * k + 1, lo + j] - centre[j]
                own = 1.0 * keep[2 * k, lo + j]
                _, ss, c = _leave_out(tin[j], qin[j], cin[j], _pick(own, d0, d1), 1.0)
                part[b, 0, k] += ss
                part[b, 1, k] += c - 1.0
                _, ss, c = _leave_out(tout[j], qout[j], cout[j], _pick(own, d1, d0), 1.0)
                part[b, 2, k] += ss
                part[b, 3, k] += c - 1.0
    return part  # summed over chunks by the caller: a fixed order, whatever the threads


@nb.njit(parallel=True, cache=True)
def _pair_online(keep, stats, per_example, var_in_global, var_out_global):
    """Pair-rotation online LiRA scores (models × examples); see ``lira_pairs``.

    Models 2k and 2k+1 remove the same two models, so one IN/OUT fit per pair and example serves
    both rows; the logarithm (a call) runs in a second loop over a buffer.
    """
    models, examples = keep.shape
    out = np.empty((models, examples))
    chunks = (examples + CHUNK - 1) // CHUNK
    for b in nb.prange(chunks):
        lo = b * CHUNK
        hi = min(examples, lo + CHUNK)
        w = hi - lo
        centre = np.empty(w)
        tin, qin, cin = np.empty(w), np.empty(w), np.empty(w)
        tout, qout, cout = np.empty(w), np.empty(w), np.empty(w)
        ratio = np.empty(w)
        _chunk_sums(keep, stats, lo, hi, centre, tin, qin, cin, tout, qout, cout)
        for k in range(models // 2):
            t0 = 2 * k
            t1 = t0 + 1
            g_in = var_in_global[k]
            g_out = var_out_global[k]
            for j in range(w):
                d0 = stats[t0, lo + j] - centre[j]
                d1 = stats[t1, lo + j] - centre[j]
                own = 1.0 * keep[t0, lo + j]
                mean_o, var_o = _loo_var(
                    tout[j], qout[j], cout[j], _pick(own, d1, d0), 1.0, per_example, g_out
                )
                mean_i, var_i = _loo_var(
                    tin[j], qin[j], cin[j], _pick(own, d0, d1), 1.0, per_example, g_in
                )
                a0 = d0 - mean_i
                e0 = d0 - mean_o
                a1 = d1 - mean_i
                e1 = d1 - mean_o
                out[t0, lo + j] = -0.5 * a0 * a0 / var_i + 0.5 * e0 * e0 / var_o
                out[t1, lo + j] = -0.5 * a1 * a1 / var_i + 0.5 * e1 * e1 / var_o
                ratio[j] = var_o / var_i
            for j in range(w):
                half_log = 0.5 * math.log(ratio[j])
                out[t0, lo + j] += half_log
                out[t1, lo + j] += half_log
    return out


@nb.njit(parallel=True, cache=True)
def _pair_offline(keep, stats, per_example, var_out_global):
    """Pair-rotation offline LiRA scores (models × examples); see ``lira_pairs``."""
    models, examples = keep.shape
    out = np.empty((models, examples))
    chunks = (examples + CHUNK - 1) // CHUNK
    for b in nb.prange(chunks):
        lo = b * CHUNK
        hi = min(examples, lo + CHUNK)
        w = hi - lo
        centre = np.empty(w)
        tin, qin, cin = np.empty(w), np.empty(w), np.empty(w)
        tout, qout, cout = np.empty(w), np.empty(w), np.empty(w)
        z0, z1 = np.empty(w), np.empty(w)
        _chunk_sums(keep, stats, lo, hi, centre, tin, qin, cin, tout, qout, cout)
        for k in range(models // 2):
            t0 = 2 * k
            t1 = t0 + 1
            g_out = var_out_global[k]
            for j in range(w):
                d0 = stats[t0, lo + j] - centre[j]
                d1 = stats[t1, lo + j] - centre[j]
                own = 1.0 * keep[t0, lo + j]
                mean_o, var_o = _loo_var(
                    tout[j], qout[j], cout[j], _pick(own, d1, d0), 1.0, per_example, g_out
                )
                scale = 1.0 / math.sqrt(var_o)
                z0[j] = (d0 - mean_o) * scale
                z1[j] = (d1 - mean_o) * scale
            for j in range(w):
                out[t0, lo + j] = _log_ndtr(z0[j])
                out[t1, lo + j] = _log_ndtr(z1[j])
    return out


def lira_pairs(keep, stats, *, online: bool = True, variance: str = "per-example") -> np.ndarray:
    """LiRA scores (models × examples) by pair rotation, one query, "mean" centre.

    ``keep`` must hold complementary model pairs (row 2k+1 = not row 2k, e.g. from
    ``samplers.draw_pair_keep``); target model t is scored against every model except t and
    t ^ 1, so every example keeps M/2 − 1 IN and M/2 − 1 OUT shadows whether or not t trained on
    it (no tilt). Same contract as ``mialaw.theory.lira.lira_scores(keep, stats,
    rotation="pairs", online=..., variance=...)`` with all models as targets.
    """

    if variance not in ("per-example", "global"):
        raise ValueError(f"variance must be 'per-example' or 'global'; got {variance!r}")
    keep = np.ascontiguousarray(keep, dtype=np.bool_)
    stats = np.ascontiguousarray(stats, dtype=np.float64)
    if keep.ndim != 2 or stats.shape != keep.shape:
        raise ValueError(f"keep and stats must be (models, examples) alike; got {keep.shape}")
    if not complementary_pairs(keep):
        raise ValueError(
            "pair rotation needs models in complementary pairs (row 2k+1 = not row 2k)"
        )
    # M/2 − 1 IN and OUT shadows per target: a variance needs two of each (with one, even the
    # pooled within-example variance has no degree of freedom: 0/0).
    if keep.shape[0] < 6:
        raise ValueError(f"pair rotation needs >= 6 models; got {keep.shape[0]}")
    if variance == "per-example":
        var_in = var_out = np.zeros(keep.shape[0] // 2)
        per_example = 1.0
    else:
        ss_in, dof_in, ss_out, dof_out = _pair_pooled_ss(keep, stats).sum(0)
        var_in, var_out = ss_in / dof_in, ss_out / dof_out
        per_example = 0.0
    if online:
        return _pair_online(keep, stats, per_example, var_in, var_out)
    return _pair_offline(keep, stats, per_example, var_out)


@nb.njit(parallel=True, cache=True)
def _shadow_fit(keep, stats):
    """Per example: IN and OUT means, within sums of squares and counts over all shadows."""
    models, examples = keep.shape
    fit = np.empty((6, examples))  # mu_in, mu_out, ss_in, ss_out, c_in, c_out
    for n in nb.prange(examples):
        s_in = 0.0
        s_out = 0.0
        c_in = 0.0
        for m in range(models):
            if keep[m, n]:
                s_in += stats[m, n]
                c_in += 1.0
            else:
                s_out += stats[m, n]
        c_out = models - c_in
        mu_in = s_in / c_in
        mu_out = s_out / c_out
        q_in = 0.0
        q_out = 0.0
        for m in range(models):
            if keep[m, n]:
                q_in += (stats[m, n] - mu_in) ** 2
            else:
                q_out += (stats[m, n] - mu_out) ** 2
        fit[0, n] = mu_in
        fit[1, n] = mu_out
        fit[2, n] = q_in
        fit[3, n] = q_out
        fit[4, n] = c_in
        fit[5, n] = c_out
    return fit


@nb.njit(parallel=True, cache=True)
def _dedicated_scores(target_stats, mu_in, mu_out, var_in, var_out, online):
    targets, examples = target_stats.shape
    out = np.empty((targets, examples))
    for t in nb.prange(targets):
        for n in range(examples):
            s = target_stats[t, n]
            b = s - mu_out[n]
            if online:
                a = s - mu_in[n]
                out[t, n] = (
                    -0.5 * a * a / var_in[n]
                    + 0.5 * b * b / var_out[n]
                    + 0.5 * math.log(var_out[n] / var_in[n])
                )
            else:
                out[t, n] = _log_ndtr(b / math.sqrt(var_out[n]))
    return out


def lira_dedicated(
    keep, stats, target_stats, *, online: bool = True, variance: str = "per-example"
) -> np.ndarray:
    """LiRA scores (target models × examples) of *dedicated* target models.

    The IN/OUT Gaussians of each example are fitted once on all shadow models (``keep``,
    ``stats``: shadows × examples, every example IN for exactly half), then applied to each
    target model's statistics. Unlike leave-one-out rotation, every example has the same number
    of IN and OUT shadows whether or not the target model trained on it. Equal to
    ``mialaw.theory.lira.lira_scores`` on the shadows stacked with one target model, that model
    being the target (the tests check this).
    """
    if variance not in ("per-example", "global"):
        raise ValueError(f"variance must be 'per-example' or 'global'; got {variance!r}")
    keep = np.ascontiguousarray(keep, dtype=np.bool_)
    stats = np.ascontiguousarray(stats, dtype=np.float64)
    target_stats = np.ascontiguousarray(target_stats, dtype=np.float64)
    mu_in, mu_out, ss_in, ss_out, c_in, c_out = _shadow_fit(keep, stats)
    if variance == "per-example":
        var_in, var_out = ss_in / (c_in - 1.0), ss_out / (c_out - 1.0)
    else:  # pooled within-example variance (numpy sums: a fixed order)
        var_in = np.full(c_in.shape, ss_in.sum() / (c_in - 1.0).sum())
        var_out = np.full(c_out.shape, ss_out.sum() / (c_out - 1.0).sum())
    var_in = np.maximum(var_in, _MIN_VAR)
    var_out = np.maximum(var_out, _MIN_VAR)
    return _dedicated_scores(target_stats, mu_in, mu_out, var_in, var_out, bool(online))
