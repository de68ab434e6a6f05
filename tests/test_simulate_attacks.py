"""Oracle and LiRA attacks of mialaw.simulate against the exact theory and shared reference code.

References: ``mialaw.theory.exact.tpr`` (per-target Neyman–Pearson TPR), ``mialaw.theory.average``
(E_x TPR_NP at per-example FPR; pooled NP TPR at global FPR), ``mialaw.theory.lira.lira_scores``
and ``mialaw.theory.metrics.tpr_at_fpr``. Monte Carlo counts must fall inside 99.9 %
Clopper–Pearson intervals around the exact values (fixed seeds: no flakiness).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mialaw.simulate import oracle, samplers
from mialaw.simulate.attacks import lira_attack, oracle_attack
from mialaw.simulate.engines import Engine, Targets
from mialaw.simulate.lira_kernel import lira_dedicated, lira_loo, pooled_tpr_at_fpr
from mialaw.theory import exact
from mialaw.theory.average import average_tpr, pooled_tpr
from mialaw.theory.lira import lira_scores
from mialaw.theory.metrics import clopper_pearson, tpr_at_fpr
from mialaw.theory.model import GaussianModel

LEVEL = 0.999


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
        model, shots, [fpr], targets=400_000, sampler="fast", engine=Engine("numba", seed)
    )
    pe = res.per_example[0]
    assert _inside(
        pe.true_positives, pe.positives, float(average_tpr(model, shots, fpr, test="np"))
    )
    assert _inside(pe.false_positives, pe.negatives, fpr)
    pooled = res.pooled[0]
    truth = float(pooled_tpr(model, shots, fpr).tpr)
    # The pooled threshold is itself estimated from the negatives: widen by its effect,
    # the slope of the ROC times the FPR's sampling error (a few 1e-4 here).
    ci = pooled.tpr_ci(LEVEL)
    slack = 4 * np.sqrt(fpr * (1 - fpr) / pooled.negatives) * max(1.0, pooled.tpr / fpr)
    assert ci.lower - slack <= truth <= ci.upper + slack


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


def _random_keep_stats(seed, models, examples):
    g = np.random.default_rng(seed)
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
def test_compiled_lira_equals_theory_lira(models, examples, online, variance, seed):
    keep, s = _random_keep_stats(seed, models, examples)
    mine = lira_loo(keep, s, online=online, variance=variance)
    ref = lira_scores(keep, s, online=online, variance=variance)
    np.testing.assert_allclose(mine, ref, rtol=1e-9, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(2, 3000),
    ties=st.booleans(),
    frac=st.floats(0.05, 0.95),
    fprs=st.lists(st.floats(1e-4, 0.99), min_size=1, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_selection_tpr_at_fpr_equals_sorting_one(n, ties, frac, fprs, seed):
    g = np.random.default_rng(seed)
    labels = g.random(n) < frac
    labels[0], labels[-1] = True, False
    scores = g.standard_normal(n) + labels
    if ties:
        scores = np.round(scores, 1)
    assert pooled_tpr_at_fpr(scores, labels, fprs) == tuple(tpr_at_fpr(scores, labels, fprs))


def test_lira_engines_agree_and_stay_below_the_oracle():
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
        ).pooled[0]
        for name in ("numba", "numpy")
    ]
    bound = float(pooled_tpr(model, shots, fpr).tpr)
    for r in results:
        assert r.tpr_ci(LEVEL).lower > fpr
        assert r.tpr_ci(LEVEL).lower < bound
    a, b = results
    # Two binomial proportions: difference within 4.5 standard errors.
    se = np.sqrt(a.tpr * (1 - a.tpr) / a.positives + b.tpr * (1 - b.tpr) / b.positives)
    assert abs(a.tpr - b.tpr) < 4.5 * se


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
    ).pooled[0]
    assert r.positives == r.negatives == 16 * 200 // 2
    assert r.tpr_ci(LEVEL).lower > 0.1  # S = 4: membership is loud


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
                targets=[models],
            )
            for t in range(target_models)
        ]
    )
    np.testing.assert_allclose(mine, ref, rtol=1e-9, atol=1e-9)


def test_leave_one_out_tilts_online_lira_without_signal():
    """No membership signal (the target's own weight in m̂ is nil at S = 1e9): with 8 shadows,
    leave-one-out online LiRA ranks non-members above members (IN/OUT shadow counts 3/4 vs
    4/3); dedicated target models are unbiased. Documents a property of the shared scorer."""
    model = GaussianModel(4, 2, 1.0)
    common = dict(targets=20_000, shadows=8, online=True, variance="global", sampler="fast")
    loo = lira_attack(model, 10**9, [0.5], engine=Engine("numba", 1), **common).pooled[0]
    ded = lira_attack(
        model,
        10**9,
        [0.5],
        engine=Engine("numba", 1),
        evaluation="dedicated",
        target_models=8,
        **common,
    ).pooled[0]
    assert loo.tpr_ci(LEVEL).upper < 0.5
    assert ded.tpr_ci(LEVEL).lower < 0.5 < ded.tpr_ci(LEVEL).upper


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
        ).pooled[0]
        for name in ("numba", "numpy")
    ]
    assert all(r.positives + r.negatives == 6 * 2000 for r in res)
    a, b = res
    se = np.sqrt(a.tpr * (1 - a.tpr) / a.positives + b.tpr * (1 - b.tpr) / b.positives)
    assert abs(a.tpr - b.tpr) < 4.5 * se
    assert a.tpr_ci(LEVEL).lower > 0.05
