"""The power law an audit fits to its measured points, its predictions and its inversions.

See ``mialaw.empirical.audit``'s docstring for the intervals beyond the measured S.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mialaw.empirical.laws import line_from_power_law
from mialaw.empirical.run_fits import fit_rule
from mialaw.theory.estimate import Estimate
from mialaw.theory.fits import fit_power_law

# The large-S slope of the law (the theory's): local slopes approach it from the steeper side once
# the advantage is unsaturated, so a straight line through steeper points under-predicts beyond
# them; the upper ends of predictions beyond the largest fitted S follow at most this slope.
THEORY_SLOPE = -0.5
MIN_POINTS = 3  # a law needs a residual degree of freedom to be checked at all


@dataclass(frozen=True)
class Law:
    """The fitted power law of one attack at one FPR (or why there is none)."""

    attack: str
    fpr: float
    shots_fitted: tuple
    line: object | None = field(default=None, repr=False)  # laws.Line (log10 S, log10 adv)
    r2: float = float("nan")
    error: str | None = None
    # Standard error of log10(advantage) of one measurement, taken from the fitted point at the
    # largest S (the protocol closest to a measurement beyond it).
    noise: float = float("nan")

    @property
    def slope(self):
        if self.line is None:
            return Estimate(math.nan, math.nan, math.nan)
        (_, _), (_, c_bb) = self.line.covariance
        half = self.line.t * math.sqrt(c_bb)
        return Estimate(self.line.slope - half, self.line.slope, self.line.slope + half)

    def predict(self, shots, *, measurement: bool = True):
        """Advantage TPR − FPR at ``shots``: ``Estimate`` (floats).

        ``measurement=True``: the interval in which a measurement at ``shots`` (this audit's
        protocol) falls, the line's band widened by one measurement's noise (added in
        quadrature on the log scale); ``False``: the band of the fitted line alone (the expected
        advantage, which the S needed is read from).
        """
        if self.line is None:
            return Estimate(math.nan, math.nan, math.nan)
        x = math.log10(shots)
        lo, est, hi = self._band(x, measurement)
        top = math.log10(max(self.shots_fitted))
        if x > top:  # beyond the data the curve may flatten to the theory's slope
            hi = max(hi, self._band(top, measurement)[2] + THEORY_SLOPE * (x - top))
        cap = 1.0 - self.fpr  # an advantage cannot exceed 1 − α
        return Estimate(*(min(float(10.0**v), cap) for v in (lo, est, hi)))

    def _band(self, x: float, measurement: bool) -> tuple[float, float, float]:
        lo, est, hi = (float(v) for v in self.line.band(x))
        if measurement and math.isfinite(self.noise) and math.isfinite(hi):
            half = math.hypot(hi - est, self.line.t * self.noise)
            lo, hi = est - half, est + half
        return lo, est, hi

    def shots_for(self, advantage: float):
        """S per class at which the law meets ``advantage``: ``Estimate`` (>= 1, inf = never)."""
        if self.line is None:
            return Estimate(math.nan, math.nan, math.nan)
        y = math.log10(advantage)
        lo, est, hi = self.line.solve(y)
        if not self.line.slope < 0:
            est = math.inf  # a law that does not fall never reaches a lower advantage
        top = math.log10(max(self.shots_fitted))
        edge = self._band(top, False)[2]
        if edge > y:  # the bound lies beyond the data: allow the flattening to the theory's slope
            hi = max(hi, top + (y - edge) / THEORY_SLOPE)
        return Estimate(*(shots_from_log10(v) for v in (lo, est, hi)))

    def to_dict(self) -> dict:
        d = {"attack": self.attack, "fpr": self.fpr, "shots_fitted": list(self.shots_fitted)}
        if self.line is None:
            return d | {"error": self.error}
        s = self.slope
        return d | {
            "slope": s.estimate,
            "slope_ci": [s.lower, s.upper],
            "intercept": self.line.intercept,
            "covariance": [list(r) for r in self.line.covariance],
            "dof": self.line.dof,
            "centre_log10_shots": self.line.centre,
            "band_quantile": self.line.t,
            "measurement_log10_se": self.noise,
            "r2": self.r2,
            "level": self.line.level,
        }


def shots_from_log10(log10_s: float) -> float:
    if math.isnan(log10_s):
        return math.nan
    if log10_s > 300:
        return math.inf
    return max(1.0, 10.0**log10_s)


def usable_points(rows, alpha) -> np.ndarray:
    """The analysis' fit rule (resolvable, detected, unsaturated), and an achieved FPR of at least
    α/2: coarse scores (RMIA's are fractions of its population, so many tie) can leave the
    ≤ α threshold far below α, and such a point measures TPR at another FPR."""
    if not rows:
        return np.zeros(0, dtype=bool)
    achieved = np.array([p["achieved_fpr"] >= alpha / 2 for p in rows])
    return fit_rule(rows, alpha) & achieved


def fit_law(points, attack, alpha, fit_octaves, level) -> Law:
    """Weighted power law over the tail of the usable points (see the module docstring)."""
    rows = sorted(
        (p for p in points if p["attack"] == attack and p["fpr"] == alpha),
        key=lambda p: p["shots"],
    )
    usable = usable_points(rows, alpha)
    shots = np.array([p["shots"] for p in rows], dtype=np.float64)
    if fit_octaves is not None and usable.any():
        usable &= shots >= shots[usable].max() / 2.0**fit_octaves * (1 - 1e-9)
    adv = np.array([np.nan if p["advantage"] is None else p["advantage"] for p in rows])
    sigma = np.array(
        [np.nan if p["log10_advantage_se"] is None else p["log10_advantage_se"] for p in rows]
    )
    fitted = tuple(int(s) for s in shots[usable])
    if len(fitted) < MIN_POINTS:
        return Law(
            attack,
            float(alpha),
            fitted,
            error=f"{len(fitted)} usable points (resolvable, detected, unsaturated) where the "
            f"fit needs >= {MIN_POINTS}",
        )
    try:
        fit = fit_power_law(shots, adv, keep=usable, sigma=sigma, level=level)
    except ValueError as err:
        return Law(attack, float(alpha), fitted, error=str(err))
    line = line_from_power_law(fit, shots, sigma)
    last = np.flatnonzero(fit.kept)[-1]
    return Law(
        attack,
        float(alpha),
        tuple(int(s) for s in shots[fit.kept]),
        line,
        fit.r2,
        noise=float(sigma[last]),
    )
