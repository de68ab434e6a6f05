"""OLS and power-law fits against scipy.stats.linregress and exact laws."""

import numpy as np
import pytest
from scipy import stats

from mialaw.theory.metrics import fit_linear, fit_power_law


def test_simple_regression_matches_linregress():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 5, 40)
    y = -0.5 * x + 1.0 + rng.normal(0, 0.1, 40)
    fit = fit_linear(x, y, names=["x"])
    ref = stats.linregress(x, y)
    assert fit.coef[1] == pytest.approx(ref.slope, rel=1e-12)
    assert fit.coef[0] == pytest.approx(ref.intercept, rel=1e-12)
    assert fit.stderr[1] == pytest.approx(ref.stderr, rel=1e-10)
    assert fit.stderr[0] == pytest.approx(ref.intercept_stderr, rel=1e-10)
    assert fit.r2 == pytest.approx(ref.rvalue**2, rel=1e-12)
    est = fit.estimate("x", 0.95)
    t = stats.t.ppf(0.975, 38)
    assert est.lower == pytest.approx(ref.slope - t * ref.stderr, rel=1e-10)


def test_multiple_regression_and_held_out_r2():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 2))
    y = 0.3 + X @ np.array([-0.5, 0.2])
    fit = fit_linear(X, y, names=["log10_shots", "log10_classes"])
    assert np.allclose(fit.coef, [0.3, -0.5, 0.2], atol=1e-12)
    X2 = rng.normal(size=(10, 2))
    assert fit.r2_on(X2, 0.3 + X2 @ np.array([-0.5, 0.2])) == pytest.approx(1.0)
    # A held-out R² of a wrong model is negative: it can fail.
    assert fit.r2_on(X2, -(0.3 + X2 @ np.array([-0.5, 0.2]))) < 0


def test_power_law_recovers_exact_law_and_drops_nonpositive():
    shots = np.array([1, 2, 4, 8, 16, 32, 64.0])
    adv = 0.3 * shots**-0.5
    adv[-1] = -1e-3  # unresolvable point: must be dropped
    fit = fit_power_law(shots, adv)
    assert fit.slope.estimate == pytest.approx(-0.5, abs=1e-12)
    assert 10**fit.intercept.estimate == pytest.approx(0.3, rel=1e-12)
    assert fit.n == 6 and not fit.kept[-1]
    assert fit.predict(100.0) == pytest.approx(0.03, rel=1e-12)


def test_power_law_interval_covers_truth_under_noise():
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(200):
        shots = np.geomspace(1, 1e4, 12)
        adv = 0.2 * shots**-0.5 * np.exp(rng.normal(0, 0.2, shots.size))
        covered += fit_power_law(shots, adv).slope.contains(-0.5)
    # 95 % intervals: coverage 0.95 ± 3·0.015.
    assert 0.90 <= covered / 200 <= 0.99


def test_fit_errors():
    with pytest.raises(ValueError, match=">= 2 distinct shots"):
        fit_power_law([1, 2], [0.1, 0.0])
    with pytest.raises(ValueError, match="finite"):
        fit_linear([1, 2, np.nan], [1, 2, 3])
    with pytest.raises(ValueError, match="collinear"):
        fit_linear(np.ones((5, 1)), np.arange(5.0))


def test_weighted_fit_equals_weighted_normal_equations():
    """WLS against the closed form (XᵀWX)⁻¹XᵀWy with the reduced-χ² scaling (floor 1)."""
    from mialaw.theory.fits import fit_linear

    rng = np.random.default_rng(21)
    x = np.linspace(0, 3, 9)
    sigma = rng.uniform(0.05, 0.3, x.size)
    y = 1.0 - 0.5 * x + sigma * rng.normal(size=x.size)
    fit = fit_linear(x[:, None], y, names=["x"], sigma=sigma)
    A = np.column_stack([np.ones_like(x), x])
    W = np.diag(1 / sigma**2)
    coef = np.linalg.solve(A.T @ W @ A, A.T @ W @ y)
    chi2 = float((y - A @ coef) @ W @ (y - A @ coef))
    cov = np.linalg.inv(A.T @ W @ A) * max(1.0, chi2 / (x.size - 2))
    np.testing.assert_allclose(fit.coef, coef, rtol=1e-12)
    np.testing.assert_allclose(fit.stderr, np.sqrt(np.diag(cov)), rtol=1e-12)


def test_weighted_fit_intervals_hold_coverage():
    """The weighted slope's 95 % interval covers the true slope in >= 90 % of 200 repeats."""
    from mialaw.theory.fits import fit_power_law

    rng = np.random.default_rng(22)
    shots = 2.0 ** np.arange(1, 9)
    hits = 0
    for _ in range(200):
        sigma = rng.uniform(0.02, 0.2, shots.size)
        adv = 10 ** (-0.5 * np.log10(shots) - 1 + sigma * rng.normal(size=shots.size))
        hits += fit_power_law(shots, adv, sigma=sigma).slope.contains(-0.5)
    assert hits >= 180


def test_local_slopes_between_neighbours():
    from mialaw.theory.fits import local_slopes

    shots = np.array([4.0, 1.0, 16.0, 64.0])
    adv = shots**-0.5
    adv[3] = np.nan  # unusable points are skipped
    sigma = np.full(4, 0.01)
    slopes = local_slopes(shots, adv, sigma)
    assert [(s.shots_low, s.shots_high) for s in slopes] == [(1.0, 4.0), (4.0, 16.0)]
    for s in slopes:
        assert s.slope.estimate == pytest.approx(-0.5, abs=1e-12)
        half = 1.959963984540054 * np.hypot(0.01, 0.01) / np.log10(4.0)
        assert s.slope.upper - s.slope.estimate == pytest.approx(half, rel=1e-9)
