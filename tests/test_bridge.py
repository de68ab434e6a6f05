"""The calibrated bridge (science.md section 5): pooled-threshold ROC from per-example Gaussians,
the class-mean learner's moments, per-example gaps followed across S, and the bridge itself on
the case where the answer is known (the theory's learner on the theory's data)."""

import json

import numpy as np
import pytest
from scipy import stats

from mialaw.theory.pooled_roc import (
    ExampleGaussians,
    ScoreParameters,
    pooled_tpr,
    pooled_tpr_resampled,
)

ALPHAS = (0.1, 0.01, 0.001)


def _mixture(n=400, seed=0):
    rng = np.random.default_rng(seed)
    gap = rng.gamma(2.0, 0.6, n) * rng.choice([1.0, 1.0, 1.0, -1.0], n)
    ratio = np.exp(rng.normal(0.0, 0.25, n))
    return gap, ratio


def offline_ideal_tpr(gap, sd_ratio, fpr):
    """Closed form for the ideal offline attacker: its FPR at threshold τ on
    z = (s − μ_out)/σ_out is Φ̄(τ) for every example, so τ = Φ⁻¹(1 − α) and
    TPR = mean_i Φ((Δ_i − τ)/r_i)."""
    alphas = np.atleast_1d(np.asarray(fpr, dtype=np.float64))
    tau = stats.norm.isf(alphas)
    return stats.norm.cdf((gap[None] - tau[:, None]) / np.asarray(sd_ratio)[None]).mean(1)


def test_offline_matches_its_closed_form():
    gap, ratio = _mixture()
    g = ExampleGaussians.from_gap(gap, ratio)
    np.testing.assert_allclose(
        pooled_tpr(g, ALPHAS, "lira_offline"), offline_ideal_tpr(gap, ratio, ALPHAS), rtol=1e-9
    )


@pytest.mark.parametrize("attack", ["lira_online", "lira_offline"])
def test_pooled_tpr_matches_monte_carlo(attack):
    """Sampled statistics, LiRA scored by brute force, one pooled threshold at α."""
    gap, ratio = _mixture(300, seed=1)
    g = ExampleGaussians.from_gap(gap, ratio)
    rng = np.random.default_rng(2)
    draws = 3000
    out = rng.standard_normal((gap.size, draws))
    inn = gap[:, None] + ratio[:, None] * rng.standard_normal((gap.size, draws))
    if attack == "lira_online":
        score = lambda s: (  # noqa: E731
            stats.norm.logpdf(s, gap[:, None], ratio[:, None]) - stats.norm.logpdf(s)
        )
    else:
        score = lambda s: stats.norm.logcdf(s)  # noqa: E731
    so, si = score(out).ravel(), score(inn).ravel()
    for alpha, predicted in zip(ALPHAS[:2], pooled_tpr(g, ALPHAS[:2], attack)):
        threshold = np.quantile(so, 1 - alpha)
        measured = np.mean(si > threshold)
        assert abs(measured - predicted) < 0.01, (alpha, measured, predicted)


def test_noisy_attacker_is_weaker_and_null_is_alpha():
    gap, ratio = _mixture(200, seed=3)
    g = ExampleGaussians.from_gap(gap, np.ones_like(gap))
    rng = np.random.default_rng(4)
    noise = rng.standard_normal((gap.size, 16))
    noisy = ScoreParameters(
        gap[:, None] + 0.5 * noise,
        np.ones((gap.size, 16)),
        np.zeros((gap.size, 16)),
        np.ones((gap.size, 16)),
    )
    assert np.all(
        pooled_tpr(g, ALPHAS, "lira_online", noisy) < pooled_tpr(g, ALPHAS, "lira_online")
    )
    null = ExampleGaussians.from_gap(np.zeros(50), 1.0)
    np.testing.assert_allclose(pooled_tpr(null, ALPHAS, "lira_offline"), ALPHAS, rtol=1e-8)


@pytest.mark.parametrize("attack", ["lira_online", "lira_offline"])
def test_resampled_tpr_matches_repeated_examples(attack):
    """Bootstrap multiplicities on a threshold grid against the examples repeated by hand."""
    gap, ratio = _mixture(300, seed=5)
    g = ExampleGaussians.from_gap(gap, ratio)
    rng = np.random.default_rng(6)
    weights = np.zeros((4, gap.size))
    for b in range(4):
        np.add.at(weights[b], rng.integers(0, gap.size, gap.size), 1.0)
    fast = pooled_tpr_resampled(g, ALPHAS, attack, ScoreParameters.ideal(g), weights)
    for b in range(4):
        rows = np.repeat(np.arange(gap.size), weights[b].astype(int))
        repeated = ExampleGaussians(
            g.mean_in[rows], g.sd_in[rows], g.mean_out[rows], g.sd_out[rows]
        )
        np.testing.assert_allclose(fast[b], pooled_tpr(repeated, ALPHAS, attack), atol=2e-4)


def test_gap_and_input_errors():
    g = ExampleGaussians(
        np.array([3.0, 1.0]), np.ones(2), np.array([1.0, 1.0]), np.array([2.0, 1.0])
    )
    np.testing.assert_allclose(g.gap, [1.0, 0.0])
    with pytest.raises(ValueError, match="sd_in must be > 0"):
        ExampleGaussians(np.zeros(2), np.zeros(2), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="attack must be one of"):
        pooled_tpr(g, 0.1, "rmia")
    with pytest.raises(ValueError):
        pooled_tpr(g, 1.5, "lira_online")


# ------------------------------------------------------------------ the class-mean learner
@pytest.fixture(scope="module")
def class_mean_run(tmp_path_factory):
    from mialaw.empirical.experiment import RunConfig
    from mialaw.empirical.sweep import compute_cells

    config = RunConfig(
        dataset="gaussian",
        backbone="identity",
        learner="class-mean",
        classes=(2,),
        shots=(32, 64, 128, 256),
        shadows=64,
        seeds=3,
        fpr=ALPHAS,
        attacks=("lira",),
        dataset_options={"dim": 16, "sigma": 1.0, "n_per_class": 1600, "seed": 5},
    )
    # laid out as a reproduction's run folder, so that the mechanism stage can read it too
    out = tmp_path_factory.mktemp("reproduction") / "runs" / "gaussian-class-mean"
    return compute_cells(config, out, progress=False)


def _class_mean_cell(*, shots: int, shadows: int) -> dict:
    """One C = 2 cell of the class-mean learner on the Gaussian model's data (d = 8)."""
    from mialaw.empirical.config import RunConfig
    from mialaw.empirical.learners import get_learner

    config = RunConfig(
        dataset="gaussian",
        backbone="identity",
        learner="class-mean",
        shots=(shots,),
        shadows=shadows,
        dataset_options={"dim": 8, "sigma": 1.0, "n_per_class": 100, "seed": 0},
    )
    learner = get_learner("class-mean")
    return learner.run_cell(learner.prepare(config, None), config, 2, shots, 0)


def test_class_mean_moments_match_brute_force():
    """Many models of one cell: each example's IN/OUT mean and sd of s = <x, mean> against the
    stored protocol-exact moments (and the iid moments differ: the pairs' design is not iid)."""
    cell = _class_mean_cell(shots=8, shadows=1200)
    keep, s = cell["keep"], cell["stats"][:, :, 0]
    n = s.shape[1]
    mean_in = np.array([s[keep[:, i], i].mean() for i in range(n)])
    mean_out = np.array([s[~keep[:, i], i].mean() for i in range(n)])
    sd_out = np.array([s[~keep[:, i], i].std() for i in range(n)])
    paired = cell["theory_paired"]
    se = paired[3] / np.sqrt(600)
    assert np.all(np.abs(mean_in - paired[0]) < 5 * se)
    assert np.all(np.abs(mean_out - paired[2]) < 5 * se)
    np.testing.assert_allclose(sd_out, paired[3], rtol=0.15)
    iid_gap = (cell["theory_iid"][0] - cell["theory_iid"][2]) / cell["theory_iid"][3]
    measured_gap = (mean_in - mean_out) / sd_out
    assert np.corrcoef(measured_gap, iid_gap)[0, 1] < 0.9


def test_class_mean_cells_with_few_models():
    """Six models cannot tell 64 pairs apart by their keep columns: the pairing comes from the
    sampler itself, and the sampler's keep matrix is unchanged by asking for it."""
    from mialaw.empirical.sampling import paired_keep

    labels = np.repeat([0, 1], 64)
    keep, partner = paired_keep(6, labels, 3, return_partners=True)
    np.testing.assert_array_equal(keep, paired_keep(6, labels, 3))
    np.testing.assert_array_equal(keep[:, partner], ~keep)
    np.testing.assert_array_equal(partner[partner], np.arange(labels.size))
    cell = _class_mean_cell(shots=32, shadows=4)
    assert np.all(np.isfinite(cell["theory_paired"])) and np.all(cell["theory_paired"][3] > 0)


def test_gaps_follow_the_same_examples_and_scale_as_the_theory(class_mean_run):
    from mialaw.empirical.gaps import follow_gaps, gap_rows

    followed = follow_gaps(class_mean_run, 32)
    assert followed.examples == 3 * 2 * 2 * 32  # seeds × classes × the S0 pool
    rows = gap_rows(followed, resamples=200)
    low, high = rows["rms_law"]["slope_ci"]
    assert low <= -0.5 <= high  # every example's gap falls as S^-1/2
    # each S0-gap quintile too (95 % intervals: at least 4 of 5 cover, P = 0.98 when all hold)
    covered = [g["slope_ci"][0] <= -0.5 <= g["slope_ci"][1] for g in rows["groups"]]
    assert sum(covered) >= 4, rows["groups"]


def test_gap_noise_correction_on_a_null():
    """No signal at all: the noise-corrected mean of Δ² is zero within its error."""
    from mialaw.empirical.gaps import example_fits

    rng = np.random.default_rng(7)
    keep = np.zeros((64, 3000), bool)
    first = rng.random((32, 3000)) < 0.5
    keep[0::2], keep[1::2] = first, ~first
    fits = example_fits(keep, rng.standard_normal(keep.shape))
    sq = fits.gap_sq
    assert abs(sq.mean()) < 3 * sq.std() / np.sqrt(sq.size)
    assert (fits.gap**2).mean() > 10 * sq.std() / np.sqrt(sq.size)  # the raw Δ̂² is biased


def test_saturated_examples_keep_finite_gaps():
    """Shadows that all agree on an example (a saturated confidence): finite, large gaps."""
    from mialaw.empirical.gaps import example_fits

    rng = np.random.default_rng(8)
    keep = np.zeros((16, 50), bool)
    first = rng.random((8, 50)) < 0.5
    keep[0::2], keep[1::2] = first, ~first
    stats = rng.standard_normal(keep.shape) + keep
    stats[:, 0] = np.where(keep[:, 0], 5.0, 3.0)  # no spread at all
    fits = example_fits(keep, stats)
    assert np.all(np.isfinite(fits.gap)) and fits.gap[0] > 100
    assert np.all(np.isfinite(fits.gaussians().mean_in))


def test_bridge_predicts_the_known_answer(class_mean_run):
    """The theory's learner on the theory's data: the S^-1/2 scaling from S0 and the protocol's
    exact moments both predict the measured LiRA curve."""
    from mialaw.empirical.bridge import bridge

    result = bridge(class_mean_run, 64, resamples=200, intervals=20)
    assert {"theory", "moments-paired"} <= set(result.rules)
    assert result.median_abs_error("theory", min_shots=128) < 0.06
    assert result.median_abs_error("moments-paired", min_shots=64) < 0.06
    # the model as written (fresh draws, not the protocol's pairs) is measurably off
    assert result.median_abs_error("moments-iid", min_shots=64) > 0.1
    overlapping = []
    for p in result.points:
        m, ci = p["measured"], p["predicted_ci"]["theory"]
        if m["tpr"] is None or p["fpr"] < 0.01:
            continue
        overlapping.append(ci[0] <= m["tpr_ci"][1] and m["tpr_ci"][0] <= ci[1])
    assert np.mean(overlapping) >= 0.75
    payload = json.loads(json.dumps(result.to_json()))
    assert payload["points"][0]["predicted"]["theory"] > 0


def test_bridge_cli_json(class_mean_run, capsys):
    from mialaw.paper.cli import main

    code = main(
        [
            "empirical",
            "bridge",
            str(class_mean_run),
            "--from-shots",
            "64",
            "--json",
            "--resamples",
            "100",
            "--intervals",
            "0",
        ]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    point = payload["points"][-1]
    assert {"shots", "fpr", "attack", "measured", "predicted", "log10_error"} <= set(point)
    with pytest.raises(SystemExit) as refused:  # S0 must leave two larger shot values
        main(["empirical", "bridge", str(class_mean_run), "--from-shots", "256"])
    assert refused.value.code == 2
    assert "--from-shots must be one of" in capsys.readouterr().err


@pytest.mark.slow
def test_mechanism_stage_tables_and_figures(class_mean_run, recwarn):
    """The paper's mechanism stage on one run: gap laws, the bridge against the run's measured
    points, every table and figure written, no matplotlib warning."""
    from mialaw.empirical.bridge import measure
    from mialaw.paper import mechanism_stage, mechanism_tables
    from mialaw.paper.mechanism_figures import write_mechanism_figures
    from mialaw.paper.profiles import PROFILES

    out = class_mean_run.parent.parent
    measured = measure(class_mean_run, 3, 2, (64, 128, 256), ALPHAS, ("lira_online",), 100)
    points = [p | {"classes": 2} for p in measured.values()]
    stage = {"empirical-gaussian-class-mean": {"points": points}}
    result = mechanism_stage.mechanism(
        out, ["gaussian-class-mean"], stage, gap_resamples=200, intervals=20
    )
    results = {"mechanism": json.loads(json.dumps(result))}
    written = [
        path
        for table in mechanism_tables.TABLES
        for path in table.write(results, PROFILES["full"], out / "tables")
    ]
    names = {p.name for p in written}
    assert {"gaps.csv", "gap_laws.csv", "bridge.csv", "bridge_summary.csv"} <= names
    gaps = mechanism_tables.gap_rows(results)
    assert [r["shots"] for r in gaps] == [32, 64, 128, 256]  # from S0 = 32 on
    bridge_rows = mechanism_tables.bridge_rows(results)
    assert {r["attack"] for r in bridge_rows} == {"LiRA online", "LiRA offline"}
    measured_rows = [r for r in bridge_rows if r["measured"] is not None]
    assert measured_rows and all(r["attack"] == "LiRA online" for r in measured_rows)
    summary = mechanism_tables.bridge_summary_rows(results)
    paired = [
        r
        for r in summary
        if r["rule"] == "moments-paired"
        and r["attack"] == "LiRA online"
        and r["window"] == "from S0"
    ]
    assert paired[0]["median_abs"] < 0.06
    figures = write_mechanism_figures(results, PROFILES["full"], out)
    assert any(p.name == "bridge.png" for p in figures) and any(
        p.name == "gaps.png" for p in figures
    )
    assert not [w for w in recwarn if "matplotlib" in str(w.filename)]
