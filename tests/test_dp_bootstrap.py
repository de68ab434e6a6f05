"""DP shots from fitted laws: the start-and-points bootstrap, its rounding and extrapolation marks,
and the DP table built from a synthetic headline run."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from mialaw.paper.dp_bootstrap import (
    average_target,
    dp_shots_bootstrap,
    gap_target,
    sig2,
)
from mialaw.theory.dp import dp_shots_from_power_law

SHOTS = 2.0 ** np.arange(3, 12)  # 8 … 2,048


def _width(found) -> float:
    return math.log10(found.high / found.low)


def test_exact_law_gives_the_known_answer():
    slope, icept, eps, delta, alpha = -0.5, -0.3, 1.0, 1e-5, 0.01
    y = icept + slope * np.log10(SHOTS)
    found = dp_shots_bootstrap(SHOTS, y, 1e-4, average_target(eps, delta, alpha), weighted=True)
    want = dp_shots_from_power_law(slope, icept, eps, delta, alpha).shots_ceil
    assert found.estimate == want
    assert found.low <= want <= found.high
    assert found.high / found.low < 1.01  # exact points: the start does not matter
    assert found.starts == tuple(SHOTS[:-2]) and found.largest_shots == 2048.0
    assert not found.extrapolated and found.decades_beyond_data == 0.0


def test_interval_covers_the_truth_under_noise():
    """A straight law with known errors: the 95 % interval covers the true S* in >= 90 %."""
    rng = np.random.default_rng(7)
    target = -3.0  # S* = 10^6 for log10 y = −½ log10 S: three decades beyond the data
    hits = 0
    for _ in range(200):
        sigma = rng.uniform(0.01, 0.04, SHOTS.size)
        y = -0.5 * np.log10(SHOTS) + sigma * rng.normal(size=SHOTS.size)
        found = dp_shots_bootstrap(SHOTS, y, sigma, target, weighted=True)
        hits += found.low <= 1e6 <= found.high
    assert hits >= 180


def test_interval_widens_when_the_start_matters():
    """A law that bends (c/√S) gives different answers from different starts: the interval
    over starts is much wider than at the first start alone, far more so than for a straight
    law with the same errors, and it reaches the answer of the last start's fit."""
    target, sigma = -3.0, 0.02

    def ratio(c):
        y = -0.5 * np.log10(SHOTS) + c / np.sqrt(SHOTS)
        starts = dp_shots_bootstrap(SHOTS, y, sigma, target, weighted=True)
        first = dp_shots_bootstrap(SHOTS, y, sigma, target, weighted=True, min_points=SHOTS.size)
        return _width(starts) / _width(first), starts, y

    straight, _, _ = ratio(0.0)
    bent, found, y = ratio(3.0)
    assert bent > 3 * straight
    b, a = np.polyfit(np.log10(SHOTS[-3:]), y[-3:], 1)  # the last start's fit, noise-free
    assert found.low <= found.estimate <= 10 ** ((target - a) / b) <= found.high


def test_unweighted_law_and_a_law_that_does_not_fall():
    y = 1.0 - 0.3 * np.log10(SHOTS)
    found = dp_shots_bootstrap(SHOTS, y, 0.05, gap_target(1.0, 1e-5, 0.1), weighted=False)
    assert found.low < found.estimate < found.high and found.extrapolated
    flat = dp_shots_bootstrap(SHOTS, 0.0 * y, 0.0, -1.0, weighted=False)
    assert math.isinf(flat.estimate) and flat.never == 1.0
    with pytest.raises(ValueError, match=">= 3 points"):
        dp_shots_bootstrap(SHOTS[:2], y[:2], 0.1, -1.0, weighted=True)


def test_two_significant_digits():
    assert [sig2(v) for v in (162, 2876, 33633, 3031995, 4.5e7)] == [
        "160",
        "2900",
        "34000",
        "3.0e+06",
        "4.5e+07",
    ]
    assert sig2(math.inf) == "never" and sig2(None) is None


def _headline_results(slope_avg=-0.5, slope_gap=-0.3):
    """A synthetic headline run: online LiRA at α = 0.1 on an exact law with small errors,
    saturated below S = 8, and the maximum example's gap law."""
    points = []
    for s in SHOTS:
        adv = min(0.9, 2.0 * s**slope_avg)
        tpr = adv + 0.1
        points.append(
            dict(dataset="d", backbone="b", classes=2, attack="lira_online", fpr=0.1)
            | dict(shots=float(s), advantage=adv, tpr_ci=[tpr - 0.01, tpr + 0.01])
            | dict(resolvable=True, detected=True, log10_advantage_se=0.01)
        )
    gap = [20.0 * s**slope_gap for s in SHOTS]
    gap_fit = dict(dataset="d", backbone="b", classes=2, quantile=1.0, n=9)
    gap_fit |= {"shots": SHOTS.tolist(), "gap": gap, "kept": [True] * SHOTS.size}
    fit = {"power_law": [], "per_example": {"quantiles": [], "gap_fits": [gap_fit]}}
    run = {"label": "fashion-mnist-lite0-c2-large", "points": points, "fit": fit}
    return {"empirical-fashion-mnist-lite0-c2-large": run}


def test_dp_rows_of_a_synthetic_run(tmp_path):
    from mialaw.paper.study_tables import DP_COLUMNS, dp_rows
    from mialaw.paper.table_format import read_table, write_table

    profile = SimpleNamespace(
        epsilons=(1.0,), fpr=(0.1,), delta=1e-5, headline_attack="lira_online"
    )
    (row,) = dp_rows(_headline_results(), profile)
    assert set(row) <= set(DP_COLUMNS)
    avg = dp_shots_from_power_law(-0.5, math.log10(2.0), 1.0, 1e-5, 0.1).shots_ceil
    assert row["empirical_average"] == sig2(avg)  # 40: inside the data
    assert row["average_decades_beyond_data"] == 0.0
    # The gap law: 20·S^−0.3 = the gap at which Gaussian LiRA meets the bound.
    gap = 10 ** ((gap_target(1.0, 1e-5, 0.1) - math.log10(20.0)) / -0.3)
    assert float(row["gap_most_vulnerable"]) == pytest.approx(gap, rel=0.05)
    assert row["gap_decades_beyond_data"] == round(math.log10(gap / 2048), 1)
    assert row["decades_beyond_data"] == row["gap_decades_beyond_data"] > 1
    assert row["extrapolated"] == "true" and row["largest_measured_shots"] == 2048
    low, high = float(row["gap_most_vulnerable_low"]), float(row["gap_most_vulnerable_high"])
    assert low <= float(row["gap_most_vulnerable"]) <= high
    written = write_table([row], DP_COLUMNS, tmp_path / "dp", "DP")
    (back,) = read_table(written[1])
    assert back["gap_most_vulnerable"] == row["gap_most_vulnerable"]  # two digits in the CSV
    assert back["extrapolated"] == "true"
    assert row["gap_most_vulnerable"] in written[0].read_text()  # and in the markdown
