"""The fits of measured points (``mialaw/theory/science.md`` section 3): power laws per (dataset,
backbone, C, attack, α), the regression across runs, and the per-example analysis (correlations,
quantiles of the gap at a fixed N and their laws).

* **Power-law fits** regress log10(TPR − α) on log10 S by weighted least squares (weights from
  the intervals) over the points that are resolvable, detected (interval above α) and not
  saturated (advantage < cut·(1 − α), cut = ``SATURATION_CUT``); the S range is reported, the
  slope at other cuts (``SATURATION_CUTS``) shows the rule's effect, and local slopes between
  neighbouring S show the curve's shape. The regression uses the same points.
* **Regression across runs** log10(TPR − α) = β_S log10 S + β_C log10 C + β_0, judged by R² on
  held-out groups: leave one dataset out when the runs span several datasets, else leave one
  backbone out, else (a single dataset and backbone) leave one C out.
* **Quantiles and maxima at a fixed N.** The q-th quantile of |Δ̂| over N examples grows with N
  (the maximum most), so every S uses the same N = ``QUANTILE_N`` examples (the mean over
  ``QUANTILE_DRAWS`` random subsets of the seeds' pooled examples); S with fewer examples get no
  quantile. A quantile is kept only if it is at least twice the noise floor's (the same quantile
  of |N(0, 1/n_in + 1/n_out)| over N draws).
* **Correlations**: Spearman's ρ with a Fisher-z interval using the Fieller–Hartley–Pearson
  standard error sqrt(1.06/(n − 3)).
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.special import ndtr, ndtri

from mialaw.theory.estimate import Estimate
from mialaw.theory.fits import fit_linear, fit_power_law, local_slopes
from mialaw.theory.metrics import unsaturated

__all__ = [
    "QUANTILES",
    "SATURATION_CUT",
    "fit_rule",
    "gap_fits",
    "per_example_fits",
    "point_sigma",
    "power_laws",
    "regression_inputs",
    "regressions",
    "spearman",
]

QUANTILES = (0.99, 0.999, 1.0)  # 1.0 = the maximum
QUANTILE_N = 512
QUANTILE_DRAWS = 20
SATURATION_CUT = 0.9
SATURATION_CUTS = (0.5, 0.7, 0.9)


def spearman(a, b, level: float = 0.95):
    """Spearman's ρ of two samples with a Fisher-z interval; returns ``Estimate``."""
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


def fit_rule(points, fpr, cut: float = SATURATION_CUT) -> np.ndarray:
    """Which points enter a fit: resolvable, detected and not saturated at ``cut``."""
    adv = np.array([np.nan if p["advantage"] is None else p["advantage"] for p in points])
    ok = np.array([bool(p["resolvable"] and p["detected"]) for p in points])
    with np.errstate(invalid="ignore"):
        return ok & unsaturated(np.nan_to_num(adv, nan=np.inf), fpr, cut)


def point_sigma(points) -> np.ndarray:
    return np.array(
        [np.nan if p["log10_advantage_se"] is None else p["log10_advantage_se"] for p in points]
    )


def power_laws(points, level) -> list[dict]:

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
        adv = np.array([np.nan if p["advantage"] is None else p["advantage"] for p in rows])
        sigma = point_sigma(rows)
        entry = dict(zip(("dataset", "backbone", "classes", "attack", "fpr"), key))
        entry["shots"] = shots.tolist()
        keep = fit_rule(rows, key[4])
        try:
            entry.update(fit_power_law(shots, adv, keep=keep, sigma=sigma, level=level).to_dict())
        except ValueError as err:
            entry["error"] = str(err)
        entry["local_slopes"] = [
            ls.to_dict() for ls in local_slopes(shots[keep], adv[keep], sigma[keep], level=level)
        ]
        entry["saturation_sensitivity"] = []
        for cut in SATURATION_CUTS:
            try:
                fit = fit_power_law(
                    shots, adv, keep=fit_rule(rows, key[4], cut), sigma=sigma, level=level
                )
                slope = fit.slope
                entry["saturation_sensitivity"].append(
                    {
                        "cut": cut,
                        "slope": slope.estimate,
                        "slope_ci": [slope.lower, slope.upper],
                        "n": fit.n,
                        "shots_range": list(fit.shots_range),
                    }
                )
            except ValueError:
                entry["saturation_sensitivity"].append({"cut": cut, "slope": None, "n": 0})
        out.append(entry)
    return out


def regression_inputs(rows):
    """(X, y, sigma) of log10(TPR − α) = β_S log10 S + β_C log10 C + β_0 over ``rows``: the
    regressors (log10 S, log10 C), log10 advantages and their standard errors."""
    X = np.array([[np.log10(p["shots"]), np.log10(p["classes"])] for p in rows]).reshape(-1, 2)
    return X, np.log10([p["advantage"] for p in rows]), point_sigma(rows)


def regressions(points, level) -> list[dict]:
    """log10 adv = β_S log10 S + β_C log10 C + β_0 per (attack, fpr), with held-out R²."""
    out = []
    for attack, alpha in sorted({(p["attack"], p["fpr"]) for p in points}):
        candidates = [p for p in points if p["attack"] == attack and p["fpr"] == alpha]
        rows = [p for p, ok in zip(candidates, fit_rule(candidates, alpha)) if ok]
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
        X, y, sigma = regression_inputs(rows)
        try:
            fit = fit_linear(X, y, names=["log10_shots", "log10_classes"], sigma=sigma)
        except ValueError as err:
            entry["error"] = str(err)
            out.append(entry)
            continue
        entry.update(fit.to_dict(level))
        held, pred_all, y_all = [], [], []
        for g in groups:
            mask = np.array([p[by] == g for p in rows])
            try:
                sub = fit_linear(
                    X[~mask], y[~mask], names=["log10_shots", "log10_classes"], sigma=sigma[~mask]
                )
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


def per_example_fits(runs, alphas, level) -> dict:
    """Correlations and quantile vulnerability per (dataset, backbone, C, S), pooled over seeds."""
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
            quantiles += _quantile_rows(base, cells, alphas)
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
        adv = np.array([np.nan if r["advantage"] is None else r["advantage"] for r in rows])
        above = np.array([r["above_noise_floor"] for r in rows])
        entry["n_examples"] = QUANTILE_N
        entry["shots"] = shots.tolist()
        try:
            keep = above & unsaturated(np.nan_to_num(adv, nan=np.inf), key[3])
            entry.update(fit_power_law(shots, adv, keep=keep, level=level).to_dict())
        except ValueError as err:
            entry["error"] = str(err)
        fits.append(entry)
    return {
        "correlations": correlations,
        "quantiles": quantiles,
        "quantile_fits": fits,
        "gap_fits": gap_fits(quantiles, level),
    }


def gap_fits(quantiles, level) -> list[dict]:
    """Power laws of the quantiles of the standardised gap |Δ̂| itself (not of the advantage).

    The advantage of the most vulnerable examples saturates long before their gap stops
    falling, so where the advantage law cannot be fitted the gap's still can. Fitted from the S
    at which the quantile peaks (below it the gap still grows with S), over points at least twice
    above the noise floor; unweighted (no interval per point), t intervals.
    """
    out = []
    keys = {(r["dataset"], r["backbone"], r["classes"], r["quantile"]) for r in quantiles}
    for key in sorted(keys):
        rows = sorted(
            (
                r
                for r in quantiles
                if (r["dataset"], r["backbone"], r["classes"], r["quantile"]) == key
                and r["fpr"] == quantiles[0]["fpr"]  # the gap does not depend on α
            ),
            key=lambda r: r["shots"],
        )
        shots = np.array([r["shots"] for r in rows], dtype=np.float64)
        gap = np.array([r["delta"] for r in rows], dtype=np.float64)
        above = np.array([r["above_noise_floor"] for r in rows])
        entry = dict(zip(("dataset", "backbone", "classes", "quantile"), key))
        entry |= {"n_examples": QUANTILE_N, "shots": shots.tolist(), "gap": gap.tolist()}
        keep = above & (shots >= shots[int(np.argmax(gap))]) if gap.size else above
        try:
            entry.update(fit_power_law(shots, gap, keep=keep, level=level).to_dict())
        except ValueError as err:
            entry["error"] = str(err)
        out.append(entry)
    return out


def _quantile_rows(base: dict, cells, alphas) -> list[dict]:
    """Quantiles of |Δ̂| (and their advantages) over QUANTILE_N examples, with the noise floor."""
    delta = np.abs(np.concatenate([x.delta for x in cells]))
    emp = np.concatenate([x.example_tpr for x in cells], axis=1)
    floor_sd = max(x.noise_floor_sd for x in cells)
    rows = []
    if delta.size < QUANTILE_N:
        return rows
    rng = np.random.default_rng([base["classes"], base["shots"], delta.size])
    draws = [rng.choice(delta.size, QUANTILE_N, replace=False) for _ in range(QUANTILE_DRAWS)]
    for q in QUANTILES:
        dq = float(np.mean([np.quantile(delta[d], q) for d in draws]))
        # The same quantile of |N(0, floor_sd²)| over N draws (the maximum: its median).
        level = q if q < 1 else 0.5 ** (1 / QUANTILE_N)
        floor = floor_sd * float(ndtri(0.5 + level / 2))
        for i, alpha in enumerate(alphas):
            a = float(ndtri(alpha))
            emp_q = [np.nanquantile(emp[i][d], q) for d in draws if np.isfinite(emp[i][d]).any()]
            rows.append(
                dict(
                    base,
                    fpr=alpha,
                    quantile=q,
                    n_examples=QUANTILE_N,
                    delta=dq,
                    noise_floor_delta=floor,
                    above_noise_floor=bool(dq >= 2 * floor),
                    advantage=float(ndtr(a + dq) - alpha),
                    noise_floor_advantage=float(ndtr(a + floor) - alpha),
                    empirical_tpr=float(np.mean(emp_q)) if emp_q else None,
                )
            )
    return rows
