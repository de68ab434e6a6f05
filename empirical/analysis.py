"""Evaluation of empirical runs: TPR at FPR, per-example vulnerability, power-law fits.

Conventions:

* **TPR at FPR α** (≤ rule, ``mialaw.theory.metrics.tpr_at_fpr``) is computed per target model
  with one global threshold over all examples of that target (the examples IN the target are the
  positives), then the counts are pooled over the M + 1 targets of the rotation and over seeds
  (``TprAtFpr.combine``); intervals are Clopper–Pearson on the pooled counts. Pooling counts over
  targets treats them as independent trials, which they are not exactly (the same examples recur),
  so the intervals are somewhat optimistic; the per-seed TPRs are reported too.
* **Per-example vulnerability** of example n at FPR α: from the attack statistic (logit-scaled
  confidence, mean over queries) of the M + 1 models, the standardised gap
  Δ̂_n = (mean_IN − mean_OUT)/sd_OUT and the Gaussian-model per-example advantage
  Φ(Φ⁻¹(α) + |Δ̂_n|) − α (the LiRA lemma of science.md with a common scale). The estimate carries
  sampling noise of order sqrt(2/(M+1)) in Δ̂, which floors the high quantiles at large S.
  Also the empirical per-example TPR: the fraction of the targets that trained on n in which n's
  online LiRA score reaches that target's global threshold at α.
* **Power-law fits** regress log10(TPR − α) on log10 S over the points whose advantage is
  resolvably above zero (Clopper–Pearson lower bound of the TPR > α; ``theory.metrics.resolvable``)
  and not saturated (advantage < 0.9·(1 − α); ``theory.metrics.unsaturated``): a nearly perfect
  attack at small S carries no power-law information. The regression uses the same points.
* **Regression across runs** log10(TPR − α) = β_S log10 S + β_C log10 C + β_0 (OLS), judged by R² on
  held-out groups: leave one dataset out when the runs span several datasets, else leave one
  backbone out, else (a single dataset and backbone) leave one C out.
* **Correlations**: Spearman's ρ with a Fisher-z interval using the Fieller–Hartley–Pearson
  standard error sqrt(1.06/(n − 3)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import special, stats

__all__ = [
    "QUANTILES",
    "CellSummary",
    "SweepResult",
    "fit_runs",
    "load_run",
    "per_example_vulnerability",
    "spearman",
    "summarize_cell",
]

SCORES = ("lira_online", "lira_offline", "rmia")
QUANTILES = (0.99, 0.999, 1.0)  # 1.0 = the maximum
ROC_GRID = np.logspace(-4, 0, 121)


def spearman(a, b, level: float = 0.95):
    """Spearman's ρ of two samples with a Fisher-z interval; returns ``Estimate``."""
    from mialaw.theory.metrics import Estimate

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    n = int(ok.sum())
    if n < 4:
        return Estimate(float("nan"), float("nan"), float("nan"))
    rho = float(stats.spearmanr(a[ok], b[ok]).statistic)
    if not np.isfinite(rho):
        return Estimate(float("nan"), float("nan"), float("nan"))
    z = np.arctanh(np.clip(rho, -0.999999, 0.999999))
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(1.06 / (n - 3))
    return Estimate(float(np.tanh(z - half)), rho, float(np.tanh(z + half)))


def per_example_vulnerability(keep, stats_, fpr) -> tuple[np.ndarray, np.ndarray]:
    """(Δ̂ (N,), per-example advantage (len(fpr), N)) from keep (M, N) and stats (M, N[, Q])."""
    keep = np.asarray(keep, dtype=bool)
    s = np.asarray(stats_, dtype=np.float64)
    if s.ndim == 3:
        s = s.mean(-1)
    n_in = keep.sum(0)
    n_out = (~keep).sum(0)
    mean_in = np.where(keep, s, 0.0).sum(0) / np.maximum(n_in, 1)
    mean_out = np.where(~keep, s, 0.0).sum(0) / np.maximum(n_out, 1)
    var_out = np.where(~keep, (s - mean_out) ** 2, 0.0).sum(0) / np.maximum(n_out - 1, 1)
    delta = (mean_in - mean_out) / np.sqrt(np.maximum(var_out, 1e-300))
    alphas = np.atleast_1d(np.asarray(fpr, dtype=np.float64))
    a = special.ndtri(alphas)[:, None]
    advantage = special.ndtr(a + np.abs(delta)[None]) - alphas[:, None]
    return delta, advantage


@dataclass(frozen=True)
class CellSummary:
    """What the fits and plots need from one cell (its arrays are not kept in memory)."""

    classes: int
    shots: int
    seed: int
    models: int
    examples: int
    results: dict  # score name -> list over fpr of list over targets of TprAtFpr
    roc: dict  # score name -> mean TPR over targets on ROC_GRID
    delta: np.ndarray  # (N,)
    example_advantage: np.ndarray  # (len(fpr), N)
    example_tpr: np.ndarray  # (len(fpr), N) empirical, online LiRA
    grad_norm: np.ndarray  # (N,) mean over the models that trained on the example
    atypicality: np.ndarray  # (N,)
    accuracy: float
    train_seconds: float
    iterations: float


def summarize_cell(arrays: dict, fpr) -> CellSummary:
    """Evaluate one cell's saved arrays at the FPRs ``fpr``."""
    from mialaw.theory.metrics import roc_curve

    keep = np.asarray(arrays["keep"], dtype=bool)
    alphas = tuple(float(a) for a in fpr)
    results, roc = {}, {}
    example_tpr = np.zeros((len(alphas), keep.shape[1]))
    for name in SCORES:
        if name not in arrays:
            continue
        scores = np.asarray(arrays[name], dtype=np.float64)
        per_fpr = [[] for _ in alphas]
        curve = np.zeros_like(ROC_GRID)
        for t in range(keep.shape[0]):
            rc = roc_curve(scores[t], keep[t])
            found = rc.tpr_at_fpr(alphas)
            for i, r in enumerate(found):
                per_fpr[i].append(r)
                if name == "lira_online":
                    example_tpr[i] += keep[t] & (scores[t] >= r.threshold)
            idx = np.searchsorted(rc.fpr, ROC_GRID, side="right") - 1
            curve += rc.tpr[idx]
        results[name] = per_fpr
        roc[name] = curve / keep.shape[0]
    example_tpr /= np.maximum(keep.sum(0), 1)[None]
    delta, example_adv = per_example_vulnerability(keep, arrays["stats"], alphas)
    grad = np.asarray(arrays.get("grad_norm", np.full(keep.shape, np.nan)), dtype=np.float64)
    grad_in = np.where(keep, grad, 0.0).sum(0) / np.maximum(keep.sum(0), 1)
    return CellSummary(
        classes=int(arrays["classes"]),
        shots=int(arrays["shots"]),
        seed=int(arrays["seed"]),
        models=keep.shape[0],
        examples=keep.shape[1],
        results=results,
        roc=roc,
        delta=delta,
        example_advantage=example_adv,
        example_tpr=example_tpr,
        grad_norm=grad_in,
        atypicality=np.asarray(arrays.get("atypicality", np.full(keep.shape[1], np.nan))),
        accuracy=float(np.mean(arrays.get("accuracy", np.nan))),
        train_seconds=float(arrays.get("train_seconds", np.nan)),
        iterations=float(np.mean(arrays.get("iterations", np.nan))),
    )


@dataclass(frozen=True)
class Run:
    """A run directory: its settings and the summaries of the cells it holds."""

    path: str
    settings: dict
    cells: tuple  # of CellSummary

    @property
    def dataset(self) -> str:
        return self.settings["config"]["dataset"]

    @property
    def backbone(self) -> str:
        return self.settings["config"]["backbone"]


def load_run(out_dir, *, fpr=None, cells=None) -> Run:
    """Read a run directory: settings.json and every cell (or only ``cells``: (C, S, seed)s)."""
    from mialaw.empirical.experiment import cell_name, load_cell, read_settings

    out_dir = Path(out_dir)
    settings = read_settings(out_dir)
    alphas = tuple(settings["config"]["fpr"]) if fpr is None else tuple(fpr)
    if cells is None:
        paths = sorted((out_dir / "cells").glob("C*_S*_seed*.npz"))
    else:
        paths = [out_dir / "cells" / cell_name(*c) for c in cells]
    summaries = []
    for path in paths:
        if not path.exists():
            raise ValueError(f"{path} is missing; run the sweep to compute it")
        summaries.append(summarize_cell(load_cell(path), alphas))
    if not summaries:
        raise ValueError(f"{out_dir} holds no finished cells")
    summaries.sort(key=lambda c: (c.classes, c.shots, c.seed))
    return Run(path=str(out_dir), settings=settings, cells=tuple(summaries))


# --------------------------------------------------------------------------- points
def _points(run: Run, attacks, alphas, level) -> list[dict]:
    from mialaw.theory.metrics import TprAtFpr

    groups: dict = {}
    for cell in run.cells:
        groups.setdefault((cell.classes, cell.shots), []).append(cell)
    names = [n for a in attacks for n in {"lira": SCORES[:2], "rmia": SCORES[2:]}[a]]
    rows = []
    for (c, s), cells in sorted(groups.items()):
        for name in names:
            if name not in cells[0].results:
                continue
            for i, alpha in enumerate(alphas):
                per_seed = [TprAtFpr.combine(cell.results[name][i]) for cell in cells]
                pooled = TprAtFpr.combine(per_seed)
                row = pooled.to_dict(level)
                row.update(
                    dataset=run.dataset,
                    backbone=run.backbone,
                    classes=c,
                    shots=s,
                    attack=name,
                    seeds=len(cells),
                    models=cells[0].models,
                    tpr_seeds=[r.tpr for r in per_seed],
                    resolvable=bool(pooled.resolvable(level)),
                    accuracy=float(np.mean([cell.accuracy for cell in cells])),
                    fpr=alpha,
                )
                rows.append(row)
    return rows


def _power_laws(points, level) -> list[dict]:
    from mialaw.theory.metrics import fit_power_law, unsaturated

    keys = sorted(
        {(p["dataset"], p["backbone"], p["classes"], p["attack"], p["fpr"]) for p in points}
    )
    out = []
    for key in keys:
        rows = [
            p
            for p in points
            if (p["dataset"], p["backbone"], p["classes"], p["attack"], p["fpr"]) == key
        ]
        shots = np.array([p["shots"] for p in rows], dtype=np.float64)
        adv = np.array([p["advantage"] for p in rows])
        keep = np.array([p["resolvable"] for p in rows]) & unsaturated(adv, key[4])
        entry = dict(zip(("dataset", "backbone", "classes", "attack", "fpr"), key))
        try:
            entry.update(fit_power_law(shots, adv, keep=keep, level=level).to_dict())
            entry["shots"] = shots.tolist()
        except ValueError as err:
            entry["error"] = str(err)
        out.append(entry)
    return out


def _regressions(points, level) -> list[dict]:
    """log10 adv = β_S log10 S + β_C log10 C + β_0 per (attack, fpr), with held-out R²."""
    from mialaw.theory.metrics import fit_linear, unsaturated

    out = []
    for attack, alpha in sorted({(p["attack"], p["fpr"]) for p in points}):
        rows = [
            p
            for p in points
            if p["attack"] == attack
            and p["fpr"] == alpha
            and p["resolvable"]
            and p["advantage"] > 0
            and unsaturated(p["advantage"], alpha)
        ]
        entry = {"attack": attack, "fpr": alpha, "n": len(rows)}
        datasets = sorted({p["dataset"] for p in rows})
        backbones = sorted({p["backbone"] for p in rows})
        if len(datasets) > 1:
            by, groups = "dataset", datasets
        elif len(backbones) > 1:
            by, groups = "backbone", backbones
        else:
            by, groups = "classes", sorted({p["classes"] for p in rows})
        entry["held_out_by"] = by
        X = np.array([[np.log10(p["shots"]), np.log10(p["classes"])] for p in rows]).reshape(-1, 2)
        y = np.log10([p["advantage"] for p in rows])
        try:
            fit = fit_linear(X, y, names=["log10_shots", "log10_classes"])
        except ValueError as err:
            entry["error"] = str(err)
            out.append(entry)
            continue
        entry.update(fit.to_dict(level))
        held, pred_all, y_all = [], [], []
        for g in groups:
            mask = np.array([p[by] == g for p in rows])
            try:
                sub = fit_linear(X[~mask], y[~mask], names=["log10_shots", "log10_classes"])
            except ValueError as err:
                held.append({"group": g, "error": str(err)})
                continue
            pred = sub.predict(X[mask])
            pred_all.append(pred)
            y_all.append(y[mask])
            held.append(
                {
                    "group": g,
                    "r2": sub.r2_on(X[mask], y[mask]),
                    "n": int(mask.sum()),
                    # log10 advantages of the held-out points: predicted without them, observed.
                    "predicted": pred.tolist(),
                    "observed": y[mask].tolist(),
                }
            )
        entry["held_out"] = held
        if pred_all:
            yy, pp = np.concatenate(y_all), np.concatenate(pred_all)
            total = np.sum((yy - yy.mean()) ** 2)
            entry["held_out_r2"] = float(1 - np.sum((yy - pp) ** 2) / total) if total > 0 else None
        out.append(entry)
    return out


def _per_example(runs, alphas, level) -> dict:
    """Correlations and quantile vulnerability per (dataset, backbone, C, S), pooled over seeds."""
    from mialaw.theory.metrics import fit_power_law, unsaturated

    correlations, quantiles = [], []
    for run in runs:
        groups: dict = {}
        for cell in run.cells:
            groups.setdefault((cell.classes, cell.shots), []).append(cell)
        for (c, s), cells in sorted(groups.items()):
            delta = np.abs(np.concatenate([x.delta for x in cells]))
            grad = np.concatenate([x.grad_norm for x in cells])
            typ = np.concatenate([x.atypicality for x in cells])
            base = {"dataset": run.dataset, "backbone": run.backbone, "classes": c, "shots": s}
            row = dict(base, n=int(delta.size))
            for name, other in (("gradient_norm", grad), ("atypicality", typ)):
                est = spearman(delta, other, level)
                row[f"spearman_{name}"] = est.estimate
                row[f"spearman_{name}_ci"] = [est.lower, est.upper]
            est = spearman(grad, typ, level)
            row["spearman_gradient_atypicality"] = est.estimate
            row["spearman_gradient_atypicality_ci"] = [est.lower, est.upper]
            correlations.append(row)
            for i, alpha in enumerate(alphas):
                adv = np.concatenate([x.example_advantage[i] for x in cells])
                emp = np.concatenate([x.example_tpr[i] for x in cells])
                for q in QUANTILES:
                    quantiles.append(
                        dict(
                            base,
                            fpr=alpha,
                            quantile=q,
                            advantage=float(np.quantile(adv, q)),
                            empirical_tpr=float(np.quantile(emp, q)),
                        )
                    )
    fits = []
    for key in sorted(
        {(r["dataset"], r["backbone"], r["classes"], r["fpr"], r["quantile"]) for r in quantiles}
    ):
        rows = [
            r
            for r in quantiles
            if (r["dataset"], r["backbone"], r["classes"], r["fpr"], r["quantile"]) == key
        ]
        entry = dict(zip(("dataset", "backbone", "classes", "fpr", "quantile"), key))
        shots = np.array([r["shots"] for r in rows], dtype=np.float64)
        adv = np.array([r["advantage"] for r in rows])
        try:
            keep = unsaturated(adv, key[3])
            entry.update(fit_power_law(shots, adv, keep=keep, level=level).to_dict())
        except ValueError as err:
            entry["error"] = str(err)
        fits.append(entry)
    return {"correlations": correlations, "quantiles": quantiles, "quantile_fits": fits}


@dataclass(frozen=True)
class SweepResult:
    """Points (pooled TPR at FPR per dataset, backbone, C, S, attack, α) and fits of some runs."""

    runs: tuple  # of Run
    points: list = field(repr=False)
    fit: dict = field(repr=False)

    def to_json(self) -> dict:
        return {"points": self.points, "fit": self.fit, "runs": [r.path for r in self.runs]}

    def table(self) -> str:
        """A plain-text table of the points and the power-law slopes."""
        lines = [
            f"{'dataset':<14}{'backbone':<18}{'C':>3}{'S':>6}  {'attack':<13}{'fpr':>7}"
            f"{'tpr':>9}  {'95% CI':<19}{'advantage':>11}"
        ]
        for p in self.points:
            lo, hi = p["tpr_ci"]
            lines.append(
                f"{p['dataset']:<14}{p['backbone']:<18}{p['classes']:>3}{p['shots']:>6}  "
                f"{p['attack']:<13}{p['fpr']:>7.0e}{p['tpr']:>9.4f}  [{lo:.4f}, {hi:.4f}]  "
                f"{p['advantage']:>10.4f}"
            )
        lines.append("")
        lines.append(
            "power law log10(TPR - FPR) = slope * log10(S) + intercept (resolvable points)"
        )
        for f in self.fit["power_law"]:
            head = f"{f['dataset']} {f['backbone']} C={f['classes']} {f['attack']} fpr={f['fpr']:g}"
            if "error" in f:
                lines.append(f"  {head}: no fit ({f['error']})")
            else:
                lo, hi = (_fmt(v) for v in f["slope_ci"])
                lines.append(f"  {head}: slope {f['slope']:.3f} [{lo}, {hi}], n={f['n']}")
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


def _fmt(value) -> str:
    """A number with 3 decimals; None (an infinite or undefined interval end) as "n/a"."""
    return "n/a" if value is None else f"{value:.3f}"


def result_from_runs(runs, *, attacks=None, fpr=None, level: float = 0.95) -> SweepResult:
    runs = tuple(runs)
    points = []
    for run in runs:
        cfg = run.settings["config"]
        alphas = tuple(cfg["fpr"]) if fpr is None else tuple(fpr)
        points += _points(run, attacks or cfg["attacks"], alphas, level)
    alphas_all = tuple(sorted({p["fpr"] for p in points}, reverse=True))
    fit = {
        "power_law": _power_laws(points, level),
        "regression": _regressions(points, level),
        "per_example": _per_example(runs, alphas_all, level),
        "drop_rule": "points enter fits only where the Clopper-Pearson lower bound of TPR > FPR",
    }
    return SweepResult(runs=runs, points=_plain(points), fit=_plain(fit))


def fit_runs(dirs, *, attacks=None, fpr=None, level: float = 0.95) -> SweepResult:
    """Load run directories and fit: points, power laws, the regression, per-example analysis."""
    dirs = [dirs] if isinstance(dirs, (str, Path)) else list(dirs)
    if not dirs:
        raise ValueError("give at least one run directory")
    runs = [load_run(d, fpr=fpr) for d in dirs]
    return result_from_runs(runs, attacks=attacks, fpr=fpr, level=level)


def _plain(obj):
    """JSON-ready copy: numpy scalars and arrays to Python, NaN and ±inf to None."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
