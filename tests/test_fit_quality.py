"""The slope table's recomputed laws: goodness of fit, the asymptotic slope and the saturation
rule, against independent computations on synthetic points."""

import numpy as np
import pytest
from scipy import stats

from mialaw.paper.fit_quality import CUT_LOOSE, CUT_STRICT, QUALITY_COLUMNS, average_laws
from mialaw.theory.fits import fit_power_law

SHOTS = 2.0 ** np.arange(0, 12)  # 1 … 2,048
ALPHA = 0.1


def _points(adv, se):
    return [
        dict(dataset="d", backbone="b", classes=2, attack="lira_online", fpr=ALPHA)
        | dict(shots=float(s), advantage=float(a), log10_advantage_se=float(e))
        | dict(resolvable=True, detected=True, tpr_ci=[a + ALPHA - 0.01, a + ALPHA + 0.01])
        for s, a, e in zip(SHOTS, adv, se)
    ]


def _law(adv, se):
    (law,) = average_laws(_points(adv, se))
    return law


def test_saturated_points_that_move_the_fit_are_left_out():
    """Near the ceiling the curve flattens (here ceiling·(1 − exp(−law/ceiling))): with the
    points above half the ceiling the slope moves outside the strict fit's interval, so the table
    uses the 0.5 cut; a law that does not flatten keeps the 0.9 cut."""
    ceiling = 1 - ALPHA
    se = np.full(SHOTS.size, 0.01)
    bent = ceiling * (1 - np.exp(-2.0 * SHOTS**-0.5 / ceiling))
    flattened = _law(bent, se)
    assert flattened.cut == CUT_STRICT
    assert flattened.fit.kept.sum() == int(np.sum(bent < 0.5 * ceiling))
    loose = fit_power_law(SHOTS, bent, keep=bent < 0.9 * ceiling, sigma=se).slope
    strict = flattened.fit.slope
    assert abs(strict.estimate + 0.5) < abs(loose.estimate + 0.5)
    assert strict.lower > loose.upper or strict.upper < loose.lower
    law = 3.0 * SHOTS**-0.5
    straight = _law(np.minimum(law, 0.85), se)  # only the S = 1…8 points sit at the cap
    assert straight.cut == CUT_LOOSE
    assert straight.fit.shots_range == (16.0, 2048.0)  # 0.85 > 0.9·0.9 is out at any cut
    # Too few points below half the ceiling: the strict cut, whatever the loose fit says.
    few = _law(np.where(SHOTS < 1024, 0.8, 0.3 * SHOTS**-0.5), se)  # 2 below half
    assert few.cut == CUT_STRICT


def test_row_reports_chi2_and_asymptotic_slope_against_independent_fits():
    rng = np.random.default_rng(41)
    se = rng.uniform(0.01, 0.03, SHOTS.size)
    true = 10 ** (-0.2 - 0.5 * np.log10(SHOTS) - 1.5 / np.sqrt(SHOTS))
    adv = true * 10 ** (se * rng.normal(size=SHOTS.size))
    law = _law(adv, se)
    row = law.row()
    assert set(QUALITY_COLUMNS) <= set(row)
    k = law.fit.kept
    x, y, w = np.log10(SHOTS[k]), np.log10(adv[k]), 1 / se[k]
    b, a = np.polyfit(x, y, 1, w=w)
    chi2 = np.sum(((y - a - b * x) * w) ** 2)
    dof = k.sum() - 2
    assert row["slope"] == pytest.approx(b, rel=1e-9)
    assert row["chi2_dof"] == pytest.approx(chi2 / dof, rel=1e-9)
    assert row["p_value"] == pytest.approx(stats.chi2.sf(chi2, dof), rel=1e-9)
    A = np.column_stack([np.ones_like(x), x, 1 / np.sqrt(SHOTS[k])]) * w[:, None]
    coef = np.linalg.lstsq(A, y * w, rcond=None)[0]
    assert row["asymptotic_slope"] == pytest.approx(coef[1], rel=1e-9)
    assert row["c"] == pytest.approx(coef[2], rel=1e-9)
    assert row["asymptotic_low"] < row["asymptotic_slope"] < row["asymptotic_high"]
    assert row["saturation_cut"] == law.cut


def test_slope_table_carries_the_new_columns():
    from mialaw.paper.slope_tables import SLOPE_COLUMNS, slope_rows

    assert set(QUALITY_COLUMNS) <= set(SLOPE_COLUMNS)
    adv = 3.0 * SHOTS**-0.5
    fit = {"power_law": [dict(dataset="d", backbone="b", classes=2, attack="lira_online")]}
    fit["power_law"][0]["fpr"] = ALPHA
    run = {"label": "r", "points": _points(np.minimum(adv, 0.9), np.full(12, 0.01)), "fit": fit}
    (row,) = slope_rows({"empirical-r": run})
    assert set(row) <= set(SLOPE_COLUMNS)
    assert row["source"] == "r (LiRA online)" and row["slope"] == pytest.approx(-0.5)
    assert row["asymptotic_slope"] == pytest.approx(-0.5) and row["c"] == pytest.approx(0, abs=1e-9)


def test_simulated_laws_follow_the_sweep_rule():
    """S below fit_min_shots, unresolvable or undetected points stay out; the oracle's
    per-example law is weighted by its interval's width."""
    from mialaw.paper.fit_quality import simulated_laws

    shots = 2.0 ** np.arange(2, 12)
    adv = 0.4 * (shots / 4) ** -0.5
    points = []
    for i, (s, a) in enumerate(zip(shots, adv)):
        t = a + ALPHA
        points.append(
            dict(shots=float(s), fpr=ALPHA, advantage=float(a), log10_advantage_se=0.01)
            | dict(resolvable=i != 5, detected=i != 6)
            | dict(per_example_tpr=float(t), per_example_tpr_ci=[t - 0.002, t + 0.002])
        )
    res = {"config": {"fpr": [ALPHA], "fit_min_shots": 8, "level": 0.95}, "points": points}
    laws = simulated_laws(res)
    pooled = laws[(ALPHA, "pooled")]
    assert pooled.fit.kept.tolist() == [False] + [True] * 4 + [False, False] + [True] * 3
    assert pooled.fit.slope.estimate == pytest.approx(-0.5) and pooled.cut == CUT_LOOSE
    per_example = laws[(ALPHA, "per_example")]
    assert per_example.fit.n == 9 and per_example.fit.weighted
    se = 0.002 / stats.norm.ppf(0.975) / (adv * np.log(10))  # delta method, by hand
    np.testing.assert_allclose(per_example.sigma, se, rtol=1e-9)


def test_a_loose_fit_that_fails_its_chi2_gives_way():
    """The points above half the ceiling stay out when they break one power law (the loose fit's
    χ² rejects it) while the strict fit holds, even if the slopes' intervals overlap."""
    from types import SimpleNamespace

    from mialaw.paper.fit_quality import CUT_LOOSE, CUT_STRICT, choose_cut
    from mialaw.theory.estimate import Estimate

    def fit(p, n=5):
        return SimpleNamespace(slope=Estimate(-0.8, -0.7, -0.6), n=n, p_value=p)

    assert choose_cut(fit(0.5), fit(0.4)) == CUT_LOOSE
    assert choose_cut(fit(0.5), fit(0.001)) == CUT_STRICT
    assert choose_cut(fit(0.01), fit(0.001)) == CUT_LOOSE  # both fail: the cut is not the cause
    assert choose_cut(fit(0.5, n=2), fit(0.4)) == CUT_STRICT
