"""Per-target exact TPRs of the Gaussian model: properties, mpmath cross-checks, Monte Carlo."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import ndtr, ndtri
from scipy.stats import binomtest

from mialaw.theory.exact import advantage, asymptote, log_advantage, tpr
from mialaw.theory.model import GaussianModel

TESTS = ("lira", "exact", "np")


# --------------------------------------------------------------------------- strategies
@st.composite
def targets(draw, min_gap=0.0):
    """A model (d, σ) and a target x of class 0 with |<x, x - m>| >= min_gap."""
    dim = draw(st.integers(1, 6))
    sigma = draw(st.floats(0.2, 3.0))
    model = GaussianModel(dim, classes=1, sigma=sigma)
    x = np.array(draw(st.lists(st.floats(-3.0, 3.0), min_size=dim, max_size=dim)))
    x[0] += 1.0
    gap = float(x @ (x - model.mean(0)))
    if abs(gap) < min_gap or x @ x < 1e-6:
        x = np.zeros(dim)
        x[0] = 1.0 + draw(st.sampled_from([-2.0, 0.8, 1.5]))
    return model, x


shots_st = st.one_of(st.just(1.0), st.floats(1.0, 1e8))
fpr_st = st.floats(1e-10, 0.9)


def _gap_and_q(model, x):
    x = np.asarray(x, dtype=np.float64)
    return float(x @ (x - model.mean(0))), float(model.sigma**2 * x @ x)


# --------------------------------------------------------------------------- mpmath reference
mp.mp.dps = 60


def _mp_log_advantage(test, gap, q, shots, fpr):
    """log|TPR - α| from the definitions, at 60 digits (NP region by 240 bisection steps)."""
    S, alpha = mp.mpf(shots), mp.mpf(fpr)
    d = abs(mp.mpf(gap)) / mp.sqrt(S * mp.mpf(q))
    a = -mp.sqrt(2) * mp.erfinv(1 - 2 * alpha)
    r = mp.sqrt(1 - 1 / S)
    Phi = mp.ncdf
    if test == "lira":
        return mp.log(Phi(a + d) - Phi(a))
    if test == "exact":
        return mp.log(abs(Phi((a + d) / r) - Phi(a)))
    c = S * d  # NP: |z - c| <= w with OUT mass α, IN ~ N(d, r²)
    lo, hi = mp.mpf(0), c - (-mp.sqrt(2) * mp.erfinv(1 - 2 * (1 - alpha) / 2))
    for _ in range(240):
        w = (lo + hi) / 2
        if Phi(c + w) - Phi(c - w) > alpha:
            hi = w
        else:
            lo = w
    w = (lo + hi) / 2
    return mp.log(Phi((c + w - d) / r) - Phi((c - w - d) / r) - alpha)


MP_CASES = [
    # (x0, shots, fpr): a 3-d target (x0, 0.5, -0.3), σ = 1
    (2.0, 1e12, 1e-12),
    (2.0, 1e9, 1e-3),
    (1.2, 3e6, 1e-8),
    (0.7, 25.0, 7e-8),
    (3.0, 2.0, 0.3),
    (1.05, 1e11, 1e-5),
    (-1.0, 1e4, 0.05),
]


@pytest.mark.parametrize("test", TESTS)
def test_log_advantage_matches_mpmath(test):
    model = GaussianModel(3, classes=1, sigma=1.0)
    worst = 0.0
    for x0, shots, fpr in MP_CASES:
        x = np.array([x0, 0.5, -0.3])
        gap, q = _gap_and_q(model, x)
        ref = float(_mp_log_advantage(test, gap, q, shots, fpr))
        got = float(np.log(abs(advantage(model, x, shots, fpr, test=test))))
        if test != "exact":
            assert log_advantage(model, x, shots, fpr, test=test) == pytest.approx(got, abs=1e-14)
        worst = max(worst, abs(got - ref))
    # measured: lira 7e-15, exact 7e-15, np 8e-14 (absolute error of the natural log)
    assert worst < 1e-11


# --------------------------------------------------------------------------- properties
@given(targets(), shots_st, fpr_st)
def test_lemma_and_np_tpr_lie_in_alpha_one(target, shots, fpr):
    model, x = target
    for test in ("lira", "np"):
        t = tpr(model, x, shots, fpr, test=test)
        assert fpr <= t <= 1.0
        assert not np.isnan(log_advantage(model, x, shots, fpr, test=test))


@given(targets(), shots_st, fpr_st)
def test_np_bounds_the_one_sided_test(target, shots, fpr):
    # Both are level-α tests under the exact OUT law, scored under the exact IN law.
    model, x = target
    a_np = advantage(model, x, shots, fpr, test="np")
    a_ex = advantage(model, x, shots, fpr, test="exact")
    assert a_np >= a_ex - 1e-12 * abs(a_ex)


@given(targets(), shots_st, fpr_st)
def test_lemma_vs_np_precise_statement(target, shots, fpr):
    """The lemma's value is the power of the level-α threshold IF IN had OUT's scale; under the
    true IN law (variance (S-1)/S < 1 on the OUT scale) that same threshold has the "exact" TPR.
    So NP >= lemma holds when b = Φ⁻¹(α) + |Δ| >= 0 (then exact >= lemma), and otherwise only up
    to the scale error: lemma - NP <= lemma - exact <= φ(b)|b|(1/r - 1)."""
    model, x = target
    gap, q = _gap_and_q(model, x)
    b = ndtri(fpr) + abs(gap) / np.sqrt(shots * q)
    lemma = advantage(model, x, shots, fpr, test="lira")
    best = advantage(model, x, shots, fpr, test="np")
    if b >= 0 or shots == 1:
        assert best >= lemma - 1e-12 * lemma
    else:
        r = np.sqrt(1 - 1 / shots)
        inv_r_minus_1 = 1 / (shots * (1 + r) * r)  # 1/r - 1 without cancellation
        slack = np.exp(-0.5 * b * b) / np.sqrt(2 * np.pi) * abs(b) * inv_r_minus_1
        assert best >= lemma - slack * (1 + 1e-9) - 1e-300


def test_lemma_exceeds_np_somewhere():
    # The counterexample behind the statement above: S = 2, α = 1e-3, |Δ| = 0.5 (b < 0).
    model = GaussianModel(1, classes=1, sigma=1.0)
    gap_target = 0.5 * np.sqrt(2.0)  # x = 1 + u in 1-d: gap = u(1 + u), sqrt(q) = |1 + u|
    u = gap_target  # |Δ|·sqrt(S) = |gap|/sqrt(q) = |u| in one dimension
    x = np.array([1.0 + u])
    lemma = tpr(model, x, 2.0, 1e-3, test="lira")
    best = tpr(model, x, 2.0, 1e-3, test="np")
    assert lemma == pytest.approx(ndtr(ndtri(1e-3) + 0.5), rel=1e-12)
    assert lemma > 2 * best
    # in advantage: the lemma claims 3.8e-3, the most powerful test achieves 8.2e-4
    assert advantage(model, x, 2.0, 1e-3, test="lira") > 4 * advantage(
        model, x, 2.0, 1e-3, test="np"
    )


@given(targets(), st.floats(1.0, 1e7), st.floats(1.0001, 100.0), fpr_st)
def test_tpr_falls_as_shots_grow_for_lemma_and_np(target, shots, factor, fpr):
    """Lemma: |Δ| ∝ S^-1/2. NP: a data-processing argument: s at S' >= S is s at S mapped by one
    kernel for both hypotheses (s' = (S/S') s + (1 - S/S') <x, m> + N(0, q(S'-S)/S'²)), so the
    optimal power cannot grow."""
    model, x = target
    for test in ("lira", "np"):
        a1 = advantage(model, x, shots, fpr, test=test)
        a2 = advantage(model, x, shots * factor, fpr, test=test)
        assert a2 <= a1 * (1 + 1e-9) + 1e-300


def test_one_sided_exact_test_is_not_monotone_and_can_be_below_alpha():
    # Target on the kink sphere (<x, x - m> = 0): Δ = 0, the one-sided test has TPR Φ(a/r),
    # which is 0 at S = 1 and rises to α as S grows: TPR is NOT falling in S for this test.
    model = GaussianModel(2, classes=1, sigma=1.0)
    x = np.array([0.5, 0.5])
    assert _gap_and_q(model, x)[0] == 0.0
    shots = np.array([1.0, 1.5, 4.0, 100.0, 1e6])
    got = tpr(model, x, shots, 0.01, test="exact")
    a = ndtri(0.01)
    want = np.r_[0.0, ndtr(a / np.sqrt(1 - 1 / shots[1:]))]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert np.all(np.diff(got) > 0) and np.all(got < 0.01)
    assert np.all(np.isnan(log_advantage(model, x, shots, 0.01, test="exact")))


def test_degenerate_targets():
    model = GaussianModel(2, classes=1, sigma=1.0)
    on_sphere = np.array([0.5, 0.5])
    assert log_advantage(model, on_sphere, 10.0, 0.1, test="lira") == -np.inf
    assert tpr(model, on_sphere, 10.0, 0.1, test="lira") == 0.1
    # NP still gains from the unequal variances when Δ = 0.
    assert tpr(model, on_sphere, 10.0, 0.1, test="np") > 0.1
    zero = np.zeros(2)  # x = 0: IN and OUT are the same point mass
    for test in TESTS:
        assert tpr(model, zero, [1.0, 10.0], 0.1, test=test).tolist() == [0.1, 0.1]
        assert np.all(log_advantage(model, zero, [1.0, 10.0], 0.1, test=test) == -np.inf)


@given(targets(min_gap=1e-3), fpr_st)
def test_shots_one(target, fpr):
    model, x = target
    gap, q = _gap_and_q(model, x)
    d = abs(gap) / np.sqrt(q)
    assert tpr(model, x, 1.0, fpr, test="np") == pytest.approx(1.0, abs=2e-16)  # 1 to rounding
    # TPR = α + (TPR - α): exact to rounding of α
    want = 1.0 if d >= -ndtri(fpr) else 0.0
    assert tpr(model, x, 1.0, fpr, test="exact") == pytest.approx(want, abs=2.3e-16)  # 1 ulp
    assert tpr(model, x, 1.0, fpr, test="lira") == pytest.approx(ndtr(ndtri(fpr) + d), rel=1e-12)


@given(targets(min_gap=0.05), st.sampled_from([0.3, 1e-3, 1e-12]))
def test_asymptote_rate_and_slope(target, fpr):
    """log(TPR - α) - asymptote = O(S^-1/2) and the local slope -> -1/2 (all three tests)."""
    model, x = target
    gap, q = _gap_and_q(model, x)
    zeta = abs(gap) / np.sqrt(q)
    a = ndtri(fpr)
    shots = np.geomspace(1e8, 1e16, 9) * max(1.0, 1 / zeta**2) * (1 + a * a)
    asym = asymptote(model, x, shots, fpr)
    for test in TESTS:
        diff = log_advantage(model, x, shots, fpr, test=test) - asym
        scaled = np.abs(diff) * np.sqrt(shots)
        # Expansion: adv = φ(a)|Δ|(1 - a|Δ|/2 + ...) (+ a/(2S) for the unequal variances), so
        # |diff|·sqrt(S) -> |a|ζ/2 (lira) and stays below (|a| + 1)(ζ + 1/ζ).
        assert np.all(scaled <= (abs(a) + 1) * (zeta + 1 / zeta))
        if test == "lira":
            assert scaled[-1] == pytest.approx(abs(a) * zeta / 2, rel=1e-2, abs=1e-6)
        slope = np.diff(log_advantage(model, x, shots, fpr, test=test)) / np.diff(np.log(shots))
        assert np.all(np.abs(slope + 0.5) < 1e-3)


def test_theorem_constant_at_one_billion_shots():
    model = GaussianModel(3, classes=1, sigma=0.7)
    x = np.array([1.4, -0.6, 0.9])
    gap, q = _gap_and_q(model, x)
    for fpr in (0.1, 0.01, 0.001):
        const = np.log(abs(gap) / np.sqrt(2 * np.pi * q))  # the theorem's constant, by hand
        exact_const = log_advantage(model, x, 1e9, fpr, test="np") + 0.5 * np.log(1e9)
        exact_const += 0.5 * ndtri(fpr) ** 2
        # measured: |difference| about 1e-4 (= ξ(S) at S = 1e9), predicted |a|ζ/(2 sqrt(S))
        zeta = abs(gap) / np.sqrt(q)
        assert abs(exact_const - const) < 2 * (abs(ndtri(fpr)) + 1) * (zeta + 1 / zeta) / np.sqrt(
            1e9
        )


def test_broadcasting_and_validation():
    model = GaussianModel(2, sigma=1.0)
    x = np.array([1.5, 0.2])
    out = tpr(model, x, np.array([1.0, 10.0, 100.0])[:, None], np.array([0.1, 0.01])[None, :])
    assert out.shape == (3, 2)
    batch = tpr(model, np.stack([x, 2 * x]), 10.0, 0.1)
    assert batch.shape == (2,)
    with pytest.raises(ValueError, match="shots"):
        tpr(model, x, 0.5, 0.1)
    with pytest.raises(ValueError, match="fpr"):
        tpr(model, x, 2.0, 1.0)
    with pytest.raises(ValueError, match="test"):
        tpr(model, x, 2.0, 0.1, test="rmia")
    with pytest.raises(ValueError, match="dimension"):
        tpr(model, np.ones(3), 2.0, 0.1)


# --------------------------------------------------------------------------- Monte Carlo
@pytest.mark.parametrize("shots", [2, 5])
def test_per_target_tpr_against_simulation(shots):
    """Simulate the membership game with full 3-d data (fixed seed): the training set of class 0
    holds x (IN) or not (OUT) plus fresh draws; the statistic is s = <x, m̂_0>. The one-sided and
    NP tests' TPR and FPR must lie in 99.9% Clopper–Pearson intervals around the exact values."""
    rng = np.random.default_rng(20240611 + shots)
    sigma, n = 0.8, 40_000
    model = GaussianModel(3, classes=1, sigma=sigma)
    x = np.array([1.6, -0.5, 0.4])
    m = model.mean(0)
    out_sets = m + sigma * rng.standard_normal((n, shots, 3))
    in_sets = np.concatenate([np.broadcast_to(x, (n, 1, 3)), out_sets[:, 1:]], axis=1)
    s_out = out_sets.mean(axis=1) @ x
    s_in = in_sets.mean(axis=1) @ x
    gap, q = _gap_and_q(model, x)
    scale = np.sqrt(q / shots)
    z_out, z_in = (s_out - x @ m) / scale, (s_in - x @ m) / scale
    fpr = 0.1
    d = abs(gap) / np.sqrt(shots * q)
    from mialaw.theory.exact import _np_region

    lower, width = _np_region(np.array(shots * d), np.array(fpr))
    deciders = {
        "exact": lambda z: np.sign(gap) * z >= -ndtri(fpr),
        "np": lambda z: (np.sign(gap) * z >= lower) & (np.sign(gap) * z <= lower + width),
    }
    for test, reject in deciders.items():
        for z, want in ((z_in, tpr(model, x, shots, fpr, test=test)), (z_out, fpr)):
            ci = binomtest(int(reject(z).sum()), n).proportion_ci(0.999, method="exact")
            assert ci.low <= want <= ci.high, (test, want, ci)
