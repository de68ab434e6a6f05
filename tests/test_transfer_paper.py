"""The paper's regression-tasks stage: which runs it reads, its two task sets, its tables and its
figure (synthetic points; nothing generated is read)."""

import warnings

import numpy as np
import pytest
from synthetic_points import BETA_S, synthetic_points

from mialaw.paper.profiles import PROFILES
from mialaw.paper.transfer_figures import write_transfer_figures
from mialaw.paper.transfer_stage import STAGE, plan_labels, plan_transfer, task_regression
from mialaw.paper.transfer_tables import TABLES, by_task_rows, intercept_rows, task_regression_rows


def test_the_full_profile_plans_the_stage_over_its_image_runs():
    spec = PROFILES["full"]
    labels = {e.label: e for e in spec.empirical}
    plan, needs = [], {}
    plan_transfer(spec, labels, lambda label: label, {}, plan, needs)
    ((name, config, _compute, _estimate, _cells),) = plan
    runs = set(plan_labels(spec))
    assert name == STAGE and set(config) - {"transfer"} == runs
    assert {
        "fashion-mnist-lite0",
        "digits-pixels",
        "digits-lite1",
        "fashion-mnist-tops-lite0",
    } <= runs
    assert not runs & {"gaussian", "fashion-mnist-lite0-lambda0.1", "fashion-mnist-lite0-c2-large"}
    assert needs[STAGE] == {f"empirical-{label}" for label in runs}
    # a profile without transfer runs plans nothing
    quick = PROFILES["quick"]
    plan = []
    plan_transfer(quick, {e.label: e for e in quick.empirical}, str, {}, plan, {})
    assert plan == []


def _points():
    lite = synthetic_points(intercepts={"a": -0.3, "b": -0.5, "c": -0.4})
    pixels = synthetic_points(intercepts={"d": 0.0}, seed=5)
    return {"lite": lite, "raw": [p | {"backbone": "pixels"} for p in pixels]}


def test_task_sets_and_tables_follow_the_study(tmp_path):
    result = task_regression(_points())
    (pretrained,) = result["pretrained"]["regressions"]
    (everything,) = result["all"]["regressions"]
    assert pretrained["tasks"] == ["a/net", "b/net", "c/net"]
    assert everything["tasks"] == ["a/net", "b/net", "c/net", "d/pixels"]
    results = {STAGE: result}
    rows = task_regression_rows(results)
    assert [r["tasks"] for r in rows] == ["pretrained", "all"]
    fit = pretrained["by_task"]["coefficients"]["log10_shots"]
    assert rows[0]["beta_S"] == fit["estimate"] == pytest.approx(BETA_S, abs=0.05)
    assert (rows[0]["beta_S_low"], rows[0]["beta_S_high"]) == tuple(fit["ci"])
    assert rows[0]["held_out_r2_task"] == pretrained["by_task"]["held_out_r2"]
    held = [r for r in by_task_rows(results) if r["tasks"] == "pretrained" and r["by"] == "task"]
    assert [r["held_out"] for r in held] == ["a/net", "b/net", "c/net"]
    (shared, _) = intercept_rows(results)
    assert shared["tau"] == pytest.approx(np.std([-0.3, -0.5, -0.4], ddof=1), abs=0.03)
    for table in TABLES:
        table.write(results, PROFILES["full"], tmp_path / "t")
        assert (tmp_path / "t" / f"{table.name}.md").read_text().startswith("### ")
    # without the stage, no table at all
    assert TABLES[0].write({}, PROFILES["full"], tmp_path / "none") == []


def test_figure_is_drawn_without_warnings(tmp_path):
    results = {STAGE: task_regression(_points())}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = write_transfer_figures(results, PROFILES["full"], tmp_path)
    assert sorted(p.name for p in paths) == [
        "regression_tasks_all.png",
        "regression_tasks_all.svg",
        "regression_tasks_pretrained.png",
        "regression_tasks_pretrained.svg",
    ]
    assert write_transfer_figures({}, PROFILES["full"], tmp_path / "empty") == []
