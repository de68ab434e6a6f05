"""Evaluation of empirical runs: TPR at FPR per (C, S) and attack, then the fits.

The rules are those of ``mialaw/theory/science.md``, section 3. **TPR at FPR α**
(``mialaw.theory.measure.measure_tpr``): within a seed the scores of all target models are pooled
and one threshold is set at α on all their non-members; seeds are averaged. A point is
*resolvable* only if every seed has >= 1/α non-members (otherwise its TPR is null and it never
enters a fit). Intervals: a bootstrap of the whole threshold-then-count procedure, resampling
examples within each seed (seeds stratified); the method is named in every point. Cells are read
by ``cell_summary``; the power laws, the regression and the per-example analysis are
``run_fits``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mialaw.empirical.attacks import family_members
from mialaw.empirical.cell_summary import Run, load_run
from mialaw.empirical.run_fits import (
    SATURATION_CUT,
    per_example_fits,
    power_laws,
    regressions,
)
from mialaw.theory.measure import measure_tpr
from mialaw.theory.records import Point, PowerLaw, ResultSet, SweepRecords

__all__ = ["SweepResult", "fit_runs", "json_ready", "measured_points", "result_from_runs"]

BOOTSTRAP_RESAMPLES = 1000


def measured_points(run: Run, attacks, alphas, level, resamples=None) -> list[dict]:
    """TPR at every α of every attack of ``attacks``' families, per (C, S), by the measurement
    rules (one threshold per seed, bootstrap intervals over examples)."""
    groups: dict = {}
    for cell in run.cells:
        groups.setdefault((cell.classes, cell.shots), []).append(cell)

    names = [n for a in attacks for n in family_members(a)]
    rows = []
    for (c, s), cells in sorted(groups.items()):
        for k, name in enumerate(names):
            if name not in cells[0].scores:
                continue
            found = measure_tpr(
                [cell.experiment(name) for cell in cells],
                alphas,
                level=level,
                resamples=BOOTSTRAP_RESAMPLES if resamples is None else resamples,
                seed=int(np.random.SeedSequence([c, s, k]).generate_state(1)[0]),
            )
            for m in found:
                row = m.to_dict()
                row.update(
                    source="empirical",
                    learner=run.settings["config"].get("learner", "head"),
                    dataset=run.dataset,
                    backbone=run.backbone,
                    classes=c,
                    shots=s,
                    attack=name,
                    seeds=len(cells),
                    models=cells[0].models,
                    log10_advantage_se=none_if_nan(m.log10_advantage_se()),
                    accuracy=float(np.mean([cell.accuracy for cell in cells])),
                    pool_overlap=float(max(cell.pool_overlap for cell in cells)),
                )
                rows.append(row)
    return rows


def none_if_nan(value):
    return None if value is None or not np.isfinite(value) else float(value)


@dataclass(frozen=True)
class SweepResult(SweepRecords):
    """Points (pooled TPR at FPR per dataset, backbone, C, S, attack, α) and fits of some runs."""

    runs: tuple  # of Run
    points: list = field(repr=False)
    fit: dict = field(repr=False)

    def records(self):
        """The typed form (``mialaw.theory.records.ResultSet``): one schema for every point."""

        other = {k: v for k, v in self.fit.items() if k != "power_law"}
        laws = [PowerLaw.from_dict(f, source="empirical") for f in self.fit["power_law"]]
        return ResultSet(tuple(Point.from_dict(p) for p in self.points), tuple(laws), other)

    def to_json(self) -> dict:
        """The versioned JSON form (``records``'s), with the run folders it read."""
        return self.records().to_json() | {"runs": [r.path for r in self.runs]}

    def table(self) -> str:
        """A plain-text table of the points and the power-law slopes."""
        lines = [
            f"{'dataset':<14}{'backbone':<18}{'C':>3}{'S':>6}  {'attack':<13}{'fpr':>7}"
            f"{'tpr':>9}  {'95% CI':<19}{'achieved':>9}{'negatives':>10}"
        ]
        for p in self.points:
            head = (
                f"{p['dataset']:<14}{p['backbone']:<18}{p['classes']:>3}{p['shots']:>6}  "
                f"{p['attack']:<13}{p['fpr']:>7.0e}"
            )
            if not p["resolvable"]:
                lines.append(f"{head}  unresolvable (fewer than 1/fpr non-members)")
                continue
            lo, hi = (_fmt(v, 4) for v in p["tpr_ci"])
            lines.append(
                f"{head}{p['tpr']:>9.4f}  [{lo}, {hi}]  {p['achieved_fpr']:>8.2e}"
                f"{p['negatives']:>10}"
            )
        if self.points:
            lines.append(f"intervals: {self.points[0]['interval_method']}")
        lines.append("")
        lines.append(
            f"power law log10(TPR - FPR) = slope * log10(S) + intercept ({self.fit['fit_rule']})"
        )
        for f in self.fit["power_law"]:
            head = f"{f['dataset']} {f['backbone']} C={f['classes']} {f['attack']} fpr={f['fpr']:g}"
            if "error" in f:
                lines.append(f"  {head}: no fit ({f['error']})")
            else:
                lo, hi = (_fmt(v) for v in f["slope_ci"])
                lo_s, hi_s = (int(v) for v in f["shots_range"])
                lines.append(
                    f"  {head}: slope {f['slope']:.3f} [{lo}, {hi}], n={f['n']}, S {lo_s}-{hi_s}"
                )
        for r in self.fit["regression"]:
            if "error" in r:
                continue
            c = r["coefficients"]
            lines.append(
                f"  regression {r['attack']} fpr={r['fpr']:g}: beta_S "
                f"{c['log10_shots']['estimate']:.3f}, beta_C {c['log10_classes']['estimate']:.3f}, "
                f"R2 {_fmt(r['r2'])}, held-out R2 ({r['held_out_by']}) {_fmt(r.get('held_out_r2'))}"
            )
        return "\n".join(lines)


def _fmt(value, digits: int = 3) -> str:
    """A number with ``digits`` decimals; None (an infinite or undefined end) as "n/a"."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def result_from_runs(runs, *, attacks=None, fpr=None, level: float = 0.95) -> SweepResult:
    runs = tuple(runs)
    points = []
    for run in runs:
        cfg = run.settings["config"]
        alphas = tuple(cfg["fpr"]) if fpr is None else tuple(fpr)
        points += measured_points(run, attacks or cfg["attacks"], alphas, level)
    alphas_all = tuple(sorted({p["fpr"] for p in points}, reverse=True))
    fit = {
        "power_law": power_laws(points, level),
        "regression": regressions(points, level),
        "per_example": per_example_fits(runs, alphas_all, level),
        "fit_rule": (
            "weighted least squares over points that are resolvable (alpha * negatives >= 1 in "
            "every seed), detected (interval above alpha) and unsaturated (advantage < "
            f"{SATURATION_CUT} * (1 - alpha))"
        ),
    }
    return SweepResult(runs=runs, points=json_ready(points), fit=json_ready(fit))


def fit_runs(dirs, *, attacks=None, fpr=None, level: float = 0.95) -> SweepResult:
    """Load run directories and fit: points, power laws, the regression, per-example analysis."""
    dirs = [dirs] if isinstance(dirs, (str, Path)) else list(dirs)
    if not dirs:
        raise ValueError("give at least one run directory")
    runs = [load_run(d, fpr=fpr) for d in dirs]
    return result_from_runs(runs, attacks=attacks, fpr=fpr, level=level)


def json_ready(obj):
    """JSON-ready copy: numpy scalars and arrays to Python, NaN and ±inf to None."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
