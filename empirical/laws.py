"""Straight lines in log-log space with their full covariance: prediction bands and inversion.

A fitted power law log10(TPR − FPR) = b·log10 S + a (or the regression's b_S·log10 S + b_C·log10 C
+ b_0 at a fixed C) is used two ways by practitioners: *predict* the advantage at some S, and
*invert* for the S at which the advantage falls under a bound. Both need the intercept's and the
slope's uncertainty together (they are correlated unless x is centred), which the per-coefficient
intervals do not carry, so the fits here keep the 2 × 2 covariance:

* the band at x is a + b·x ± t·sqrt(v(x)), v(x) = c_aa + 2·c_ab·x + c_bb·x² (Student t with the
  fit's residual degrees of freedom when the scale of the errors was estimated from the
  residuals, the normal quantile when a weighted fit took its errors as known);
* the interval for the x at which the line meets y is Fieller's: every x whose band contains y.
  It is finite only when the slope is significantly non-zero (b² > t²·c_bb); otherwise the upper
  end is infinite (the data cannot say when the bound is reached). This is the band read
  sideways, so it accounts for both coefficients, unlike pivoting the line about a centre with
  the slope's interval only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mialaw.theory.estimate import Estimate

__all__ = ["Line", "line_from_power_law", "t_quantile"]


def t_quantile(level: float, dof: int) -> float:
    """Two-sided Student-t quantile; infinite without residual degrees of freedom."""
    from scipy import stats

    if dof <= 0:
        return math.inf
    return float(stats.t.ppf(0.5 + level / 2.0, dof))


@dataclass(frozen=True)
class Line:
    """y = intercept + slope·x with the coefficients' covariance [[c_aa, c_ab], [c_ab, c_bb]]."""

    intercept: float
    slope: float
    covariance: tuple  # ((c_aa, c_ab), (c_ab, c_bb))
    dof: int
    level: float = 0.95
    known_scale: bool = False

    @property
    def t(self) -> float:
        """The band's quantile: normal when the errors' scale is known (a weighted fit whose
        points scatter no more than their errors say, so nothing was estimated from the
        residuals), Student t with the residual degrees of freedom otherwise."""
        if self.known_scale:
            from scipy.stats import norm

            return float(norm.ppf(0.5 + self.level / 2.0))
        return t_quantile(self.level, self.dof)

    @property
    def centre(self) -> float:
        """The x where the band is narrowest (intercept and slope uncorrelated there)."""
        (_, c_ab), (_, c_bb) = self.covariance
        return -c_ab / c_bb if c_bb > 0 else 0.0

    def band(self, x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lower, estimate, upper) of the line at x (arrays shaped like x)."""
        x = np.asarray(x, dtype=np.float64)
        (c_aa, c_ab), (_, c_bb) = self.covariance
        y = self.intercept + self.slope * x
        var = np.maximum(c_aa + 2.0 * c_ab * x + c_bb * x * x, 0.0)
        half = self.t * np.sqrt(var) if math.isfinite(self.t) else np.full_like(y, np.inf)
        return y - half, y, y + half

    def solve(self, y: float) -> Estimate:
        """The x at which the line meets y, with Fieller's interval (see the module docstring).

        Ends are ±inf where the band never (or always) contains y on that side. The estimate is
        NaN for a flat line.
        """
        (c_aa, c_ab), (_, c_bb) = self.covariance
        a, b, t2 = self.intercept, self.slope, self.t**2
        a, b, y = float(a), float(b), float(y)
        est = (y - a) / b if b != 0 else math.nan
        if not math.isfinite(t2):
            return Estimate(-math.inf, est, math.inf)
        # (a + b·x − y)² <= t²·v(x)  <=>  q2·x² + 2·q1·x + q0 <= 0
        d = a - y
        q2 = b * b - t2 * c_bb
        q1 = b * d - t2 * c_ab
        q0 = d * d - t2 * c_aa
        if q2 <= 0:  # slope not significantly non-zero: the set is unbounded
            return Estimate(-math.inf, est, math.inf)
        root = math.sqrt(max(q1 * q1 - q2 * q0, 0.0))
        return Estimate(float((-q1 - root) / q2), float(est), float((-q1 + root) / q2))


def _covariance(x, sigma, stderr) -> np.ndarray:
    """The covariance of a (weighted) straight-line fit, recovered from its standard errors.

    ``fit_linear`` scales (AᵀWA)⁻¹ by one factor (the residual variance, or max(1, reduced χ²)
    with weights) and reports only the diagonal; the factor is read off the slope's standard
    error, and the intercept's is checked against it.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.ones_like(x) if sigma is None else 1.0 / np.asarray(sigma, dtype=np.float64) ** 2
    A = np.column_stack([np.ones_like(x), x])
    unscaled = np.linalg.inv(A.T @ (A * w[:, None]))
    scale = float(stderr[1]) ** 2 / unscaled[1, 1]
    cov = scale * unscaled
    if not np.isclose(math.sqrt(cov[0, 0]), float(stderr[0]), rtol=1e-6, atol=1e-12):
        raise RuntimeError("the fit's standard errors do not match its design (internal error)")
    return cov


def line_from_power_law(fit, shots, sigma=None) -> Line:
    """A ``Line`` in (log10 S, log10 advantage) from ``mialaw.theory.fits.PowerLawFit``.

    ``shots`` and ``sigma`` are the arrays the fit was given (all points); the fit's ``kept``
    selects the ones it used.
    """
    kept = np.asarray(fit.kept, dtype=bool)
    x = np.log10(np.asarray(shots, dtype=np.float64)[kept])
    sig = None if sigma is None else np.asarray(sigma, dtype=np.float64)[kept]
    cov = _covariance(x, sig, fit.linear.stderr)
    return Line(
        intercept=float(fit.linear.coef[0]),
        slope=float(fit.linear.coef[1]),
        covariance=((float(cov[0, 0]), float(cov[0, 1])), (float(cov[1, 0]), float(cov[1, 1]))),
        dof=int(fit.linear.dof),
        level=float(fit.level),
        # fit_linear scales weighted errors by max(1, reduced χ²): a scale of exactly 1 means
        # the errors were taken as known.
        known_scale=bool(fit.weighted and fit.linear.residual_std <= 1.0),
    )
