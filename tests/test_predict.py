"""mialaw predict: fits, predictions and their inversion, intervals (extrapolation, a new task),
the fits file built from stages with its transfer measure, bad inputs. Self-contained: the fits
are made here from synthetic points (the generated paper/stages are never read)."""

import dataclasses
import json
import math
import shlex

import numpy as np
import pytest
from scipy import stats
from synthetic_points import BETA_C, BETA_S, synthetic_points

from mialaw.empirical.fit_build import build_fits
from mialaw.empirical.laws import Line
from mialaw.empirical.predict import (
    SHIPPED_FITS,
    FitSet,
    Regression,
    load_fit_set,
    load_fits,
    predict,
    select_fit,
    shots_for,
)
from mialaw.empirical.run_fits import regressions
from mialaw.paper.cli import main

TAU = 0.25


def stage_file(path, label, points):
    """A stage JSON as the empirical stage writes it: the points and the analysis' regression."""
    result = {"label": label, "points": points, "fit": {"regression": regressions(points, 0.95)}}
    path.write_text(json.dumps({"key": label, "config": {"analysis": 8}, "result": result}))
    return path


@pytest.fixture(scope="module")
def fits_file(tmp_path_factory):
    """A fits file built from three tasks' stages (one stage per task) with the transfer measure."""
    folder = tmp_path_factory.mktemp("fits")
    intercepts = {"a": -0.3, "b": -0.6, "c": 0.0}
    stages = [
        stage_file(folder / f"empirical-{t}-net.json", f"{t}-net", synthetic_points(
            intercepts={t: b0}, seed=i))
        for i, (t, b0) in enumerate(intercepts.items())
    ]  # fmt: skip
    out = folder / "fits.json"
    out.write_text(json.dumps(build_fits(stages, tasks=stages)))
    return out, stages


def plane_fit(spread=TAU, rmse=None) -> Regression:
    """A fit of the shared plane on the synthetic points (with its covariance) and a spread τ."""
    points = synthetic_points(intercepts={"a": -0.3})
    (entry,) = regressions(points, 0.95)
    X = np.column_stack(
        [np.ones(len(points))] + [[math.log10(p[k]) for p in points] for k in ("shots", "classes")]
    )
    w = 1 / np.array([p["log10_advantage_se"] for p in points]) ** 2
    scale = max(1.0, entry["chi2"] / (len(points) - 3)) if "chi2" in entry else None
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    se = np.array(
        [entry["coefficients"][n]["stderr"] for n in ("intercept", "log10_shots", "log10_classes")]
    )
    cov *= (se[0] ** 2 / cov[0, 0]) if scale is None else scale
    d = entry | {
        "source": "synthetic",
        "covariance": cov.tolist(),
        "dof": len(points) - 3,
        "intercept_spread": spread,
        "transfer_rmse": rmse,
        "provenance": {"shots_range": [4, 128], "classes": [2, 3, 5]},
    }
    return Regression.from_dict(d)


def test_prediction_is_the_plane_and_inverts():
    fit = plane_fit()
    b0, bs, bc = fit.coef
    assert bs == pytest.approx(BETA_S, abs=0.05) and bc == pytest.approx(BETA_C, abs=0.1)
    for p in predict([10, 100], 5, 0.01, fit=fit):
        lo, est, hi = p.advantage
        assert est == pytest.approx(10 ** (b0 + bs * math.log10(p.shots) + bc * math.log10(5)))
        assert lo < est < hi and p.estimate.contains(est)
        assert p.tpr[1] == pytest.approx(0.01 + est)
    need = shots_for(0.02, 5, 0.01, fit=fit)
    assert need.lower < need.estimate < need.upper and need.bounded
    assert tuple(need.shots) == (need.lower, need.estimate, need.upper)
    assert str(need).startswith(f"S >= {math.ceil(need.estimate):,} per class [")
    assert predict([need.estimate], 5, 0.01, fit=fit)[0].advantage[1] == pytest.approx(0.02)
    # Fieller: the band's ends meet the target exactly at the interval's ends
    line = fit.line(5, new_task=True)
    assert line.band(math.log10(need.lower))[0] == pytest.approx(math.log10(0.02), abs=1e-9)
    assert line.band(math.log10(need.upper))[2] == pytest.approx(math.log10(0.02), abs=1e-9)


def test_interval_grows_with_extrapolation_and_a_new_task():
    fit = plane_fit()
    c = np.asarray(fit.covariance)
    t = stats.t.ppf(0.975, fit.dof)
    z = math.log10(2)
    for new_task in (False, True):
        widths = []
        for s in (16, 1e3, 1e5):
            (p,) = predict([s], 2, 0.01, fit=fit, new_task=new_task)
            lo, est, hi = (math.log10(v) for v in p.advantage)
            v = np.array([1, math.log10(s), z])
            # the half-width by hand: t·sqrt(vᵀ Σ v + τ²)
            var = v @ c @ v + (TAU**2 if new_task else 0.0)
            assert hi - est == pytest.approx(t * math.sqrt(var), rel=1e-9)
            assert p.new_task is new_task
            widths.append(hi - lo)
        assert widths[0] < widths[1] < widths[2]  # farther from the fitted S: wider
    assert "spread between data sets" in predict([16], 2, 0.01, fit=fit)[0].method
    # the larger of τ and the held-out RMSE is what a new data set adds
    wider = plane_fit(rmse=2 * TAU)
    (p,) = predict([1000], 2, 0.01, fit=wider)  # (at S = 16 the upper end hits 1 − FPR)
    v = np.array([1, math.log10(1000), z])
    half = math.log10(p.advantage[2]) - math.log10(p.advantage[1])
    assert half == pytest.approx(t * math.sqrt(v @ c @ v + 4 * TAU**2), rel=1e-9)
    narrow = shots_for(0.02, 2, 0.01, fit=fit, new_task=False)
    wide = shots_for(0.02, 2, 0.01, fit=fit)
    assert wide.lower < narrow.lower and wide.upper > narrow.upper
    assert wide.estimate == pytest.approx(narrow.estimate)


def test_without_covariance_the_interval_is_conservative():
    fit = plane_fit(spread=None)
    box = dataclasses.replace(fit, covariance=None)
    for a, b in zip(predict([10, 300], 2, 0.01, fit=fit), predict([10, 300], 2, 0.01, fit=box)):
        assert a.advantage[1] == pytest.approx(b.advantage[1])
        assert b.advantage[0] <= a.advantage[0] and b.advantage[2] >= a.advantage[2]
        assert "conservative" in b.method
    a, b = shots_for(0.01, 2, 0.01, fit=fit), shots_for(0.01, 2, 0.01, fit=box)
    assert b.lower <= a.lower and b.upper >= a.upper
    # τ widens the box's ends by its normal quantile in log10 advantage
    spread = dataclasses.replace(box, intercept_spread=TAU)
    (plain,), (wide,) = predict([30], 2, 0.01, fit=box), predict([30], 2, 0.01, fit=spread)
    shift = stats.norm.ppf(0.975) * TAU
    assert math.log10(wide.advantage[2]) - math.log10(plain.advantage[2]) == pytest.approx(shift)
    assert math.log10(plain.advantage[0]) - math.log10(wide.advantage[0]) == pytest.approx(shift)


def test_fieller_interval_covers_at_its_level():
    """Simulate straight lines with known noise; the x at which y = y* is covered ~95%."""
    from mialaw.empirical.laws import line_from_power_law
    from mialaw.theory.fits import fit_power_law

    rng = np.random.default_rng(3)
    shots = np.geomspace(4, 64, 7)
    sigma = np.full(shots.size, 0.05)
    true_a, true_b, y_star = 0.2, -0.6, math.log10(0.02)
    x_true = (y_star - true_a) / true_b
    hits_x = hits_y = 0
    reps = 400
    for _ in range(reps):
        y = true_a + true_b * np.log10(shots) + sigma * rng.standard_normal(shots.size)
        fit = fit_power_law(shots, 10**y, sigma=sigma)
        line = line_from_power_law(fit, shots, sigma)
        lo, _, hi = line.solve(y_star)
        hits_x += lo <= x_true <= hi
        blo, _, bhi = line.band(x_true)
        hits_y += blo <= y_star <= bhi
    assert 0.92 <= hits_x / reps <= 0.98
    assert 0.92 <= hits_y / reps <= 0.98


def test_flat_line_leaves_the_shots_unbounded():
    line = Line(intercept=-1.0, slope=-0.01, covariance=((0.01, 0.0), (0.0, 0.01)), dof=5)
    lo, est, hi = line.solve(-2.0)
    assert math.isinf(hi) and est == pytest.approx(100.0)


def test_fits_file_from_stages_with_the_transfer_measure(fits_file):
    path, stages = fits_file
    fit_set = load_fit_set(path)
    sources = set(fit_set.sources)
    assert sources == {"a-net", "b-net", "c-net", "all pretrained tasks"}
    pooled = select_fit(fit_set, fpr=0.01, source="all pretrained tasks")
    # the pooled fit is weighted least squares over every task's points (normal equations here)
    points = [p for s in stages for p in json.loads(s.read_text())["result"]["points"]]
    X = np.array([[1, math.log10(p["shots"]), math.log10(p["classes"])] for p in points])
    y = np.log10([p["advantage"] for p in points])
    w = 1 / np.array([p["log10_advantage_se"] for p in points]) ** 2
    assert np.allclose(pooled.coef, np.linalg.solve(X.T @ (w[:, None] * X), X.T @ (w * y)))
    assert pooled.held_out_by == "dataset" and pooled.n == len(points)
    # held out by data set, by hand for c: fitted on a and b, scored on c
    on = np.array([p["dataset"] != "c" for p in points])
    coef = np.linalg.solve(X[on].T @ (w[on, None] * X[on]), X[on].T @ (w[on] * y[on]))
    yc, pc = y[~on], X[~on] @ coef
    r2 = 1 - np.sum((yc - pc) ** 2) / np.sum((yc - yc.mean()) ** 2)
    assert pooled.task_r2_by_task["c"] == pytest.approx(r2)
    # a single task's fit scored on the others: task a's fit on task c
    a = select_fit(fit_set, fpr=0.01, source="a-net")
    pa = X[~on] @ np.array(a.coef)
    assert a.task_r2_by_task["c"] == pytest.approx(
        1 - np.sum((yc - pa) ** 2) / np.sum((yc - yc.mean()) ** 2)
    )
    assert set(a.task_r2_by_task) == {"b", "c"}
    # the spread of the intercepts: the three true intercepts' standard deviation
    truth = np.std([-0.3, -0.6, 0.0], ddof=1)
    assert all(f.intercept_spread == pytest.approx(truth, abs=0.05) for f in fit_set.fits)
    # the RMSE of the left-out data sets' predictions (pooled fit refitted without each, by hand)
    errors = []
    for name in "abc":
        out = np.array([p["dataset"] == name for p in points])
        b = np.linalg.solve(X[~out].T @ (w[~out, None] * X[~out]), X[~out].T @ (w[~out] * y[~out]))
        errors.append(X[out] @ b - y[out])
    rmse = np.sqrt(np.mean(np.concatenate(errors) ** 2))
    assert all(f.transfer_rmse == pytest.approx(rmse) for f in fit_set.fits)
    assert pooled.new_task_spread == pytest.approx(max(rmse, pooled.intercept_spread))
    # the default is the source with the highest median held-out-by-task R²
    medians = {s: np.median([f.task_r2 for f in fit_set.fits if f.source == s]) for s in sources}
    assert fit_set.default_source == max(medians, key=medians.get)
    assert select_fit(fit_set, fpr=0.01).source == fit_set.default_source
    # task c's level sits 0.3 and 0.6 above the others': its own fit does worse than a constant
    # on them, and says so
    c = select_fit(fit_set, fpr=0.01, source="c-net")
    assert c.task_r2 < 0 and "do not transfer" in c.warning()


def test_shipped_fits_name_a_default_that_exists():
    fit_set = load_fit_set()
    assert SHIPPED_FITS.is_file() and len(fit_set.fits) >= 18
    assert fit_set.default_source in fit_set.sources
    for f in fit_set.fits:
        prov = f.provenance
        assert prov["file"] and prov["fit_rule"]
        if f.covariance is None:
            continue
        c = np.asarray(f.covariance)
        assert np.allclose(c, c.T) and np.all(np.linalg.eigvalsh(c) > 0)
        # the stored per-coefficient intervals follow from the covariance (t, residual dof)
        half = np.array([f.ci[i][1] - f.ci[i][0] for i in range(3)]) / 2
        assert np.allclose(half, f.line(2).t * np.sqrt(np.diag(c)), rtol=1e-6)


def test_build_fits_from_a_current_fit_result(tmp_path):
    """``empirical fit --json`` output: the weighted regression is refitted, covariance and all."""
    from sklearn.datasets import load_digits

    from mialaw.empirical.analysis import fit_runs
    from mialaw.empirical.audit import _GivenFeatures
    from mialaw.empirical.experiment import RunConfig, run_sweep

    d = load_digits()
    for c in (2, 3):
        keep = d.target < c
        given = _GivenFeatures(d.data[keep].astype(np.float32), d.target[keep], f"digits{c}")
        config = RunConfig(
            dataset="digits",
            backbone="pixels",
            classes=(c,),
            shots=(2, 4, 8, 16, 32),
            shadows=8,
            fpr=(0.1,),
        )
        run_sweep(config, tmp_path / f"run{c}", features=given, progress=False, plots=False)
    result = fit_runs([tmp_path / "run2", tmp_path / "run3"])
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(result.to_json()))
    stored = [r for r in result.fit["regression"] if "coefficients" in r and r["n"] >= 4]
    fits = load_fits(path)
    assert len(fits) == len(stored) > 0
    for f in fits:
        assert f.covariance is not None
        assert "weighted" in f.provenance["fit_rule"]
        p = predict([16], 2, f.fpr, fit=f)[0]
        assert p.advantage[0] < p.advantage[1] < p.advantage[2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(shots=[0], classes=2, fpr=0.01), "shots must be"),
        (dict(shots=[10], classes=1, fpr=0.01), "classes must be"),
        (dict(shots=[10], classes=2.5, fpr=0.01), "whole number"),
        (dict(shots=[10], classes=2, fpr=0.02), "fitted FPRs: 0.01"),
        (dict(shots=[10], classes=2, fpr=1.5), r"FPR must lie in \(0, 1\)"),
        (dict(shots=[10], classes=2, fpr=0.0), r"FPR must lie in \(0, 1\)"),
        (dict(shots=[10], classes=2, fpr=0.01, source="cifar"), "unknown fit source"),
        (dict(shots=[10], classes=2, fpr=0.01, attack="oracle"), "attack must be"),
    ],
)
def test_bad_predict_arguments(kwargs, message, fits_file):
    with pytest.raises(ValueError, match=message):
        predict(**kwargs, fits_path=fits_file[0])


def test_bad_target_and_fit_file(tmp_path):
    with pytest.raises(ValueError, match=r"target_advantage must lie in \(0, 1 − fpr\)"):
        shots_for(0.995, 2, 0.01, fit=plane_fit())
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not readable JSON"):
        load_fits(bad)
    bad.write_text(json.dumps({"attack": "lira_online", "fpr": 0.01}))
    with pytest.raises(ValueError, match="not a regression fit"):
        load_fits(bad)
    with pytest.raises(ValueError, match="several fit sources"):
        select_fit(FitSet((plane_fit(), dataclasses.replace(plane_fit(), source="x"))), fpr=0.01)


def test_cli(capsys, tmp_path, fits_file):
    path = fits_file[0]
    assert main(shlex.split(f"predict --shots 10 100 --classes 2 --fpr 0.01 --fit {path}")) == 0
    out = capsys.readouterr().out
    assert "S=10 C=2 FPR=0.01: TPR" in out and "held-out-by-task R²" in out
    argv = f"predict --target-advantage 0.01 --classes 2 --fpr 0.01 --json --fit {path}"
    assert main(shlex.split(argv)) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["predictions"][0]["shots_ci"][0] <= data["predictions"][0]["shots"]
    assert data["predictions"][0]["new_task"] is True
    # --list: the default fit and its held-out-by-task R², a warning beside a fit that fails it
    assert main(shlex.split(f"predict --list --fit {path}")) == 0
    out = capsys.readouterr().out
    default = load_fit_set(path).default_source
    assert out.startswith(f"default fit: {default} (") and "held-out-by-task R²" in out
    assert "warning: c-net/lira_online/0.01 does worse than a constant" in out
    # a user's fit without covariance
    fit = plane_fit().to_dict() | {"covariance": None, "source": "mine"}
    (tmp_path / "mine.json").write_text(json.dumps(fit))
    assert main(shlex.split(f"predict --shots 8 --fpr 0.01 --fit {tmp_path}/mine.json")) == 0
    assert "conservative" in capsys.readouterr().out
    for argv, message in (
        (f"predict --shots 10 --classes 2 --fpr 0.05 --fit {path}", "fitted FPRs"),
        ("predict --shots 10 --fpr 2", "FPR must lie in (0, 1)"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(shlex.split(argv))
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err
