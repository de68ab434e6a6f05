"""Oracle and LiRA attacks of mialaw.simulate against the exact theory and shared reference code.

References: ``mialaw.theory.exact.tpr`` (per-target Neyman–Pearson TPR), ``mialaw.theory.average``
(E_x TPR_NP at per-example FPR; pooled NP TPR at global FPR) and ``mialaw.theory.lira.lira_scores``
(both rotations). Monte Carlo counts of independent trials must fall inside 99.9 %
Clopper–Pearson intervals around the exact values, pooled TPRs (estimated threshold) inside
99.9 % bootstrap intervals (fixed seeds: no flakiness).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mialaw.simulate import oracle, samplers
from mialaw.simulate.attacks import lira_attack, oracle_attack
from mialaw.simulate.engines import Engine, Targets
from mialaw.simulate.lira_kernel import lira_dedicated, lira_loo, lira_pairs
from mialaw.simulate.measure import Measurement
from mialaw.theory import exact
from mialaw.theory.average import average_tpr, pooled_tpr
from mialaw.theory.lira import complementary_pairs, lira_scores
from mialaw.theory.metrics import clopper_pearson
from mialaw.theory.model import GaussianModel

LEVEL = 0.999
# 99.9 % bootstrap intervals: enough replicates that the 0.05 % quantiles are not the extremes.
WIDE = Measurement(level=LEVEL, resamples=4000)


def _inside(successes, trials, value):
    ci = clopper_pearson(successes, trials, LEVEL)
    return ci.lower <= value <= ci.upper


def _games(model, x, shots, n, seed):
    """n IN and n OUT draws of s for one fixed target x (fast sampler)."""
    targets = Targets.from_points(model, x[None, :])
    keep = np.zeros((2 * n, 1), dtype=bool)
    keep[:n] = True
    s = samplers.fast_stats(
        targets.proj, targets.sqnorm, targets.quad, keep, shots, samplers.SCORE, np.uint64(seed)
    )[:, 0]
    return targets, s[:n], s[n:]


def _features(targets, n, shots):
    """The oracle kernels' per-game arguments for n games of the single target."""
    return (
        np.full(n, targets.proj[0, 0]),
        np.full(n, targets.sqnorm[0]),
        np.full(n, targets.quad[0]),
        shots,
    )


def test_pvalue_kernels_agree_and_are_uniform_under_out():
    model = GaussianModel(4, 2, 0.9)
    x = np.array([1.3, -0.4, 0.2, 0.9])
    for shots in (2, 30, 10**6):
        targets, s_in, s_out = _games(model, x, shots, 100_000, seed=shots)
        args = _features(targets, s_in.size, shots)
        for s in (s_in, s_out):
            lr_nb, p_nb = oracle.oracle_kernel(s, *args)
            lr_np, p_np = oracle.oracle_numpy(s, *args)
            np.testing.assert_allclose(lr_nb, lr_np, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(p_nb, p_np, rtol=1e-10, atol=1e-300)
            ref = np.exp(oracle.log_pvalue_reference(s, *args))
            np.testing.assert_allclose(p_nb, ref, rtol=1e-8, atol=1e-300)
        # The exact NP p-value is Uniform(0, 1) under OUT: the test is calibrated per example.
        _, p_out = oracle.oracle_kernel(s_out, *args)
        assert stats.kstest(p_out, "uniform").pvalue > 1e-4
        # ... and the log LR is a decreasing function of the p-value for one target.
        lr, p = oracle.oracle_kernel(
            np.concatenate([s_in, s_out]), *_features(targets, 2 * s_in.size, shots)
        )
        order = np.argsort(lr)
        assert np.all(np.diff(p[order]) <= 1e-12)


# Monte Carlo against exact values: derandomized, so the drawn cases (and seeds) are fixed.
@settings(max_examples=8, deadline=None, derandomize=True)
@given(
    log10_shots=st.floats(0.31, 6.0),
    fpr=st.sampled_from([0.2, 0.05, 0.01, 0.001]),
    dim=st.integers(1, 40),
    sigma=st.floats(0.2, 2.5),
    seed=st.integers(0, 2**16),
)
def test_oracle_per_target_tpr_matches_exact_np(log10_shots, fpr, dim, sigma, seed):
    """Fraction of IN games with p <= α, for one fixed target, vs exact.tpr(test="np")."""
    shots = max(2, round(10**log10_shots))
    model = GaussianModel(dim, min(2, dim), sigma)
    x = model.mean(0) + sigma * np.random.default_rng(seed).standard_normal(dim)
    targets, s_in, s_out = _games(model, x, shots, 60_000, seed)
    args = _features(targets, s_in.size, shots)
    tp = np.count_nonzero(oracle.oracle_kernel(s_in, *args)[1] <= fpr)
    fp = np.count_nonzero(oracle.oracle_kernel(s_out, *args)[1] <= fpr)
    truth = float(exact.tpr(model, x, shots, fpr, test="np"))
    assert _inside(tp, s_in.size, truth)
    assert _inside(fp, s_out.size, fpr)


@settings(max_examples=5, deadline=None, derandomize=True)
@given(
    shots=st.sampled_from([3, 40, 1000, 10**5]),
    fpr=st.sampled_from([0.1, 0.01]),
    dim=st.integers(2, 64),
    sigma=st.floats(0.3, 2.0),
    seed=st.integers(0, 2**16),
)
def test_oracle_averages_match_exact_theory(shots, fpr, dim, sigma, seed):
    """Per-example-calibrated oracle vs E_x[TPR_NP(x)]; pooled oracle vs the pooled NP TPR."""
    model = GaussianModel(dim, 2, sigma)
    res = oracle_attack(
        model,
        shots,
        [fpr],
        targets=400_000,
        sampler="fast",
        engine=Engine("numba", seed),
        measurement=WIDE,
    )
    pe = res.per_example[0]
    assert _inside(
        pe.true_positives, pe.positives, float(average_tpr(model, shots, fpr, test="np"))
    )
    assert _inside(pe.false_positives, pe.negatives, fpr)
    pooled = res.pooled[0]
    truth = float(pooled_tpr(model, shots, fpr).tpr)
    # The bootstrap interval includes the estimated threshold's noise: no ad hoc slack needed
    # (the Clopper–Pearson check this replaces had to widen by the ROC slope × FPR error).
    assert pooled.resolvable and pooled.interval.contains(truth)


def test_oracle_engines_and_samplers_agree():
    model = GaussianModel(6, 2, 1.0)
    counts = {}
    for engine, sampler, n in (
        ("numba", "fast", 40_000),
        ("numpy", "fast", 40_000),
        ("numba", "full", 8_000),
        ("numpy", "full", 2_000),
    ):
        res = oracle_attack(model, 8, [0.05], targets=n, sampler=sampler, engine=Engine(engine, 1))
        counts[(engine, sampler)] = res.per_example[0]
    truth = float(average_tpr(model, 8, 0.05, test="np"))
    for pe in counts.values():
        assert _inside(pe.true_positives, pe.positives, truth)


def _random_keep_stats(seed, models, examples, pairs=False):
    g = np.random.default_rng(seed)
    if pairs:
        keep = np.empty((models, examples), dtype=bool)
        keep[0::2] = g.random((models // 2, examples)) < 0.5
        keep[1::2] = ~keep[0::2]
    else:
        keep = g.permuted(np.tile(np.arange(models) < models // 2, (examples, 1)), axis=1).T
    stats_ = g.standard_normal((models, examples)) * g.uniform(0.5, 2, examples) + 0.7 * keep
    return np.ascontiguousarray(keep), stats_ + 100.0 * g.standard_normal(examples)


@settings(max_examples=10, deadline=None)
@given(
    models=st.sampled_from([6, 8, 16, 30]),
    examples=st.integers(1, 600),
    online=st.booleans(),
    variance=st.sampled_from(["per-example", "global"]),
    seed=st.integers(0, 2**16),
)
def test_compiled_loo_lira_equals_theory_lira(models, examples, online, variance, seed):
    keep, s = _random_keep_stats(seed, models, examples)
    mine = lira_loo(keep, s, online=online, variance=variance)
    ref = lira_scores(keep, s, online=online, variance=variance, rotation="loo")
    # Both subtract the target from sums over all models around an offset of ~100: a shadow
    # variance far below that spread loses digits (seen: 1e-9 relative at a score of -334).
    np.testing.assert_allclose(mine, ref, rtol=1e-7, atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(
    models=st.sampled_from([4, 6, 8, 16, 30]),
    examples=st.integers(1, 600),
    online=st.booleans(),
    variance=st.sampled_from(["per-example", "global"]),
    seed=st.integers(0, 2**16),
)
def test_compiled_pair_lira_equals_theory_lira(models, examples, online, variance, seed):
    keep, s = _random_keep_stats(seed, models, examples, pairs=True)
    if models == 4:  # one IN and one OUT shadow left: no variance to estimate
        with pytest.raises(ValueError, match=">= 6 models"):
            lira_pairs(keep, s, online=online, variance=variance)
        return
    mine = lira_pairs(keep, s, online=online, variance=variance)
    ref = lira_scores(keep, s, online=online, variance=variance, rotation="pairs")
    # Both remove the pair's statistics from sums over all models, so a shadow variance far below
    # the example's whole spread loses digits alike in both (e.g. two OUT shadows that nearly
    # agree: a score of -1.8e6, 2.6e-7 apart relative), and online LiRA's score is a difference
    # of two such terms. Allow ~5e3 × machine epsilon per unit of condition on the terms' size;
    # hold everything well conditioned to 1e-9.
    cond, size = _pair_conditioning(keep, s, online, variance)
    rtol = np.maximum(1e-9, 1e-12 * cond)
    assert np.all(np.abs(mine - ref) <= 1e-9 + rtol * (np.abs(ref) + size))


def _pair_conditioning(keep, s, online, variance):
    """Per (target, example), by brute force over the shadows the pair leaves: the example's
    sum of squares over all models divided by the smaller within sum of squares of the IN and
    OUT shadows, and the size of the online score's two quadratic terms."""
    total = ((s - s.mean(0)) ** 2).sum(0)
    cond, size = np.empty(s.shape), np.zeros(s.shape)
    for t in range(0, s.shape[0], 2):
        shadows = np.ones(s.shape[0], dtype=bool)
        shadows[[t, t + 1]] = False
        fits = []
        for side in (keep, ~keep):
            v = np.where(side[shadows], s[shadows], np.nan)
            mean = np.nanmean(v, 0)
            ss = np.nansum((v - mean) ** 2, 0)
            dof = np.sum(side[shadows], 0) - 1.0
            var = ss / dof if variance == "per-example" else np.full_like(ss, ss.sum() / dof.sum())
            fits.append((mean, var, ss))
        cond[t] = cond[t + 1] = total / np.maximum(np.minimum(fits[0][2], fits[1][2]), 1e-300)
        if online:
            for row in (t, t + 1):
                size[row] = sum(0.5 * (s[row] - m) ** 2 / v for m, v, _ in fits)
    return cond, size


def test_pair_kernel_refuses_keep_without_complementary_pairs():
    keep, s = _random_keep_stats(0, 8, 50)
    if complementary_pairs(keep):  # a balanced matrix is almost never in pairs
        keep[:, 0] = keep[::-1, 0]
    with pytest.raises(ValueError, match="complementary pairs"):
        lira_pairs(keep, s)


def test_keep_matrices_need_an_even_number_of_models():
    for pairs in (False, True):
        with pytest.raises(ValueError, match="even number of models"):
            Engine("numba", 0).keep(7, 10, pairs=pairs)


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_pair_keep_is_complementary_balanced_and_seeded(engine):
    keep = Engine(engine, 5).keep(10, 3000, pairs=True)
    assert keep.shape == (10, 3000) and complementary_pairs(keep)
    assert np.all(keep.sum(0) == 5)
    # A fair coin per pair and target.
    assert abs(keep[0::2].mean() - 0.5) < 4 * np.sqrt(0.25 / keep[0::2].size)
    np.testing.assert_array_equal(keep, Engine(engine, 5).keep(10, 3000, pairs=True))
    assert not np.array_equal(keep, Engine(engine, 6).keep(10, 3000, pairs=True))


def _agree(a, b):
    """Two independent measurements differ by less than 4.5 standard errors, each read off its
    99.9 % bootstrap interval (binomial errors would ignore the threshold's noise)."""
    se = np.hypot(*((m.interval.upper - m.interval.lower) / (2 * 3.29) for m in (a, b)))
    return abs(a.tpr - b.tpr) < 4.5 * se


@pytest.mark.parametrize("evaluation", ["pairs", "loo"])
def test_lira_engines_agree_and_stay_below_the_oracle(evaluation):
    """Numba (compiled scoring) and numpy (theory.lira) engines give compatible TPRs, both at
    most the exact pooled NP bound, and online LiRA beats chance at small S."""
    model = GaussianModel(16, 2, 1.0)
    shots, fpr = 20, 0.05
    results = [
        lira_attack(
            model,
            shots,
            [fpr],
            targets=3000,
            shadows=16,
            online=True,
            sampler="fast",
            engine=Engine(name, 4),
            evaluation=evaluation,
            measurement=WIDE,
        ).pooled[0]
        for name in ("numba", "numpy")
    ]
    bound = float(pooled_tpr(model, shots, fpr).tpr)
    for r in results:
        assert r.detected and r.interval.lower > fpr
        assert r.interval.lower < bound
    assert _agree(*results)


@pytest.mark.parametrize("attack", ["online", "offline"])
def test_lira_with_logit_statistic_and_full_sampler(attack):
    model = GaussianModel(6, 3, 1.0)
    r = lira_attack(
        model,
        4,
        [0.1],
        targets=200,
        shadows=16,
        online=attack == "online",
        statistic="logit",
        sampler="full",
        engine=Engine("numba", 2),
        measurement=WIDE,
    ).pooled[0]
    assert r.positives == r.negatives == 16 * 200 // 2
    assert r.interval.lower > 0.1  # S = 4: membership is loud


@settings(max_examples=8, deadline=None)
@given(
    models=st.sampled_from([6, 10, 32]),
    examples=st.integers(1, 300),
    target_models=st.integers(1, 5),
    online=st.booleans(),
    variance=st.sampled_from(["per-example", "global"]),
    seed=st.integers(0, 2**16),
)
def test_dedicated_lira_equals_theory_lira_on_stacked_models(
    models, examples, target_models, online, variance, seed
):
    keep, s = _random_keep_stats(seed, models, examples)
    g = np.random.default_rng(seed + 1)
    target_keep = g.random((target_models, examples)) < 0.5
    target_stats = s[:target_models] + g.standard_normal((target_models, examples))
    mine = lira_dedicated(keep, s, target_stats, online=online, variance=variance)
    ref = np.vstack(
        [
            lira_scores(
                np.vstack([keep, target_keep[t : t + 1]]),
                np.vstack([s, target_stats[t : t + 1]]),
                online=online,
                variance=variance,
                rotation="loo",  # the target is past the shadows: it removes only itself
                targets=[models],
            )
            for t in range(target_models)
        ]
    )
    np.testing.assert_allclose(mine, ref, rtol=1e-9, atol=1e-9)


def test_leave_one_out_tilts_online_lira_without_signal():
    """No membership signal (the target's own weight in m̂ is nil at S = 1e9): with 8 shadows,
    leave-one-out online LiRA ranks non-members above members (IN/OUT shadow counts 3/4 vs
    4/3); pair rotation (3/3 either way) and dedicated target models are unbiased. Documents
    a property of the shared scorer."""
    model = GaussianModel(4, 2, 1.0)
    common = dict(
        targets=10_000,
        shadows=8,
        online=True,
        variance="global",
        sampler="fast",
        engine=Engine("numba", 1),
        measurement=Measurement(level=LEVEL, resamples=2000),
    )
    loo = lira_attack(model, 10**9, [0.5], evaluation="loo", **common).pooled[0]
    pairs = lira_attack(model, 10**9, [0.5], evaluation="pairs", **common).pooled[0]
    ded = lira_attack(
        model, 10**9, [0.5], evaluation="dedicated", target_models=8, **common
    ).pooled[0]
    assert loo.interval.upper < 0.5
    for m in (pairs, ded):
        assert m.interval.lower < 0.5 < m.interval.upper


def test_dedicated_evaluation_engines_agree():
    model = GaussianModel(16, 2, 1.0)
    res = [
        lira_attack(
            model,
            20,
            [0.05],
            targets=2000,
            shadows=16,
            online=False,
            sampler="fast",
            engine=Engine(name, 4),
            evaluation="dedicated",
            target_models=6,
            measurement=WIDE,
        ).pooled[0]
        for name in ("numba", "numpy")
    ]
    assert all(r.positives + r.negatives == 6 * 2000 for r in res)
    assert _agree(*res)
    assert res[0].interval.lower > 0.05
