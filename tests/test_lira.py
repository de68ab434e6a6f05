"""The shared LiRA/RMIA scoring against plain per-example loops written here."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.stats import norm

from mialaw.theory.lira import LIRA_PRESETS, complementary_pairs, lira_scores, rmia_scores


def balanced_keep(rng, models, examples):
    keep = np.zeros((models, examples), bool)
    for n in range(examples):
        keep[rng.permutation(models)[: models // 2], n] = True
    return keep


def paired_keep(rng, models, examples):
    """Complementary pairs: row 2k+1 = not row 2k."""
    first = rng.random((models // 2, examples)) < 0.5
    keep = np.empty((models, examples), bool)
    keep[0::2], keep[1::2] = first, ~first
    return keep


def plain_lira(keep, stats, online, variance, centre, ddof=1, rotation="loo"):
    """The reference style: ragged IN/OUT lists per example, one target at a time, written from
    the published definition (np.median / np.mean, np.var with ddof, norm.logpdf/logcdf)."""
    models, examples, _ = stats.shape
    scores = np.zeros((models, examples))
    for t in range(models):
        gone = {t, t ^ 1} if rotation == "pairs" else {t}
        shadows = [m for m in range(models) if m not in gone]
        ins = [stats[[m for m in shadows if keep[m, n]], n] for n in range(examples)]
        outs = [stats[[m for m in shadows if not keep[m, n]], n] for n in range(examples)]

        def pooled(groups):
            return sum(((g - g.mean(0)) ** 2).sum(0) for g in groups) / sum(
                len(g) - ddof for g in groups
            )

        if variance == "fixed":  # the reference's fix_variance: everything IN, for IN and OUT
            var_in_global = np.concatenate(ins).var(0, ddof=ddof)
            var_out_global = var_in_global if online else np.concatenate(outs).var(0, ddof=ddof)
        else:
            var_in_global, var_out_global = pooled(ins), pooled(outs)
        for n in range(examples):
            a, b = ins[n], outs[n]
            loc = (lambda z: np.median(z, 0)) if centre == "median" else (lambda z: z.mean(0))
            var_in = a.var(0, ddof=ddof) if variance == "per-example" else var_in_global
            var_out = b.var(0, ddof=ddof) if variance == "per-example" else var_out_global
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
    st.integers(3, 5),
    st.integers(2, 25),
    st.integers(1, 3),
    st.booleans(),
    st.sampled_from(["per-example", "global", "fixed"]),
    st.sampled_from(["mean", "median"]),
    st.sampled_from([0, 1]),
    st.sampled_from(["pairs", "loo"]),
    st.integers(0, 2**31),
)
def test_lira_matches_plain_loop(
    pairs, examples, queries, online, variance, centre, ddof, rotation, seed
):
    rng = np.random.default_rng(seed)
    keep = paired_keep(rng, 2 * pairs, examples)
    # Per-example variances need >= 2 IN and OUT shadows: 3 pairs leave 2 of each.
    assume(variance != "per-example" or rotation == "loo" or pairs >= 3)
    # A large common offset checks that the removal sums do not cancel catastrophically.
    stats = 50.0 + rng.normal(size=(2 * pairs, examples, queries)) + keep[:, :, None]
    options = dict(online=online, variance=variance, centre=centre, ddof=ddof, rotation=rotation)
    try:
        got = lira_scores(keep, stats, **options)
    except ValueError as err:  # too few shadows of one kind for this variance: said, not NaN
        assert "shadow models per target" in str(err)
        return
    want = plain_lira(keep, stats, online, variance, centre, ddof, rotation)
    # Two shadows of a kind (3 pairs) can agree to 1e-4 around an offset of 50: such a score is
    # huge (the statistic lies thousands of standard deviations out) and the sums-minus-removed
    # form loses relative precision like 1e-16·spread²/variance. Ordinary scores to 1e-7.
    ordinary = np.abs(want) < 1e4
    np.testing.assert_allclose(got[ordinary], want[ordinary], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(got[~ordinary], want[~ordinary], rtol=1e-4)


def test_reference_preset_is_median_and_population_std():
    rng = np.random.default_rng(12)
    keep = paired_keep(rng, 16, 30)
    stats = rng.normal(size=(16, 30, 2)) + keep[:, :, None]
    for online in (True, False):
        got = lira_scores(keep, stats, online=online, **LIRA_PRESETS["reference"])
        want = plain_lira(keep, stats, online, "per-example", "median", ddof=0, rotation="pairs")
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("rotation", ["pairs", "loo"])
def test_fast_median_equals_np_median_of_each_targets_list(rotation):
    """The compiled median (order statistics selected once per example, corrected per target)
    is exactly np.median of each target's IN and OUT list: odd and even lists, ties, lists that
    are all one value, one value left."""
    from mialaw.theory import lira

    rng = np.random.default_rng(21)
    for models, examples, queries in ((4, 30, 2), (9, 40, 1), (16, 35, 3), (40, 20, 2)):
        if rotation == "pairs" and models % 2:
            continue
        keep = paired_keep(rng, models, examples) if rotation == "pairs" else None
        keep = keep if keep is not None else rng.random((models, examples)) < rng.uniform(0.2, 0.8)
        stats = np.round(rng.normal(size=(models, examples, queries)), 1)  # many ties
        stats[:, :3] = 0.25  # every value equal
        targets = np.arange(models)
        removed = lira._removed(keep, targets, rotation)
        centred = lira._centred(keep, stats, windows=True)
        for side in (True, False):
            member = keep if side else ~keep
            counts = member.sum(0)[None, :] - sum(member[r].astype(int) for r in removed)
            got = lira._median(centred, stats, side, removed, counts)
            for t in targets:
                gone = {int(r[t]) for r in removed}
                for n in np.flatnonzero(counts[t] > 0):
                    rows = [m for m in np.flatnonzero(member[:, n]) if m not in gone]
                    np.testing.assert_array_equal(got[t, n], np.median(stats[rows, n], 0))


def test_pairs_leave_equal_in_and_out_shadows_so_null_scores_are_untilted():
    """Statistics that ignore membership: under pairs a member's score has the law of a
    non-member's (mean difference within noise); leave-one-out tilts members down."""
    rng = np.random.default_rng(13)
    keep = paired_keep(rng, 8, 20000)
    stats = rng.normal(size=keep.shape)
    for rotation, tilted in (("pairs", False), ("loo", True)):
        scores = lira_scores(keep, stats, online=True, rotation=rotation)
        gap = scores[keep].mean() - scores[~keep].mean()
        se = np.sqrt(scores[keep].var() / keep.sum() + scores[~keep].var() / (~keep).sum())
        assert (gap < -5 * se) == tilted, (rotation, gap, se)


def test_pairs_need_complementary_rows():
    rng = np.random.default_rng(14)
    keep = balanced_keep(rng, 8, 10)
    assert not complementary_pairs(keep)
    with pytest.raises(ValueError, match="complementary pairs"):
        lira_scores(keep, rng.normal(size=(8, 10)))


def test_targets_subset_and_two_dimensional_stats():
    rng = np.random.default_rng(0)
    keep = paired_keep(rng, 8, 30)
    stats = rng.normal(size=(8, 30)) + keep
    full = lira_scores(keep, stats)
    part = lira_scores(keep, stats, targets=[2, 5])
    np.testing.assert_array_equal(part, full[[2, 5]])


def test_lira_separates_members():
    rng = np.random.default_rng(1)
    keep = paired_keep(rng, 16, 400)
    stats = rng.normal(size=(16, 400, 2)) + 1.5 * keep[:, :, None]
    scores = lira_scores(keep, stats)
    assert scores[keep].mean() > scores[~keep].mean() + 1.0


def plain_rmia(keep, stats, population, a, gamma):
    """Offline RMIA from the definition, in plain floats: pairwise comparisons with the
    population, p = sigmoid(stat) averaged over queries, Pr(x) from the OUT shadows' mean."""
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    p, p_pop = sig(stats).mean(-1), sig(population).mean(-1)
    models, examples = keep.shape
    scores = np.zeros((models, examples))
    for t in range(models):
        shadows = [m for m in range(models) if m not in {t, t ^ 1}]
        prior = [
            0.5 * ((1 + a) * np.mean([p[m, n] for m in shadows if not keep[m, n]]) + 1 - a)
            for n in range(examples)
        ]
        prior_z = [
            0.5 * ((1 + a) * np.mean(p_pop[shadows, z]) + 1 - a) for z in range(population.shape[1])
        ]
        ratio_z = p_pop[t] / np.array(prior_z)
        for n in range(examples):
            ratio = p[t, n] / prior[n]
            scores[t, n] = np.mean(ratio / ratio_z >= gamma)
    return scores


@given(
    st.integers(2, 4),
    st.integers(2, 15),
    st.integers(1, 12),
    st.sampled_from([0.0, 0.3, 1.0]),
    st.sampled_from([0.5, 1.0, 2.0]),
    st.integers(0, 2**31),
)
def test_rmia_matches_pairwise_comparison(pairs, examples, population, a, gamma, seed):
    rng = np.random.default_rng(seed)
    keep = paired_keep(rng, 2 * pairs, examples)
    stats = rng.normal(size=(2 * pairs, examples, 2)) + keep[:, :, None]
    pop = rng.normal(size=(2 * pairs, population, 2))
    got = rmia_scores(keep, stats, pop, a=a, gamma=gamma)
    want = plain_rmia(keep, stats, pop, a, gamma)
    # The score is (count + u)/(P + 1) with u in [0, 1): its whole part is RMIA's count. Ratios
    # are compared in log space there and in floats here: allow one tie broken apart.
    counts = np.floor(got * (population + 1) + 1e-9)
    assert np.mean(np.abs(counts - want * population) > 1e-6) <= 1 / population
    assert np.all((got >= 0) & (got < 1))


def test_rmia_keeps_confident_examples_apart():
    """Beyond a logit of ~37 sigmoid rounds to exactly 1 and every ratio ties; the log-space form
    still ranks them: with a = 1 and every shadow at 40, x at 40.3 beats 3 of the 4 population
    examples (39.6, 39.8, 40.2, 40.4) of the target."""
    keep = np.array([[True], [False], [True], [False]])
    stats = np.full((4, 1), 40.0)
    stats[0, 0] = 40.3
    pop = np.full((4, 4), 40.0)
    pop[0] = [39.6, 39.8, 40.2, 40.4]
    assert 1 / (1 + np.exp(-40.3)) == 1 / (1 + np.exp(-39.6)) == 1.0  # float sigmoid ties
    score = rmia_scores(keep, stats, pop, a=1.0, gamma=1.0, targets=[0])[0, 0]
    assert np.floor(score * 5) == 3  # a count of 3 of the 4, then the position between 40.2, 40.4
    assert 0.65 < score < 0.75


def test_rmia_orders_equal_counts_by_the_ratio():
    """Two candidates between the same population neighbours: the larger ratio scores higher."""
    keep = np.array([[True, True], [False, False], [True, True], [False, False]])
    stats = np.zeros((4, 2))
    stats[0] = [0.1, 0.3]
    pop = np.zeros((4, 3))
    pop[0] = [-1.0, 0.0, 1.0]
    s = rmia_scores(keep, stats, pop, a=1.0, gamma=1.0, targets=[0])[0]
    assert np.floor(s[0] * 4) == np.floor(s[1] * 4) == 2 and s[1] > s[0]


def test_rmia_null_population_gives_uniform_scores():
    """A population from the same law as non-members: non-member scores are ~uniform."""
    rng = np.random.default_rng(15)
    keep = paired_keep(rng, 8, 3000)
    stats = rng.normal(size=keep.shape)
    scores = rmia_scores(keep, stats, rng.normal(size=(8, 2000)), gamma=1.0)
    assert abs(scores[~keep].mean() - 0.5) < 0.02 and abs(scores[keep].mean() - 0.5) < 0.02


@pytest.mark.parametrize(
    "keep, stats, kwargs, match",
    [
        (np.ones((4, 3)), np.zeros((4, 3)), {}, "boolean"),
        (np.ones((4, 3), bool), np.zeros((4, 2)), {}, "matching keep"),
        (np.eye(4, 3, dtype=bool), np.full((4, 3), np.nan), {}, "finite"),
        (np.eye(2, 3, dtype=bool), np.zeros((2, 3)), {}, ">= 3 models"),
        (np.eye(4, 3, dtype=bool), np.zeros((4, 3)), {"variance": "pooled"}, "variance must be"),
        (np.eye(4, 3, dtype=bool), np.zeros((4, 3)), {"centre": "mode"}, "centre must be"),
        (np.eye(4, 3, dtype=bool), np.zeros((4, 3)), {"rotation": "loo"}, ">= 2 IN shadow"),
        (np.eye(4, 3, dtype=bool), np.zeros((4, 3)), {}, "complementary pairs"),
        # one pair left per target: no within-example spread to pool (was 0/0 = NaN)
        (
            np.array([[1], [0], [1], [0]], bool),
            np.arange(4.0)[:, None],
            {"variance": "global"},
            ">= 2 IN shadow",
        ),
        (np.eye(4, 3, dtype=bool), np.zeros((4, 3)), {"ddof": 2}, "ddof"),
        (np.eye(4, 3, dtype=bool), np.zeros((4, 3)), {"rotation": "ring"}, "rotation must be"),
        (np.eye(4, 3, dtype=bool), np.zeros((4, 3)), {"targets": [7]}, "model indices"),
    ],
)
def test_bad_inputs(keep, stats, kwargs, match):
    with pytest.raises(ValueError, match=match):
        lira_scores(keep, stats, **kwargs)
