"""Quantile laws of the standardised gap |Δ̂| (where the advantage itself is saturated) and the
DP shots they predict for the most vulnerable example."""

import math

import pytest
from scipy.stats import norm

from mialaw.empirical.run_fits import gap_fits
from mialaw.paper.dp_bootstrap import dp_shots_bootstrap, gap_target


def _rows(gaps, shots, above=None):
    above = [True] * len(shots) if above is None else above
    return [
        dict(dataset="d", backbone="b", classes=2, quantile=1.0, fpr=0.01, shots=s)
        | dict(delta=g, above_noise_floor=a)
        for s, g, a in zip(shots, gaps, above)
    ]


def test_gap_law_is_fitted_from_the_peak_on_and_recovers_the_exponent():
    shots = [2, 4, 8, 16, 32, 64, 128, 256]
    rising = [3.0, 6.0]  # the gap still grows at small S: not part of the law
    falling = [12.0 * (s / 8) ** -0.3 for s in shots[2:]]
    (fit,) = gap_fits(_rows(rising + falling, shots), 0.95)
    assert fit["slope"] == pytest.approx(-0.3, abs=1e-9)
    assert fit["shots_range"] == [8.0, 256.0] and fit["n"] == 6
    # Points below the noise floor are left out.
    above = [True] * 6 + [False, False]
    (fit,) = gap_fits(_rows(rising + falling, shots, above), 0.95)
    assert fit["shots_range"] == [8.0, 64.0]


def test_shots_from_the_gap_law_meet_the_dp_bound():
    slope, icept = -0.3, 1.0
    eps, delta, alpha = 1.0, 1e-5, 0.01
    shots = [64.0, 128.0, 256.0, 512.0, 1024.0]
    log_gap = [icept + slope * math.log10(s) for s in shots]
    found = dp_shots_bootstrap(shots, log_gap, 0.0, gap_target(eps, delta, alpha), weighted=False)
    est = found.estimate
    gap = 10 ** (icept + slope * math.log10(est))
    tpr = norm.cdf(norm.ppf(alpha) + gap)  # Gaussian LiRA at that gap: just inside the bound
    assert tpr <= math.exp(eps) * alpha + delta
    assert tpr == pytest.approx(math.exp(eps) * alpha + delta, rel=1e-3)
    # One shot fewer is still outside the bound.
    gap = 10 ** (icept + slope * math.log10(est - 1))
    assert norm.cdf(norm.ppf(alpha) + gap) > math.exp(eps) * alpha + delta
    # A law that does not fall never reaches it.
    rising = [icept + 0.1 * math.log10(s) for s in shots]
    found = dp_shots_bootstrap(shots, rising, 0.0, gap_target(eps, delta, alpha), weighted=False)
    assert math.isinf(found.estimate) and found.never == 1.0
