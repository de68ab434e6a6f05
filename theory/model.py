"""The simplified Gaussian membership model (science.md, section 2).

C classes in d dimensions; class c has mean m_c (orthonormal, e_c by default) and every example of
class c is x ~ N(m_c, Σ) with Σ = σ²I or a general SPD matrix. Training releases the class means of
S examples each; the attack statistic for a target (x, y) is s = <x, m̂_y>.

Shots S are the experiment's variable, so they are passed to the methods (vectorised) rather than
frozen into the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


def check_shots(shots) -> np.ndarray:
    """Shots as a float64 array; every value must be a finite number >= 1."""
    s = np.asarray(shots, dtype=np.float64)
    if s.size == 0:
        raise ValueError("shots must not be empty")
    if not np.all(np.isfinite(s)) or np.any(s < 1):
        raise ValueError(f"shots must be finite and >= 1 (examples per class); got {shots!r}")
    return s


def check_fpr(fpr) -> np.ndarray:
    """False-positive rates as a float64 array; every value must lie in the open interval (0, 1)."""
    a = np.asarray(fpr, dtype=np.float64)
    if a.size == 0:
        raise ValueError("fpr must not be empty")
    if not np.all(np.isfinite(a)) or np.any(a <= 0) or np.any(a >= 1):
        raise ValueError(f"fpr must lie strictly between 0 and 1; got {fpr!r}")
    return a


@dataclass(frozen=True)
class MembershipMoments:
    """Means and variances of s = <x, m̂_y> when the target is OUT of / IN the training set."""

    out_mean: np.ndarray
    out_var: np.ndarray
    in_mean: np.ndarray
    in_var: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        """IN mean minus OUT mean: <x, x - m>/S."""
        return self.in_mean - self.out_mean


@dataclass(frozen=True, eq=False)
class GaussianModel:
    """The simplified Gaussian membership model.

    Parameters
    ----------
    dim : int
        Dimension d >= 1.
    classes : int
        Number of classes C, 1 <= C <= d (the means are orthonormal, so C cannot exceed d).
    sigma : float
        Isotropic noise scale σ > 0 (Σ = σ²I); ignored when ``cov`` is given.
    cov : array (d, d), optional
        A general symmetric positive-definite covariance Σ.
    means : array (C, d), optional
        Class means with orthonormal rows; default e_0, ..., e_{C-1}.
    """

    dim: int
    classes: int = 2
    sigma: float = 1.0
    cov: np.ndarray | None = field(default=None, repr=False)
    means: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        if (
            isinstance(self.dim, bool)
            or not isinstance(self.dim, (int, np.integer))
            or self.dim < 1
        ):
            raise ValueError(f"dim must be an integer >= 1; got {self.dim!r}")
        if (
            isinstance(self.classes, bool)
            or not isinstance(self.classes, (int, np.integer))
            or not 1 <= self.classes <= self.dim
        ):
            raise ValueError(
                f"classes must be an integer with 1 <= classes <= dim={self.dim} "
                f"(class means are orthonormal); got {self.classes!r}"
            )
        object.__setattr__(self, "dim", int(self.dim))
        object.__setattr__(self, "classes", int(self.classes))
        if self.cov is None:
            sigma = float(self.sigma)
            if not np.isfinite(sigma) or sigma <= 0:
                raise ValueError(f"sigma must be a finite number > 0; got {self.sigma!r}")
            object.__setattr__(self, "sigma", sigma)
        else:
            cov = np.asarray(self.cov, dtype=np.float64)
            if cov.shape != (self.dim, self.dim):
                raise ValueError(f"cov must have shape ({self.dim}, {self.dim}); got {cov.shape}")
            if not np.all(np.isfinite(cov)) or not np.allclose(cov, cov.T, rtol=1e-12, atol=1e-12):
                raise ValueError("cov must be a finite symmetric matrix")
            if np.linalg.eigvalsh(cov).min() <= 0:
                raise ValueError("cov must be positive definite (all eigenvalues > 0)")
            object.__setattr__(self, "cov", _readonly(cov))
            object.__setattr__(self, "sigma", float("nan"))
        if self.means is None:
            object.__setattr__(self, "means", _readonly(np.eye(self.classes, self.dim)))
        else:
            means = np.asarray(self.means, dtype=np.float64)
            if means.shape != (self.classes, self.dim):
                raise ValueError(
                    f"means must have shape (classes, dim) = ({self.classes}, {self.dim}); "
                    f"got {means.shape}"
                )
            if not np.allclose(means @ means.T, np.eye(self.classes), atol=1e-9):
                raise ValueError(
                    "means must have orthonormal rows (m_c . m_k = 1 if c == k else 0)"
                )
            object.__setattr__(self, "means", _readonly(means))

    # ----------------------------------------------------------------- structure
    @property
    def isotropic(self) -> bool:
        """True when Σ = σ²I (the case with the two-dimensional (u, v) reduction)."""
        return self.cov is None

    @property
    def covariance(self) -> np.ndarray:
        """The full d × d covariance Σ."""
        if self.cov is None:
            return self.sigma**2 * np.eye(self.dim)
        return np.array(self.cov)

    def mean(self, y: int = 0) -> np.ndarray:
        """Class mean m_y."""
        if not 0 <= int(y) < self.classes:
            raise ValueError(f"class y must lie in [0, {self.classes}); got {y!r}")
        return np.array(self.means[int(y)])

    def _target(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"target x must have last dimension d={self.dim}; got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("target x must be finite")
        return x

    # ----------------------------------------------------------------- statistics
    def quad(self, x) -> np.ndarray:
        """q = xᵀΣx (vectorised over leading axes of x)."""
        x = self._target(x)
        if self.cov is None:
            return self.sigma**2 * np.einsum("...i,...i->...", x, x)
        return np.einsum("...i,ij,...j->...", x, self.cov, x)

    def gap(self, x, y: int = 0) -> np.ndarray:
        """<x, x - m_y>: S times the IN-minus-OUT mean difference of s."""
        x = self._target(x)
        return np.einsum("...i,...i->...", x, x - self.mean(y))

    def moments(self, x, shots, y: int = 0) -> MembershipMoments:
        """Exact IN/OUT moments of s = <x, m̂_y>, broadcast as x[..., d] against shots.

        OUT: N(<x, m>, q/S);  IN: N((xᵀx + (S-1)<x, m>)/S, (S-1) q / S²).
        """
        x = self._target(x)
        s = check_shots(shots)
        m = self.mean(y)
        xm = np.einsum("...i,i->...", x, m)
        xx = np.einsum("...i,...i->...", x, x)
        q = self.quad(x)
        return MembershipMoments(
            out_mean=xm + 0.0 * s,
            out_var=q / s,
            in_mean=(xx + (s - 1.0) * xm) / s,
            in_var=(s - 1.0) * q / s**2,
        )

    def delta(self, x, shots, y: int = 0) -> np.ndarray:
        """Standardised gap Δ(x, S) = <x, x - m> / sqrt(S q) (OUT scale)."""
        s = check_shots(shots)
        return self.gap(x, y) / np.sqrt(s * self.quad(x))
