"""The study's derived stages: the shadow-count study reads fewer models from the same cells (and
M = all models reproduces the run's own analysis), the simulated twin, and the regression held
out by backbone recovers a known law."""

import numpy as np
import pytest

from mialaw.empirical.experiment import RunConfig, run_sweep
from mialaw.paper.study_stages import backbone_regression, shadow_study, simulated_shadows


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("shadows") / "digits"
    config = RunConfig(
        dataset="digits",
        backbone="pixels",
        classes=(2,),
        shots=(1, 2, 4, 8),
        shadows=8,
        seeds=2,
        fpr=(0.1, 0.01),
        device="cpu",
    )
    return out, run_sweep(config, out, progress=False, plots=False)


def test_all_shadows_reproduce_the_runs_own_points(digits_run):
    out, result = digits_run
    study = shadow_study(out, (4, 8))
    mine = {
        (p["shots"], p["attack"], p["fpr"]): p["tpr"]
        for p in study["points"]
        if p["shadows"] == 8 and p["variance"] == "per-example"
    }
    theirs = {
        (p["shots"], p["attack"], p["fpr"]): p["tpr"]
        for p in result.points
        if p["attack"].startswith("lira")
    }
    assert mine == theirs  # same cells, same rules: the same TPRs (only resamples differ)
    fewer = [p for p in study["points"] if p["shadows"] == 4]
    assert {p["models"] for p in fewer} == {6}
    assert {p["variance"] for p in study["points"]} == {"per-example", "global"}
    assert {(f["shadows"], f["variance"]) for f in study["power_law"]} == {
        (m, v) for m in (4, 8) for v in ("per-example", "global")
    }
    with pytest.raises(ValueError, match="at most the run's 8"):
        shadow_study(out, (16,))


def test_simulated_twin_runs_every_setting_and_the_table_and_figure_show_both(digits_run, tmp_path):
    from mialaw.paper.figures import shadow_figure
    from mialaw.paper.study_tables import shadow_rows

    options = [
        dict(dim=8, sigma=1.0, shots=(4, 16, 64), fpr=(0.1,), targets=300, shadows=m)
        | dict(attack="lira-offline", variance=v, seed=i, resamples=100)
        for i, (m, v) in enumerate([(6, "per-example"), (16, "global")])
    ]
    out = simulated_shadows(options)
    assert [(s["shadows"], s["variance"]) for s in out["sweeps"]] == [
        (6, "per-example"),
        (16, "global"),
    ]
    assert all(len(s["points"]) == 3 for s in out["sweeps"])
    results = {"shadows-simulated": out, "shadows": shadow_study(digits_run[0], (4, 8))}
    rows = shadow_rows(results)
    sources = {r["source"] for r in rows}
    assert "simulated d=8" in sources and "digits / pixels, C=2" in sources
    assert {r["shadows"] for r in rows} >= {4, 8, 6, 16}
    (png,) = [p for p in shadow_figure(results, tmp_path, fpr=0.1) if p.suffix == ".png"]
    assert png.stat().st_size > 1000


def _points(backbone, beta_s, beta_c, b0, rng):
    rows = []
    for c in (2, 5, 10):
        for s in (1, 4, 16, 64, 256):
            adv = 10 ** (beta_s * np.log10(s) + beta_c * np.log10(c) + b0 + rng.normal(0, 0.02))
            rows.append(
                dict(dataset="d", backbone=backbone, classes=c, shots=s, attack="lira_online")
                | dict(fpr=0.01, advantage=adv, log10_advantage_se=0.02)
                | dict(resolvable=True, detected=True)
            )
    return rows


def test_backbone_regression_recovers_a_shared_law_and_flags_a_different_one():
    rng = np.random.default_rng(0)
    runs = {b: _points(b, -0.5, 0.3, -1.0, rng) for b in ("b0", "b1", "b2")}
    out = backbone_regression(runs, fit_on="b0")
    one = out["one_backbone"][0]
    assert one["coefficients"]["log10_shots"]["estimate"] == pytest.approx(-0.5, abs=0.03)
    assert all(h["r2"] > 0.95 for h in one["held_out"])
    assert {h["group"] for h in out["leave_one_out"][0]["held_out"]} == {"b0", "b1", "b2"}
    shared = {h["group"]: h["r2"] for h in one["held_out"]}
    # A backbone with another law is predicted worse: its R² falls, the other's does not.
    runs["b2"] = _points("b2", -1.0, 0.3, -0.5, rng)
    worse = backbone_regression(runs, fit_on="b0")["one_backbone"][0]["held_out"]
    worse = {h["group"]: h["r2"] for h in worse}
    assert worse["b2"] < 0.9 < shared["b2"] and worse["b1"] == pytest.approx(shared["b1"])
