"""The shared LiRA/RMIA scoring and the pooled TPR on real heads' statistics, against plain
re-implementations written here (ragged per-example loops)."""

import numpy as np
import pytest
from scipy import stats as sps
from scipy.special import expit

from mialaw.empirical.cell_summary import per_example_vulnerability, summarize_cell
from mialaw.empirical.experiment import RunConfig, prepare_features, run_cell
from mialaw.empirical.features import get_features
from mialaw.empirical.run_fits import spearman
from mialaw.theory.lira import lira_scores, rmia_scores


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    config = RunConfig(
        dataset="digits",
        backbone="pixels",
        classes=(3,),
        shots=(4,),
        shadows=8,
        flip=True,
        cache_dir=str(cache),
        device="cpu",
    )
    fs = get_features("digits", "pixels", classes=3, cache_dir=cache, flip=True, progress=False)
    return run_cell(prepare_features(config, fs), config, 3, 4, 0)


def _plain_lira(keep, stats, online, variance):
    models, n, q = stats.shape
    out = np.zeros((models, n))
    for t in range(models):
        shadows = [m for m in range(models) if m not in (t, t ^ 1)]  # pair rotation
        fits = {}
        for side in ("in", "out"):
            mu = np.zeros((n, q))
            var = np.zeros((n, q))
            ss = np.zeros(q)
            dof = 0
            for e in range(n):
                vals = np.array(
                    [stats[m, e] for m in shadows if keep[m, e] == (side == "in")]
                )  # ragged lists, as the reference builds them
                mu[e] = vals.mean(0)
                var[e] = vals.var(0, ddof=1)
                ss += ((vals - mu[e]) ** 2).sum(0)
                dof += len(vals) - 1
            if variance == "global":
                var[:] = ss / dof
            fits[side] = (mu, np.sqrt(var))
        s = stats[t]
        mu_o, sd_o = fits["out"]
        if online:
            mu_i, sd_i = fits["in"]
            per_q = sps.norm.logpdf(s, mu_i, sd_i) - sps.norm.logpdf(s, mu_o, sd_o)
        else:
            per_q = sps.norm.logcdf(s, mu_o, sd_o)
        out[t] = per_q.mean(1)
    return out


@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("variance", ["per-example", "global"])
def test_lira_on_real_heads_equals_plain_loop(cell, online, variance):
    keep, stats = cell["keep"], cell["stats"]
    assert stats.shape == (10, 24, 2)  # M + 2 models; two queries: image and its flip
    assert np.all(keep.sum(0) == 5) and np.all(keep[1::2] == ~keep[0::2])
    ours = lira_scores(keep, stats, online=online, variance=variance)
    assert np.allclose(ours, _plain_lira(keep, stats, online, variance), rtol=1e-9, atol=1e-9)
    if variance == "per-example":  # what the analysis derives from the saved statistics
        derived = summarize_cell(cell, (0.1,)).scores["lira_online" if online else "lira_offline"]
        assert np.allclose(derived, ours, rtol=1e-12, atol=1e-12)


def test_rmia_on_real_heads_equals_plain_pairwise(cell):
    keep, stats, pop, a, gamma = cell["keep"], cell["stats"], cell["population_stats"], 0.3, 2.0
    p, p_pop = expit(stats).mean(-1), expit(pop).mean(-1)
    models, n = keep.shape
    plain = np.zeros((models, n))
    for t in range(models):
        shadows = [m for m in range(models) if m not in (t, t ^ 1)]
        out = [[m for m in shadows if not keep[m, e]] for e in range(n)]
        pr = np.array([((1 + a) * p[s, e].mean() + (1 - a)) / 2 for e, s in enumerate(out)])
        pr_z = ((1 + a) * p_pop[shadows].mean(0) + (1 - a)) / 2
        ratio, ratio_z = p[t] / pr, p_pop[t] / pr_z
        for e in range(n):
            plain[t, e] = np.mean(ratio[e] / ratio_z >= gamma)
    assert pop.shape[0] == models and pop.shape[1] == 513  # all of the held-out population
    got = rmia_scores(keep, stats, pop, a=a, gamma=gamma)
    # The whole part of (count + u)/(P + 1) is RMIA's count of the plain pairwise comparison.
    counts = np.floor(got * (pop.shape[1] + 1) + 1e-9)
    assert np.array_equal(counts, np.round(plain * pop.shape[1]))


def _brute_tpr_at_fpr(scores, member, alpha):
    best_tp, best_fp = 0, 0
    for thr in np.unique(scores):
        fp = np.sum(scores[~member] >= thr)
        tp = np.sum(scores[member] >= thr)
        if fp / (~member).sum() <= alpha and tp > best_tp:
            best_tp, best_fp = tp, fp
    return best_tp, best_fp


def test_one_threshold_over_all_target_models_of_a_cell(cell):
    summary = summarize_cell(cell, (0.1, 0.25))
    keep = cell["keep"]
    for name in ("lira_online", "rmia"):
        found = summary.experiment(name).roc().tpr_at_fpr((0.1, 0.25))
        for alpha, r in zip((0.1, 0.25), found):
            tp, _ = _brute_tpr_at_fpr(summary.scores[name].ravel(), keep.ravel(), alpha)
            assert r.true_positives == tp and r.positives == keep.sum()
            assert r.false_positives <= alpha * r.negatives


def test_per_example_vulnerability_and_spearman():
    rng = np.random.default_rng(0)
    keep = np.zeros((40, 3), bool)
    keep[:20] = True
    stats = rng.standard_normal((40, 3))
    stats[:20] += np.array([0.0, 1.0, 3.0])  # IN shift grows over the examples
    delta, adv = per_example_vulnerability(keep, stats, [0.1])
    sd_out = stats[20:].std(0, ddof=1)
    assert np.allclose(delta, (stats[:20].mean(0) - stats[20:].mean(0)) / sd_out)
    assert np.allclose(adv[0], sps.norm.cdf(sps.norm.ppf(0.1) + np.abs(delta)) - 0.1)
    a = rng.standard_normal(500)
    b = a + rng.standard_normal(500)
    est = spearman(a, b)
    assert est.lower < sps.spearmanr(a, b).statistic < est.upper
    # population Spearman of a bivariate normal with r = 1/sqrt(2): (6/π)·asin(r/2) ≈ 0.690
    assert est.lower < 6 / np.pi * np.arcsin(0.5 / np.sqrt(2)) < est.upper
