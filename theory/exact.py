"""Exact TPR of membership tests against one target of the Gaussian model; the theorem's asymptote.

Standardise the statistic s = <x, m̂_y> on the OUT scale, z = (s - <x, m>) / sqrt(q/S). Then

    OUT: z ~ N(0, 1),     IN: z ~ N(Δ, r²),   Δ = <x, x - m> / sqrt(S q),   r² = 1 - 1/S,

so every test depends on the target only through |Δ| (the problem is symmetric under z -> -z). With
a = Φ⁻¹(α) the three tests are

* ``"lira"``  the common-scale LiRA test of the paper's lemma, TPR = Φ(a + |Δ|): the value a
  threshold test at level α would reach if IN had OUT's scale (it is the lemma's prediction, not the
  true power of that threshold under the exact IN law, which is ``"exact"``);
* ``"exact"`` the one-sided threshold at level α on the side of the IN mean, with the true IN law:
  TPR = Φ((a + |Δ|)/r). It can fall below α (|Δ| small, α < 1/2), because r < 1;
* ``"np"``    the Neyman–Pearson most powerful test. IN is narrower than OUT (r < 1), so the
  likelihood ratio is largest around c = S·Δ and the region is the interval |z - c| <= w with
  OUT-mass α. Its TPR is the ground truth that bounds every level-α test.

TPR - α is tiny at large S (1e-6 and below) and is never formed by subtracting α from a TPR: it is a
difference of normal CDFs at nearby points, computed in log space from the points and their exactly
computed distance (``log_ndtr_diff``).
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr, logsumexp, ndtri

from mialaw.theory.model import GaussianModel, check_fpr, check_shots

TESTS = ("lira", "exact", "np")

LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
# Gauss–Legendre rule for short intervals: over a width h with h·(|lo| + |hi| + 1) <= 1 the
# exponent of φ varies by at most ~1, and 12 nodes integrate it to machine precision.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(12)
_LOG_GL_W = np.log(_GL_W)


def check_test(test: str) -> str:
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}; got {test!r}")
    return test


# --------------------------------------------------------------------------- log-space normal CDF
def _log1mexp(x):
    """log(1 - exp(x)) for x <= 0, accurate in both regimes."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(x > -np.log(2.0), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def log_ndtr_diff(lo, width, hi=None):
    """(log|Φ(lo + width) - Φ(lo)|, sign) without cancellation.

    ``width`` is passed separately because it is usually known far more accurately than the
    difference of two nearby points; ``hi`` (= lo + width), when the caller knows it more
    accurately than lo + width rounds, is used for the tail forms of long intervals. Sign is +1,
    -1 or 0 (width 0 gives log 0 = -inf).
    """
    lo, width, end = np.broadcast_arrays(
        np.asarray(lo, np.float64),
        np.asarray(width, np.float64),
        np.nan if hi is None else np.asarray(hi, np.float64),
    )
    sign = np.sign(width)
    if hi is None:
        end = lo + width
    # Orient every interval upwards: [a, b] with b - a = h >= 0.
    a = np.where(width < 0, end, lo)
    b = np.where(width < 0, lo, end)
    h = np.abs(width)
    out = np.full(a.shape, -np.inf)
    with np.errstate(invalid="ignore", over="ignore"):
        small = (h > 0) & (h * (np.abs(a) + np.abs(b) + 1.0) <= 1.0)
    if np.any(small):
        a_s, h_s = a[small], h[small]
        t = a_s[..., None] + 0.5 * h_s[..., None] * (1.0 + _GL_X)
        out[small] = np.log(0.5 * h_s) + logsumexp(_LOG_GL_W - 0.5 * t * t, axis=-1) - LOG_SQRT_2PI
    big = (h > 0) & ~small
    if np.any(big):
        a_b, b_b = a[big], b[big]
        res = np.empty(a_b.shape)
        upper = a_b >= 0  # both in the upper tail: difference of survival functions
        lower = b_b <= 0  # both in the lower tail: difference of CDFs
        mid = ~upper & ~lower
        with np.errstate(invalid="ignore"):
            la, lb = log_ndtr(-a_b[upper]), log_ndtr(-b_b[upper])
            res[upper] = la + _log1mexp(lb - la)
            la, lb = log_ndtr(b_b[lower]), log_ndtr(a_b[lower])
            res[lower] = la + _log1mexp(lb - la)
            # Straddling 0 with a width that is not small: the mass is far from 0 and 1 - tails
            # is well conditioned.
            res[mid] = np.log1p(-(np.exp(log_ndtr(a_b[mid])) + np.exp(log_ndtr(-b_b[mid]))))
        out[big] = res
    return out, sign


def signed_logsumexp(logs, signs, axis=None):
    """log|Σ sign·exp(log)| and its sign (signs 0 contribute nothing)."""
    logs = np.where(signs == 0, -np.inf, logs)
    with np.errstate(divide="ignore"):
        val, sgn = logsumexp(logs, axis=axis, b=np.where(signs == 0, 1.0, signs), return_sign=True)
    return val, np.where(np.isneginf(val), 0.0, sgn)


# --------------------------------------------------------------------------- standardised kernels
def scale_ratio(shots):
    """(1 - r, r) with r = sqrt(1 - 1/S) the IN/OUT scale ratio; 1 - r exactly: (1/S)/(1 + r)."""
    r = np.sqrt(1.0 - 1.0 / shots)
    return 1.0 / (shots * (1.0 + r)), r


def _lira(d, shots, fpr):
    a = ndtri(fpr)
    return log_ndtr_diff(a, d)


def _exact(d, shots, fpr):
    a = ndtri(fpr)
    one_minus_r, r = scale_ratio(shots)
    with np.errstate(divide="ignore", invalid="ignore"):
        # (a + d)/r - a = (d + a(1 - r)) / r, formed without cancellation.
        width = (d + a * one_minus_r) / r
    la, sa = log_ndtr_diff(a, np.where(shots > 1, width, 0.0))
    # S = 1: IN is the point Δ; the threshold -a rejects it iff |Δ| >= -a.
    at_one = shots == 1
    if np.any(at_one):
        hit = d >= -a
        l1 = np.where(hit, np.log1p(-fpr), np.log(fpr))
        la = np.where(at_one, l1, la)
        sa = np.where(at_one, np.where(hit, 1.0, -1.0), sa)
    return la, sa


def region_log_masses(lo, width, d, shots):
    """For the region lo <= z <= lo + width: log OUT mass, log IN mass, (log|IN - OUT|, sign).

    IN - OUT is formed in whichever of two exact forms is better conditioned: directly (best when
    the region is a narrow interval, both masses small) or from the two boundary strips
    [Φ(lo) - Φ(lo_in)] - [Φ(hi) - Φ(hi_in)], each a normal-CDF difference over an exactly known
    width (best at large S, where IN and OUT nearly coincide and the strips are thin).
    """
    one_minus_r, r = scale_ratio(shots)
    hi = lo + width
    log_out, _ = log_ndtr_diff(lo, width)
    lo_in, hi_in = (lo - d) / r, (hi - d) / r
    log_in, _ = log_ndtr_diff(lo_in, width / r)
    # lo - lo_in = (d - (1 - r) lo) / r, and likewise at hi.
    l_low, s_low = log_ndtr_diff(lo_in, (d - one_minus_r * lo) / r, lo)
    l_high, s_high = log_ndtr_diff(hi_in, (d - one_minus_r * hi) / r, hi)
    strips, s_strips = signed_logsumexp(
        np.stack(np.broadcast_arrays(l_low, l_high)),
        np.stack(np.broadcast_arrays(s_low, -s_high)),
        axis=0,
    )
    direct, s_direct = signed_logsumexp(
        np.stack(np.broadcast_arrays(log_in, log_out)),
        np.stack(np.broadcast_arrays(np.ones_like(log_in), -np.ones_like(log_out))),
        axis=0,
    )
    # Rounding error of a signed sum scales with its largest term.
    use_strips = np.maximum(l_low, l_high) < np.maximum(log_in, log_out)
    log_adv = np.where(use_strips, strips, direct)
    sign = np.where(use_strips, s_strips, s_direct)
    return log_out, log_in, log_adv, sign


def _newton(fun, lo, hi, x0, iterations=200):
    """Vectorised safeguarded Newton for an increasing fun(p, idx) -> (value, slope) on [lo, hi]."""
    p, lo, hi = x0.copy(), lo.copy(), hi.copy()
    active = np.ones(p.shape, dtype=bool)
    for _ in range(iterations):
        idx = active.copy()
        pi = p[idx]
        g, slope = fun(pi, idx)
        lo_i = np.where(g <= 0, pi, lo[idx])
        hi_i = np.where(g >= 0, pi, hi[idx])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = pi - g / slope
        ok = np.isfinite(step) & (step > lo_i) & (step < hi_i)
        new = np.where(ok, step, 0.5 * (lo_i + hi_i))
        done = (np.abs(new - pi) <= 4e-16 * np.abs(pi)) | (g == 0) | (hi_i <= lo_i)
        p[idx], lo[idx], hi[idx] = new, lo_i, hi_i
        active[idx] = ~done
        if not np.any(active):
            break
    return p


def _log_phi(z):
    return -0.5 * z * z - LOG_SQRT_2PI


def _np_region(c, fpr):
    """The NP region |z - c| <= w with OUT mass α, as (lower end, width), c >= 0.

    Solved for the lower end t = c - w when c is large (t is then O(1) and keeps its digits, while
    w ~ c does not), and for w itself otherwise (at small α and small c the region is a tiny
    interval around c). M = Φ(c + w) - Φ(c - w) = α is solved in log space by safeguarded Newton.
    Brackets: w = max(0, c + Φ⁻¹(α)) has M <= α; w = c - Φ⁻¹((1-α)/2) has M >= α.
    """
    c, fpr = np.broadcast_arrays(np.asarray(c, np.float64), np.asarray(fpr, np.float64))
    shape = c.shape
    c, fpr = c.ravel(), fpr.ravel()
    log_alpha, a = np.log(fpr), ndtri(fpr)
    w_lo, w_hi = np.maximum(0.0, c + a), c - ndtri(0.5 * (1.0 - fpr))
    far = c + a > 1.0

    def by_width(w, ci, log_a):  # p = w
        log_m, _ = log_ndtr_diff(ci - w, 2.0 * w)
        with np.errstate(over="ignore", under="ignore"):
            dens = np.exp(_log_phi(ci + w) - log_m) + np.exp(_log_phi(ci - w) - log_m)
        return log_m - log_a, dens

    def by_end(p, ci, log_a):  # p = -t, t = c - w the lower end
        log_m, _ = log_ndtr_diff(-p, 2.0 * (ci + p))
        with np.errstate(over="ignore", under="ignore"):
            dens = np.exp(_log_phi(-p) - log_m) + np.exp(_log_phi(2.0 * ci + p) - log_m)
        return log_m - log_a, dens

    lower, width = np.empty_like(c), np.empty_like(c)
    near = ~far
    if np.any(near):
        cn, ln = c[near], log_alpha[near]
        # Initial guess from 2φ(c)w = α, clipped into the bracket.
        with np.errstate(over="ignore"):
            guess = np.clip(fpr * np.exp(0.5 * c * c) * 1.2533141373155003, w_lo, w_hi)[near]
        w = _newton(lambda w, idx: by_width(w, cn[idx], ln[idx]), w_lo[near], w_hi[near], guess)
        lower[near], width[near] = cn - w, 2.0 * w
    if np.any(far):
        cf, lf = c[far], log_alpha[far]
        # w - c, formed without cancellation (c can be ~1e6 while p is O(1)).
        p_lo, p_hi = np.maximum(a, -c)[far], -ndtri(0.5 * (1.0 - fpr))[far]
        p = _newton(
            lambda p, idx: by_end(p, cf[idx], lf[idx]), p_lo, p_hi, np.clip(a[far], p_lo, p_hi)
        )
        lower[far], width[far] = -p, 2.0 * (cf + p)
    return lower.reshape(shape), width.reshape(shape)


def _np(d, shots, fpr):
    lower, width = _np_region(shots * d, np.broadcast_to(fpr, d.shape))
    safe = np.where(shots > 1, shots, 2.0)  # S = 1 handled below
    _, _, la, sa = region_log_masses(lower, width, d, safe)
    at_one = shots == 1  # IN is a point mass: the NP test rejects it with certainty
    la = np.where(at_one, np.log1p(-fpr), la)
    sa = np.where(at_one, 1.0, sa)
    return la, sa


_KERNELS = {"lira": _lira, "exact": _exact, "np": _np}


def std_log_advantage(d, shots, fpr, test):
    """(log|TPR - α|, sign) for standardised gap |Δ| = d >= 0, broadcast over (d, shots, fpr)."""
    d, shots, fpr = np.broadcast_arrays(
        np.asarray(d, np.float64), np.asarray(shots, np.float64), np.asarray(fpr, np.float64)
    )
    return _KERNELS[test](d, shots, fpr)


def _std_tpr(d, shots, fpr, test):
    la, sa = std_log_advantage(d, shots, fpr, test)
    return np.clip(fpr + sa * np.exp(la), 0.0, 1.0)


# --------------------------------------------------------------------------- one target
def _target_delta(model: GaussianModel, x, shots, fpr, y):
    if not isinstance(model, GaussianModel):
        raise ValueError(f"model must be a GaussianModel; got {type(model).__name__}")
    s, a = check_shots(shots), check_fpr(fpr)
    gap, q = model.gap(x, y), model.quad(x)
    gap, q, s, a = np.broadcast_arrays(gap, q, s, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(gap) / np.sqrt(s * q)
    # x = 0 (q = 0): IN and OUT are the same point mass, every test has TPR = α.
    degenerate = q == 0
    return np.where(degenerate, 0.0, d), s, a, degenerate


def _target_log_advantage(model, x, shots, fpr, test, y):
    check_test(test)
    d, s, a, degenerate = _target_delta(model, x, shots, fpr, y)
    la, sa = std_log_advantage(d, s, a, test)
    return np.where(degenerate, -np.inf, la), np.where(degenerate, 0.0, sa), a


def _out(x):
    x = np.asarray(x)
    return x[()] if x.ndim == 0 else x


def tpr(model: GaussianModel, x, shots, fpr, *, test: str = "lira", y: int = 0):
    """TPR at per-example FPR α of a membership test against the target (x, y).

    Parameters
    ----------
    model : GaussianModel
    x : array (..., d)
        Target(s); leading axes broadcast against ``shots`` and ``fpr``.
    shots : float or array, >= 1
    fpr : float or array in (0, 1)
    test : {"lira", "exact", "np"}
        The lemma's common-scale LiRA value, the one-sided test with the exact unequal variances,
        or the Neyman–Pearson most powerful test (see the module docstring).
    y : int
        The target's class.
    """
    la, sa, a = _target_log_advantage(model, x, shots, fpr, test, y)
    return _out(np.clip(a + sa * np.exp(la), 0.0, 1.0))


def advantage(model: GaussianModel, x, shots, fpr, *, test: str = "lira", y: int = 0):
    """TPR - α for the target (x, y), computed without cancellation (negative for "exact" when the
    one-sided test with the true IN variance is worse than chance)."""
    la, sa, _ = _target_log_advantage(model, x, shots, fpr, test, y)
    return _out(sa * np.exp(la))


def log_advantage(model: GaussianModel, x, shots, fpr, *, test: str = "lira", y: int = 0):
    """log(TPR - α) in natural log, accurate for S up to 1e12 and α down to 1e-12.

    -inf exactly when TPR == α (gap <x, x - m> = 0 for "lira", x = 0 for every test); NaN where
    TPR < α (possible only for "exact"; see ``advantage``).
    """
    la, sa, _ = _target_log_advantage(model, x, shots, fpr, test, y)
    return _out(np.where(sa < 0, np.nan, la))


def asymptote(model: GaussianModel, x, shots, fpr, y: int = 0):
    """The theorem's large-S value of log(TPR - α):

    -½ log S - ½ Φ⁻¹(α)² + log(|<x, x - m>| / sqrt(2π q)).
    """
    if not isinstance(model, GaussianModel):
        raise ValueError(f"model must be a GaussianModel; got {type(model).__name__}")
    s, a = check_shots(shots), check_fpr(fpr)
    gap, q = model.gap(x, y), model.quad(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        const = np.log(np.abs(gap)) - 0.5 * np.log(q) - LOG_SQRT_2PI
    const = np.where(q == 0, -np.inf, const)
    return _out(asymptote_from_constant(const, s, a))


def asymptote_from_constant(log_constant, shots, fpr):
    """-½ log S - ½ Φ⁻¹(α)² + log_constant (broadcast): the theorem's form for any constant."""
    return -0.5 * np.log(shots) - 0.5 * ndtri(fpr) ** 2 + log_constant
