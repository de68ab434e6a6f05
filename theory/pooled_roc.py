"""LiRA's pooled-threshold TPR from per-example Gaussians (``science.md`` section 5).

If example i's statistic s is Gaussian under OUT, N(μ_out, σ_out²), and under IN, N(μ_in, σ_in²),
its LiRA score is a function of s alone, and the set of s where the score exceeds a threshold t is
a half-line (offline LiRA: log Φ((s − m_out)/v_out) is increasing in s) or the inside or outside
of an interval (online LiRA: log N(s; m_in, v_in²) − log N(s; m_out, v_out²) is quadratic in s).
The probability of that set under OUT and under IN is a sum of normal tail probabilities, so one
threshold pooled over all examples (the measurement rule of section 3) has

    FPR(t) = mean_i P_OUT,i(score_i > t),    TPR(t) = mean_i P_IN,i(score_i > t),

and the TPR at FPR α follows from solving FPR(t) = α (FPR is non-increasing in t).

The score's parameters (m, v: what the attacker estimated from its shadow models) are separate
from the distributions' (μ, σ: the truth), so an attacker's estimation noise is modelled by giving
every example R draws of its estimates (shape (N, R)); each draw counts 1/(N·R). R = 1 with the
estimates equal to the truth is the ideal attacker. Pure maths: callers make any random draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.special import ndtr

from mialaw.theory.model import check_fpr

__all__ = ["ATTACKS", "ExampleGaussians", "ScoreParameters", "pooled_tpr", "pooled_tpr_resampled"]

ATTACKS = ("lira_online", "lira_offline")


def _column(name, values, positive=False) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array (one value per example)")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")
    if positive and not np.all(a > 0):
        raise ValueError(f"{name} must be > 0 (standard deviations)")
    return a


@dataclass(frozen=True, eq=False)
class ExampleGaussians:
    """Each example's IN and OUT distribution of its statistic, N(mean, sd²); arrays (N,)."""

    mean_in: np.ndarray
    sd_in: np.ndarray
    mean_out: np.ndarray
    sd_out: np.ndarray

    def __post_init__(self):
        cols = {
            "mean_in": _column("mean_in", self.mean_in),
            "sd_in": _column("sd_in", self.sd_in, positive=True),
            "mean_out": _column("mean_out", self.mean_out),
            "sd_out": _column("sd_out", self.sd_out, positive=True),
        }
        if len({c.size for c in cols.values()}) != 1:
            raise ValueError("mean_in, sd_in, mean_out and sd_out need one value per example each")
        for name, value in cols.items():
            object.__setattr__(self, name, value)

    @property
    def size(self) -> int:
        return self.mean_in.size

    @property
    def gap(self) -> np.ndarray:
        """The standardised gap Δ = (μ_in − μ_out)/σ_out of every example."""
        return (self.mean_in - self.mean_out) / self.sd_out

    @classmethod
    def from_gap(cls, gap, sd_ratio=1.0) -> ExampleGaussians:
        """OUT = N(0, 1) and IN = N(Δ, r²) (LiRA is invariant to an affine change of s per
        example, so the gap and the ratio r = σ_in/σ_out are all that matter)."""
        gap = _column("gap", gap)
        ratio = np.broadcast_to(np.asarray(sd_ratio, dtype=np.float64), gap.shape)
        return cls(gap, ratio, np.zeros_like(gap), np.ones_like(gap))


@dataclass(frozen=True, eq=False)
class ScoreParameters:
    """What the attacker's score uses for every example: m_in, v_in, m_out, v_out, each (N, R).

    R draws per example model the noise of the attacker's estimates; see :meth:`ideal`.
    """

    mean_in: np.ndarray
    sd_in: np.ndarray
    mean_out: np.ndarray
    sd_out: np.ndarray

    def __post_init__(self):
        arrays = [np.asarray(getattr(self, k), dtype=np.float64) for k in self._fields()]
        shape = arrays[0].shape
        if len(shape) != 2 or any(a.shape != shape for a in arrays):
            raise ValueError("score parameters must be four arrays of one shape (N, R)")
        if not all(np.all(np.isfinite(a)) for a in arrays):
            raise ValueError("score parameters must be finite")
        if not (np.all(arrays[1] > 0) and np.all(arrays[3] > 0)):
            raise ValueError("the score's standard deviations must be > 0")
        for name, value in zip(self._fields(), arrays):
            object.__setattr__(self, name, value)

    @staticmethod
    def _fields():
        return ("mean_in", "sd_in", "mean_out", "sd_out")

    @classmethod
    def ideal(cls, g: ExampleGaussians) -> ScoreParameters:
        """An attacker who knows every example's Gaussians exactly (R = 1)."""
        return cls(g.mean_in[:, None], g.sd_in[:, None], g.mean_out[:, None], g.sd_out[:, None])


def _probability_outside(lo, hi, mean, sd):
    """P(s < lo or s > hi) for s ~ N(mean, sd²), lo <= hi (either may be ±inf), accurate in
    both tails."""
    a = (lo - mean) / sd
    b = (hi - mean) / sd
    return ndtr(a) + ndtr(-b)


def _regions(attack: str, p: ScoreParameters, t: float):
    """The set {s: score(s) > t} of every (example, draw) as (kind, lo, hi): kind +1 means the
    outside of [lo, hi] (a half-line when one end is infinite), kind −1 the inside."""
    shape = p.mean_in.shape
    if attack == "lira_offline":
        # log Φ((s − m_out)/v_out) is increasing in z = (s − m_out)/v_out: thresholds are set on
        # z itself (the same ROC, no loss of precision near log Φ = 0): s > m_out + v_out·t.
        return np.ones(shape), np.full(shape, -np.inf), p.mean_out + p.sd_out * t
    # online: a·s² + b·s + c > t with
    inv_in, inv_out = 1.0 / p.sd_in**2, 1.0 / p.sd_out**2
    a = 0.5 * (inv_out - inv_in)
    b = p.mean_in * inv_in - p.mean_out * inv_out
    c = 0.5 * (p.mean_out**2 * inv_out - p.mean_in**2 * inv_in) + np.log(p.sd_out / p.sd_in)
    c = c - t
    kind = np.ones(shape)
    lo = np.full(shape, -np.inf)
    hi = np.full(shape, np.inf)
    # |a| negligible against b² / |c|: the score is linear in s (equal spreads).
    linear = np.abs(a) * np.maximum(np.abs(c), 1.0) <= 1e-12 * np.maximum(b * b, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        root = -c / b
    up = linear & (b > 0)  # s > root
    down = linear & (b < 0)  # s < root
    hi = np.where(up, root, hi)
    lo = np.where(down, root, lo)
    flat = linear & (b == 0)  # constant score: all s or none
    lo = np.where(flat & (c > 0), np.inf, lo)  # outside [inf, inf]: everything
    hi = np.where(flat & (c > 0), np.inf, hi)
    # (c <= 0 on a flat score: nothing; outside [-inf, inf] is empty, the defaults)
    quad = ~linear
    disc = b * b - 4 * a * c
    real = quad & (disc > 0)
    sq = np.sqrt(np.where(real, disc, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = -0.5 * (b + np.where(b >= 0, sq, -sq))  # no cancellation
        r1, r2 = q / a, c / q
    r_lo, r_hi = np.minimum(r1, r2), np.maximum(r1, r2)
    opens_up = a > 0  # the parabola opens up: the score is large outside the roots
    lo = np.where(real, r_lo, lo)
    hi = np.where(real, r_hi, hi)
    kind = np.where(real & ~opens_up, -1.0, kind)
    # No real root: everything (a > 0) or nothing (a < 0).
    none = quad & ~real
    lo = np.where(none & opens_up, np.inf, lo)
    hi = np.where(none & opens_up, np.inf, hi)
    lo = np.where(none & ~opens_up, -np.inf, lo)
    hi = np.where(none & ~opens_up, np.inf, hi)
    return kind, lo, hi


def _pooled_probability(attack, p: ScoreParameters, mean, sd, t) -> float:
    """mean over examples and draws of P(score > t) for s ~ N(mean, sd²) (mean, sd: (N,))."""
    kind, lo, hi = _regions(attack, p, t)
    outside = _probability_outside(lo, hi, mean[:, None], sd[:, None])
    prob = np.where(kind > 0, outside, 1.0 - outside)
    return float(np.clip(prob, 0.0, 1.0).mean())


def _threshold(attack, p, truth: ExampleGaussians, alpha: float) -> float:
    """The t with pooled FPR(t) = α (FPR is non-increasing in t; found in log space)."""
    fpr = lambda t: _pooled_probability(attack, p, truth.mean_out, truth.sd_out, t)  # noqa: E731
    target = np.log(alpha)
    f = lambda t: np.log(max(fpr(t), 1e-300)) - target  # noqa: E731
    lo, hi = -1.0, 1.0
    while f(lo) < 0:
        lo *= 2.0
        if lo < -1e12:
            raise ValueError(f"no threshold reaches FPR {alpha}")
    while f(hi) > 0:
        hi *= 2.0
        if hi > 1e12:
            raise ValueError(f"no threshold brings the FPR down to {alpha}")
    return optimize.brentq(f, lo, hi, xtol=1e-12, rtol=1e-12)


def pooled_tpr(
    truth: ExampleGaussians, fpr, attack: str, score: ScoreParameters | None = None
) -> np.ndarray:
    """TPR of LiRA with one threshold pooled over the examples, at each FPR α in ``fpr``.

    truth : every example's real IN and OUT Gaussians.
    attack : "lira_online" or "lira_offline".
    score : the attacker's estimates (N, R); None: the ideal attacker (the truth itself).
    """

    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}; got {attack!r}")
    if not isinstance(truth, ExampleGaussians):
        raise ValueError("truth must be an ExampleGaussians")
    alphas = np.atleast_1d(check_fpr(fpr))
    p = ScoreParameters.ideal(truth) if score is None else score
    if p.mean_in.shape[0] != truth.size:
        raise ValueError(
            f"score parameters have {p.mean_in.shape[0]} examples; the truth has {truth.size}"
        )
    out = np.empty(alphas.size)
    for i, alpha in enumerate(alphas):
        t = _threshold(attack, p, truth, float(alpha))
        out[i] = _pooled_probability(attack, p, truth.mean_in, truth.sd_in, t)
    return out


def _example_probabilities(attack, p: ScoreParameters, mean, sd, t) -> np.ndarray:
    """P(score > t) of every example (averaged over its draws), (N,)."""
    kind, lo, hi = _regions(attack, p, t)
    outside = _probability_outside(lo, hi, mean[:, None], sd[:, None])
    return np.clip(np.where(kind > 0, outside, 1.0 - outside), 0.0, 1.0).mean(1)


def pooled_tpr_resampled(
    truth: ExampleGaussians, fpr, attack: str, score: ScoreParameters, weights, grid: int = 65
) -> np.ndarray:
    """:func:`pooled_tpr` for many reweightings of the examples at once (e.g. bootstrap
    multiplicities), (B, len(fpr)).

    ``weights`` (B, N) >= 0. Each example's IN and OUT probabilities are computed once on a grid
    of ``grid`` thresholds spanning pooled FPRs from 4α to α/4 (of the unweighted examples);
    every reweighting's FPR(t) and TPR(t) are weighted means on that grid, and its threshold at
    α is interpolated linearly in (t, log FPR). A reweighting whose FPR leaves the grid's range
    gets the grid's end (its TPR is then clipped; widen ``grid`` if that matters).
    """

    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[1] != truth.size or np.any(weights < 0):
        raise ValueError(f"weights must be (B, N = {truth.size}) and >= 0")
    weights = weights / np.maximum(weights.sum(1, keepdims=True), 1e-300)
    alphas = np.atleast_1d(check_fpr(fpr))
    out = np.empty((weights.shape[0], alphas.size))
    for i, alpha in enumerate(alphas):
        high = _threshold(attack, score, truth, min(4 * alpha, 0.999))
        low = _threshold(attack, score, truth, alpha / 4)
        ts = np.linspace(high, low, grid)  # FPR falls along the grid
        p_out = np.stack(
            [_example_probabilities(attack, score, truth.mean_out, truth.sd_out, t) for t in ts]
        )
        p_in = np.stack(
            [_example_probabilities(attack, score, truth.mean_in, truth.sd_in, t) for t in ts]
        )
        fprs = weights @ p_out.T  # (B, grid), non-increasing along the grid
        tprs = weights @ p_in.T
        log_f = np.log(np.maximum(fprs, 1e-300))
        target = np.log(alpha)
        for b in range(weights.shape[0]):
            # np.interp needs increasing x: walk the grid backwards (FPR increasing).
            out[b, i] = np.interp(target, log_f[b, ::-1], tprs[b, ::-1])
    return out
