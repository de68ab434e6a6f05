"""Shots per class for DP equivalence from the fitted laws, with intervals that say how far the
answer depends on the fit's start and on the points' errors.

A law log10 y = slope·log10 S + intercept reaches the DP bound at log10 y = target, so
S* = 10^((target − intercept)/slope) (never where the slope is >= 0). The estimate inverts the
table's fit. Its interval is a bootstrap that, in each of ``DRAWS`` draws (seeded), picks the
fit's start uniformly among every usable S from the first to the one that leaves
``MIN_POINTS`` points, draws each point's log10 value from a normal with its standard error (the
point's own for a weighted law; the full fit's residual standard deviation for an unweighted law
such as the gap law, which has no interval per point), refits and inverts; the percentile
interval of S* follows. The slope's t-interval alone treats the law as exact over the whole range,
which it is not where the curve bends (then the answer moves with the start).

S* beyond the largest S a law was fitted on is an extrapolation; the table says by how many
decades and prints every value to two significant digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .fit_quality import run_laws

DRAWS = 1000
SEED = 0
MIN_POINTS = 3


def average_target(epsilon: float, delta: float, fpr: float) -> float:
    """log10 of the advantage bound (e^ε − 1)·α + δ (TPR <= e^ε·α + δ)."""
    return math.log10((math.exp(epsilon) - 1.0) * fpr + delta)


def gap_target(epsilon: float, delta: float, fpr: float) -> float:
    """log10 of the standardised gap |Δ| at which Gaussian LiRA's TPR, Φ(Φ⁻¹(α) + |Δ|), meets
    the bound e^ε·α + δ."""
    from scipy.special import ndtri

    bound = min(math.exp(epsilon) * fpr + delta, 1 - 1e-12)
    return math.log10(float(ndtri(bound) - ndtri(fpr)))


@dataclass(frozen=True)
class DpShotsInterval:
    """Shots per class S* (whole shots, >= 1) with a bootstrap interval (inf: never inside)."""

    estimate: float
    low: float
    high: float
    largest_shots: float  # the largest S the law was fitted on
    starts: tuple  # the fit starts the bootstrap drew from
    never: float  # the fraction of draws whose law does not fall

    @property
    def decades_beyond_data(self) -> float:
        """log10(S*/largest fitted S), 0 when S* lies within the data."""
        return max(0.0, math.log10(self.estimate / self.largest_shots))

    @property
    def extrapolated(self) -> bool:
        return self.estimate > self.largest_shots


def _fits(x, y, w, start: int):
    """Weighted least squares of the rows of y on x over points start…end (closed form)."""
    x, w, y = x[start:], w[start:], y[..., start:]
    sw, sx, sxx = w.sum(), (w * x).sum(), (w * x * x).sum()
    sy, sxy = y @ w, y @ (w * x)
    slope = (sw * sxy - sx * sy) / (sw * sxx - sx**2)
    return slope, (sy - slope * sx) / sw


def _invert(slope, intercept, target) -> np.ndarray:
    """log10 S* (>= 0), +inf where the law does not fall."""
    slope, intercept = np.asarray(slope, dtype=float), np.asarray(intercept, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s = np.where(slope < 0, (target - intercept) / slope, np.inf)
    return np.maximum(log_s, 0.0)


def _whole(log_s: float) -> float:
    return float(math.ceil(10.0**log_s)) if log_s < 300 else math.inf


def dp_shots_bootstrap(
    shots,
    log_values,
    sigma,
    target: float,
    *,
    weighted: bool,
    draws: int = DRAWS,
    seed: int = SEED,
    min_points: int = MIN_POINTS,
    level: float = 0.95,
) -> DpShotsInterval:
    """S* of the law fitted to all points, with the start-and-points bootstrap interval.

    ``shots``, ``log_values`` (log10) and ``sigma`` (their standard errors) are the law's usable
    points; ``weighted``: fit with weights 1/σ² (else unweighted, σ only drawing the noise).
    """
    s = np.asarray(shots, dtype=float)
    order = np.argsort(s, kind="stable")
    s = s[order]
    x, y = np.log10(s), np.asarray(log_values, dtype=float)[order]
    sig = np.broadcast_to(np.asarray(sigma, dtype=float), s.shape)[order]
    if x.size < min_points or np.unique(x).size < 2:
        raise ValueError(f"need >= {min_points} points at >= 2 shots; got {x.size}")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(sig)) and np.all(sig >= 0)):
        raise ValueError("log values and their standard errors must be finite (errors >= 0)")
    w = 1.0 / sig**2 if weighted else np.ones_like(x)
    estimate = _whole(float(_invert(*_fits(x, y, w, 0), target)))
    n_starts = x.size - min_points + 1
    rng = np.random.default_rng(seed)
    start = rng.integers(0, n_starts, size=draws)
    ys = y + sig * rng.normal(size=(draws, x.size))
    log_s = np.empty(draws)
    for i in np.unique(start):
        rows = start == i
        log_s[rows] = _invert(*_fits(x, ys[rows], w, int(i)), target)
    tail = (1 - level) / 2
    low = float(np.quantile(log_s, tail, method="lower"))
    high = float(np.quantile(log_s, 1 - tail, method="higher"))
    return DpShotsInterval(
        estimate=estimate,
        low=_whole(low),
        high=_whole(high),
        largest_shots=float(s[-1]),
        starts=tuple(float(v) for v in s[:n_starts]),
        never=float(np.mean(np.isinf(log_s))),
    )


def sig2(value) -> str | None:
    """Two significant digits: "160", "2900", "34000", "3.0e+06"; "never" where the law does not
    reach the bound."""
    if value is None:
        return None
    value = float(value)
    if math.isinf(value):
        return "never"
    if abs(value) < 1e5:
        return f"{float(f'{value:.2g}'):.0f}"
    return f"{value:.1e}"


def law_interval(law, target: float) -> DpShotsInterval | None:
    """The bootstrap of a recomputed law (``fit_quality.Law``); None where it has no fit or too
    few points. Weighted laws draw with the points' errors, unweighted with the residual SD."""
    if law is None or law.fit is None:
        return None
    kept = law.fit.kept
    if law.sigma is not None:
        sigma, weighted = law.sigma[kept], True
    else:
        sigma, weighted = law.fit.linear.residual_std, False
        if not np.isfinite(sigma):
            return None
    try:
        return dp_shots_bootstrap(
            law.shots[kept], np.log10(law.values[kept]), sigma, target, weighted=weighted
        )
    except ValueError:
        return None


DP_LAWS = (  # column prefix, decades column, law kind
    ("empirical_average", "average_decades_beyond_data"),
    ("empirical_most_vulnerable", "most_vulnerable_decades_beyond_data"),
    ("gap_most_vulnerable", "gap_decades_beyond_data"),
)


def headline_laws(run: dict | None, attack: str) -> dict:
    """The headline run's C = 2 laws the DP table inverts: ``attack``'s average law per α (the
    profile's headline attack), the maximum example's advantage law per α and its gap law."""

    if run is None:
        return {}
    laws = run_laws(run)
    out = {}
    for law in laws["average"]:
        if law.key["attack"] == attack and law.key["classes"] == 2:
            out[("empirical_average", law.key["fpr"])] = law
    for law in laws["quantile"]:
        if law.key["quantile"] >= 1 and law.key["classes"] == 2:
            out[("empirical_most_vulnerable", law.key["fpr"])] = law
    for law in laws["gap"]:
        if law.key["quantile"] >= 1 and law.key["classes"] == 2:
            out[("gap_most_vulnerable", None)] = law
    return out


def dp_law_columns(laws: dict, epsilon: float, delta: float, fpr: float) -> dict:
    """The empirical columns of one (ε, α) row: each law's S* and interval (two significant
    digits), its decades beyond the data, and the row's furthest reach and extrapolation mark."""
    row: dict = {}
    reach = []
    for prefix, decades in DP_LAWS:
        gap = prefix.startswith("gap")
        law = laws.get((prefix, None if gap else fpr))
        target = (gap_target if gap else average_target)(epsilon, delta, fpr)
        found = law_interval(law, target)
        if found is None or math.isinf(found.estimate):
            continue
        row[prefix] = sig2(found.estimate)
        row[prefix + "_low"] = sig2(found.low)
        row[prefix + "_high"] = sig2(found.high)
        row[decades] = round(found.decades_beyond_data, 1)
        row["largest_measured_shots"] = max(
            row.get("largest_measured_shots", 0), round(found.largest_shots)
        )
        reach.append(found)
    if reach:
        row["decades_beyond_data"] = round(max(f.decades_beyond_data for f in reach), 1)
        row["extrapolated"] = "true" if any(f.extrapolated for f in reach) else "false"
    return row
