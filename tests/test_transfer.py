"""The regression held out by task and the per-task intercept model, against independent
computations (numpy least squares written out, a leave-one-out by brute force, within-task
demeaning)."""

import json
import math

import numpy as np
import pytest
from synthetic_points import BETA_C, BETA_S, INTERCEPTS, synthetic_points

from mialaw.empirical.transfer import (
    leave_one_out,
    one_task_fits,
    task_intercepts,
    task_of,
    transfer_study,
)


def design(points):
    X = np.array([[1.0, math.log10(p["shots"]), math.log10(p["classes"])] for p in points])
    y = np.log10([p["advantage"] for p in points])
    w = 1 / np.array([p["log10_advantage_se"] for p in points]) ** 2
    return X, y, w


def wls(X, y, w):
    # normal equations, written out (independent of lstsq on scaled rows)
    return np.linalg.solve(X.T @ (w[:, None] * X), X.T @ (w * y))


def test_leave_one_task_out_equals_brute_force():
    points = synthetic_points(intercepts={"a": -0.3, "b": -0.6, "c": 0.0})
    loo = leave_one_out(points, "lira_online", 0.01, by="task")
    assert loo.fit.n == len(points)
    X, y, w = design(points)
    assert np.allclose(loo.fit.coef, wls(X, y, w))
    tasks = np.array([task_of(p) for p in points])
    assert [h.group for h in loo.held_out] == ["a/net", "b/net", "c/net"]
    predicted_all, observed_all = [], []
    for held in loo.held_out:
        out = tasks == held.group
        coef = wls(X[~out], y[~out], w[~out])
        pred = X[out] @ coef
        assert np.allclose(held.coef, coef)
        assert np.allclose(held.predicted, pred)
        r2 = 1 - np.sum((y[out] - pred) ** 2) / np.sum((y[out] - y[out].mean()) ** 2)
        assert held.r2 == pytest.approx(r2)
        predicted_all.append(pred)
        observed_all.append(y[out])
    yy, pp = np.concatenate(observed_all), np.concatenate(predicted_all)
    assert loo.pooled_r2 == pytest.approx(
        1 - np.sum((yy - pp) ** 2) / np.sum((yy - yy.mean()) ** 2)
    )
    # the held-out task "c" sits 0 − mean(−0.3, −0.6) = 0.45 above the others: predicted too low
    c = loo.r2_by_group()
    assert c["c/net"] < 0 < c["a/net"] + 1
    assert dict((h.group, h.bias) for h in loo.held_out)["c/net"] == pytest.approx(-0.45, abs=0.05)


def test_leave_out_by_classes_and_bad_grouping():
    points = synthetic_points(noise=0.001)
    loo = leave_one_out(points, "lira_online", 0.01, by="classes")
    assert [h.group for h in loo.held_out] == ["2", "3", "5"]
    # the slopes are shared, so each C's fit recovers β_S (intercepts differ between tasks)
    for held in loo.held_out:
        assert held.coef[1] == pytest.approx(BETA_S, abs=0.01)
    with pytest.raises(ValueError, match="by must be one of"):
        leave_one_out(points, "lira_online", 0.01, by="colour")


def test_task_intercepts_recover_the_truth_and_match_within_task_demeaning():
    points = synthetic_points(noise=0.02, seed=4)
    fit = task_intercepts(points, "lira_online", 0.01)
    X, y, w = design(points)
    tasks = np.array([task_of(p) for p in points])
    # Frisch–Waugh: the shared slopes are those of the weighted within-task demeaned data
    Xd, yd = X[:, 1:].copy(), y.copy()
    for t in np.unique(tasks):
        m = tasks == t
        Xd[m] -= np.average(X[m, 1:], axis=0, weights=w[m])
        yd[m] -= np.average(y[m], weights=w[m])
    slopes = np.linalg.solve(Xd.T @ (w[:, None] * Xd), Xd.T @ (w * yd))
    assert np.allclose(fit.coef[:2], slopes)
    for (lo, est, hi), truth in zip(fit.slopes.values(), (BETA_S, BETA_C)):
        assert lo < truth < hi and lo < est < hi
    for task, (lo, _, hi) in fit.intercepts.items():
        assert lo < INTERCEPTS[task.split("/")[0]] < hi
    assert fit.intercept_spread == pytest.approx(
        np.std(list(INTERCEPTS.values()), ddof=1), abs=0.03
    )
    # variance shares from sums of squares computed here
    sst = np.sum(w * (y - np.average(y, weights=w)) ** 2)
    sse_tasks = sum(
        np.sum(
            w[tasks == t] * (y[tasks == t] - np.average(y[tasks == t], weights=w[tasks == t])) ** 2
        )
        for t in np.unique(tasks)
    )
    share = fit.variance_share
    assert share["tasks_only"] == pytest.approx(1 - sse_tasks / sst)
    assert share["tasks_only"] < share["full"] <= 1
    assert share["slopes_within"] > 0.95  # noise is small: the shared slopes explain the rest


def test_task_intercepts_need_two_tasks():
    points = [p for p in synthetic_points() if p["dataset"] == "a"]
    with pytest.raises(ValueError, match=">= 2 tasks"):
        task_intercepts(points, "lira_online", 0.01)


def test_one_task_fits_score_every_other_task():
    points = synthetic_points(noise=0.001, intercepts={"a": -1.0, "b": -1.0, "c": 0.0})
    fits = {f["task"]: f for f in one_task_fits(points, "lira_online", 0.01)}
    # equal intercepts transfer (R² ≈ 1), a unit offset does not (R² far below 0)
    assert fits["a/net"]["on"]["b/net"] > 0.99
    assert fits["a/net"]["on"]["c/net"] < -5


def test_study_is_json_ready_and_skips_unfit_points():
    points = synthetic_points()
    points[0] = points[0] | {"detected": False, "advantage": 10.0}  # would wreck the fit
    study = transfer_study(points)
    (entry,) = study["regressions"]
    assert entry["by_task"]["n"] == len(points) - 1
    assert entry["by_task"]["coefficients"]["log10_shots"]["estimate"] == pytest.approx(
        BETA_S, abs=0.05
    )
    # one backbone: holding it out leaves nothing to fit, which is recorded, not raised
    (held,) = entry["by_backbone"]["held_out"]
    assert held["group"] == "net" and "at least 3 points" in held["error"]
    assert json.loads(json.dumps(study)) == study
    assert entry["task_intercepts"]["variance_share"]["full"] > 0.9
