"""The stage ``regression-tasks``: the regression held out by task over every real-image run of a
profile (its main runs, held-out backbones and transfer tasks), beside held out by data set (all
its backbones at once), by backbone and by C, and the
per-task intercept model (``mialaw.empirical.transfer``).

Two task sets: ``pretrained`` (the tasks seen through a pretrained backbone, the practitioners'
setting) and ``all`` (with the raw-pixel runs too). Planned by :func:`plan_transfer` where the
profile has transfer runs (the full profile); computed from the runs' stage results (their
points), so it is redone whenever one of those runs changes.
"""

from __future__ import annotations

from mialaw.empirical.datasets import FEATURE_SPACE
from mialaw.empirical.transfer import transfer_study

from . import stage_costs as cost

__all__ = ["STAGE", "TRANSFER_VERSION", "plan_labels", "plan_transfer", "task_regression"]

STAGE = "regression-tasks"
TRANSFER_VERSION = 1
# Backbones that are not pretrained networks: the raw image as features.
RAW_BACKBONES = frozenset({"pixels"})


def plan_labels(spec) -> list[str]:
    """The runs the stage reads: every main, held-out-backbone and transfer run on images (not
    feature space)."""
    return [
        e.label
        for e in spec.empirical
        if e.role in ("main", "backbone", "transfer") and e.options["dataset"] not in FEATURE_SPACE
    ]


def task_regression(points_by_run: dict, level: float = 0.95) -> dict:
    """``transfer_study`` over the pretrained-backbone tasks and over all tasks."""
    points = [p for rows in points_by_run.values() for p in rows]
    pretrained = [p for p in points if p["backbone"] not in RAW_BACKBONES]
    return {
        "runs": sorted(points_by_run),
        "pretrained": transfer_study(pretrained, level),
        "all": transfer_study(points, level),
    }


def plan_transfer(spec, labels: dict, key, results: dict, plan: list, needs: dict) -> None:
    """Append the stage to ``plan`` where ``spec`` has transfer runs (``reproduce._plan_study``:
    ``labels`` {label: EmpiricalSpec}, ``key(label)`` a run's config key, ``results`` the stage
    results filled as the plan runs, ``needs`` {stage: stages it reads})."""
    runs = [label for label in plan_labels(spec) if label in labels]
    if not any(labels[label].role == "transfer" for label in runs):
        return
    config = {label: key(label) for label in runs} | {"transfer": TRANSFER_VERSION}

    def compute():
        return task_regression({label: results[f"empirical-{label}"]["points"] for label in runs})

    plan.append((STAGE, config, compute, *cost.analysis(len(runs), per=5.0)))
    needs[STAGE] = {f"empirical-{label}" for label in runs}
