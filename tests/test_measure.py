"""TPR at FPR by the project's rules: one threshold per experiment, resolvability, intervals.

Independent computations: a brute-force threshold scan; weighted scores against the same scores
repeated by their integer weights; coverage against closed-form truth in repeated experiments.
"""

import numpy as np
import pytest
from scipy.stats import norm

from mialaw.theory.measure import Experiment, mean_roc, measure_tpr
from mialaw.theory.measure_kernel import sorted_scores, weighted_tpr
from mialaw.theory.metrics import tpr_at_fpr


def brute_tpr(scores, labels, alpha):
    """Try every threshold; keep the largest TPR whose FPR is <= α."""
    s, y = np.ravel(scores), np.ravel(labels).astype(bool)
    best = 0.0
    for t in np.r_[np.unique(s), np.inf]:
        fpr = np.mean(s[~y] >= t)
        if fpr <= alpha:
            best = max(best, np.mean(s[y] >= t))
    return best


def experiment(rng, models=6, examples=80, shift=1.0, ties=False):
    labels = np.zeros((models, examples), bool)
    for t in range(models):
        labels[t, rng.permutation(examples)[: examples // 2]] = True
    scores = rng.normal(size=(models, examples)) + shift * labels
    if ties:
        scores = np.round(scores, 1)
    return scores, labels


@pytest.mark.parametrize("ties", [False, True])
def test_one_threshold_over_all_target_models(ties):
    rng = np.random.default_rng(3)
    scores, labels = experiment(rng, ties=ties)
    for m in measure_tpr([(scores, labels)], [0.3, 0.1, 0.02], method="clopper-pearson"):
        assert m.tpr == brute_tpr(scores, labels, m.fpr)
        assert m.achieved_fpr <= m.fpr
        assert m.negatives == (~labels).sum() and m.positives == labels.sum()


def test_seeds_are_averaged_each_with_its_own_threshold():
    rng = np.random.default_rng(4)
    a, b = experiment(rng), experiment(rng, examples=120, shift=2.0)
    (m,) = measure_tpr([a, b], [0.1], resamples=200)
    want = [brute_tpr(*a, 0.1), brute_tpr(*b, 0.1)]
    assert m.tpr_per_experiment == pytest.approx(want, abs=0)
    assert m.tpr == pytest.approx(np.mean(want), abs=1e-15)
    assert m.experiments == 2 and m.min_negatives == 6 * 40


def test_unresolvable_when_no_false_positive_is_allowed():
    rng = np.random.default_rng(5)
    scores, labels = experiment(rng, models=2, examples=100)  # 100 non-members
    high, low = measure_tpr([(scores, labels)], [0.01, 0.001], resamples=100)
    assert high.resolvable and np.isfinite(high.tpr)
    assert not low.resolvable and np.isnan(low.tpr) and not low.detected
    assert low.to_dict()["tpr"] is None and low.to_dict()["resolvable"] is False


@pytest.mark.parametrize("alpha", [0.3, 0.05])
def test_weighted_kernel_equals_repeated_scores(alpha):
    """Integer weights wt[t]·wn[n] are the same as repeating each score that many times."""
    rng = np.random.default_rng(6)
    scores, labels = experiment(rng, models=5, examples=40, ties=True)
    arrays = sorted_scores(scores, labels)
    for _ in range(20):
        wt = rng.poisson(1.0, 5).astype(float)
        wn = rng.poisson(1.0, 40).astype(float)
        out = np.empty(1)
        weighted_tpr(*arrays, wt, wn, np.array([alpha]), out)
        reps = (wt[:, None] * wn[None, :]).astype(int).ravel()
        s, y = np.repeat(scores.ravel(), reps), np.repeat(labels.ravel(), reps)
        if y.all() or not y.any():
            assert np.isnan(out[0])
            continue
        assert out[0] == pytest.approx(tpr_at_fpr(s, y, alpha).tpr, abs=1e-12)


def test_bootstrap_is_seeded_and_thread_independent():
    import numba

    rng = np.random.default_rng(7)
    data = [experiment(rng, models=4, examples=300)]
    first = measure_tpr(data, [0.1, 0.01], seed=11)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        single = measure_tpr(data, [0.1, 0.01], seed=11)
    finally:
        numba.set_num_threads(before)
    assert first == single
    other = measure_tpr(data, [0.1, 0.01], seed=12)
    assert first[0].interval != other[0].interval


def truth(alpha, shift, spread):
    """TPR at α when members and non-members are N(shift, spread²) and N(0, spread²)."""
    return norm.sf(norm.isf(alpha) - shift / spread)


def structured(rng, models, examples, shift, example_sd, target_sd=0.0):
    """Scores with an example effect shared by every target model (the usual correlation) and
    optionally a shift of each target model as a whole."""
    labels = np.zeros((models, examples), bool)
    for t in range(models):
        labels[t, rng.permutation(examples)[: examples // 2]] = True
    effect = example_sd * rng.normal(size=examples)[None, :] + target_sd * rng.normal(
        size=(models, 1)
    )
    return effect + rng.normal(size=(models, examples)) + shift * labels, labels


def coverage(method, repeats, alpha, seeds=1, target_sd=0.0, **options):
    """Coverage of the truth (the marginal law of the scores: normal) over repeated experiments."""
    rng = np.random.default_rng(2024)
    want = truth(alpha, 1.0, np.sqrt(2.0 + target_sd**2))
    hits = 0
    for r in range(repeats):
        data = [structured(rng, 8, 400, 1.0, 1.0, target_sd) for _ in range(seeds)]
        (m,) = measure_tpr(data, [alpha], method=method, resamples=300, seed=r, **options)
        hits += m.interval.contains(want)
    return hits / repeats


# 120 repeats: a method that covers 80 % reaches 108 hits (0.9) with probability ~0.3 %.
@pytest.mark.parametrize("alpha, seeds", [(0.1, 1), (0.02, 3)])
def test_bootstrap_interval_holds_its_coverage(alpha, seeds):
    assert coverage("bootstrap", 120, alpha, seeds) >= 0.9


def test_two_way_bootstrap_covers_when_target_models_differ():
    assert coverage("bootstrap", 120, 0.1, 1, 0.5, resample="targets-and-examples") >= 0.9


def test_pooled_clopper_pearson_under_covers_correlated_scores():
    """Why the bootstrap: counts of correlated decisions are not independent trials."""
    assert coverage("clopper-pearson", 120, 0.1) < 0.8


@pytest.mark.parametrize("alpha", [0.1, 0.01, 0.001])
def test_null_scores_measure_as_no_signal(alpha):
    """Scores that ignore membership give TPR = α within the interval (in >= 88 of 100 repeats;
    a 95 % interval misses more than 12 times with probability 0.2 %), or are unresolvable."""
    rng = np.random.default_rng(int(1 / alpha))
    for examples in (50, 500, 5000):
        hits = 0
        for r in range(100):
            scores, labels = structured(rng, 8, examples, 0.0, 1.0)
            (m,) = measure_tpr([(scores, labels)], [alpha], resamples=200, seed=r)
            if alpha * m.min_negatives < 1:
                assert not m.resolvable and not m.detected and np.isnan(m.tpr)
                break
            hits += m.interval.contains(alpha)
        else:
            assert hits >= 88, (examples, hits)


def test_mean_roc_averages_pooled_curves():
    rng = np.random.default_rng(8)
    a, b = experiment(rng), experiment(rng)
    grid = np.array([0.05, 0.2, 0.5])
    want = [np.mean([brute_tpr(*e, g) for e in (a, b)]) for g in grid]
    assert mean_roc([a, b], grid) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (([(np.zeros((2, 3)), np.zeros((2, 3), bool))], [0.1]), {}, "at least one member"),
        (([(np.zeros((2, 3)), np.zeros((3, 2), bool))], [0.1]), {}, "one shape"),
        (([(np.full((1, 2), np.nan), np.array([[True, False]]))], [0.1]), {}, "NaN"),
        (([], [0.1]), {}, "at least one experiment"),
        (([(np.arange(2.0), np.array([True, False]))], [1.5]), {}, "strictly between"),
        (([(np.arange(2.0), np.array([True, False]))], [0.1]), {"method": "wald"}, "method"),
        (([(np.arange(2.0), np.array([True, False]))], [0.1]), {"resamples": 5}, "resamples"),
        (([(np.arange(2.0), np.array([True, False]))], [0.1]), {"resample": "rows"}, "resample"),
        (([(np.arange(2.0), np.array([2, 0]))], [0.1]), {}, "boolean"),
    ],
)
def test_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        measure_tpr(*args, **kwargs)


def test_experiment_accepts_one_target_model():
    e = Experiment(np.array([0.0, 1.0, 2.0]), np.array([False, True, True]))
    assert e.scores.shape == (1, 3) and e.negatives == 1


def _overlapping_seeds(rng, alpha, shared_ids: bool):
    """Six seeds drawing 200 of the same 300 examples (each example's vulnerability v ~ N(1, 0.7²);
    member scores N(v, 1), non-member scores N(0, 1); 8 target models in complementary pairs)."""
    v = rng.normal(1.0, 0.7, 300)
    experiments = []
    for _ in range(6):
        chosen = np.sort(rng.choice(300, 200, replace=False))
        first = rng.random((4, 200)) < 0.5
        labels = np.empty((8, 200), dtype=bool)
        labels[0::2], labels[1::2] = first, ~first
        scores = rng.standard_normal((8, 200)) + np.where(labels, v[chosen], 0.0)
        experiments.append(Experiment(scores, labels, ids=chosen if shared_ids else None))
    return experiments


def test_seeds_that_share_examples_are_bootstrapped_jointly_and_keep_their_coverage():
    from scipy.stats import norm

    alpha = 0.1
    # Marginally a member's score is N(1, 1 + 0.49): the TPR at the α-quantile of N(0, 1).
    truth = norm.sf((norm.isf(alpha) - 1.0) / np.sqrt(1.49))
    covered = {True: 0, False: 0}
    width = {True: [], False: []}
    repeats = 60
    for r in range(repeats):
        for shared in (True, False):
            rng = np.random.default_rng([7, r])  # the same data for both designs
            (m,) = measure_tpr(_overlapping_seeds(rng, alpha, shared), alpha, resamples=400, seed=r)
            covered[shared] += m.interval.lower <= truth <= m.interval.upper
            width[shared].append(m.interval.upper - m.interval.lower)
            if shared:
                assert "shared examples weighted jointly" in m.method
    # Counting the shared examples once widens the interval and restores the coverage that
    # treating the six seeds as independent strata loses.
    assert np.mean(width[True]) > 1.2 * np.mean(width[False])
    assert covered[True] / repeats >= 0.88
    assert covered[False] < covered[True]


def test_example_ids_are_validated():
    scores, labels = np.zeros((2, 3)), np.array([[True, False, True], [False, True, False]])
    with pytest.raises(ValueError, match="must not repeat"):
        Experiment(scores, labels, ids=[1, 1, 2])
    with pytest.raises(ValueError, match="name the 3 examples"):
        Experiment(scores, labels, ids=[1, 2])
    with pytest.raises(ValueError, match="integer"):
        Experiment(scores, labels, ids=[0.5, 1.0, 2.0])
