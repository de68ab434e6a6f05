"""Least-squares fits of the power law log10(TPR − FPR) = β_S·log10 S (+ β_C·log10 C) + β_0.

Without ``sigma``: ordinary least squares with classical standard errors and Student-t intervals.
With ``sigma`` (the standard error of each response, e.g. of log10 advantage from its interval):
weighted least squares with weights 1/σ², whose coefficient covariance (AᵀWA)⁻¹ is scaled by the
reduced χ² when that exceeds 1 (the points scatter more than their errors say, e.g. because the
curve bends) and never scaled down (the errors are a floor). Points enter a power-law fit only
where the advantage is finite and > 0; callers add their rules (resolvable, detected,
unsaturated) through ``keep``. Weighted fits report χ² = Σ((y − ŷ)/σ)², its degrees of freedom,
χ²/dof and p = P(χ²_dof ≥ χ²): whether one law fits the range at all.
``fit_power_law_corrected`` fits log10 adv = a + b·log10 S + c/√S, which tells the asymptotic
slope b from a pre-asymptotic correction (the exact Gaussian model's curve bends like that).
``local_slopes`` gives the slope between neighbouring S with an
interval: the curve's shape, which the −½ law is about.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .estimate import Estimate, check_level


@dataclass(frozen=True)
class LinearFit:
    """OLS fit y ≈ X·coef (the first coefficient is the intercept, named "intercept")."""

    names: tuple[str, ...]
    coef: np.ndarray
    stderr: np.ndarray
    r2: float
    n: int
    residual_std: float
    chi2: float = float("nan")  # Σ((y − ŷ)/σ)² of a weighted fit; NaN for OLS

    @property
    def dof(self) -> int:
        return self.n - len(self.names)

    def ci(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Student-t intervals (lower, upper) of every coefficient; infinite if no residual dof."""
        level = check_level(level)
        if self.dof <= 0:
            return np.full_like(self.coef, -np.inf), np.full_like(self.coef, np.inf)
        t = stats.t.ppf(0.5 + level / 2, self.dof)
        return self.coef - t * self.stderr, self.coef + t * self.stderr

    def estimate(self, name: str, level: float = 0.95) -> Estimate:
        if name not in self.names:
            raise ValueError(f"unknown coefficient {name!r}; the fit has {list(self.names)}")
        i = self.names.index(name)
        low, high = self.ci(level)
        return Estimate(float(low[i]), float(self.coef[i]), float(high[i]))

    def predict(self, X) -> np.ndarray:
        """Predictions for regressors X (n × k, without the intercept column)."""
        X = _design(X, len(self.names) - 1)
        return X @ self.coef

    def r2_on(self, X, y) -> float:
        """R² of this fit's predictions on other data (e.g. a held-out group); can be negative."""
        y = np.asarray(y, dtype=np.float64).ravel()
        resid = y - self.predict(X)
        total = np.sum((y - y.mean()) ** 2)
        return float(1.0 - np.sum(resid**2) / total) if total > 0 else float("nan")

    def to_dict(self, level: float = 0.95) -> dict:
        low, high = self.ci(level)
        return {
            "coefficients": {
                name: {"estimate": float(c), "stderr": float(se), "ci": [float(lo), float(hi)]}
                for name, c, se, lo, hi in zip(self.names, self.coef, self.stderr, low, high)
            },
            "r2": self.r2,
            "n": self.n,
            "level": level,
        }


def _design(X, k: int) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[1] != k:
        raise ValueError(f"regressors must be an array of shape (n, {k}); got {X.shape}")
    return np.column_stack([np.ones(len(X)), X])


def fit_linear(X, y, names=None, sigma=None) -> LinearFit:
    """Least squares of y on the columns of X plus an intercept, with standard errors and R².

    OLS without ``sigma``; weighted (1/σ²) with ``sigma``, see the module docstring.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    y = np.asarray(y, dtype=np.float64).ravel()
    if X.ndim != 2 or X.shape[0] != y.size:
        raise ValueError(f"X must be (n, k) with n = len(y) = {y.size}; got {X.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("regressors and response must be finite")
    k = X.shape[1]
    names = tuple(names) if names is not None else tuple(f"x{i}" for i in range(k))
    if len(names) != k:
        raise ValueError(f"need {k} names for {k} regressors; got {len(names)}")
    if y.size < k + 1:
        raise ValueError(f"need at least {k + 1} points to fit {k + 1} coefficients; got {y.size}")
    A = _design(X, k)
    w = np.ones_like(y) if sigma is None else _weights(sigma, y.size)
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(A * sw[:, None], y * sw, rcond=None)
    if np.linalg.matrix_rank(A) < k + 1:
        raise ValueError("the regressors are collinear (e.g. all points share one value)")
    resid = y - A @ coef
    dof = y.size - (k + 1)
    chi2 = float(np.sum(w * resid**2))
    if sigma is None:
        sigma2 = chi2 / dof if dof > 0 else float("nan")
    else:  # errors known up to a factor >= 1 (reduced χ², never below 1)
        sigma2 = max(1.0, chi2 / dof) if dof > 0 else 1.0
    cov = sigma2 * np.linalg.inv(A.T @ (A * w[:, None]))
    mean_y = np.sum(w * y) / np.sum(w)
    total = float(np.sum(w * (y - mean_y) ** 2))
    r2 = 1.0 - chi2 / total if total > 0 else float("nan")
    return LinearFit(
        names=("intercept",) + names,
        coef=coef,
        stderr=np.sqrt(np.diag(cov)),
        r2=r2,
        n=int(y.size),
        residual_std=float(np.sqrt(sigma2)),
        chi2=chi2 if sigma is not None else float("nan"),
    )


def _weights(sigma, n: int) -> np.ndarray:
    sigma = np.asarray(sigma, dtype=np.float64).ravel()
    if sigma.size != n or not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
        raise ValueError(f"sigma must hold {n} finite standard errors > 0; got {sigma.size} values")
    return 1.0 / sigma**2


@dataclass(frozen=True)
class PowerLawFit:
    """log10(advantage) = slope·log10(shots) + intercept, on the points marked in ``kept``."""

    linear: LinearFit = field(repr=False)
    kept: np.ndarray = field(repr=False)
    level: float = 0.95
    weighted: bool = False
    shots_range: tuple = (float("nan"), float("nan"))

    @property
    def slope(self) -> Estimate:
        return self.linear.estimate("log10_shots", self.level)

    @property
    def intercept(self) -> Estimate:
        return self.linear.estimate("intercept", self.level)

    @property
    def r2(self) -> float:
        return self.linear.r2

    @property
    def n(self) -> int:
        return self.linear.n

    @property
    def dof(self) -> int:
        return self.linear.dof

    @property
    def chi2(self) -> float:
        """Σ((y − ŷ)/σ)² of a weighted fit; NaN unweighted (no errors to judge it by)."""
        return self.linear.chi2 if self.weighted else float("nan")

    @property
    def chi2_dof(self) -> float:
        return _chi2_dof(self.chi2, self.dof)

    @property
    def p_value(self) -> float:
        """P(χ²_dof ≥ χ²) if the law holds and the errors are right; NaN unweighted or dof 0."""
        return _p_value(self.chi2, self.dof)

    def predict(self, shots) -> np.ndarray:
        """Advantage predicted by the fitted law at the given shots."""
        s = np.asarray(shots, dtype=np.float64)
        return 10.0 ** self.linear.predict(np.log10(s).reshape(-1, 1)).reshape(s.shape)

    def to_dict(self) -> dict:
        slope, icept = self.slope, self.intercept
        return {
            "slope": slope.estimate,
            "slope_ci": [slope.lower, slope.upper],
            "intercept": icept.estimate,
            "intercept_ci": [icept.lower, icept.upper],
            "r2": self.r2,
            "n": self.n,
            "level": self.level,
            "kept": self.kept.tolist(),
            "weighted": self.weighted,
            "shots_range": list(self.shots_range),
        } | _goodness(self.chi2, self.dof)


def _chi2_dof(chi2: float, dof: int) -> float:
    return chi2 / dof if dof > 0 and np.isfinite(chi2) else float("nan")


def _p_value(chi2: float, dof: int) -> float:
    return float(stats.chi2.sf(chi2, dof)) if dof > 0 and np.isfinite(chi2) else float("nan")


def _goodness(chi2: float, dof: int) -> dict:
    """χ², dof, χ²/dof and p for ``to_dict`` (None where there is no χ²: unweighted, dof 0)."""

    def plain(x):
        return float(x) if np.isfinite(x) else None

    return {
        "chi2": plain(chi2) if dof > 0 else None,
        "dof": int(dof),
        "chi2_dof": plain(_chi2_dof(chi2, dof)),
        "p_value": plain(_p_value(chi2, dof)),
    }


def _usable(s, adv, keep, sigma) -> tuple[np.ndarray, np.ndarray | None]:
    """Points a log-log fit can use (finite, > 0 advantage; ``keep``; finite sigma > 0)."""
    kept = np.isfinite(adv) & (adv > 0)
    if keep is not None:
        keep = np.asarray(keep, dtype=bool).ravel()
        if keep.shape != s.shape:
            raise ValueError(f"keep must have one entry per point ({s.size}); got {keep.size}")
        kept &= keep
    sig = None
    if sigma is not None:
        sig = np.asarray(sigma, dtype=np.float64).ravel()
        if sig.shape != s.shape:
            raise ValueError(f"sigma must have one entry per point ({s.size}); got {sig.size}")
        kept &= np.isfinite(sig) & (sig > 0)
    return kept, sig


def _shots_advantage(shots, advantage) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(shots, dtype=np.float64).ravel()
    adv = np.asarray(advantage, dtype=np.float64).ravel()
    if s.shape != adv.shape:
        raise ValueError(f"shots and advantage differ in size: {s.size} vs {adv.size}")
    if np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("shots must be finite and > 0")
    return s, adv


def fit_power_law(shots, advantage, *, keep=None, sigma=None, level: float = 0.95) -> PowerLawFit:
    """Fit log10(advantage) on log10(shots) over finite, positive advantages (and ``keep``).

    ``sigma``: standard errors of log10(advantage) per point for a weighted fit (points with a
    non-finite or non-positive sigma are left out).
    """
    level = check_level(level)
    s, adv = _shots_advantage(shots, advantage)
    kept, sig = _usable(s, adv, keep, sigma)
    if np.unique(s[kept]).size < 2:
        raise ValueError(
            f"a power-law fit needs positive advantages at >= 2 distinct shots; {kept.sum()} of "
            f"{s.size} points are usable"
        )
    linear = fit_linear(
        np.log10(s[kept])[:, None],
        np.log10(adv[kept]),
        names=["log10_shots"],
        sigma=None if sigma is None else sig[kept],
    )
    return PowerLawFit(
        linear=linear,
        kept=kept,
        level=level,
        weighted=sigma is not None,
        shots_range=(float(s[kept].min()), float(s[kept].max())),
    )


@dataclass(frozen=True)
class CorrectedPowerLaw:
    """log10(advantage) = a + b·log10 S + c/√S: the asymptotic slope b apart from a
    pre-asymptotic correction c/√S (which vanishes as S grows), on the points marked in ``kept``.
    """

    intercept: Estimate
    slope: Estimate  # b, the asymptotic slope
    c: Estimate
    chi2: float  # NaN unweighted
    dof: int
    n: int
    shots_range: tuple
    level: float = 0.95
    weighted: bool = False
    kept: np.ndarray = field(default=None, repr=False)

    @property
    def chi2_dof(self) -> float:
        return _chi2_dof(self.chi2, self.dof)

    @property
    def p_value(self) -> float:
        return _p_value(self.chi2, self.dof)

    def predict(self, shots) -> np.ndarray:
        s = np.asarray(shots, dtype=np.float64)
        a, b, c = self.intercept.estimate, self.slope.estimate, self.c.estimate
        return 10.0 ** (a + b * np.log10(s) + c / np.sqrt(s))

    def to_dict(self) -> dict:
        return {
            "asymptotic_slope": self.slope.estimate,
            "asymptotic_slope_ci": [self.slope.lower, self.slope.upper],
            "c": self.c.estimate,
            "c_ci": [self.c.lower, self.c.upper],
            "intercept": self.intercept.estimate,
            "intercept_ci": [self.intercept.lower, self.intercept.upper],
            "n": self.n,
            "level": self.level,
            "weighted": self.weighted,
            "shots_range": list(self.shots_range),
        } | _goodness(self.chi2, self.dof)


def fit_power_law_corrected(
    shots, advantage, *, keep=None, sigma=None, level: float = 0.95
) -> CorrectedPowerLaw:
    """Fit log10(advantage) = a + b·log10 S + c/√S over the usable points (as ``fit_power_law``:
    finite, positive advantages, ``keep``, finite sigma > 0), weighted by 1/σ² with ``sigma``.

    Three coefficients: at least 4 usable points (one residual degree of freedom) at >= 3
    distinct S are needed, else ValueError. Intervals are Student-t, the covariance scaled by the
    reduced χ² when above 1, as in ``fit_linear``.
    """
    level = check_level(level)
    s, adv = _shots_advantage(shots, advantage)
    kept, sig = _usable(s, adv, keep, sigma)
    if kept.sum() < 4 or np.unique(s[kept]).size < 3:
        raise ValueError(
            "a corrected power-law fit (a + b·log10 S + c/√S) needs >= 4 usable points at >= 3 "
            f"distinct shots; {int(kept.sum())} of {s.size} points are usable"
        )
    x = s[kept]
    linear = fit_linear(
        np.column_stack([np.log10(x), 1.0 / np.sqrt(x)]),
        np.log10(adv[kept]),
        names=["log10_shots", "inv_sqrt_shots"],
        sigma=None if sig is None else sig[kept],
    )
    return CorrectedPowerLaw(
        intercept=linear.estimate("intercept", level),
        slope=linear.estimate("log10_shots", level),
        c=linear.estimate("inv_sqrt_shots", level),
        chi2=linear.chi2 if sig is not None else float("nan"),
        dof=linear.dof,
        n=linear.n,
        shots_range=(float(x.min()), float(x.max())),
        level=level,
        weighted=sig is not None,
        kept=kept,
    )


@dataclass(frozen=True)
class LocalSlope:
    """The slope of log10(advantage) between two neighbouring S, with its interval."""

    shots_low: float
    shots_high: float
    slope: Estimate

    @property
    def shots_mid(self) -> float:
        """The geometric midpoint, where the local slope is plotted."""
        return float(np.sqrt(self.shots_low * self.shots_high))

    def to_dict(self) -> dict:
        return {
            "shots_low": self.shots_low,
            "shots_high": self.shots_high,
            "slope": self.slope.estimate,
            "slope_ci": [self.slope.lower, self.slope.upper],
        }


def local_slopes(shots, advantage, sigma, *, level: float = 0.95) -> tuple[LocalSlope, ...]:
    """Slopes of log10(advantage) between consecutive usable S (finite, > 0, finite sigma).

    ``sigma``: standard errors of log10(advantage); the two ends are taken as independent, so
    the interval is slope ± z·sqrt(σ_1² + σ_2²)/Δlog10 S (conservative when the two points share
    data and so err together).
    """
    from scipy.stats import norm

    level = check_level(level)
    s = np.asarray(shots, dtype=np.float64).ravel()
    adv = np.asarray(advantage, dtype=np.float64).ravel()
    sig = np.asarray(sigma, dtype=np.float64).ravel()
    if not (s.shape == adv.shape == sig.shape):
        raise ValueError("shots, advantage and sigma must have one entry per point")
    ok = np.isfinite(adv) & (adv > 0) & np.isfinite(sig) & (sig > 0) & (s > 0)
    order = np.argsort(s[ok], kind="stable")
    s, y, sig = s[ok][order], np.log10(adv[ok][order]), sig[ok][order]
    z = norm.ppf(0.5 + level / 2)
    out = []
    for i in range(s.size - 1):
        if s[i + 1] == s[i]:
            continue
        dx = np.log10(s[i + 1]) - np.log10(s[i])
        slope = (y[i + 1] - y[i]) / dx
        half = z * np.hypot(sig[i], sig[i + 1]) / dx
        out.append(
            LocalSlope(float(s[i]), float(s[i + 1]), Estimate(slope - half, slope, slope + half))
        )
    return tuple(out)


def log10_se(lower, upper, advantage, level: float) -> np.ndarray:
    """Standard error of log10(advantage) by the delta method from an interval's width (as
    ``TprMeasurement.log10_advantage_se``); NaN where the advantage is not positive."""
    se = (np.asarray(upper) - np.asarray(lower)) / (2.0 * stats.norm.ppf(0.5 + level / 2.0))
    adv = np.asarray(advantage, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(adv > 0, se / (adv * np.log(10.0)), np.nan)
