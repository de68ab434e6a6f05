"""Does the regression transfer between tasks? Leave-one-out fits and a per-task intercept model.

The regression log10(TPR − FPR) = β_S·log10 S + β_C·log10 C + β_0 (one per attack and FPR) is
fitted over measured points (dicts with ``dataset``, ``backbone``, ``classes``, ``shots``,
``attack``, ``fpr``, ``advantage``, ``log10_advantage_se`` and the flags of
``analysis.fit_rule``). A *task* is a data set seen through one backbone (``task_of``), e.g.
``digits/efficientnet-lite0``; the held-out-by-task fit leaves each task out in turn and predicts
it from the others: the honest measure of "predicts unseen fine-tuning scenarios". The same
function holds out by backbone or by C.

The per-task intercept model keeps β_S and β_C shared and gives every task its own β_0. How much
of the variance the shared slopes explain, beside what the task intercepts explain alone, says
whether the *shape* of the law transfers even where its level does not; the between-task spread
τ of the intercepts is what a prediction for a new task must add to its interval.

Everything here is a pure function of the points; fits are weighted least squares with weights
1/σ² (``theory.fits.fit_linear``'s rule: errors a floor, scaled up by the reduced χ² when the
points scatter more). R² on held-out points is unweighted (as in ``analysis``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mialaw.theory.fits import LinearFit, fit_linear

from .run_fits import fit_rule, regression_inputs

__all__ = [
    "GROUPINGS",
    "HeldOutGroup",
    "LeaveOneOut",
    "TaskInterceptFit",
    "fit_points",
    "leave_one_out",
    "one_task_fits",
    "task_intercepts",
    "task_of",
    "transfer_study",
]

REGRESSORS = ["log10_shots", "log10_classes"]


def task_of(point) -> str:
    """A task: the data set and the backbone its images went through."""
    return f"{point['dataset']}/{point['backbone']}"


#: How points are grouped for a leave-one-out fit.
GROUPINGS: dict[str, Callable] = {
    "task": task_of,
    "dataset": lambda p: p["dataset"],
    "backbone": lambda p: p["backbone"],
    "classes": lambda p: int(p["classes"]),
}


def fit_points(points, attack: str, fpr: float) -> list[dict]:
    """The points of ``attack`` at ``fpr`` that enter a fit (``analysis.fit_rule``)."""
    rows = [p for p in points if p["attack"] == attack and p["fpr"] == fpr]
    if not rows:
        return []
    return [p for p, ok in zip(rows, fit_rule(rows, fpr)) if ok]


def _grouping(by) -> Callable:
    if callable(by):
        return by
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {sorted(GROUPINGS)} or a function; got {by!r}")
    return GROUPINGS[by]


def _r2(observed, predicted) -> float | None:
    observed, predicted = np.asarray(observed), np.asarray(predicted)
    total = float(np.sum((observed - observed.mean()) ** 2))
    if observed.size < 2 or total <= 0:
        return None
    return float(1.0 - np.sum((observed - predicted) ** 2) / total)


@dataclass(frozen=True)
class HeldOutGroup:
    """One group predicted by the fit to all the others."""

    group: str
    n: int
    r2: float | None  # R² of the predictions on this group's points (None: < 2 points)
    rmse: float  # root mean squared error of the predicted log10 advantages
    bias: float  # mean (predicted − observed) log10 advantage: the level's error
    predicted: tuple
    observed: tuple
    coef: tuple  # (β_0, β_S, β_C) of the fit without this group

    def to_dict(self) -> dict:
        return {
            "group": self.group,
            "n": self.n,
            "r2": self.r2,
            "rmse": self.rmse,
            "bias": self.bias,
            "predicted": list(self.predicted),
            "observed": list(self.observed),
            "coefficients": dict(zip(("intercept", *REGRESSORS), self.coef)),
        }


@dataclass(frozen=True)
class LeaveOneOut:
    """The regression over every group, and each group predicted from the others."""

    attack: str
    fpr: float
    by: str
    fit: LinearFit
    held_out: tuple  # HeldOutGroup per group that could be held out
    errors: tuple  # (group, message) for groups whose complement could not be fitted
    level: float = 0.95

    @property
    def pooled_r2(self) -> float | None:
        """R² of all held-out predictions together (each point predicted without its group)."""
        if not self.held_out:
            return None
        observed = np.concatenate([h.observed for h in self.held_out])
        predicted = np.concatenate([h.predicted for h in self.held_out])
        return _r2(observed, predicted)

    def r2_by_group(self) -> dict:
        return {h.group: h.r2 for h in self.held_out}

    def to_dict(self) -> dict:
        return {
            "attack": self.attack,
            "fpr": self.fpr,
            "held_out_by": self.by,
            **self.fit.to_dict(self.level),
            "held_out_r2": self.pooled_r2,
            "held_out": [h.to_dict() for h in self.held_out]
            + [{"group": g, "error": e} for g, e in self.errors],
        }


def leave_one_out(points, attack: str, fpr: float, by="task", level: float = 0.95) -> LeaveOneOut:
    """The regression of ``attack`` at ``fpr`` with each group of ``by`` ("task", "dataset",
    "backbone", "classes" or a function of a point) held out in turn."""
    name = by if isinstance(by, str) else getattr(by, "__name__", "group")
    key = _grouping(by)
    rows = fit_points(points, attack, fpr)
    X, y, sigma = regression_inputs(rows)
    fit = fit_linear(X, y, names=REGRESSORS, sigma=sigma)
    labels = np.array([str(key(p)) for p in rows])
    held, errors = [], []
    for group in sorted(set(labels.tolist())):
        mask = labels == group
        try:
            sub = fit_linear(X[~mask], y[~mask], names=REGRESSORS, sigma=sigma[~mask])
        except ValueError as err:
            errors.append((group, str(err)))
            continue
        predicted = sub.predict(X[mask])
        observed = y[mask]
        held.append(
            HeldOutGroup(
                group=group,
                n=int(mask.sum()),
                r2=_r2(observed, predicted),
                rmse=float(np.sqrt(np.mean((predicted - observed) ** 2))),
                bias=float(np.mean(predicted - observed)),
                predicted=tuple(float(v) for v in predicted),
                observed=tuple(float(v) for v in observed),
                coef=tuple(float(c) for c in sub.coef),
            )
        )
    return LeaveOneOut(attack, float(fpr), name, fit, tuple(held), tuple(errors), level)


def one_task_fits(points, attack: str, fpr: float) -> list[dict]:
    """Each task's own regression, and its R² on every other task (how a fit made on one data
    set, as the shipped single-run fits are, does on another)."""
    rows = fit_points(points, attack, fpr)
    X, y, sigma = regression_inputs(rows)
    labels = np.array([task_of(p) for p in rows])
    out = []
    for task in sorted(set(labels.tolist())):
        on = labels == task
        entry = {"task": task, "n": int(on.sum()), "on": {}}
        try:
            fit = fit_linear(X[on], y[on], names=REGRESSORS, sigma=sigma[on])
        except ValueError as err:
            out.append(entry | {"error": str(err)})
            continue
        for other in sorted(set(labels.tolist()) - {task}):
            mask = labels == other
            entry["on"][other] = _r2(y[mask], fit.predict(X[mask]))
        scores = [v for v in entry["on"].values() if v is not None]
        entry["mean_r2_on_others"] = float(np.mean(scores)) if scores else None
        entry["coefficients"] = fit.to_dict()["coefficients"]
        out.append(entry)
    return out


@dataclass(frozen=True)
class TaskInterceptFit:
    """β_S and β_C shared by every task, β_0 per task (weighted least squares).

    ``variance_share``: of the (weighted) variance of log10 advantage around its mean, the share
    explained by the task intercepts alone (``tasks_only``), by the full model (``full``), and by
    the shared slopes on what is left within tasks (``slopes_within``: 1 − SSE_full / SSE_tasks).
    ``intercept_spread`` τ is the standard deviation of the task intercepts (ddof 1): the level's
    variation between tasks, which a prediction for a task not among them must carry.
    """

    attack: str
    fpr: float
    tasks: tuple
    coef: np.ndarray  # (β_S, β_C, β_0 of each task in ``tasks`` order)
    covariance: np.ndarray
    dof: int
    sse_full: float
    sse_tasks: float
    sst: float
    level: float = 0.95

    @property
    def slopes(self) -> dict:
        """{"log10_shots": (lower, estimate, upper), "log10_classes": (...)}: Student t."""
        return {name: self._interval(i) for i, name in enumerate(REGRESSORS)}

    @property
    def intercepts(self) -> dict:
        return {task: self._interval(2 + i) for i, task in enumerate(self.tasks)}

    def _interval(self, i: int) -> tuple:
        half = stats.t.ppf(0.5 + self.level / 2, self.dof) * np.sqrt(self.covariance[i, i])
        return (float(self.coef[i] - half), float(self.coef[i]), float(self.coef[i] + half))

    @property
    def intercept_spread(self) -> float:
        return float(np.std(self.coef[2:], ddof=1)) if len(self.tasks) > 1 else float("nan")

    @property
    def variance_share(self) -> dict:
        return {
            "tasks_only": 1.0 - self.sse_tasks / self.sst,
            "full": 1.0 - self.sse_full / self.sst,
            "slopes_within": 1.0 - self.sse_full / self.sse_tasks,
        }

    def to_dict(self) -> dict:
        return {
            "attack": self.attack,
            "fpr": self.fpr,
            "slopes": {k: list(v) for k, v in self.slopes.items()},
            "intercepts": {k: list(v) for k, v in self.intercepts.items()},
            "intercept_spread": self.intercept_spread,
            "variance_share": self.variance_share,
            "dof": self.dof,
            "level": self.level,
        }


def task_intercepts(points, attack: str, fpr: float, level: float = 0.95) -> TaskInterceptFit:
    """The per-task intercept model of ``attack`` at ``fpr`` (needs >= 2 tasks)."""
    rows = fit_points(points, attack, fpr)
    tasks = tuple(sorted({task_of(p) for p in rows}))
    if len(tasks) < 2:
        raise ValueError(f"the per-task intercept model needs >= 2 tasks; got {list(tasks)}")
    X, y, sigma = regression_inputs(rows)
    if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
        raise ValueError("every point needs a finite log10_advantage_se > 0 (its weight)")
    dummies = np.array([[task_of(p) == t for t in tasks] for p in rows], dtype=np.float64)
    A = np.column_stack([X, dummies])
    w = 1.0 / sigma**2
    dof = y.size - A.shape[1]
    if dof < 1 or np.linalg.matrix_rank(A) < A.shape[1]:
        raise ValueError("too few points, or S and C do not vary within the tasks")
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(A * sw[:, None], y * sw, rcond=None)
    sse_full = float(np.sum(w * (y - A @ coef) ** 2))
    # The task intercepts alone: each task's weighted mean.
    means = (dummies.T @ (w * y)) / (dummies.T @ w)
    sse_tasks = float(np.sum(w * (y - dummies @ means) ** 2))
    sst = float(np.sum(w * (y - np.sum(w * y) / np.sum(w)) ** 2))
    scale = max(1.0, sse_full / dof)
    covariance = scale * np.linalg.inv(A.T @ (A * w[:, None]))
    return TaskInterceptFit(
        attack, float(fpr), tasks, coef, covariance, dof, sse_full, sse_tasks, sst, level
    )


def transfer_study(points, level: float = 0.95) -> dict:
    """Per attack and FPR: held out by task, by data set (every backbone of it at once), by
    backbone and by C; each task's own fit on the others; the per-task intercept model.
    JSON-ready (errors recorded, never raised)."""
    out = []
    for attack, fpr in sorted({(p["attack"], p["fpr"]) for p in points}):
        entry = {"attack": attack, "fpr": fpr}
        rows = fit_points(points, attack, fpr)
        entry["tasks"] = sorted({task_of(p) for p in rows})
        for by in ("task", "dataset", "backbone", "classes"):
            try:
                entry[f"by_{by}"] = leave_one_out(points, attack, fpr, by, level).to_dict()
            except ValueError as err:
                entry[f"by_{by}"] = {"error": str(err)}
        entry["one_task"] = one_task_fits(points, attack, fpr)
        try:
            entry["task_intercepts"] = task_intercepts(points, attack, fpr, level).to_dict()
        except ValueError as err:
            entry["task_intercepts"] = {"error": str(err)}
        out.append(entry)
    return {"level": level, "regressions": out}
