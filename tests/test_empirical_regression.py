"""The cross-run regression's held-out predictions against an independent least-squares fit."""

import numpy as np
import pytest

from mialaw.empirical.run_fits import regressions


def test_held_out_predictions_match_independent_fit():
    rng = np.random.default_rng(0)
    points = []
    for c in (2, 5, 10):
        for s in (4, 8, 16, 32, 64):
            adv = 10 ** (-0.5 * np.log10(s) + 0.1 * np.log10(c) - 0.3 + rng.normal(0, 0.02))
            points.append(
                {
                    "attack": "lira_offline",
                    "fpr": 0.01,
                    "resolvable": True,
                    "detected": True,
                    "advantage": adv,
                    "log10_advantage_se": 0.02,
                    "dataset": "d",
                    "backbone": "b",
                    "classes": c,
                    "shots": s,
                }
            )
    (entry,) = regressions(points, 0.95)
    assert entry["held_out_by"] == "classes"
    X = np.array([[1.0, np.log10(p["shots"]), np.log10(p["classes"])] for p in points])
    y = np.log10([p["advantage"] for p in points])
    groups = np.array([p["classes"] for p in points])
    pred_all, obs_all = [], []
    for held in entry["held_out"]:
        mask = groups == held["group"]
        coef, *_ = np.linalg.lstsq(X[~mask], y[~mask], rcond=None)
        np.testing.assert_allclose(held["predicted"], X[mask] @ coef, rtol=1e-10)
        np.testing.assert_allclose(held["observed"], y[mask], rtol=1e-12)
        pred_all.append(X[mask] @ coef)
        obs_all.append(y[mask])
    p, o = np.concatenate(pred_all), np.concatenate(obs_all)
    r2 = 1 - np.sum((o - p) ** 2) / np.sum((o - o.mean()) ** 2)
    assert entry["held_out_r2"] == pytest.approx(r2, rel=1e-10)
