"""Shots per class at which the predicted attack enters the (ε, δ)-DP bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

from mialaw.theory.average import average_advantage
from mialaw.theory.dp import dp_shots, dp_shots_from_power_law
from mialaw.theory.exact import advantage
from mialaw.theory.model import GaussianModel


@pytest.mark.parametrize("test", ["lira", "np"])
@pytest.mark.parametrize("epsilon, fpr", [(1.0, 0.1), (1.0, 1e-3), (0.5, 0.01), (4.0, 1e-3)])
def test_average_dp_shots_is_the_crossing(test, epsilon, fpr):
    model = GaussianModel(16, sigma=1.0)
    res = dp_shots(model, epsilon, 1e-5, fpr, test=test)
    bound = math.expm1(epsilon) * fpr + 1e-5
    assert res.tpr_bound == pytest.approx(math.exp(epsilon) * fpr + 1e-5, rel=1e-15)
    at = average_advantage(model, res.shots, fpr, test=test)
    assert at == pytest.approx(bound, rel=1e-9)  # TPR(S) = e^ε α + δ
    assert average_advantage(model, 0.99 * res.shots, fpr, test=test) > bound
    assert res.shots_ceil == math.ceil(res.shots) and res.shots > 1
    assert res.source == "average" and res.test == test


def test_target_dp_shots_against_closed_form():
    """One target, lemma: Φ(a + ζ/sqrt(S)) - α = b has the closed form
    sqrt(S) = ζ / (Φ⁻¹(α + b) - a)."""
    model = GaussianModel(3, sigma=0.8)
    x = np.array([2.0, 0.4, -0.7])
    zeta = abs(x @ (x - model.mean(0))) / math.sqrt(0.64 * x @ x)
    for epsilon, delta, fpr in [(1.0, 1e-5, 0.01), (0.1, 0.0, 0.1), (2.0, 1e-6, 1e-4)]:
        res = dp_shots(model, epsilon, delta, fpr, x=x)
        b = math.expm1(epsilon) * fpr + delta
        want = (zeta / (ndtri(fpr + b) - ndtri(fpr))) ** 2
        assert res.shots == pytest.approx(want, rel=1e-10)
        assert advantage(model, x, res.shots, fpr) == pytest.approx(b, rel=1e-9)
        assert (
            ndtr(ndtri(fpr) + zeta / math.sqrt(0.99 * res.shots)) > math.exp(epsilon) * fpr + delta
        )
        assert res.source == "target"


def test_bound_already_met_and_not_reached():
    model = GaussianModel(2, sigma=1.0)
    on_sphere = np.array([0.5, 0.5])  # <x, x - m> = 0: the lemma's advantage is 0 at every S
    assert dp_shots(model, 0.1, 0.0, 0.01, x=on_sphere).shots == 1.0
    assert dp_shots(model, 50.0, 0.0, 0.01).shots == 1.0  # e^50·α >= 1
    with pytest.raises(ValueError, match="max_shots"):
        dp_shots(model, 1e-9, 0.0, 1e-3, max_shots=100.0)


def test_power_law_inversion():
    res = dp_shots_from_power_law(-0.5, -0.3, 1.0, 1e-5, 1e-3)
    bound = math.expm1(1.0) * 1e-3 + 1e-5
    assert 10 ** (-0.5 * math.log10(res.shots) - 0.3) == pytest.approx(bound, rel=1e-12)
    assert res.to_dict()["shots_ceil"] == math.ceil(res.shots)
    assert dp_shots_from_power_law(-0.5, -3.0, 1.0, 1e-5, 0.1).shots == 1.0
    with pytest.raises(ValueError, match="slope"):
        dp_shots_from_power_law(0.1, -0.3, 1.0, 1e-5, 1e-3)


@pytest.mark.parametrize(
    "epsilon, delta, fpr, match",
    [(-1.0, 1e-5, 0.1, "epsilon"), (1.0, 1.5, 0.1, "delta"), (1.0, 1e-5, 0.0, "fpr"),
     (0.0, 0.0, 0.1, "zero"), (1.0, 1e-5, [0.1, 0.2], "single")],
)  # fmt: skip
def test_validation(epsilon, delta, fpr, match):
    with pytest.raises(ValueError, match=match):
        dp_shots(GaussianModel(2), epsilon, delta, fpr)
