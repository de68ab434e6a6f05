"""ROC, TPR at FPR and Clopper–Pearson against brute-force and independent formulas."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import beta

from mialaw.theory.metrics import clopper_pearson, roc_curve, tpr_at_fpr


def brute_tpr_at_fpr(scores, labels, alpha):
    """Try every threshold; keep the largest TPR among those with FPR <= alpha."""
    best = (0.0, 0.0, np.inf)
    for t in np.r_[np.inf, np.unique(scores)]:
        said = scores >= t
        tpr = said[labels].mean()
        fpr = said[~labels].mean()
        if fpr <= alpha and tpr > best[0]:
            best = (tpr, fpr, t)
    return best


@given(
    st.lists(st.tuples(st.integers(-5, 5), st.booleans()), min_size=2, max_size=60),
    st.floats(0.01, 0.99),
)
def test_tpr_at_fpr_matches_brute_force(pairs, alpha):
    scores = np.array([p[0] for p in pairs], dtype=float)
    labels = np.array([p[1] for p in pairs])
    if labels.all() or not labels.any():
        return
    r = tpr_at_fpr(scores, labels, alpha)
    tpr, fpr, thr = brute_tpr_at_fpr(scores, labels, alpha)
    assert r.tpr == pytest.approx(tpr)
    assert r.achieved_fpr <= alpha
    if tpr > 0:
        assert r.achieved_fpr == pytest.approx(fpr)
        assert r.threshold == thr
    assert r.true_positives == round(r.tpr * labels.sum())
    assert r.negatives == (~labels).sum()


def test_roc_endpoints_and_auc():
    rng = np.random.default_rng(1)
    labels = rng.random(2000) < 0.5
    scores = rng.normal(size=2000) + labels
    roc = roc_curve(scores, labels)
    assert roc.fpr[0] == 0 and roc.tpr[0] == 0 and roc.fpr[-1] == 1 and roc.tpr[-1] == 1
    # AUC equals the Mann–Whitney probability P(score_member > score_nonmember).
    pos, neg = scores[labels], scores[~labels]
    mw = (pos[:, None] > neg[None, :]).mean()
    assert roc.auc() == pytest.approx(mw, abs=1e-12)


def test_vector_fpr_returns_tuple():
    r = tpr_at_fpr([0.1, 0.9, 0.5, 0.7], [0, 1, 0, 1], [0.1, 0.5])
    assert isinstance(r, tuple) and len(r) == 2
    assert r[0].tpr == 1.0 and r[0].advantage == pytest.approx(0.9)


@given(st.integers(0, 50), st.integers(1, 50), st.sampled_from([0.9, 0.95, 0.999]))
def test_clopper_pearson_matches_beta_quantiles(k, n, level):
    k = min(k, n)
    ci = clopper_pearson(k, n, level)
    a = 1 - level
    lower = 0.0 if k == 0 else beta.ppf(a / 2, k, n - k + 1)
    upper = 1.0 if k == n else beta.ppf(1 - a / 2, k + 1, n - k)
    assert ci.lower == pytest.approx(lower, rel=1e-9, abs=1e-12)
    assert ci.upper == pytest.approx(upper, rel=1e-9, abs=1e-12)
    assert ci.lower <= k / n <= ci.upper


def test_clopper_pearson_vectorised():
    ci = clopper_pearson(np.array([0, 5, 10]), 10)
    assert ci.lower.shape == (3,)
    assert ci.estimate.tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    "scores, labels, fpr, match",
    [
        ([1, 2], [1, 1], 0.1, "one member and one non-member"),
        ([1, np.nan], [1, 0], 0.1, "NaN"),
        ([1, 2, 3], [1, 0], 0.1, "differ in size"),
        ([1, 2], [1, 0], 0.0, "strictly between 0 and 1"),
        ([1, 2], [2, 0], 0.1, "boolean"),
    ],
)
def test_bad_inputs(scores, labels, fpr, match):
    with pytest.raises(ValueError, match=match):
        tpr_at_fpr(scores, labels, fpr)


def test_bad_interval_inputs():
    with pytest.raises(ValueError, match="successes <= trials"):
        clopper_pearson(5, 3)
    with pytest.raises(ValueError, match="level"):
        clopper_pearson(1, 3, level=1.5)


def test_unsaturated_drops_nearly_perfect_attacks():
    from mialaw.theory.metrics import unsaturated

    adv = np.array([0.999 - 0.1, 0.82, 0.5])  # ceiling 1 - α = 0.9; cut at 0.81
    assert unsaturated(adv, 0.1).tolist() == [False, False, True]
    assert unsaturated(0.95, 0.001, fraction=0.99)
