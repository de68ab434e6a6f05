"""Averages over the target x ~ N(m_y, Σ) by deterministic quadrature, and the pooled attack.

Every test depends on x only through the standardised gap at one shot, ζ(x) = |<x, x - m>| / sqrt(q)
(|Δ| = ζ / sqrt(S)), so one quadrature rule over ζ serves every S, α and test.

Σ = σ²I (any d): in polar coordinates about the origin, x = R·ω with t = <ω, m> = cos θ,
<x, x - m> / |x| = R - t, so ζ = |R - t| / σ and the kink of |Δ| (the sphere <x, x - m> = 0) is
ζ = 0. The density of ζ is then a one-dimensional integral over θ (``_log_zeta_density``), and
E_x f(ζ) is a 1-D integral over ζ done by composite Gauss–Legendre on panels graded towards ζ = 0
(where the NP test's TPR bends on the scale ζ ~ S^-1/2) and towards ζ = 1/σ (where the density is
not smooth), trimmed to where the density is within e^-45 of its maximum; for the one-sided
"exact" test at S < 4 the rule is rebuilt with panel ends graded towards the jump of its TPR at
ζ = -Φ⁻¹(α) sqrt(S) (a step at S = 1). (The (u, v) coordinates
of science.md give the same integral; there the integrand has a direction-dependent singularity at
x = 0 and a kink on a curve, which is why they are not used.)

General SPD Σ: a two-dimensional polar rule (radial Gauss–Legendre split at the kink R = <ω, m>,
graded towards it; angle φ split where <ω, m> changes sign), implemented for d <= 2. Larger
non-isotropic models raise ``ValueError``.

The weights are normalised by their numerical total, which is recorded (``TargetRule.mass``: 1 to
about 1e-13 over the tested range).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq
from scipy.special import gammaln, log_ndtr, logsumexp, ndtri, xlogy

from mialaw.theory.exact import (
    LOG_SQRT_2PI,
    check_test,
    log_ndtr_diff,
    region_log_masses,
    scale_ratio,
    signed_logsumexp,
    std_log_advantage,
)
from mialaw.theory.model import GaussianModel, check_fpr, check_shots

GENERAL_COV_MAX_DIM = 2
_RADIAL_NODES = 48
_ANGULAR_NODES = 48
_CUTOFF = 42.0  # log-density drop at which the rule's ranges are cut (e^-42 ~ 6e-19)


@dataclass(frozen=True, eq=False)
class TargetRule:
    """Quadrature rule for E_x[f(ζ(x))], x ~ N(m_y, Σ): nodes ζ and log weights (summing to 1)."""

    gap1: np.ndarray
    log_weight: np.ndarray
    mass: float
    # For rules over ζ: a rule with extra panel ends (see ``_zeta_rule``), else None.
    refine: Callable | None = field(default=None, repr=False)

    def mean(self, values) -> np.ndarray:
        """Σ_j w_j values[j, ...] (values indexed by node along axis 0)."""
        return np.tensordot(np.exp(self.log_weight), values, axes=(0, 0))


# --------------------------------------------------------------------------- rule construction
def _legendre(lo, hi, n):
    """Gauss–Legendre nodes and log weights on [lo, hi] (broadcast over leading axes)."""
    x, w = np.polynomial.legendre.leggauss(n)
    half = 0.5 * (hi - lo)[..., None]
    nodes = lo[..., None] + half * (1.0 + x)
    with np.errstate(divide="ignore"):
        return nodes, np.log(half) + np.log(w)


def _radial(A, B, kink, power, n, graded=0, n_panel=12):
    """Radial rule for ∫_0^∞ R^power exp(-A R²/2 + B R) f(R) dR along each direction.

    Returns nodes (J, 2n) and log weights including R^power exp(-A R²/2 + B R). Split at the kink;
    a piece of zero length gets weights 0 (log -inf).
    """
    mode = (B + np.sqrt(B * B + 4.0 * A * power)) / (2.0 * A)
    with np.errstate(divide="ignore", invalid="ignore"):
        curvature = A + np.where(mode > 0, power / np.maximum(mode, 1e-300) ** 2, 0.0)
    # log-concave: left of the mode the curvature is at least its modal value, right of it at
    # least A, so these ends bound the density by e^-_CUTOFF.
    reach = np.sqrt(2.0 * _CUTOFF)
    lo = np.maximum(0.0, mode - reach / np.sqrt(curvature))
    hi = mode + reach / np.sqrt(A)
    mid = np.clip(kink, lo, hi)
    # Panel ends: the kink, then (if graded) geometric offsets on both sides of it, then lo, hi.
    ends = [lo, hi, mid]
    scale = 1.0 / np.sqrt(A)
    for j in range(1, graded + 1):
        offset = scale * 4.0**-j
        ends += [np.clip(mid - offset, lo, hi), np.clip(mid + offset, lo, hi)]
    ends = np.sort(np.stack(ends, axis=-1), axis=-1)
    parts = [
        _legendre(ends[..., i], ends[..., i + 1], n if i in (0, ends.shape[-1] - 2) else n_panel)
        for i in range(ends.shape[-1] - 1)
    ]
    nodes = np.concatenate([p[0] for p in parts], axis=-1)
    logw = np.concatenate([p[1] for p in parts], axis=-1)
    logw = logw + xlogy(power, nodes) - 0.5 * A[..., None] * nodes**2 + B[..., None] * nodes
    return nodes, np.where(np.isnan(logw), -np.inf, logw)


def _trimmed_pieces(log_marginal, lo, hi, split, grid=1201):
    """Angular pieces [a, split], [split, b] where the marginal is within e^-CUTOFF of its max."""
    theta = np.linspace(lo, hi, grid)
    ell = log_marginal(theta)
    keep = np.nonzero(ell > np.max(ell) - _CUTOFF)[0]
    a = theta[max(keep[0] - 1, 0)]
    b = theta[min(keep[-1] + 1, grid - 1)]
    if a < split < b:
        return [(a, split), (split, b)]
    return [(a, b)]


def _polar_rule_isotropic(
    dim: int, sigma: float, n_radial: int, n_angular: int, graded: int = 0
) -> TargetRule:
    """Two-dimensional (R, θ) rule for Σ = σ²I. Not used by the public functions (the 1-D rule
    over ζ is faster and resolves the NP test's bend at ζ ~ S^-1/2); kept as an independent
    construction that the tests compare against."""
    A = 1.0 / sigma**2
    const = -0.5 * dim * np.log(2.0 * np.pi * sigma**2) - 0.5 * A
    power = dim - 1.0
    if dim == 1:
        # Two directions, x = ±R along m.
        t = np.array([1.0, -1.0])
        log_ang = np.zeros(2)
    else:
        # Surface of S^(d-2) times sin^(d-2) θ dθ.
        log_area = np.log(2.0) + 0.5 * (dim - 1) * np.log(np.pi) - gammaln(0.5 * (dim - 1))

        def log_marginal(theta):
            t = np.cos(theta)
            _, lw = _radial(np.full(t.shape, A), A * t, t, power, 16)
            return xlogy(dim - 2.0, np.sin(theta)) + logsumexp(lw, axis=-1)

        thetas, logws = [], []
        for a, b in _trimmed_pieces(log_marginal, 0.0, np.pi, 0.5 * np.pi):
            th, lw = _legendre(np.array(a), np.array(b), n_angular)
            thetas.append(th)
            logws.append(lw)
        theta = np.concatenate(thetas)
        t = np.cos(theta)
        log_ang = log_area + np.concatenate(logws) + xlogy(dim - 2.0, np.sin(theta))
    R, logw = _radial(np.full(t.shape, A), A * t, t, power, n_radial, graded)
    gap1 = np.abs(R - t[:, None]) / sigma
    return _normalised(gap1, logw + log_ang[:, None] + const)


def _log_zeta_density(z, dim: int, sigma: float) -> np.ndarray:
    """log density of ζ = |<x, x - m>| / sqrt(q) for x ~ N(m, σ²I), at z >= 0 (vector).

    In polar coordinates x = R ω with t = <ω, m> = cos θ, ζ = |R - t| / σ, so R = t ± σζ and
    R² - 2Rt + 1 = σ²ζ² + sin²θ: for d >= 2

        p(z) = σ (2πσ²)^(-d/2) |S^(d-2)| e^(-z²/2) ∫_0^π sin^(d-2)θ e^(-sin²θ/(2σ²))
               [(cos θ + σz)_+^(d-1) + (cos θ - σz)_+^(d-1)] dθ,

    and for d = 1 the half-normal density 2φ(z). The θ-integral is split where the branches
    vanish (cos θ = ∓σz) and done by composite Gauss–Legendre with panels no wider than the
    angular scales min(σ, 1/sqrt(d)).
    """
    z = np.asarray(z, dtype=np.float64)
    if dim == 1:
        return np.log(2.0) - 0.5 * z * z - LOG_SQRT_2PI
    log_area = np.log(2.0) + 0.5 * (dim - 1) * np.log(np.pi) - gammaln(0.5 * (dim - 1))
    const = np.log(sigma) - 0.5 * dim * np.log(2.0 * np.pi * sigma**2) + log_area
    width = min(2.0 * sigma, 2.0 / np.sqrt(dim), 0.1)
    panels = int(np.ceil(np.pi / width))
    x, w = np.polynomial.legendre.leggauss(16)
    u = (np.arange(panels)[:, None] + 0.5 * (1.0 + x)).ravel() / panels  # nodes in (0, 1)
    log_w = np.log(np.tile(w, panels) / (2.0 * panels))
    sz = sigma * z[:, None]
    terms = []
    for sign in (1.0, -1.0):
        # θ from 0 to where cos θ + sign·σz reaches 0 (or π).
        end = np.arccos(np.clip(-sign * sz, -1.0, 1.0))
        theta = end * u
        c = np.cos(theta) + sign * sz
        log_f = (
            xlogy(dim - 2.0, np.sin(theta))
            - 0.5 * np.sin(theta) ** 2 / sigma**2
            + xlogy(dim - 1.0, np.maximum(c, 0.0))
        )
        with np.errstate(divide="ignore"):
            terms.append(logsumexp(log_f + log_w, axis=-1) + np.log(end[:, 0]))
    return const - 0.5 * z * z + np.logaddexp(terms[0], terms[1])


def _zeta_rule(
    dim: int,
    sigma: float,
    panel_nodes: int = 24,
    panel_width: float = 0.25,
    grading: float = 1.5,
    extra_ends=(),
) -> TargetRule:
    """1-D rule over ζ for Σ = σ²I: composite Gauss–Legendre on panels graded geometrically
    towards ζ = 0 (the kink, where the NP test's TPR bends on the scale ζ ~ S^-1/2), with a
    panel end at ζ = 1/σ (where the density's branches end, also graded), trimmed to where the
    density is within e^-45 of its maximum. ``extra_ends`` adds panel ends (for integrands with
    a transition the fixed panels do not see)."""
    top = np.sqrt(dim) + 16.0
    grid = np.linspace(0.0, top, 641)
    log_p = _log_zeta_density(grid, dim, sigma)
    keep = np.nonzero(log_p > np.max(log_p) - 45.0)[0]
    step = grid[1] - grid[0]
    z_lo = grid[max(keep[0] - 1, 0)]
    z_hi = grid[min(keep[-1] + 1, grid.size - 1)] + (step if keep[-1] == grid.size - 1 else 0.0)
    ends = [z_lo, z_hi]
    if z_lo == 0.0:
        ends += list(grading ** -np.arange(1, int(np.ceil(30 * np.log(2) / np.log(grading))) + 1))
        ends.append(0.5 * step)
    ends += list(np.arange(np.ceil(z_lo / panel_width) * panel_width, z_hi, panel_width))
    if dim >= 2 and z_lo < 1.0 / sigma < z_hi:
        # The branches end at ζ = 1/σ like |1 - σζ|^((d+1)/2): grade towards it from both sides.
        offsets = 0.5 * 4.0 ** -np.arange(0, 16)
        ends += [1.0 / sigma] + list(1.0 / sigma - offsets) + list(1.0 / sigma + offsets)
    ends += list(extra_ends)
    ends = np.unique(np.clip(np.array(ends), z_lo, z_hi))
    nodes, log_w = _legendre(ends[:-1], ends[1:], panel_nodes)
    nodes, log_w = nodes.ravel(), log_w.ravel()
    return _normalised(nodes, log_w + _log_zeta_density(nodes, dim, sigma))


def _general_rule(cov, mean, n_radial: int, n_angular: int) -> TargetRule:
    """d = 2, general SPD Σ: ω(φ) = cos φ·m + sin φ·m⊥, φ split where <ω, m> changes sign."""
    precision = np.linalg.inv(cov)
    perp = np.array([-mean[1], mean[0]])
    const = -np.log(2.0 * np.pi) - 0.5 * np.linalg.slogdet(cov)[1] - 0.5 * mean @ precision @ mean
    phis, logws = [], []
    for a, b in [(-0.5 * np.pi, 0.5 * np.pi), (0.5 * np.pi, 1.5 * np.pi)]:
        ph, lw = _legendre(np.array(a), np.array(b), 2 * n_angular)
        phis.append(ph)
        logws.append(lw)
    phi = np.concatenate(phis)
    omega = np.cos(phi)[:, None] * mean + np.sin(phi)[:, None] * perp
    A = np.einsum("ji,ik,jk->j", omega, precision, omega)
    B = omega @ precision @ mean
    kink = np.cos(phi)
    R, logw = _radial(A, B, kink, 1.0, n_radial, graded=12)
    scale = np.sqrt(np.einsum("ji,ik,jk->j", omega, cov, omega))
    gap1 = np.abs(R - kink[:, None]) / scale[:, None]
    return _normalised(gap1, logw + np.concatenate(logws)[:, None] + const)


def _normalised(gap1, logw) -> TargetRule:
    gap1, logw = gap1.ravel(), logw.ravel()
    keep = np.isfinite(logw)
    gap1, logw = gap1[keep], logw[keep]
    log_mass = logsumexp(logw)
    gap1.setflags(write=False)
    logw = logw - log_mass
    logw.setflags(write=False)
    return TargetRule(gap1=gap1, log_weight=logw, mass=float(np.exp(log_mass)))


@lru_cache(maxsize=64)
def _cached_iso(dim, sigma):
    return replace(
        _zeta_rule(dim, sigma), refine=lambda ends: _zeta_rule(dim, sigma, extra_ends=ends)
    )


@lru_cache(maxsize=16)
def _cached_general(cov_bytes, mean_bytes, n_radial, n_angular):
    cov = np.frombuffer(cov_bytes).reshape(2, 2)
    return _general_rule(cov, np.frombuffer(mean_bytes), n_radial, n_angular)


def target_rule(model: GaussianModel, y: int = 0) -> TargetRule:
    """The quadrature rule over targets x ~ N(m_y, Σ) (cached per model parameters)."""
    if not isinstance(model, GaussianModel):
        raise ValueError(f"model must be a GaussianModel; got {type(model).__name__}")
    if model.isotropic:
        return _cached_iso(model.dim, model.sigma)
    cov = model.covariance
    scale = cov[0, 0]
    if np.allclose(cov, scale * np.eye(model.dim), rtol=1e-13, atol=0.0):
        return _cached_iso(model.dim, float(np.sqrt(scale)))
    if model.dim > GENERAL_COV_MAX_DIM:
        raise ValueError(
            "averages over x for a general (non-isotropic) covariance are implemented for "
            f"dim <= {GENERAL_COV_MAX_DIM}; got dim={model.dim} (use sigma for Σ = σ²I, any dim)"
        )
    mean = model.mean(y)
    return _cached_general(
        np.ascontiguousarray(cov).tobytes(), mean.tobytes(), _RADIAL_NODES, _ANGULAR_NODES
    )


# --------------------------------------------------------------------------- per-example averages
def _grid(shots, fpr):
    s, a = np.broadcast_arrays(check_shots(shots), check_fpr(fpr))
    return s, a


def _average_signed_log_advantage(rule, shots, fpr, test, chunk=400_000):
    """(log|E_x[TPR(x)] - α|, sign) over the broadcast (shots, fpr) grid."""
    check_test(test)
    s, a = _grid(shots, fpr)
    flat_s, flat_a = s.ravel(), a.ravel()
    vals, sgns = np.empty(flat_s.shape), np.empty(flat_s.shape)
    step = max(1, chunk // rule.gap1.size)
    for k in range(0, flat_s.size, step):
        vals[k : k + step], sgns[k : k + step] = _rule_mean(
            rule, flat_s[k : k + step], flat_a[k : k + step], test
        )
    if test == "exact" and rule.refine is not None:
        # Near S = 1 the one-sided test's TPR Φ((a + ζ/sqrt(S))/r) jumps from 0 to 1 around
        # ζ* = -a sqrt(S) over a width sqrt(S - 1): panel ends graded towards ζ*.
        for k in np.nonzero((flat_s < 4.0) & (flat_a < 0.5))[0]:
            centre = -ndtri(flat_a[k]) * np.sqrt(flat_s[k])
            width = np.sqrt(flat_s[k] - 1.0)
            offsets = width * 1.5 ** np.arange(-25, 4) if width > 0 else np.array([])
            fine = rule.refine(tuple(np.r_[centre, centre - offsets, centre + offsets]))
            vals[k : k + 1], sgns[k : k + 1] = _rule_mean(
                fine, flat_s[k : k + 1], flat_a[k : k + 1], test
            )
    return vals.reshape(s.shape), sgns.reshape(s.shape), a


def _rule_mean(rule, shots, fpr, test):
    d = rule.gap1[:, None] / np.sqrt(shots)[None, :]
    la, sa = std_log_advantage(d, shots[None, :], fpr[None, :], test)
    return signed_logsumexp(la + rule.log_weight[:, None], sa, axis=0)


def _out(x):
    x = np.asarray(x)
    return x[()] if x.ndim == 0 else x


def average_tpr(model: GaussianModel, shots, fpr, *, test: str = "lira", y: int = 0):
    """E_x[TPR(x)] at PER-EXAMPLE FPR α (each target's test at its own level α), x ~ N(m_y, Σ).

    Not the pooled attack (one global threshold; see ``pooled_tpr``).
    """
    v, g, a = _average_signed_log_advantage(target_rule(model, y), shots, fpr, test)
    return _out(np.clip(a + g * np.exp(v), 0.0, 1.0))


def average_advantage(model: GaussianModel, shots, fpr, *, test: str = "lira", y: int = 0):
    """E_x[TPR(x)] - α at per-example FPR α, without cancellation."""
    v, g, _ = _average_signed_log_advantage(target_rule(model, y), shots, fpr, test)
    return _out(g * np.exp(v))


def average_log_advantage(model: GaussianModel, shots, fpr, *, test: str = "lira", y: int = 0):
    """log(E_x[TPR(x)] - α) (natural log) at per-example FPR α; NaN where the average is below α."""
    v, g, _ = _average_signed_log_advantage(target_rule(model, y), shots, fpr, test)
    return _out(np.where(g < 0, np.nan, v))


def average_asymptote(model: GaussianModel, shots, fpr, y: int = 0):
    """Large-S value of log(E_x[TPR] - α): -½ log S - ½ Φ⁻¹(α)² + log(E_x[ζ] / sqrt(2π)),
    ζ = |<x, x - m>| / sqrt(q) (the per-target theorem averaged: the advantage is linear in ζ)."""
    rule = target_rule(model, y)
    s, a = _grid(shots, fpr)
    log_mean = logsumexp(rule.log_weight, b=rule.gap1)
    return _out(-0.5 * np.log(s) - 0.5 * ndtri(a) ** 2 + log_mean - LOG_SQRT_2PI)


# --------------------------------------------------------------------------- pooled attack
@dataclass(frozen=True)
class PooledTpr:
    """The pooled attack: one global threshold on a per-example statistic over all targets.

    ``tpr`` is the TPR at GLOBAL FPR ``fpr`` (averaged over members and non-members of all targets),
    not an average of per-example TPRs at per-example FPR.
    """

    shots: np.ndarray
    fpr: np.ndarray
    tpr: np.ndarray
    advantage: np.ndarray
    log_advantage: np.ndarray
    threshold: np.ndarray
    achieved_fpr: np.ndarray
    statistic: str


STATISTICS = ("lr", "lira")


def _pooled_masses(rule, shots, tau, statistic):
    """Per node: log OUT mass, (log|IN - OUT|, sign) of the region {statistic >= tau}; S > 1."""
    d = rule.gap1 / np.sqrt(shots)
    one_minus_r, r = scale_ratio(shots)
    if statistic == "lira":
        # Common-scale score Δz - Δ²/2 >= τ  <=>  z >= z_τ = (τ + Δ²/2) / Δ (Δ > 0); a target
        # with Δ = 0 (measure zero) is flagged for all z or none: z_τ = ∓1e300.
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(d > 0, (tau + 0.5 * d * d) / d, np.where(tau <= 0, -1e300, 1e300))
        log_out = log_ndtr(-z)
        if shots == 1:
            # IN is the point z = Δ: IN mass 1 if Δ >= z_τ, else 0.
            hit = d >= z
            return log_out, np.where(hit, log_ndtr(z), log_out), np.where(hit, 1.0, -1.0)
        # IN - OUT = Φ(z) - Φ((z - Δ)/r), width z - (z - Δ)/r = (Δ - (1 - r) z)/r.
        la, sa = log_ndtr_diff((z - d) / r, (d - one_minus_r * z) / r)
        return log_out, la, sa
    # Exact log likelihood ratio: -log r + SΔ²/2 - (z - c)²/(2(S - 1)) >= τ, c = SΔ:
    # |z - c| <= W with W² = K0 + S(S-1)Δ² - 2(S-1)τ, K0 = (S-1) log(S/(S-1)).
    k0 = -(shots - 1.0) * np.log1p(-1.0 / shots)
    c = shots * d
    w2 = k0 + shots * (shots - 1.0) * d * d - 2.0 * (shots - 1.0) * tau
    w = np.sqrt(np.maximum(w2, 0.0))
    # c - W = (c² - W²)/(c + W), formed without cancellation.
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = (shots * d * d - k0 + 2.0 * (shots - 1.0) * tau) / (c + w)
    lower = np.where(c + w > 0, lower, 0.0)
    log_out, _, la, sa = region_log_masses(lower, 2.0 * w, d, shots)
    empty = w2 <= 0
    return np.where(empty, -np.inf, log_out), np.where(empty, -np.inf, la), np.where(empty, 0, sa)


def _pooled_point(rule, shots, fpr, statistic):
    if shots == 1:
        # IN is a point mass per target: the exact LR is +inf there, so TPR = 1 at any level.
        if statistic == "lr":
            return 1.0, 1.0 - fpr, np.log1p(-fpr), np.inf, 0.0
    log_alpha = np.log(fpr)

    def log_fpr(tau):
        lo, _, _ = _pooled_masses(rule, shots, tau, statistic)
        return logsumexp(lo + rule.log_weight)

    def f(tau):
        return log_fpr(tau) - log_alpha

    lo_t, hi_t, step = -1.0, 1.0, 1.0
    while f(lo_t) < 0:
        lo_t -= step
        step *= 2.0
    step = 1.0
    while f(hi_t) > 0:
        hi_t += step
        step *= 2.0
    tau = brentq(f, lo_t, hi_t, xtol=1e-300, rtol=1e-15, maxiter=500)
    lo, la, sa = _pooled_masses(rule, shots, tau, statistic)
    val, sgn = signed_logsumexp(la + rule.log_weight, sa)
    achieved = float(np.exp(logsumexp(lo + rule.log_weight)))
    adv = float(sgn * np.exp(val))
    return min(max(fpr + adv, 0.0), 1.0), adv, (val if sgn > 0 else np.nan), tau, achieved


def pooled_tpr(model: GaussianModel, shots, fpr, *, statistic: str = "lr", y: int = 0) -> PooledTpr:
    """TPR of the pooled attack at GLOBAL FPR α, over targets x ~ N(m_y, Σ).

    statistic "lr" thresholds the exact per-example log likelihood ratio
    log N(s; IN_x) - log N(s; OUT_x); "lira" thresholds the common-scale LiRA score
    (IN with OUT's scale, as in the lemma), both evaluated under the exact IN/OUT laws. The
    global threshold τ solves E_x P_OUT,x(statistic >= τ) = α (Brent's method in τ); the TPR is
    E_x P_IN,x(statistic >= τ). Accuracy is limited by the fixed rule over x, because the region
    {statistic >= τ} is empty for targets below a τ-dependent gap (a non-smooth point of the
    integrand the rule does not split at): measured against a 2x finer rule, 2e-6 relative at
    S = 2 (d = 2, α = 1e-3), 1e-9 at S = 10, 1e-15 at d = 64 or S >= 1000.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}; got {statistic!r}")
    rule = target_rule(model, y)
    s, a = _grid(shots, fpr)
    out = np.empty((5,) + s.shape)
    for idx in np.ndindex(s.shape):
        out[(slice(None),) + idx] = _pooled_point(rule, float(s[idx]), float(a[idx]), statistic)
    return PooledTpr(
        shots=_out(s),
        fpr=_out(a),
        tpr=_out(out[0]),
        advantage=_out(out[1]),
        log_advantage=_out(out[2]),
        threshold=_out(out[3]),
        achieved_fpr=_out(out[4]),
        statistic=statistic,
    )
