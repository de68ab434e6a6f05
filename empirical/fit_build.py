"""Building a fits file: the regressions of stage JSONs, refitted for their covariance, and the
measure of how each transfers to a task it was not fitted on.

``stage_fits`` reads the regression entries of stage JSONs (``paper/stages/empirical-*.json``) or
``mialaw empirical fit --json`` output and refits each from its stored points under the rule that
reproduces its coefficients, to recover the covariance. ``build_fits(paths, tasks=...)`` adds the
transfer measure (``mialaw.empirical.transfer``) over the points of the ``tasks`` stages (the
tasks seen through a pretrained backbone): a fit pooled over every task (source ``all pretrained
tasks``) whose held-out-by-task R² leaves each data set out in turn (with every backbone it was
seen through); for every other fit, its R² on each data set it was not fitted on; and, per
attack and FPR, the between-task spread τ of the intercept (the per-task intercept model) and the
root mean squared error of the held-out-by-data-set predictions (``transfer_rmse``: level, slope
and curvature errors together), the larger of which a prediction for a data set that is not one
of ours adds to its interval. The default fit of the
file is the source that transfers best by the held-out-by-task measure (the mean over held-out
data sets of their R², median over the source's attacks and FPRs); a fit whose measure is below
0 is flagged by ``Regression.warning``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from mialaw.theory.fits import fit_linear

from .run_fits import fit_rule, regression_inputs
from .transfer import fit_points, leave_one_out, task_intercepts, task_of

__all__ = ["FORMAT", "MODEL", "NAMES", "build_fits", "stage_fits", "write_fits"]

FORMAT = "mialaw-fits/1"
MODEL = "log10(TPR - FPR) = b0 + bS*log10(S) + bC*log10(C), per attack and FPR"
NAMES = ("intercept", "log10_shots", "log10_classes")
ALL_TASKS = "all pretrained tasks"
# A prediction is for a data set that is not one of ours: the transfer measure holds out a data
# set with every backbone it was seen through (a task is a data set through one backbone).
HELD_OUT_BY = "dataset"


def _rows_rule_current(points, attack, fpr):
    """The analysis' rule now: resolvable, detected, unsaturated; weighted by the point SEs."""
    rows = [p for p in points if p["attack"] == attack and p["fpr"] == fpr]
    if not rows or any("detected" not in p or "log10_advantage_se" not in p for p in rows):
        return None
    keep = fit_rule(rows, fpr)
    rows = [p for p, k in zip(rows, keep) if k]
    sigma = np.array([p["log10_advantage_se"] for p in rows], dtype=np.float64)
    return rows, sigma


def _rows_rule_v1(points, attack, fpr):
    """The rule of the first analysis (stage format before bootstrap intervals): resolvable,
    Clopper–Pearson lower bound above FPR, unsaturated; ordinary least squares."""
    rows = [
        p
        for p in points
        if p["attack"] == attack
        and p["fpr"] == fpr
        and p.get("resolvable")
        and p.get("tpr_ci", [None])[0] is not None
        and p["tpr_ci"][0] > fpr
        and p["advantage"] is not None
        and p["advantage"] < 0.9 * (1 - fpr)
    ]
    return rows, None


def _refit(points, entry):
    """Reproduce a stored regression from its points; (fit, rows, rule, covariance) or None."""
    target = [entry["coefficients"][n]["estimate"] for n in NAMES]
    for rule in (_rows_rule_current, _rows_rule_v1):
        found = rule(points, entry["attack"], entry["fpr"])
        if found is None:
            continue
        rows, sigma = found
        if len(rows) != entry.get("n") or len(rows) < 4:
            continue
        X = np.array([[math.log10(p["shots"]), math.log10(p["classes"])] for p in rows])
        y = np.log10([p["advantage"] for p in rows])
        try:
            fit = fit_linear(X, y, names=list(NAMES[1:]), sigma=sigma)
        except ValueError:
            continue
        if not np.allclose(fit.coef, target, rtol=1e-8, atol=1e-10):
            continue
        A = np.column_stack([np.ones(len(rows)), X])
        w = np.ones(len(rows)) if sigma is None else 1.0 / sigma**2
        unscaled = np.linalg.inv(A.T @ (A * w[:, None]))
        cov = fit.residual_std**2 * unscaled
        if not np.allclose(np.sqrt(np.diag(cov)), fit.stderr, rtol=1e-8):
            continue
        # theory.fits gives Student-t intervals (residual dof) for weighted fits too, even when
        # the reduced-χ² factor is 1: predictions use the same quantile.
        known = False
        name = "weighted, resolvable+detected+unsaturated" if sigma is not None else "OLS, v1"
        return fit, rows, name, cov, known
    return None


def _source_name(path: Path, result: dict) -> str:
    stem = path.stem.removeprefix("empirical-")
    if stem == "combined":
        return "all datasets"
    label = result.get("label")
    return str(label) if label and stem in ("summary", "") else stem


def stage_fits(paths) -> list[dict]:
    """The regression entries of stage JSONs or ``empirical fit --json`` output, as fit dicts.

    Each regression entry is refitted from the stored points under the rule that reproduces its
    coefficients (the current analysis' weighted rule, or the first analysis' OLS rule) to
    recover the full covariance; an entry that cannot be reproduced is shipped without it (and
    predictions then use its per-coefficient intervals conservatively).
    """
    fits = []
    for path in map(Path, paths):
        data = json.loads(path.read_text())
        result = data.get("result", data)
        points = result.get("points", [])
        for entry in result.get("fit", {}).get("regression", []):
            if "error" in entry or "coefficients" not in entry or entry.get("n", 0) < 4:
                continue  # no fit, or no residual degree of freedom (no interval)
            d = {
                "source": _source_name(path, result),
                "attack": entry["attack"],
                "fpr": entry["fpr"],
                "coefficients": {
                    n: {"estimate": c["estimate"], "stderr": c.get("stderr"), "ci": c["ci"]}
                    for n, c in entry["coefficients"].items()
                },
                "level": entry.get("level", 0.95),
                "n": entry["n"],
                "r2": entry.get("r2"),
                "held_out_r2": entry.get("held_out_r2"),
                "held_out_by": entry.get("held_out_by"),
                "covariance": None,
                "dof": entry["n"] - 3,
                "scale_estimated": True,
            }
            found = _refit(points, entry)
            prov = {
                "file": path.name,
                "analysis": data.get("config", {}).get("analysis")
                if isinstance(data.get("config"), dict)
                else None,
                "stage_key": data.get("key"),
            }
            if found is not None:
                fit, rows, rule, cov, known = found
                d["covariance"] = cov.tolist()
                d["scale_estimated"] = not known
                prov |= {
                    "fit_rule": rule,
                    "datasets": sorted({p["dataset"] for p in rows}),
                    "backbones": sorted({p["backbone"] for p in rows}),
                    "tasks": sorted({task_of(p) for p in rows}),
                    "classes": sorted({int(p["classes"]) for p in rows}),
                    "shots_range": [
                        min(p["shots"] for p in rows),
                        max(p["shots"] for p in rows),
                    ],
                    "models": sorted({int(p["models"]) for p in rows if "models" in p}),
                    "seeds": sorted({int(p["seeds"]) for p in rows if "seeds" in p}),
                }
            else:
                prov["fit_rule"] = "not reproduced from the stored points: no covariance"
            d["provenance"] = prov
            fits.append(d)
    return fits


def _load_points(paths) -> tuple[list, dict]:
    """All points of the stages, and each stage's source name -> its data sets."""
    points, tasks = [], {}
    for path in map(Path, paths):
        data = json.loads(path.read_text())
        result = data.get("result", data)
        rows = result.get("points", [])
        points += rows
        tasks[_source_name(path, result)] = sorted({p[HELD_OUT_BY] for p in rows})
    return points, tasks


def _r2(observed, predicted) -> float | None:
    total = float(np.sum((observed - observed.mean()) ** 2))
    if observed.size < 2 or total <= 0:
        return None
    return float(1 - np.sum((observed - predicted) ** 2) / total)


def _pooled_fit(points, attack, fpr) -> dict | None:
    """The fit over every task's points, held out by task, in the fits-file form."""
    try:
        loo = leave_one_out(points, attack, fpr, by=HELD_OUT_BY)
    except ValueError:
        return None
    rows = fit_points(points, attack, fpr)
    X, y, sigma = regression_inputs(rows)
    A = np.column_stack([np.ones(len(rows)), X])
    unscaled = np.linalg.inv(A.T @ (A / sigma[:, None] ** 2))
    by_task = {h.group: h.r2 for h in loo.held_out}
    errors = np.concatenate(
        [np.subtract(h.predicted, h.observed) for h in loo.held_out] or [np.empty(0)]
    )
    scores = [v for v in by_task.values() if v is not None]
    return loo.fit.to_dict() | {
        "source": ALL_TASKS,
        "attack": attack,
        "fpr": fpr,
        "held_out_r2": loo.pooled_r2,
        "held_out_by": HELD_OUT_BY,
        # root mean squared error of log10 advantage predicted for a left-out data set
        "held_out_rmse": float(np.sqrt(np.mean(errors**2))) if errors.size else None,
        "covariance": (loo.fit.residual_std**2 * unscaled).tolist(),
        "dof": loo.fit.dof,
        "scale_estimated": True,
        "task_r2": float(np.mean(scores)) if scores else None,
        "task_r2_by_task": by_task,
        "provenance": {
            "file": "stages of the tasks",
            "fit_rule": "weighted, resolvable+detected+unsaturated",
            "datasets": sorted({p["dataset"] for p in rows}),
            "backbones": sorted({p["backbone"] for p in rows}),
            "tasks": sorted({task_of(p) for p in rows}),
            "classes": sorted({int(p["classes"]) for p in rows}),
            "shots_range": [min(p["shots"] for p in rows), max(p["shots"] for p in rows)],
        },
    }


def _on_other_tasks(fit: dict, points, own_tasks) -> dict:
    """R² of a stored fit on each data set it was not fitted on."""
    coef = np.array([fit["coefficients"][n]["estimate"] for n in NAMES])
    rows = fit_points(points, fit["attack"], fit["fpr"])
    out = {}
    for task in sorted({p[HELD_OUT_BY] for p in rows} - set(own_tasks)):
        mine = [p for p in rows if p[HELD_OUT_BY] == task]
        X, y, _ = regression_inputs(mine)
        out[task] = _r2(y, coef[0] + X @ coef[1:])
    return out


def add_transfer(fits: list[dict], task_paths) -> dict:
    """Add the held-out-by-task measure and the intercept spread to ``fits`` (in place) and the
    pooled fit; returns the file's default (source and why)."""
    points, tasks_of_source = _load_points(task_paths)
    pairs = sorted({(p["attack"], p["fpr"]) for p in points})
    spread = {}
    for attack, fpr in pairs:
        try:
            model = task_intercepts(points, attack, fpr)
        except ValueError:
            continue
        pooled = _pooled_fit(points, attack, fpr)
        rmse = None if pooled is None else pooled.pop("held_out_rmse")
        spread[(attack, fpr)] = (model.intercept_spread, rmse, len(model.tasks))
        if pooled is not None and pooled["n"] >= 4:
            fits.append(pooled)
    for fit in fits:
        key = (fit["attack"], fit["fpr"])
        if key in spread:
            tau, rmse, count = spread[key]
            fit |= {"intercept_spread": tau, "transfer_rmse": rmse, "spread_tasks": count}
        if fit["source"] == ALL_TASKS:
            continue
        own = fit.get("provenance", {}).get("datasets") or tasks_of_source.get(fit["source"], [])
        by_task = _on_other_tasks(fit, points, own)
        scores = [v for v in by_task.values() if v is not None]
        fit["task_r2_by_task"] = by_task
        fit["task_r2"] = float(np.mean(scores)) if scores else None
    return _default(fits)


def _default(fits: list[dict]) -> dict:
    """The source that transfers best: the highest median (over its fits) of the mean held-out
    task R²."""
    by_source: dict = {}
    for fit in fits:
        if fit.get("task_r2") is not None:
            by_source.setdefault(fit["source"], []).append(fit["task_r2"])
    if not by_source:
        return {}
    medians = {s: float(np.median(v)) for s, v in by_source.items()}
    best = max(sorted(medians), key=medians.get)
    return {
        "source": best,
        "why": "highest median over its attacks and FPRs of the mean R² on held-out tasks",
        "task_r2_median": medians,
    }


def build_fits(paths, tasks=()) -> dict:
    """The fits file (a dict in ``FORMAT``): the regressions of ``paths`` and, with ``tasks``
    (stage JSONs of the transfer tasks), the pooled fit, the held-out-by-task measures, the
    intercept spread and the default source."""
    fits = stage_fits(paths)
    default = add_transfer(fits, tasks) if tasks else {}
    if not fits:
        raise ValueError(f"no regression fits found in {[str(p) for p in paths]}")
    return {"format": FORMAT, "model": MODEL, "default": default, "fits": fits}


def write_fits(paths, out, tasks=()) -> Path:
    """``build_fits(paths, tasks)`` written to ``out`` (atomically)."""
    out = Path(out)
    text = json.dumps(build_fits(paths, tasks), indent=1)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, out)
    return out
