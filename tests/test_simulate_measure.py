"""simulate's faster routes to the shared bootstrap (``mialaw.theory.measure``) give its results.

* Several target models: ``theory.measure_fast.bootstrap_tpr`` must equal the reference kernel
  replicate for replicate (bit for bit), and ``measure`` must equal
  ``measure_tpr(method="bootstrap")``.
* One target model: ``measure.bootstrap_games`` draws the same distribution by order statistics
  (two-sample Kolmogorov–Smirnov against the shared kernel, fixed seeds).
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mialaw.simulate.measure import Measurement, bootstrap_games, measure
from mialaw.theory.measure import Experiment, measure_tpr
from mialaw.theory.measure_fast import bootstrap_tpr
from mialaw.theory.measure_kernel import bootstrap_tpr_reference as shared_bootstrap


def _experiment(seed, models, examples, ties):
    """Scores with an example effect shared by all target models (as LiRA's), members higher."""
    g = np.random.default_rng(seed)
    labels = g.random((models, examples)) < g.uniform(0.2, 0.8)
    labels[0, 0], labels[0, 1] = True, False
    scores = (
        g.standard_normal((models, examples))
        + g.uniform(0, 2) * g.standard_normal(examples)
        + g.uniform(0, 2) * labels
    )
    return (np.round(scores, 1) if ties else scores), labels


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    models=st.sampled_from([1, 2, 5, 8]),
    examples=st.sampled_from([3, 60, 800, 20_000]),
    ties=st.booleans(),
    by_model=st.booleans(),
    alphas=st.lists(st.floats(1e-3, 0.95), min_size=1, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_bootstrap_kernel_equals_the_shared_kernel(models, examples, ties, by_model, alphas, seed):
    scores, labels = _experiment(seed, models, examples, ties)
    alphas = np.array(alphas)
    mine = bootstrap_tpr(scores, labels, alphas, 150, seed, by_model=by_model)
    theirs = shared_bootstrap(scores, labels, alphas, 150, seed, by_model=by_model)
    np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("resample", ["examples", "targets-and-examples"])
def test_measure_equals_measure_tpr_with_several_target_models(resample):
    scores, labels = _experiment(3, 6, 5_000, ties=False)
    experiment = Experiment(scores, labels)
    fpr = (0.1, 0.01, 1e-5)  # the last unresolvable: 1e-5 · ~15,000 negatives < 1
    how = Measurement(resamples=400, resample=resample)
    mine = measure(experiment, fpr, how, seed=21)
    theirs = measure_tpr(experiment, fpr, resamples=400, resample=resample, seed=21)
    for a, b in zip(mine, theirs):
        assert a.method == b.method
        if b.resolvable:
            assert a == b
        else:
            assert not a.resolvable and math.isnan(a.tpr) and math.isnan(a.interval.lower)


@pytest.mark.parametrize("ties", [False, True])
def test_games_bootstrap_draws_the_shared_distribution(ties):
    scores, labels = _experiment(5, 1, 3_000, ties)
    alphas = np.array([0.1, 0.02, 0.4])
    mine = bootstrap_games(scores[0], labels[0], alphas, 20_000, seed=1)
    theirs = shared_bootstrap(scores, labels, alphas, 20_000, seed=2)
    for i in range(alphas.size):
        a, b = mine[:, i], theirs[:, i]
        assert stats.ks_2samp(a, b).pvalue > 1e-3
        assert np.std(a) == pytest.approx(np.std(b), rel=0.05)


def test_games_bootstrap_is_seeded_and_reports_empty_weights_as_nan():
    scores, labels = _experiment(6, 1, 500, ties=False)
    a = bootstrap_games(scores[0], labels[0], [0.1], 300, seed=4)
    assert np.array_equal(a, bootstrap_games(scores[0], labels[0], [0.1], 300, seed=4))
    assert not np.array_equal(a, bootstrap_games(scores[0], labels[0], [0.1], 300, seed=5))
    # One non-member: its Poisson weight is 0 in a fraction e^-1 of the replicates.
    one = np.array([True] * 50 + [False])
    reps = bootstrap_games(np.arange(51.0), one, [0.5], 4_000, seed=0)
    assert np.mean(np.isnan(reps)) == pytest.approx(math.exp(-1), abs=0.03)


def test_measure_with_one_target_model_names_its_route():
    scores, labels = _experiment(7, 1, 4_000, ties=False)
    experiment = Experiment(scores, labels)
    boot = measure(experiment, (0.1,), Measurement(), seed=3)[0]
    cp = measure_tpr(experiment, (0.1,), method="clopper-pearson")[0]
    assert boot.tpr == cp.tpr and boot.true_positives == cp.true_positives
    assert "one target model" in boot.method and boot.interval.contains(boot.tpr)
    assert measure(experiment, (0.1,), Measurement(), seed=3)[0] == boot


@pytest.mark.parametrize(
    "options, message",
    [
        ({"level": 1.5}, "confidence level"),
        ({"method": "wald"}, "interval must be one of"),
        ({"resamples": 99}, "resamples must be an integer >= 100"),
        ({"resamples": True}, "resamples must be an integer"),
        ({"resample": "models"}, "resample must be one of"),
    ],
)
def test_measurement_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        Measurement(**options)


def test_measure_rejects_other_inputs():
    with pytest.raises(ValueError, match="Experiment"):
        measure((np.zeros(3), np.array([True, False, True])), (0.1,), Measurement(), seed=0)
    with pytest.raises(ValueError, match="alphas"):
        bootstrap_games(np.arange(4.0), np.array([True, False] * 2), [1.0], 100, seed=0)
