"""The shared LiRA/RMIA scoring against plain per-example loops written here."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.stats import norm

from mialaw.theory.lira import lira_scores, rmia_scores


def balanced_keep(rng, models, examples):
    keep = np.zeros((models, examples), bool)
    for n in range(examples):
        keep[rng.permutation(models)[: models // 2], n] = True
    return keep


def plain_lira(keep, stats, online, variance, centre):
    """The reference style: ragged IN/OUT lists per example, one target at a time."""
    models, examples, _ = stats.shape
    scores = np.zeros((models, examples))
    for t in range(models):
        shadows = [m for m in range(models) if m != t]
        ins = [stats[[m for m in shadows if keep[m, n]], n] for n in range(examples)]
        outs = [stats[[m for m in shadows if not keep[m, n]], n] for n in range(examples)]

        def pooled(groups):
            return sum(((g - g.mean(0)) ** 2).sum(0) for g in groups) / sum(
                len(g) - 1 for g in groups
            )

        var_in_global, var_out_global = pooled(ins), pooled(outs)
        for n in range(examples):
            a, b = ins[n], outs[n]
            loc = (lambda z: np.median(z, 0)) if centre == "median" else (lambda z: z.mean(0))
            var_in = a.var(0, ddof=1) if variance == "per-example" else var_in_global
            var_out = b.var(0, ddof=1) if variance == "per-example" else var_out_global
            s = stats[t, n]
            if online:
                per_query = norm.logpdf(s, loc(a), np.sqrt(var_in)) - norm.logpdf(
                    s, loc(b), np.sqrt(var_out)
                )
            else:
                per_query = norm.logcdf((s - loc(b)) / np.sqrt(var_out))
            scores[t, n] = per_query.mean()
    return scores


@given(
    st.integers(6, 10),
    st.integers(2, 25),
    st.integers(1, 3),
    st.booleans(),
    st.sampled_from(["per-example", "global"]),
    st.sampled_from(["mean", "median"]),
    st.integers(0, 2**31),
)
def test_lira_matches_plain_loop(models, examples, queries, online, variance, centre, seed):
    rng = np.random.default_rng(seed)
    keep = balanced_keep(rng, models, examples)
    # A large common offset checks that leave-one-out sums do not cancel catastrophically.
    stats = 50.0 + rng.normal(size=(models, examples, queries)) + keep[:, :, None]
    got = lira_scores(keep, stats, online=online, variance=variance, centre=centre)
    want = plain_lira(keep, stats, online, variance, centre)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_targets_subset_and_two_dimensional_stats():
    rng = np.random.default_rng(0)
    keep = balanced_keep(rng, 8, 30)
    stats = rng.normal(size=(8, 30)) + keep
    full = lira_scores(keep, stats)
    part = lira_scores(keep, stats, targets=[2, 5])
    np.testing.assert_array_equal(part, full[[2, 5]])


def test_lira_separates_members():
    rng = np.random.default_rng(1)
    keep = balanced_keep(rng, 16, 400)
    stats = rng.normal(size=(16, 400, 2)) + 1.5 * keep[:, :, None]
    scores = lira_scores(keep, stats)
    assert scores[keep].mean() > scores[~keep].mean() + 1.0


def plain_rmia(keep, stats, a, gamma):
    p = 1 / (1 + np.exp(-stats.astype(np.float64)))
    p = p.mean(-1)
    models, examples = keep.shape
    scores = np.zeros((models, examples))
    for t in range(models):
        shadows = [m for m in range(models) if m != t]
        p_x = np.array(
            [
                0.5 * ((1 + a) * np.mean([p[m, n] for m in shadows if not keep[m, n]]) + 1 - a)
                for n in range(examples)
            ]
        )
        ratio = p[t] / p_x
        population = [z for z in range(examples) if not keep[t, z]]
        for n in range(examples):
            others = [z for z in population if z != n]
            scores[t, n] = np.mean([ratio[n] / ratio[z] >= gamma for z in others])
    return scores


@given(
    st.integers(4, 8),
    st.integers(4, 20),
    st.sampled_from([0.0, 0.3, 1.0]),
    st.sampled_from([0.5, 1.0, 2.0]),
    st.integers(0, 2**31),
)
def test_rmia_matches_pairwise_comparison(models, examples, a, gamma, seed):
    rng = np.random.default_rng(seed)
    keep = balanced_keep(rng, models, examples)
    assume((~keep).sum(1).min() >= 2)  # every target needs a population of >= 2 examples
    stats = rng.normal(size=(models, examples, 2)) + keep[:, :, None]
    np.testing.assert_allclose(
        rmia_scores(keep, stats, a=a, gamma=gamma), plain_rmia(keep, stats, a, gamma), atol=1e-12
    )


@pytest.mark.parametrize(
    "keep, stats, kwargs, match",
    [
        (np.ones((4, 3)), np.zeros((4, 3)), {}, "boolean"),
        (np.ones((4, 3), bool), np.zeros((4, 2)), {}, "matching keep"),
        (np.eye(4, 3, dtype=bool), np.full((4, 3), np.nan), {}, "finite"),
        (np.eye(2, 3, dtype=bool), np.zeros((2, 3)), {}, ">= 3 models"),
        (np.eye(4, 3, dtype=bool), np.zeros((4, 3)), {"variance": "pooled"}, "variance must be"),
        (np.eye(4, 3, dtype=bool), np.zeros((4, 3)), {"centre": "mode"}, "centre must be"),
        (np.eye(4, 3, dtype=bool), np.zeros((4, 3)), {}, ">= 2 IN shadow"),
        (np.eye(4, 3, dtype=bool), np.zeros((4, 3)), {"targets": [7]}, "model indices"),
    ],
)
def test_bad_inputs(keep, stats, kwargs, match):
    with pytest.raises(ValueError, match=match):
        lira_scores(keep, stats, **kwargs)
