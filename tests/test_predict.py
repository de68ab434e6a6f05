"""mialaw predict: the shipped fits, predictions and their inversion, intervals, bad inputs."""

import dataclasses
import json
import math
import shlex
from pathlib import Path

import numpy as np
import pytest

from mialaw.empirical.laws import Line
from mialaw.empirical.predict import (
    SHIPPED_FITS,
    build_fits,
    load_fits,
    predict,
    select_fit,
    shots_for,
)
from mialaw.paper.cli import main

STAGES = Path(__file__).resolve().parent.parent / "paper" / "stages"


def test_shipped_fits_carry_provenance_and_covariance():
    fits = load_fits()
    assert SHIPPED_FITS.is_file() and len(fits) >= 18
    sources = {f.source for f in fits}
    assert {"all datasets", "digits-pixels", "fashion-mnist-lite0"} <= sources
    for f in fits:
        prov = f.provenance
        assert prov["file"].endswith(".json") and prov["fit_rule"]
        if f.covariance is None:
            continue
        assert prov["datasets"] and prov["backbones"] and prov["shots_range"][0] >= 1
        c = np.asarray(f.covariance)
        assert np.allclose(c, c.T) and np.all(np.linalg.eigvalsh(c) > 0)
        # the stored per-coefficient intervals follow from the covariance (t, residual dof)
        line = f.line(2)
        half = np.array([f.ci[i][1] - f.ci[i][0] for i in range(3)]) / 2
        assert np.allclose(half, line.t * np.sqrt(np.diag(c)), rtol=1e-6)


@pytest.mark.skipif(not STAGES.is_dir(), reason="paper stages not present")
def test_shipped_fits_are_rebuilt_from_the_stages():
    # the main runs and the cross-dataset fit (the lambda and 64 px FiLM/head runs are tables of
    # the paper only)
    paths = sorted(
        p
        for p in STAGES.glob("empirical-*.json")
        if "-lambda" not in p.name and not p.stem.endswith("-64px")
    )
    built = {(d["source"], d["attack"], d["fpr"]): d for d in build_fits(paths)["fits"]}
    shipped = {(f.source, f.attack, f.fpr): f for f in load_fits()}
    assert built.keys() == shipped.keys(), "regenerate empirical/shipped_fits.json"
    for key, d in built.items():
        coef = [
            d["coefficients"][n]["estimate"] for n in ("intercept", "log10_shots", "log10_classes")
        ]
        assert np.allclose(coef, shipped[key].coef), key


def test_prediction_is_the_plane_and_inverts():
    fit = select_fit(load_fits(), fpr=0.01, attack="lira_online", source="fashion-mnist-lite0")
    b0, bs, bc = fit.coef
    for p in predict([10, 100], 5, 0.01, fit=fit):
        lo, est, hi = p.advantage
        assert est == pytest.approx(10 ** (b0 + bs * math.log10(p.shots) + bc * math.log10(5)))
        assert lo < est < hi
        assert p.tpr[1] == pytest.approx(0.01 + est)
    need = shots_for(0.02, 5, 0.01, fit=fit)
    lo, est, hi = need.shots
    assert lo < est < hi
    assert predict([est], 5, 0.01, fit=fit)[0].advantage[1] == pytest.approx(0.02)
    # Fieller: the band's ends meet the target exactly at the interval's ends
    line = fit.line(5)
    assert line.band(math.log10(lo))[0] == pytest.approx(math.log10(0.02), abs=1e-9)
    assert line.band(math.log10(hi))[2] == pytest.approx(math.log10(0.02), abs=1e-9)


def test_without_covariance_the_interval_is_conservative():
    fit = select_fit(load_fits(), fpr=0.01, attack="lira_online", source="fashion-mnist-lite0")
    box = dataclasses.replace(fit, covariance=None)
    for a, b in zip(predict([10, 300], 2, 0.01, fit=fit), predict([10, 300], 2, 0.01, fit=box)):
        assert a.advantage[1] == pytest.approx(b.advantage[1])
        assert b.advantage[0] <= a.advantage[0] and b.advantage[2] >= a.advantage[2]
        assert "conservative" in b.method
    a, b = shots_for(0.01, 2, 0.01, fit=fit), shots_for(0.01, 2, 0.01, fit=box)
    assert b.shots[0] <= a.shots[0] and b.shots[2] >= a.shots[2]


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
        (dict(shots=[10], classes=2, fpr=0.02), "fitted FPRs: 0.001, 0.01, 0.1"),
        (dict(shots=[10], classes=2, fpr=1.5), "fpr"),
        (dict(shots=[10], classes=2, fpr=0.01, source="cifar"), "unknown fit source"),
        (dict(shots=[10], classes=2, fpr=0.01, attack="oracle"), "attack must be"),
    ],
)
def test_bad_predict_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        predict(**kwargs)


def test_bad_target_and_fit_file(tmp_path):
    with pytest.raises(ValueError, match=r"target_advantage must lie in \(0, 1 − fpr\)"):
        shots_for(0.995, 2, 0.01)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not readable JSON"):
        load_fits(bad)
    bad.write_text(json.dumps({"attack": "lira_online", "fpr": 0.01}))
    with pytest.raises(ValueError, match="not a regression fit"):
        load_fits(bad)


def test_cli(capsys, tmp_path):
    assert main(shlex.split("predict --shots 10 100 --classes 2 --fpr 0.01")) == 0
    out = capsys.readouterr().out
    assert "S=10 C=2 FPR=0.01: TPR" in out and "held-out R²" in out
    assert main(shlex.split("predict --target-advantage 0.01 --classes 2 --fpr 0.01 --json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["predictions"][0]["shots_ci"][0] <= data["predictions"][0]["shots"]
    # a user's fit without covariance
    fit = select_fit(load_fits(), fpr=0.1, attack="rmia", source="digits-pixels").to_dict()
    fit |= {"covariance": None, "source": "mine"}
    (tmp_path / "mine.json").write_text(json.dumps(fit))
    assert (
        main(shlex.split(f"predict --shots 8 --fpr 0.1 --attack rmia --fit {tmp_path}/mine.json"))
        == 0
    )
    assert "conservative" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(shlex.split("predict --shots 10 --classes 2 --fpr 0.05"))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fitted FPRs" in err
