"""Averages over targets and the pooled attack: independent quadratures, brute-force simulation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import IntegrationWarning, quad
from scipy.special import gammaln, ndtr, ndtri
from scipy.stats import binomtest

from mialaw.theory import average as av
from mialaw.theory.exact import _np_region
from mialaw.theory.model import GaussianModel


# --------------------------------------------------------------------------- reference quadrature
def _uv_average_lira_advantage(dim, sigma, shots, fpr):
    """E_x[Φ(a + |Δ|) - α] by nested adaptive quadrature in theory/science.md's coordinates:
    u = <m, ε> ~ N(0, σ²), p = sqrt(v) = |ε_⊥| ~ σ·χ_{d-1}; <x, x - m> = u + u² + p²,
    q = σ²((1 + u)² + p²). The kink p² = -u - u² and the points u = -1, 0 are breakpoints."""
    a = ndtri(fpr)
    k = dim - 1

    def adv(u, p):
        g = u + u * u + p * p
        q = sigma**2 * ((1 + u) ** 2 + p * p)
        return ndtr(a + abs(g) / np.sqrt(shots * q)) - fpr if q > 0 else 0.0

    phi = lambda u: np.exp(-0.5 * (u / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    if k == 0:
        inner = lambda u: adv(u, 0.0)
    else:
        log_norm = (k / 2 - 1) * np.log(2) + gammaln(k / 2) + k * np.log(sigma)

        def dens(p):
            return (
                np.exp((k - 1) * np.log(p) - 0.5 * (p / sigma) ** 2 - log_norm)
                if p > 0
                else (np.exp(-log_norm) if k == 1 else 0.0)
            )

        def inner(u):
            f = lambda p: adv(u, p) * dens(p)
            kink = -u - u * u
            top = sigma * (np.sqrt(k) + 12.0)
            cuts = [0.0] + ([np.sqrt(kink)] if kink > 0 else []) + [top]
            return sum(
                quad(f, lo, hi, epsabs=0, epsrel=1e-12, limit=200)[0]
                for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)
            )

    f = lambda u: inner(u) * phi(u)
    cuts = [-12.0 * sigma - 1.0, -1.0, 0.0, 12.0 * sigma]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationWarning)
        return sum(
            quad(f, lo, hi, epsabs=0, epsrel=1e-12, limit=200)[0]
            for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)
        )


@pytest.mark.parametrize(
    "dim, sigma, shots, fpr",
    [(1, 1.0, 10.0, 0.01), (2, 1.0, 1.0, 0.1), (2, 0.5, 100.0, 1e-3), (5, 1.3, 1e4, 1e-6)],
)
def test_average_matches_nested_quadrature(dim, sigma, shots, fpr):
    model = GaussianModel(dim, classes=1, sigma=sigma)
    want = _uv_average_lira_advantage(dim, sigma, shots, fpr)
    got = av.average_advantage(model, shots, fpr)
    # measured relative differences: 1e-13 .. 3e-12
    assert got == pytest.approx(want, rel=1e-9)
    assert av.average_tpr(model, shots, fpr) == pytest.approx(fpr + want, rel=1e-12)


@settings(max_examples=12)
@given(st.integers(1, 120), st.floats(0.1, 5.0))
def test_zeta_rule_matches_polar_rule(dim, sigma):
    """The 1-D rule over ζ (density by an angular integral) against the 2-D (R, θ) rule, built
    independently, over a grid of S and α for the lemma's test."""
    rule = av._zeta_rule(dim, sigma)
    polar = av._polar_rule_isotropic(dim, sigma, 48, 48)
    assert rule.mass == pytest.approx(1.0, abs=1e-11)
    assert polar.mass == pytest.approx(1.0, abs=1e-11)
    shots = np.array([1.0, 3.0, 1e2, 1e5, 1e10])[:, None]
    fpr = np.array([0.3, 1e-3, 1e-12])[None, :]
    v1, s1, _ = av._average_signed_log_advantage(rule, shots, fpr, "lira")
    v2, s2, _ = av._average_signed_log_advantage(polar, shots, fpr, "lira")
    # measured: at most 2e-12 in log (relative) over d <= 500, σ in [0.1, 3]
    np.testing.assert_allclose(v1, v2, rtol=0, atol=1e-9)
    assert np.all(s1 == 1) and np.all(s2 == 1)


def test_np_average_converges():
    # NP's TPR bends on the scale ζ ~ S^-1/2: compare the rule with a 2x finer one.
    shots = np.array([2.0, 30.0, 1e3, 1e6])[:, None]
    fpr = np.array([0.1, 1e-3, 1e-9])[None, :]
    for dim in (1, 3):
        coarse = av._zeta_rule(dim, 0.3)
        fine = av._zeta_rule(dim, 0.3, panel_nodes=48, panel_width=0.1, grading=1.3)
        v1 = av._average_signed_log_advantage(coarse, shots, fpr, "np")[0]
        v2 = av._average_signed_log_advantage(fine, shots, fpr, "np")[0]
        np.testing.assert_allclose(v1, v2, rtol=0, atol=1e-10)  # measured 4e-12


# --------------------------------------------------------------------------- properties
@settings(max_examples=15)
@given(
    st.integers(1, 80),
    st.floats(0.2, 3.0),
    st.floats(1.0, 1e6),
    st.floats(1.001, 100.0),
    st.floats(1e-10, 0.9),
)
def test_average_in_range_and_falling(dim, sigma, shots, factor, fpr):
    model = GaussianModel(dim, classes=1, sigma=sigma)
    s = np.array([shots, shots * factor])
    for test in ("lira", "np"):
        t = av.average_tpr(model, s, fpr, test=test)
        assert np.all(t >= fpr) and np.all(t <= 1.0)
        adv = av.average_advantage(model, s, fpr, test=test)
        assert adv[1] <= adv[0] * (1 + 1e-9)


@pytest.mark.parametrize("dim, sigma", [(1, 1.0), (3, 0.5), (64, 1.0)])
def test_average_asymptote_rate_and_slope(dim, sigma):
    """log E[adv] - asymptote = O(S^-1/2) with the constant of the next order of the expansion:
    adv(x) = φ(a)|Δ|(1 - a|Δ|/2) (lemma), plus φ(a)·a/(2S) from the unequal variances (exact, NP),
    so sqrt(S)·(log E adv - asymptote) -> -a E[ζ²]/(2 E ζ), resp. a (1 - E[ζ²])/(2 E ζ).
    (For d = 1, σ = 1, E[ζ²] = 1 and the S^-1/2 term of exact/NP vanishes.)"""
    model = GaussianModel(dim, classes=1, sigma=sigma)
    rule = av.target_rule(model)
    m1, m2 = rule.mean(rule.gap1), rule.mean(rule.gap1**2)
    shots = np.geomspace(1e8, 1e14, 7)
    for fpr in (0.1, 1e-3, 1e-12):
        a = ndtri(fpr)
        asym = av.average_asymptote(model, shots, fpr)
        limits = {"lira": -a * m2 / (2 * m1), "exact": a * (1 - m2) / (2 * m1)}
        limits["np"] = limits["exact"]
        for test, limit in limits.items():
            la = av.average_log_advantage(model, shots, fpr, test=test)
            scaled = (la - asym) * np.sqrt(shots)
            assert scaled[-1] == pytest.approx(limit, rel=1e-3, abs=1e-5)
            assert np.all(np.abs(scaled) <= abs(limit) + 0.1 * (abs(a) + 1))
            slope = np.diff(la) / np.diff(np.log(shots))
            assert np.all(np.abs(slope + 0.5) < 1e-3)


@pytest.mark.parametrize("fpr", [0.1, 1e-3])
def test_one_sided_average_near_one_shot(fpr):
    """The one-sided test's TPR jumps from 0 to 1 at ζ = -a sqrt(S) when S -> 1. In d = 1,
    ζ = |u|/σ is half-normal: at S = 1 the average is P(ζ >= -a) = 2α exactly, and for S > 1 a
    1-D adaptive quadrature split at the jump is an independent reference."""
    model = GaussianModel(1, classes=1, sigma=1.0)
    assert av.average_tpr(model, 1.0, fpr, test="exact") == pytest.approx(2 * fpr, rel=1e-13)
    a = ndtri(fpr)
    for shots in (1.0001, 1.5, 3.9):
        r, jump = np.sqrt(1 - 1 / shots), -a * np.sqrt(shots)
        f = lambda u, s=shots, r=r: ndtr((a + u / np.sqrt(s)) / r) * 2 * np.exp(-u * u / 2)
        want = sum(
            quad(f, lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0]
            for lo, hi in [(0, jump), (jump, 40)]
        ) / np.sqrt(2 * np.pi)
        # measured: 2e-15 relative
        assert av.average_tpr(model, shots, fpr, test="exact") == pytest.approx(want, rel=1e-12)


def test_general_covariance_support():
    isotropic_as_cov = GaussianModel(3, classes=1, cov=0.49 * np.eye(3))
    iso = GaussianModel(3, classes=1, sigma=0.7)
    assert av.average_tpr(isotropic_as_cov, 10.0, 0.01) == av.average_tpr(iso, 10.0, 0.01)
    with pytest.raises(ValueError, match="dim <= 2"):
        av.average_tpr(GaussianModel(3, classes=1, cov=np.diag([1.0, 2.0, 3.0])), 10.0, 0.01)
    # A general 2-d Σ that is numerically σ²I must agree with the isotropic rule.
    near = GaussianModel(2, classes=1, cov=np.array([[1.0, 1e-12], [1e-12, 1.0]]))
    rule = av.target_rule(near)
    assert rule.mass == pytest.approx(1.0, abs=1e-11)
    got = av.average_log_advantage(near, [1.0, 10.0, 1e4], 0.01)
    want = av.average_log_advantage(GaussianModel(2, classes=1), [1.0, 10.0, 1e4], 0.01)
    np.testing.assert_allclose(got, want, atol=1e-10)  # measured 5e-14


# --------------------------------------------------------------------------- brute force
def _simulate(model, shots, n, rng):
    """Full d-dimensional membership game: target x ~ N(m, Σ); OUT: S fresh examples; IN: x and
    S - 1 fresh ones. Returns the signed standardised Δ and z for IN and OUT per trial."""
    dim, m = model.dim, model.mean(0)
    chol = np.linalg.cholesky(model.covariance)
    draw = lambda *shape: m + rng.standard_normal(shape + (dim,)) @ chol.T
    x = draw(n)
    fresh = draw(n, shots)
    s_out = np.einsum("nd,nd->n", fresh.mean(axis=1), x)
    s_in = np.einsum("nd,nd->n", (x + fresh[:, 1:].sum(axis=1)) / shots, x)
    gap = np.einsum("nd,nd->n", x, x - m)
    q = np.einsum("nd,de,ne->n", x, model.covariance, x)
    scale = np.sqrt(q / shots)
    xm = x @ m
    return gap / np.sqrt(shots * q), (s_in - xm) / scale, (s_out - xm) / scale


def _inside(successes, n, value, level=0.999):
    ci = binomtest(int(successes), n).proportion_ci(level, method="exact")
    return ci.low <= value <= ci.high


@pytest.mark.parametrize(
    "cov, shots",
    [
        (0.49 * np.eye(3), 1),
        (0.49 * np.eye(3), 2),
        (0.49 * np.eye(3), 4),
        (np.array([[1.0, 0.3], [0.3, 0.5]]), 3),
    ],
)
def test_average_and_pooled_against_simulation(cov, shots):
    """Brute force (fixed seed, 60k trials): per-example tests at their own level, and the pooled
    attacks at the global threshold the theory computes; 99.9% Clopper–Pearson intervals."""
    rng = np.random.default_rng(7 + shots)
    model = GaussianModel(cov.shape[0], classes=1, cov=cov)
    n, fpr = 60_000, 0.1
    delta, z_in, z_out = _simulate(model, shots, n, rng)
    sign, d = np.sign(delta), np.abs(delta)
    lower, width = _np_region(shots * d, np.full(n, fpr))
    rejects = {
        "exact": lambda z: sign * z >= -ndtri(fpr),
        "np": lambda z: (sign * z >= lower) & (sign * z <= lower + width),
    }
    for test, reject in rejects.items():
        assert _inside(reject(z_in).sum(), n, av.average_tpr(model, shots, fpr, test=test)), test
        assert _inside(reject(z_out).sum(), n, fpr), test
    if shots == 1:
        return  # the exact LR is infinite on the IN point (pooled TPR 1, tested below)
    r2 = 1 - 1 / shots
    stats = {
        "lr": lambda z: -0.5 * np.log(r2) - (z - delta) ** 2 / (2 * r2) + z * z / 2,
        "lira": lambda z: delta * z - delta**2 / 2,
    }
    for statistic, stat in stats.items():
        res = av.pooled_tpr(model, shots, fpr, statistic=statistic)
        assert res.achieved_fpr == pytest.approx(fpr, rel=1e-9)
        assert _inside((stat(z_in) >= res.threshold).sum(), n, res.tpr), statistic
        assert _inside((stat(z_out) >= res.threshold).sum(), n, fpr), statistic


def test_pooled_is_not_the_average_and_shots_one():
    model = GaussianModel(2, classes=1, sigma=1.0)
    pooled = av.pooled_tpr(model, [1.0, 30.0], 0.01)
    assert pooled.tpr[0] == 1.0 and pooled.threshold[0] == np.inf
    per_example = av.average_tpr(model, 30.0, 0.01, test="np")
    assert abs(pooled.tpr[1] - per_example) > 1e-3  # different quantities
    with pytest.raises(ValueError, match="statistic"):
        av.pooled_tpr(model, 2.0, 0.1, statistic="rmia")
