"""Least-squares fits of the power law log10(TPR − FPR) = β_S·log10 S (+ β_C·log10 C) + β_0.

Ordinary least squares with classical (homoscedastic) standard errors and Student-t intervals.
Points enter a power-law fit only where the advantage is finite and > 0; callers add the
"resolvably above zero" rule (``metrics.resolvable``) through ``keep``.
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


def fit_linear(X, y, names=None) -> LinearFit:
    """OLS of y on the columns of X plus an intercept, with standard errors and R²."""
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
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    if np.linalg.matrix_rank(A) < k + 1:
        raise ValueError("the regressors are collinear (e.g. all points share one value)")
    resid = y - A @ coef
    dof = y.size - (k + 1)
    sigma2 = float(resid @ resid / dof) if dof > 0 else float("nan")
    cov = sigma2 * np.linalg.inv(A.T @ A)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(resid @ resid) / total if total > 0 else float("nan")
    return LinearFit(
        names=("intercept",) + names,
        coef=coef,
        stderr=np.sqrt(np.diag(cov)),
        r2=r2,
        n=int(y.size),
        residual_std=float(np.sqrt(sigma2)),
    )


@dataclass(frozen=True)
class PowerLawFit:
    """log10(advantage) = slope·log10(shots) + intercept, on the points marked in ``kept``."""

    linear: LinearFit = field(repr=False)
    kept: np.ndarray = field(repr=False)
    level: float = 0.95

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
        }


def fit_power_law(shots, advantage, *, keep=None, level: float = 0.95) -> PowerLawFit:
    """Fit log10(advantage) on log10(shots) over finite, positive advantages (and ``keep``)."""
    level = check_level(level)
    s = np.asarray(shots, dtype=np.float64).ravel()
    adv = np.asarray(advantage, dtype=np.float64).ravel()
    if s.shape != adv.shape:
        raise ValueError(f"shots and advantage differ in size: {s.size} vs {adv.size}")
    if np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("shots must be finite and > 0")
    kept = np.isfinite(adv) & (adv > 0)
    if keep is not None:
        keep = np.asarray(keep, dtype=bool).ravel()
        if keep.shape != s.shape:
            raise ValueError(f"keep must have one entry per point ({s.size}); got {keep.size}")
        kept &= keep
    if np.unique(s[kept]).size < 2:
        raise ValueError(
            f"a power-law fit needs positive advantages at >= 2 distinct shots; {kept.sum()} of "
            f"{s.size} points are usable"
        )
    linear = fit_linear(np.log10(s[kept])[:, None], np.log10(adv[kept]), names=["log10_shots"])
    return PowerLawFit(linear=linear, kept=kept, level=level)
