"""The symbolic derivation: every step verifies, the checker can fail, and the derived expressions
agree with independent numerics (brute-force Monte Carlo of the model, scipy, mpmath)."""

import subprocess
import sys

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from mialaw.theory import derivation
from mialaw.theory.derivation_steps import (
    RATIONAL_POINTS,
    F,
    FInv,
    Phi,
    PhiInv,
    check_at_rational_points,
    prove_equal,
    prove_in_ideal,
    prove_limit,
    prove_positive,
)
from mialaw.theory.model import GaussianModel

SYM = derivation.SYMBOLS


@pytest.fixture(scope="module")
def result():
    return derivation.derive()


# --------------------------------------------------------------------------- the steps verify
def test_every_step_verifies(result):
    assert len(result.steps) >= 15
    failed = [(s.name, s.how) for s in result.steps if not s.verified]
    assert failed == []
    assert result.all_verified
    names = {s.name for s in result.steps}
    for required in (
        "out_law",
        "in_law",
        "mean_gap",
        "delta",
        "lemma_location_scale",
        "lemma_gaussian",
        "advantage_series",
        "slope",
        "asymptote_constant",
        "remainder",
        "local_slope",
        "isotropic_identities",
        "isotropic_independence",
        "isotropic_v_law",
    ):
        assert required in names
    # Every check here is a symbolic proof, none a weaker point evaluation.
    assert all(s.strength != RATIONAL_POINTS for s in result.steps)
    assert derivation.derive() is result  # cached


def test_derived_expressions_equal_the_science_claims(result):
    S, a, xx, q, g = (SYM[k] for k in ("S", "xm", "xx", "q", "gap"))
    assert sp.simplify(result.out_var - q / S) == 0
    assert sp.simplify(result.in_var - (S - 1) * q / S**2) == 0
    assert sp.simplify(result.in_mean - (xx + (S - 1) * a) / S) == 0
    assert sp.simplify(result.delta - g / sp.sqrt(S * q)) == 0
    assert result.slope == sp.Rational(-1, 2)


# --------------------------------------------------------------------------- the checker can fail
# Deliberately wrong claims, each aimed at one step (key -> (wrong claim, step that must fail)).
WRONG_CLAIMS = {
    "out_mean": (SYM["xx"] / SYM["S"], "out_law"),
    "in_var": (SYM["q"] / SYM["S"], "in_law"),  # the IN variance with the OUT value
    "delta": (SYM["gap"] / (SYM["S"] * sp.sqrt(SYM["q"])), "delta"),
    "tpr_location_scale_up": (
        1 - F(FInv(SYM["alpha"]) - sp.Abs(SYM["delta"])),
        "lemma_location_scale",
    ),
    "tpr_gaussian": (Phi(PhiInv(SYM["alpha"])), "lemma_gaussian"),
    "series_h2": (
        SYM["z"] * sp.exp(-(SYM["z"] ** 2) / 2) / sp.sqrt(2 * sp.pi),
        "advantage_series",
    ),
    "slope": (sp.Rational(-1, 3), "slope"),
    "asymptote_constant": (-(PhiInv(SYM["alpha"]) ** 2), "asymptote_constant"),
    "remainder_rate": (sp.Integer(0), "remainder"),
    "local_slope_limit": (sp.Rational(-1, 3), "local_slope"),
    "iso_xx": (1 + SYM["u"] ** 2 + SYM["v"], "isotropic_identities"),
    "iso_v_laplace": (
        (1 + 2 * SYM["sigma"] ** 2 * SYM["w"]) ** (-SYM["d"] / 2),
        "isotropic_v_law",
    ),
}


@pytest.fixture(scope="module")
def wrong():
    return derivation.check_claims({k: claim for k, (claim, _) in WRONG_CLAIMS.items()})


def test_wrong_claims_are_not_verified(wrong):
    assert not wrong.all_verified
    # Exactly the targeted steps fail; the others still verify.
    assert {s.name for s in wrong.failed} == {step for _, step in WRONG_CLAIMS.values()}
    assert all("FAILED" in s.how or "raised" in s.how for s in wrong.failed)
    assert all(s.mark == "[FAILED]" for s in wrong.failed)


def test_a_single_wrong_claim_fails_only_its_step():
    bad = derivation.check_claims({"in_var": SYM["q"] * (SYM["S"] - 1) / SYM["S"]})
    assert [s.name for s in bad.failed] == ["in_law"]


def test_checkers_fail_on_false_statements():
    x, y = sp.symbols("x y", real=True)
    assert prove_equal((x + y) ** 2, x**2 + 2 * x * y + y**2).verified
    assert not prove_equal((x + y) ** 2, x**2 + y**2).verified
    assert prove_limit(sp.sin(x) / x, x, 0, 1).verified
    assert not prove_limit(sp.sin(x) / x, x, 0, 2).verified
    assert prove_in_ideal(x**2 * y - y, [x**2 - 1], [x, y], "on x^2 = 1").verified
    assert not prove_in_ideal(x * y - y, [x**2 - 1], [x, y], "on x^2 = 1").verified
    points = [{x: 1, y: 2}, {x: "1/3", y: -5}]
    good = check_at_rational_points((x + y) ** 2, x**2 + 2 * x * y + y**2, points, "square")
    assert good.verified and good.strength == RATIONAL_POINTS
    assert not check_at_rational_points(x * y, x + y, points, "wrong").verified
    assert not check_at_rational_points(x, x, [], "no points").verified
    assert prove_positive(sp.exp(x), "exp > 0").verified
    assert not prove_positive(x, "a real symbol need not be positive").verified


def test_unknown_claim_is_rejected():
    with pytest.raises(ValueError, match="unknown claims"):
        derivation.check_claims({"no_such_claim": sp.Integer(1)})
    with pytest.raises(ValueError, match="sympy expressions"):
        derivation.check_claims({"slope": object()})


# --------------------------------------------------------------------------- IN/OUT moments
def _brute_force_scores(x, m, cov, shots, trials, rng):
    """Plain numpy: draw all S training examples in d dimensions, release the mean, score it."""
    chol = np.linalg.cholesky(cov)
    draws = m + rng.standard_normal((trials, shots, m.size)) @ chol.T
    out = draws.mean(axis=1) @ x
    with_target = draws.copy()
    with_target[:, -1, :] = x  # IN: the target is one of the S training examples
    inn = with_target.mean(axis=1) @ x
    return out, inn


@pytest.mark.parametrize(("dim", "shots", "seed"), [(3, 1, 0), (3, 4, 1), (5, 9, 2)])
def test_moments_against_brute_force_and_model(result, dim, shots, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim))
    cov = a @ a.T / dim + 0.3 * np.eye(dim)
    m = np.eye(dim)[0]
    x = m + rng.normal(size=dim)
    values = dict(S=float(shots), xm=x @ m, xx=x @ x, q=x @ cov @ x)
    derived = {
        k: float(result.evaluate(k, **values)) for k in ("out_mean", "out_var", "in_mean", "in_var")
    }
    out, inn = _brute_force_scores(x, m, cov, shots, 60_000, rng)
    for sample, mean, var in (
        (out, derived["out_mean"], derived["out_var"]),
        (inn, derived["in_mean"], derived["in_var"]),
    ):
        assert abs(sample.mean() - mean) < 5 * np.sqrt(max(var, 1e-300) / sample.size) + 1e-12
        assert abs(sample.var() - var) < 5 * var * np.sqrt(2 / sample.size) + 1e-12
    model = GaussianModel(dim=dim, cov=cov)
    mom = model.moments(x, shots)
    got = np.array([derived["out_mean"], derived["out_var"], derived["in_mean"], derived["in_var"]])
    want = np.array([mom.out_mean, mom.out_var, mom.in_mean, mom.in_var], dtype=float).ravel()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        float(result.evaluate("delta", S=float(shots), gap=x @ (x - m), q=values["q"])),
        float(model.delta(x, shots)),
        rtol=1e-12,
    )


# --------------------------------------------------------------------------- the lemma
def _threshold_test_tpr(alpha, delta, dist):
    """TPR of the level-α threshold test of OUT ~ dist vs IN ~ dist shifted by Δ, from scratch."""
    if delta >= 0:  # reject for large scores
        return dist.sf(dist.isf(alpha) - delta)
    return dist.cdf(dist.ppf(alpha) - delta)  # reject for small scores


@given(
    alpha=st.floats(1e-9, 0.999),
    delta=st.floats(-6, 6),
)
def test_gaussian_lemma_against_scipy(result, alpha, delta):
    derived = float(result.evaluate("tpr_gaussian", alpha=alpha, delta=delta))
    want = _threshold_test_tpr(alpha, delta, stats.norm)
    assert derived == pytest.approx(want, rel=1e-7, abs=1e-12)
    assert alpha - 1e-12 <= derived <= 1.0


# Generic F instantiated by closed forms: logistic (symmetric) and Gumbel (asymmetric).
FAMILIES = {
    "logistic": (
        {F: lambda w: 1 / (1 + sp.exp(-w)), FInv: lambda p: sp.log(p / (1 - p))},
        stats.logistic,
    ),
    "gumbel": (
        {F: lambda w: sp.exp(-sp.exp(-w)), FInv: lambda p: -sp.log(-sp.log(p))},
        stats.gumbel_r,
    ),
}


@pytest.fixture(scope="module")
def family_tprs(result):
    """(family, branch) -> numpy function of (α, Δ), from the derived generic-F expressions."""
    out = {}
    for family, (closed_forms, _) in FAMILIES.items():
        for branch in ("up", "down"):
            expr = result[f"tpr_location_scale_{branch}"]
            assert expr.free_symbols == {SYM["alpha"], SYM["delta"]}
            for func, repl in closed_forms.items():
                expr = expr.replace(func, repl)
            out[family, branch] = sp.lambdify([SYM["alpha"], SYM["delta"]], expr, "numpy")
    return out


@pytest.mark.parametrize("family", sorted(FAMILIES))
@given(alpha=st.floats(1e-6, 0.99), delta=st.floats(-5, 5))
def test_location_scale_lemma_for_other_families(family_tprs, family, alpha, delta):
    fn = family_tprs[family, "up" if delta >= 0 else "down"]
    want = _threshold_test_tpr(alpha, delta, FAMILIES[family][1])
    assert float(fn(alpha, delta)) == pytest.approx(want, rel=1e-8, abs=1e-12)


@given(alpha=st.floats(1e-6, 0.5), gap=st.floats(0.2, 4), q=st.floats(0.3, 5))
def test_tpr_of_target_against_scipy(result, alpha, gap, q):
    shots = 7.0
    derived = float(result.evaluate("tpr", S=shots, alpha=alpha, gap=gap, q=q))
    # OUT N(0, q/S) and IN N(gap/S, q/S): the common-scale test with the OUT scale.
    scale = np.sqrt(q / shots)
    thr = stats.norm.isf(alpha, scale=scale)
    assert derived == pytest.approx(stats.norm.sf(thr, loc=gap / shots, scale=scale), rel=1e-8)


# --------------------------------------------------------------------------- asymptotics
def _exact_log_advantage(alpha, gap, q, shots, dps=60):
    """log(Φ(Φ⁻¹(α) + |Δ|) − α) in high precision (mpmath), no cancellation."""
    with mpmath.workdps(dps):
        z = -mpmath.sqrt(2) * mpmath.erfinv(1 - 2 * mpmath.mpf(alpha))
        h = abs(mpmath.mpf(gap)) / mpmath.sqrt(mpmath.mpf(shots) * q)
        return mpmath.log(mpmath.ncdf(z + h) - mpmath.ncdf(z))


@pytest.mark.parametrize(
    ("alpha", "gap", "q"), [(0.1, 1.3, 2.0), (1e-3, 2.5, 1.1), (1e-6, -0.7, 0.4), (0.01, 5.0, 9.0)]
)
def test_asymptote_constant_against_mpmath_at_1e9(result, alpha, gap, q):
    shots = 1e9
    exact = _exact_log_advantage(alpha, gap, q, shots)
    constant = float(result.evaluate("asymptote_constant", alpha=alpha, gap=gap, q=q))
    remainder = float(exact + mpmath.log(shots) / 2) - constant
    assert remainder == pytest.approx(0.0, abs=1e-4 * abs(constant))
    # The remainder is O(S^-1/2) with the derived rate: √S·remainder → rate.
    rate = float(result.evaluate("remainder_rate", alpha=alpha, gap=gap, q=q))
    assert np.sqrt(shots) * remainder == pytest.approx(rate, rel=1e-3)
    asymptote = float(result.evaluate("asymptote", S=shots, alpha=alpha, gap=gap, q=q))
    assert asymptote == pytest.approx(constant - 0.5 * np.log(shots), rel=1e-14)


@pytest.mark.parametrize("shots", [3.0, 50.0, 1e4])
def test_local_slope_against_mpmath_finite_difference(result, shots):
    alpha, gap, q = 1e-3, 1.7, 1.2
    derived = float(result.evaluate("local_slope", S=shots, alpha=alpha, gap=gap, q=q))
    step = mpmath.mpf("1e-12")
    with mpmath.workdps(60):
        up = _exact_log_advantage(alpha, gap, q, shots * mpmath.exp(step))
        down = _exact_log_advantage(alpha, gap, q, shots * mpmath.exp(-step))
        numeric = float((up - down) / (2 * step))
    assert derived == pytest.approx(numeric, rel=1e-8)
    assert derived < 0


def test_series_coefficients_numerically(result):
    z = stats.norm.ppf(1e-2)
    h = 1e-3
    c1 = float(result.evaluate("series_h1", z=z))
    c2 = float(result.evaluate("series_h2", z=z))
    exact = stats.norm.cdf(z + h) - stats.norm.cdf(z)
    assert exact == pytest.approx(c1 * h + c2 * h**2, rel=1e-6)


# --------------------------------------------------------------------------- isotropic reduction
def test_isotropic_reduction_against_brute_force(result):
    rng = np.random.default_rng(11)
    dim, sigma, n = 6, 0.7, 200_000
    m = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:, 0]  # a unit mean, not a basis vector
    eps = sigma * rng.standard_normal((n, dim))
    x = m + eps
    u = eps @ m
    v = np.einsum("ij,ij->i", eps, eps) - u**2
    kw = dict(u=u[:1000], v=v[:1000], sigma=sigma)
    np.testing.assert_allclose(
        result.evaluate("iso_gap", **kw), np.einsum("ij,ij->i", x[:1000], x[:1000] - m), rtol=1e-10
    )
    np.testing.assert_allclose(
        result.evaluate("iso_xx", **kw), np.einsum("ij,ij->i", x[:1000], x[:1000]), rtol=1e-10
    )
    np.testing.assert_allclose(
        result.evaluate("iso_q", **kw),
        sigma**2 * np.einsum("ij,ij->i", x[:1000], x[:1000]),
        rtol=1e-10,
    )
    model = GaussianModel(dim=dim, classes=1, sigma=sigma, means=m[None, :])
    np.testing.assert_allclose(
        result.evaluate("iso_delta", S=9.0, **kw), model.delta(x[:1000], 9.0), rtol=1e-10
    )
    # Laws: u ~ N(0, σ²), v ~ σ²χ²_{d-1}, independent (KS tests and a correlation check).
    assert stats.kstest(u[:20_000] / sigma, "norm").pvalue > 1e-3
    assert stats.kstest(v[:20_000] / sigma**2, stats.chi2(dim - 1).cdf).pvalue > 1e-3
    for f_u in (u, u**2):
        assert abs(np.corrcoef(f_u, v)[0, 1]) < 5 / np.sqrt(n)


# --------------------------------------------------------------------------- output and CLI entry
def test_main_prints_every_step_and_returns_zero(capsys):
    assert derivation.main() == 0
    text = capsys.readouterr().out
    assert text.count("[ok]") == len(derivation.derive().steps)
    assert "[FAILED]" not in text
    assert derivation.main(latex=True) == 0
    latex = capsys.readouterr().out
    assert "\\begin{itemize}" in latex and "\\end{itemize}" in latex
    assert latex.count("\\checkmark") == len(derivation.derive().steps)
    assert "\\frac{q}{S}" in latex and "\\Phi^{-1}" in latex
    assert latex.isascii()  # compiles with pdflatex


def test_main_returns_one_when_a_step_fails(wrong, monkeypatch, capsys):
    monkeypatch.setattr(derivation, "derive", lambda: wrong)
    assert derivation.main() == 1
    assert "[FAILED] in_law" in capsys.readouterr().out
    assert derivation.main(latex=True) == 1
    assert "FAILED" in capsys.readouterr().out


def test_evaluate_validates_its_inputs(result):
    with pytest.raises(ValueError, match="unknown symbols"):
        result.evaluate("out_var", S=2.0, q=1.0, nope=3.0)
    with pytest.raises(ValueError, match="needs values"):
        result.evaluate("out_var", S=2.0)
    with pytest.raises(ValueError, match="no derived expression"):
        result["nope"]
    with pytest.raises(ValueError, match="no step named"):
        result.step("nope")


def test_theory_package_import_does_not_import_sympy():
    code = "import sys, mialaw.theory, mialaw.theory.model; print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
