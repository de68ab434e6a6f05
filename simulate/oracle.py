"""The oracle attacker: the exact Neyman–Pearson test between the IN and OUT laws of s = z_0.

For a target with features (proj_0 = <x, m>, sqnorm = |x|², quad = q) and S shots,
OUT: N(μ_o, v_o) = N(<x, m>, q/S) and IN: N(μ_i, v_i) = N(μ_o + D, v_o·(1 − 1/S)) with
D = <x, x − m>/S. Writing e = s − μ_o, the log likelihood ratio is, without cancellation,

    log LR(s) = −½·log1p(−1/S) + (2eD − D² − e²/S) / (2 v_i).

Since v_i < v_o it is a decreasing function of |s − c| with centre c = μ_o + S·D = |x|²: the most
powerful test at per-example FPR α rejects on an interval around c. Its p-value, the OUT
probability of being at least as close to c, is with t = e/sqrt(v_o) and g = S·D/sqrt(v_o)

    p(s) = Φ(b) − Φ(a),   a = min(t, 2g − t),  b = max(t, 2g − t),

computed from upper tails on the side away from the median (no cancellation near 0 or 1).

Two uses: the *pooled* oracle thresholds log LR with one global threshold over all targets (the
optimal test of the whole game, since x has the same law IN and OUT); the *per-example-calibrated*
oracle says "member" iff p(s) <= α, whose TPR averaged over targets is the exact theory's
E_x[TPR_NP(x)] at per-example FPR α. Both need S >= 2 (at S = 1 the IN law is a point mass).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from scipy.special import log_ndtr, ndtr

_SQRT_HALF = math.sqrt(0.5)


@nb.njit(inline="always")
def _upper(t):
    """Φ̄(t) = P(Z > t)."""
    return 0.5 * math.erfc(t * _SQRT_HALF)


@nb.njit(parallel=True, cache=True)
def oracle_kernel(stats, proj0, sqnorm, quad, shots):
    """log LR (pooled score) and the NP p-value of each statistic; all arrays (n,)."""
    n = stats.shape[0]
    log_lr = np.empty(n)
    pvalue = np.empty(n)
    s = float(shots)
    for i in nb.prange(n):
        v_out = quad[i] / s
        v_in = v_out * (1.0 - 1.0 / s)
        gap = (sqnorm[i] - proj0[i]) / s  # D = <x, x - m>/S
        e = stats[i] - proj0[i]
        log_lr[i] = -0.5 * math.log1p(-1.0 / s) + (2.0 * e * gap - gap * gap - e * e / s) / (
            2.0 * v_in
        )
        sd = math.sqrt(v_out)
        t = e / sd
        g = s * gap / sd
        a = min(t, 2.0 * g - t)
        b = max(t, 2.0 * g - t)
        if a >= 0.0:
            pvalue[i] = _upper(a) - _upper(b)
        elif b <= 0.0:
            pvalue[i] = _upper(-b) - _upper(-a)
        else:
            pvalue[i] = 1.0 - _upper(b) - _upper(-a)
    return log_lr, pvalue


def oracle_numpy(stats, proj0, sqnorm, quad, shots):
    """The same as ``oracle_kernel`` in vectorised numpy (scipy's ndtr)."""
    s = float(shots)
    v_out = quad / s
    v_in = v_out * (1.0 - 1.0 / s)
    gap = (sqnorm - proj0) / s
    e = stats - proj0
    log_lr = -0.5 * np.log1p(-1.0 / s) + (2.0 * e * gap - gap * gap - e * e / s) / (2.0 * v_in)
    sd = np.sqrt(v_out)
    t = e / sd
    g = s * gap / sd
    a = np.minimum(t, 2.0 * g - t)
    b = np.maximum(t, 2.0 * g - t)
    pvalue = np.where(
        a >= 0,
        ndtr(-a) - ndtr(-b),
        np.where(b <= 0, ndtr(b) - ndtr(a), 1.0 - ndtr(-b) - ndtr(a)),
    )
    return log_lr, pvalue


def log_pvalue_reference(stats, proj0, sqnorm, quad, shots):
    """log p(s) from log-space tails (scipy log_ndtr): an independent form for tests."""
    s = float(shots)
    sd = np.sqrt(quad / s)
    t = (stats - proj0) / sd
    g = (sqnorm - proj0) / sd
    a = np.minimum(t, 2.0 * g - t)
    b = np.maximum(t, 2.0 * g - t)
    # Φ(b) − Φ(a) = Φ(−a) − Φ(−b), in logs: log Φ(−a) + log1p(−exp(log Φ(−b) − log Φ(−a))).
    hi, lo = log_ndtr(-a), log_ndtr(-b)
    upper_form = hi + np.log1p(-np.exp(lo - hi))
    hi2, lo2 = log_ndtr(b), log_ndtr(a)
    lower_form = hi2 + np.log1p(-np.exp(lo2 - hi2))
    return np.where(a >= 0, upper_form, lower_form)
