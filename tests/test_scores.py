"""Logit-scaled confidence against high-precision arithmetic."""

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mialaw.theory.scores import logit_confidence


def exact(z, y):
    # Enough digits that 1 - p keeps its precision even for logit gaps of 1600 (p ~ 1 - 1e-695).
    with mpmath.workdps(800):
        e = [mpmath.e ** mpmath.mpf(v) for v in z]
        p = e[y] / sum(e)
        return float(mpmath.log(p) - mpmath.log(1 - p))


@given(
    st.lists(st.floats(-800, 800, allow_nan=False), min_size=2, max_size=6),
    st.integers(0, 5),
)
def test_matches_high_precision(z, y):
    y = y % len(z)
    got = logit_confidence(np.array(z), y)
    assert got == pytest.approx(exact(z, y), rel=1e-12, abs=1e-12)


def test_extreme_confidence_does_not_saturate():
    # p_y = 1 - 1e-40: the naive log(p/(1-p)) gives inf; the exact value is about 92.1.
    got = logit_confidence(np.array([92.103403719761836, 0.0]), 0)
    assert np.isfinite(got) and got == pytest.approx(92.103403719761836, rel=1e-15)


def test_broadcast_over_models_and_examples():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 4, 5))
    y = rng.integers(0, 5, size=4)
    got = logit_confidence(z, y)
    assert got.shape == (3, 4)
    assert got[2, 1] == pytest.approx(exact(z[2, 1], y[1]), rel=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match=">= 2 classes"):
        logit_confidence(np.zeros((3, 1)), 0)
    with pytest.raises(ValueError, match=r"lie in \[0, 3\)"):
        logit_confidence(np.zeros((2, 3)), [0, 3])
    with pytest.raises(ValueError, match="integers"):
        logit_confidence(np.zeros((2, 3)), [0.5, 1.0])
