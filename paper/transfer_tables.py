"""Tables of the regression held out by task (stage ``regression-tasks``, issue 21): the pooled
fit with its held-out R² by task, data set, backbone and C; the R² of each held-out task; the
per-task intercept model (shared slopes, between-task spread τ, variance shares)."""

from __future__ import annotations

from .table_format import Table
from .transfer_stage import STAGE

__all__ = ["TABLES", "by_task_rows", "intercept_rows", "task_regression_rows"]

TASK_SETS = ("pretrained", "all")
REGRESSION_COLUMNS = (
    "tasks",
    "attack",
    "fpr",
    "n",
    "beta_S",
    "beta_S_low",
    "beta_S_high",
    "beta_C",
    "beta_C_low",
    "beta_C_high",
    "r2",
    "held_out_r2_task",
    "held_out_r2_dataset",
    "held_out_r2_backbone",
    "held_out_r2_classes",
)
BY_TASK_COLUMNS = ("tasks", "attack", "fpr", "held_out", "by", "n", "r2", "rmse", "bias")
INTERCEPT_COLUMNS = (
    "tasks",
    "attack",
    "fpr",
    "beta_S",
    "beta_S_low",
    "beta_S_high",
    "beta_C",
    "beta_C_low",
    "beta_C_high",
    "tau",
    "share_tasks_only",
    "share_full",
    "share_slopes_within",
)


def _entries(results: dict):
    """(task set, entry) for every attack and FPR of the stage, pretrained tasks first."""
    stage = results.get(STAGE) or {}
    for name in TASK_SETS:
        for entry in (stage.get(name) or {}).get("regressions", []):
            yield name, entry


def _coefficient(row: dict, coefficients: dict, name: str, column: str) -> None:
    c = coefficients.get(name, {})
    low, high = c.get("ci", (None, None))
    row |= {column: c.get("estimate"), f"{column}_low": low, f"{column}_high": high}


def task_regression_rows(results: dict, profile=None) -> list[dict]:
    rows = []
    for name, entry in _entries(results):
        fit = entry["by_task"]
        if "coefficients" not in fit:
            continue
        row = {"tasks": name, "attack": entry["attack"], "fpr": entry["fpr"], "n": fit["n"]}
        _coefficient(row, fit["coefficients"], "log10_shots", "beta_S")
        _coefficient(row, fit["coefficients"], "log10_classes", "beta_C")
        row["r2"] = fit.get("r2")
        for by in ("task", "dataset", "backbone", "classes"):
            row[f"held_out_r2_{by}"] = entry.get(f"by_{by}", {}).get("held_out_r2")
        rows.append(row)
    return rows


def by_task_rows(results: dict, profile=None) -> list[dict]:
    rows = []
    for name, entry in _entries(results):
        for by in ("task", "dataset"):
            for held in entry.get(f"by_{by}", {}).get("held_out", []):
                if "error" in held:
                    continue
                rows.append(
                    {"tasks": name, "attack": entry["attack"], "fpr": entry["fpr"]}
                    | {"held_out": held["group"], "by": by, "n": held["n"], "r2": held["r2"]}
                    | {"rmse": held["rmse"], "bias": held["bias"]}
                )
    return rows


def intercept_rows(results: dict, profile=None) -> list[dict]:
    rows = []
    for name, entry in _entries(results):
        model = entry.get("task_intercepts", {})
        if "slopes" not in model:
            continue
        row = {"tasks": name, "attack": entry["attack"], "fpr": entry["fpr"]}
        for column, coefficient in (("beta_S", "log10_shots"), ("beta_C", "log10_classes")):
            low, estimate, high = model["slopes"][coefficient]
            row |= {column: estimate, f"{column}_low": low, f"{column}_high": high}
        share = model["variance_share"]
        row |= {"tau": model["intercept_spread"], "share_tasks_only": share["tasks_only"]}
        row |= {"share_full": share["full"], "share_slopes_within": share["slopes_within"]}
        rows.append(row)
    return rows


TABLES = (
    Table(
        "regression_tasks",
        "Regression over tasks: coefficients and held-out R² (by task, data set, backbone, C)",
        REGRESSION_COLUMNS,
        task_regression_rows,
        needs=STAGE,
    ),
    Table(
        "regression_by_task",
        "Each task (or data set) predicted by the fit to the others",
        BY_TASK_COLUMNS,
        by_task_rows,
        needs=STAGE,
    ),
    Table(
        "task_intercepts",
        "Per-task intercepts, shared slopes: between-task spread and variance explained",
        INTERCEPT_COLUMNS,
        intercept_rows,
        needs=STAGE,
    ),
)
