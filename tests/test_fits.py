"""OLS and power-law fits against scipy.stats.linregress and exact laws."""

import numpy as np
import pytest
from scipy import stats

from mialaw.theory.fits import fit_linear, fit_power_law


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


# --------------------------------------------------------------------------- goodness of fit
def _noisy_law(rng, shots, sigma, slope=-0.5, icept=-1.0, c=0.0):
    y = icept + slope * np.log10(shots) + c / np.sqrt(shots) + sigma * rng.normal(size=shots.size)
    return 10**y


def test_weighted_fit_reports_chi2_against_its_definition():
    from mialaw.theory.fits import fit_power_law

    rng = np.random.default_rng(31)
    shots = 2.0 ** np.arange(2, 10)
    sigma = rng.uniform(0.02, 0.1, shots.size)
    adv = _noisy_law(rng, shots, sigma)
    fit = fit_power_law(shots, adv, sigma=sigma)
    # Independent: numpy's weighted polyfit, residuals by hand.
    b, a = np.polyfit(np.log10(shots), np.log10(adv), 1, w=1 / sigma)
    chi2 = float(np.sum(((np.log10(adv) - (a + b * np.log10(shots))) / sigma) ** 2))
    assert fit.chi2 == pytest.approx(chi2, rel=1e-9)
    assert fit.dof == shots.size - 2
    assert fit.chi2_dof == pytest.approx(chi2 / 6, rel=1e-9)
    assert fit.p_value == pytest.approx(stats.chi2.sf(chi2, 6), rel=1e-9)
    d = fit.to_dict()
    assert d["chi2_dof"] == pytest.approx(chi2 / 6) and d["dof"] == 6
    assert d["p_value"] == pytest.approx(fit.p_value) and d["shots_range"] == [4.0, 512.0]
    # Unweighted: no errors to judge the fit by; two points: no dof.
    plain = fit_power_law(shots, adv).to_dict()
    assert plain["chi2"] is None and plain["chi2_dof"] is None and plain["p_value"] is None
    two = fit_power_law(shots[:2], adv[:2], sigma=sigma[:2])
    assert np.isnan(two.chi2_dof) and two.to_dict()["p_value"] is None


def test_chi2_has_its_distribution_when_the_law_holds():
    """Seeded repeats with known Gaussian errors: mean χ² ≈ dof, p-values uniform (KS)."""
    from mialaw.theory.fits import fit_power_law, fit_power_law_corrected

    rng = np.random.default_rng(32)
    shots = 2.0 ** np.arange(3, 12)  # 9 points
    chi2, chi2_c, p, p_c = [], [], [], []
    for _ in range(400):
        sigma = rng.uniform(0.01, 0.1, shots.size)
        adv = _noisy_law(rng, shots, sigma)
        fit = fit_power_law(shots, adv, sigma=sigma)
        corr = fit_power_law_corrected(shots, adv, sigma=sigma)
        chi2.append(fit.chi2), p.append(fit.p_value)
        chi2_c.append(corr.chi2), p_c.append(corr.p_value)
    # mean of χ²_k over 400 draws: k ± sqrt(2k/400) (about 0.19 for k = 7).
    assert np.mean(chi2) == pytest.approx(7, abs=0.6)
    assert np.mean(chi2_c) == pytest.approx(6, abs=0.6)
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert stats.kstest(p_c, "uniform").pvalue > 0.01


def test_chi2_flags_a_curved_law():
    """A law that bends (c/√S) fails the straight line's χ² but not the corrected fit's."""
    from mialaw.theory.fits import fit_power_law, fit_power_law_corrected

    rng = np.random.default_rng(33)
    shots = 2.0 ** np.arange(3, 12)
    sigma = np.full(shots.size, 0.01)
    adv = _noisy_law(rng, shots, sigma, c=2.0)
    assert fit_power_law(shots, adv, sigma=sigma).p_value < 1e-6
    corr = fit_power_law_corrected(shots, adv, sigma=sigma)
    assert corr.p_value > 0.01 and corr.slope.contains(-0.5) and corr.c.contains(2.0)


def test_corrected_fit_recovers_exact_coefficients():
    from mialaw.theory.fits import fit_power_law_corrected

    shots = np.array([8, 16, 32, 64, 128, 256.0, 1e4])
    adv = 10 ** (-0.7 - 0.45 * np.log10(shots) + 1.3 / np.sqrt(shots))
    adv[-1] = 0.0  # unusable: left out
    fit = fit_power_law_corrected(shots, adv)
    assert fit.slope.estimate == pytest.approx(-0.45, abs=1e-10)
    assert fit.c.estimate == pytest.approx(1.3, abs=1e-9)
    assert fit.intercept.estimate == pytest.approx(-0.7, abs=1e-10)
    assert fit.n == 6 and fit.dof == 3 and fit.shots_range == (8.0, 256.0)
    assert fit.predict(100.0) == pytest.approx(10 ** (-0.7 - 0.9 + 0.13), rel=1e-9)
    d = fit.to_dict()
    assert d["asymptotic_slope"] == pytest.approx(-0.45) and d["c_ci"][0] <= 1.3 <= d["c_ci"][1]
    assert d["chi2"] is None  # unweighted


def test_corrected_fit_needs_four_points():
    from mialaw.theory.fits import fit_power_law_corrected

    with pytest.raises(ValueError, match=">= 4 usable points"):
        fit_power_law_corrected([1, 2, 4, 8], [0.1, 0.05, 0.02, np.nan])
    with pytest.raises(ValueError, match=">= 4 usable points"):
        fit_power_law_corrected([1, 2, 4, 8], [0.1, 0.05, 0.02, 0.01], keep=[1, 1, 1, 0])


def test_corrected_fit_finds_the_theory_asymptote_where_the_plain_fit_does_not():
    """The exact Gaussian model (d = 64) bends towards −½ like c/√S (TPR = Φ(z + Δ), Δ ∝ 1/√S).
    Over S = 16…2,048 the straight line is far off −½ and the corrected fit most of the way
    there (the next order, 1/S, still matters at S = 16); from S = 64 on it finds −½."""
    from mialaw.theory.average import average_advantage
    from mialaw.theory.fits import fit_power_law, fit_power_law_corrected
    from mialaw.theory.model import GaussianModel

    model = GaussianModel(dim=64, sigma=1.0)
    shots = 2.0 ** np.arange(4, 12)  # 16 … 2,048
    for fpr in (0.01, 0.001):
        adv = np.asarray(average_advantage(model, shots, fpr))
        plain = fit_power_law(shots, adv).slope
        corrected = fit_power_law_corrected(shots, adv).slope
        assert abs(plain.estimate + 0.5) > 0.3 and not plain.contains(-0.5)
        assert abs(corrected.estimate + 0.5) < 0.11
        assert abs(corrected.estimate + 0.5) < abs(plain.estimate + 0.5) / 3
    shots = 2.0 ** np.arange(6, 14)  # 64 … 8,192
    adv = np.asarray(average_advantage(model, shots, 0.01))
    assert abs(fit_power_law_corrected(shots, adv).slope.estimate + 0.5) < 0.015
    assert abs(fit_power_law(shots, adv).slope.estimate + 0.5) > 0.15
