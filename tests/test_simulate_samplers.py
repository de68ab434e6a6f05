"""Random streams and samplers of mialaw.simulate against independent computations.

Independent references: scipy's distributions (KS tests), the exact moments of
``GaussianModel.moments``, the full-data sampler (every training example drawn in d dimensions),
the plain numpy engine and ``mialaw.theory.scores.logit_confidence``.
"""

import numba
import numpy as np
import pytest
from scipy import stats

from mialaw.simulate import numpy_engine, oracle, rng, samplers
from mialaw.simulate.attacks import lira_attack, oracle_attack
from mialaw.simulate.engines import Engine, Targets
from mialaw.simulate.lira_kernel import lira_dedicated, lira_loo, lira_pairs
from mialaw.theory.measure_fast import bootstrap_tpr
from mialaw.theory.model import GaussianModel
from mialaw.theory.scores import logit_confidence

# Fixed seeds: each p-value below is a fixed number, so a failure is reproducible, not flaky.
P_MIN = 1e-4


def test_normals_are_standard_normal():
    z = rng.standard_normal(400_000, seed=11)
    assert stats.kstest(z, "norm").pvalue > P_MIN
    # Moments: mean, variance and the tail mass beyond the ziggurat's base strip r = 3.654.
    assert abs(z.mean()) < 5 * np.sqrt(1 / z.size)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / z.size)
    tail = np.count_nonzero(np.abs(z) > 3.6541528853610088)
    expected = z.size * 2 * stats.norm.sf(3.6541528853610088)
    assert abs(tail - expected) < 5 * np.sqrt(expected)


@pytest.mark.parametrize("dof", [0.5, 1.0, 7.0, 62.0])
def test_chisquare_draws(dof):
    c = rng.chisquare_draws(100_000, dof, seed=3)
    assert stats.kstest(c, stats.chi2(dof).cdf).pvalue > P_MIN


def test_streams_differ_and_repeat():
    a = rng.standard_normal(10_000, seed=1, stream=0)
    assert np.array_equal(a, rng.standard_normal(10_000, seed=1, stream=0))
    assert not np.array_equal(a, rng.standard_normal(10_000, seed=2, stream=0))
    assert not np.array_equal(a, rng.standard_normal(10_000, seed=1, stream=1))
    # Blocks are independent streams: neighbouring blocks are uncorrelated.
    b = rng.standard_normal(2 * rng.BLOCK, seed=5)
    r = np.corrcoef(b[: rng.BLOCK], b[rng.BLOCK :])[0, 1]
    assert abs(r) < 5 / np.sqrt(rng.BLOCK)


def _all_outputs(seed):
    model = GaussianModel(8, 3, 0.7)
    chol = np.linalg.cholesky(model.covariance)
    proj, sqnorm, quad = samplers.draw_isotropic_targets(9000, 3, 8, 0.7, np.uint64(seed))
    keep = samplers.draw_keep(6, 9000, np.uint64(seed))
    x = samplers.draw_full_targets(40, model.means, chol, np.uint64(seed))
    small_keep = samplers.draw_keep(6, 40, np.uint64(seed))
    stats_ = samplers.fast_stats(proj, sqnorm, quad, keep, 17, samplers.SCORE, np.uint64(seed))
    pairs = samplers.draw_pair_keep(6, 9000, np.uint64(seed))
    pair_scores = lira_pairs(pairs, stats_, online=True, variance="global")
    return [
        pairs,
        pair_scores,
        lira_pairs(pairs, stats_, online=False, variance="per-example"),
        bootstrap_tpr(pair_scores, pairs, [0.1, 0.01], 200, seed),
        bootstrap_tpr(pair_scores, pairs, [0.1], 100, seed, by_model=True),
        rng.standard_normal(3 * rng.BLOCK + 17, seed),
        rng.chisquare_draws(3 * rng.BLOCK + 5, 3.0, seed),
        proj,
        sqnorm,
        keep,
        x,
        stats_,
        samplers.fast_stats(proj, sqnorm, quad, keep, 17, samplers.LOGIT, np.uint64(seed)),
        samplers.full_stats(x, model.means, chol, small_keep, 5, samplers.LOGIT, np.uint64(seed)),
        lira_loo(keep, stats_, online=True, variance="global"),
        lira_loo(keep, stats_, online=False, variance="per-example"),
        lira_dedicated(keep, stats_, stats_[:2] + 0.1, online=True, variance="global"),
        oracle.oracle_kernel(stats_[0], proj[:, 0].copy(), sqnorm, quad, 17)[1],
    ]


def test_bit_identical_across_thread_counts():
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _all_outputs(21)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = _all_outputs(21)
    finally:
        numba.set_num_threads(threads)
    for a, b in zip(one, many):
        assert a.tobytes() == b.tobytes()


def test_whole_attacks_identical_across_thread_counts():
    model = GaussianModel(16, 2, 1.0)
    threads = numba.get_num_threads()

    def run():
        o = oracle_attack(
            model, 50, [0.1], targets=20_000, sampler="fast", engine=Engine("numba", 3)
        )
        lira = lira_attack(
            model,
            50,
            [0.1],
            targets=300,
            shadows=8,
            online=True,
            sampler="fast",
            engine=Engine("numba", 3),
        )
        return o, lira

    try:
        numba.set_num_threads(1)
        first = run()
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        second = run()
    finally:
        numba.set_num_threads(threads)
    assert first == second


def test_keep_matrix_is_balanced_and_random():
    keep = samplers.draw_keep(10, 20_000, np.uint64(4))
    assert keep.dtype == bool and keep.shape == (10, 20_000)
    assert np.all(keep.sum(0) == 5)
    # Each model is IN for each target with probability 1/2, independently across targets.
    per_model = keep.sum(1)
    assert np.all(np.abs(per_model - 10_000) < 5 * np.sqrt(20_000 / 4))
    # All 252 arrangements of a column are equally likely (chi-square goodness of fit).
    codes = (keep * (1 << np.arange(10))[:, None]).sum(0)
    _, counts = np.unique(codes, return_counts=True)
    assert counts.size == 252
    assert stats.chisquare(counts).pvalue > P_MIN


def test_isotropic_target_features_match_explicit_targets():
    """The (u, v) reduction draws the same target law as explicit d-dimensional points."""
    model = GaussianModel(12, 3, 0.8)
    proj, sqnorm, quad = samplers.draw_isotropic_targets(50_000, 3, 12, 0.8, np.uint64(8))
    x = np.random.default_rng(0).standard_normal((50_000, 12)) * 0.8 + model.mean(0)
    ref = Targets.from_points(model, x)
    for mine, theirs in (
        (proj[:, 0], ref.proj[:, 0]),
        (proj[:, 2], ref.proj[:, 2]),
        (sqnorm, ref.sqnorm),
        (quad, ref.quad),
    ):
        assert stats.ks_2samp(mine, theirs).pvalue > P_MIN
    np.testing.assert_allclose(quad, 0.64 * sqnorm, rtol=1e-15)


def _fixed_targets(model, n, seed):
    x = model.mean(0) + model.sigma * np.random.default_rng(seed).standard_normal((n, model.dim))
    return Targets.from_points(model, x)


@pytest.mark.parametrize("engine", ["numba", "numpy"])
@pytest.mark.parametrize("sampler", ["fast", "full"])
def test_statistic_moments_match_the_model(engine, sampler):
    """Mean and variance of s = <x, m̂_0> IN and OUT against GaussianModel.moments."""
    model = GaussianModel(6, 2, 1.3)
    shots = 7
    targets = _fixed_targets(model, 3, seed=1)
    draws = 4000 if sampler == "full" and engine == "numpy" else 20_000
    keep = np.zeros((draws, 3), dtype=bool)
    keep[::2] = True
    s = Engine(engine, 5).stats(model, targets, keep, shots, samplers.SCORE, sampler)
    mom = model.moments(targets.x, shots)
    for rows, mean, var in (
        (s[::2], mom.in_mean, mom.in_var),
        (s[1::2], mom.out_mean, mom.out_var),
    ):
        n = rows.shape[0]
        assert np.all(np.abs(rows.mean(0) - mean) < 5 * np.sqrt(var / n))
        assert np.all(np.abs(rows.var(0) / var - 1) < 5 * np.sqrt(2 / n))


@pytest.mark.parametrize("statistic", [samplers.SCORE, samplers.LOGIT])
def test_fast_sampler_matches_full_data_sampler(statistic):
    """Two-sample KS per target and membership: sufficient statistics vs every example drawn."""
    model = GaussianModel(5, 3, 0.9)
    targets = _fixed_targets(model, 2, seed=4)
    chol = np.linalg.cholesky(model.covariance)
    keep = np.zeros((6000, 2), dtype=bool)
    keep[::2] = True
    fast = samplers.fast_stats(
        targets.proj, targets.sqnorm, targets.quad, keep, 9, statistic, np.uint64(1)
    )
    full = samplers.full_stats(targets.x, model.means, chol, keep, 9, statistic, np.uint64(2))
    for rows in (slice(0, None, 2), slice(1, None, 2)):
        for n in range(2):
            assert stats.ks_2samp(fast[rows, n], full[rows, n]).pvalue > P_MIN
    # Power check: the same KS test tells IN from OUT at this size.
    assert stats.ks_2samp(fast[::2, 0], fast[1::2, 0]).pvalue < 1e-6


def test_full_sampler_with_general_covariance():
    a = np.array([[1.0, 0.4, 0.0], [0.4, 0.8, 0.2], [0.0, 0.2, 0.5]])
    model = GaussianModel(3, 2, cov=a)
    x = np.array([[1.2, -0.3, 0.7]])
    targets = Targets.from_points(model, x)
    keep = np.zeros((20_000, 1), dtype=bool)
    keep[::2] = True
    s = samplers.full_stats(
        x, model.means, np.linalg.cholesky(a), keep, 4, samplers.SCORE, np.uint64(3)
    )
    mom = model.moments(x, 4)
    assert abs(s[::2].mean() - mom.in_mean[0]) < 5 * np.sqrt(mom.in_var[0] / 10_000)
    assert abs(s[1::2].var() / mom.out_var[0] - 1) < 5 * np.sqrt(2 / 10_000)
    fast = samplers.fast_stats(
        targets.proj, targets.sqnorm, targets.quad, keep, 4, samplers.SCORE, np.uint64(3)
    )
    assert stats.ks_2samp(fast[1::2, 0], s[1::2, 0]).pvalue > P_MIN


def test_numba_engine_matches_numpy_engine_in_distribution():
    model = GaussianModel(10, 4, 1.1)
    for what in ("targets", "logit"):
        outs = []
        for name in ("numba", "numpy"):
            eng = Engine(name, 9)
            t = eng.targets(model, 30_000, "fast")
            if what == "targets":
                outs.append(t.sqnorm)
            else:
                keep = eng.keep(4, 30_000)
                outs.append(eng.stats(model, t, keep, 12, samplers.LOGIT, "fast")[keep])
        assert stats.ks_2samp(*outs).pvalue > P_MIN


@numba.njit
def _logit_wrapper(z, classes):
    return samplers._logit_confidence(z, classes)


def test_logit_kernel_equals_theory_logit_confidence():
    rng_ = np.random.default_rng(2)
    for classes in (2, 3, 10):
        for scale in (1.0, 40.0, 800.0):
            z = rng_.standard_normal(classes) * scale
            ref = logit_confidence(z, 0)
            assert _logit_wrapper(z, classes) == pytest.approx(ref, rel=1e-13, abs=1e-12)


def test_numpy_engine_keep_is_balanced():
    keep = numpy_engine.draw_keep(np.random.default_rng(0), 8, 500)
    assert np.all(keep.sum(0) == 4)
