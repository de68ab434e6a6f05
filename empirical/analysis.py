"""Evaluation of empirical runs: TPR at FPR, per-example vulnerability, power-law fits.

The rules are those of ``mialaw/theory/science.md``, section 3:

* **TPR at FPR α** (``mialaw.theory.measure.measure_tpr``): within a seed the scores of all
  target models are pooled and one threshold is set at α on all their non-members; seeds are
  averaged. A point is *resolvable* only if every seed has >= 1/α non-members (otherwise its TPR
  is null and it never enters a fit). Intervals: a bootstrap of the whole threshold-then-count
  procedure, resampling examples within each seed (seeds stratified); the method is named in
  every point.
* **Per-example vulnerability** of example n at FPR α: from the attack statistic (logit-scaled
  confidence, mean over queries) of all models, the standardised gap Δ̂_n = (mean_IN −
  mean_OUT)/sd_OUT and the Gaussian-model per-example advantage Φ(Φ⁻¹(α) + |Δ̂_n|) − α (the LiRA
  lemma with a common scale). Without any membership signal Δ̂ has standard deviation
  sqrt(1/n_in + 1/n_out) (the noise floor). Also the empirical per-example TPR: the fraction of
  the target models that trained on n in which n's online LiRA score reaches its seed's pooled
  threshold at α.
* **Quantiles and maxima at a fixed N.** The q-th quantile of |Δ̂| over N examples grows with N
  (the maximum most), so every S uses the same N = ``QUANTILE_N`` examples (the mean over
  ``QUANTILE_DRAWS`` random subsets of the seeds' pooled examples); S with fewer examples get no
  quantile. A quantile is kept only if it is at least twice the noise floor's (the same quantile
  of |N(0, 1/n_in + 1/n_out)| over N draws).
* **Power-law fits** regress log10(TPR − α) on log10 S by weighted least squares (weights from
  the intervals) over the points that are resolvable, detected (interval above α) and not
  saturated (advantage < cut·(1 − α), cut = ``SATURATION_CUT``); the S range is reported, the
  slope at other cuts (``SATURATION_CUTS``) shows the rule's effect, and local slopes between
  neighbouring S show the curve's shape. The regression uses the same points.
* **Regression across runs** log10(TPR − α) = β_S log10 S + β_C log10 C + β_0, judged by R² on
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
    "measured_points",
    "per_example_vulnerability",
    "spearman",
    "summarize_cell",
]

SCORES = ("lira_online", "lira_offline", "rmia")
QUANTILES = (0.99, 0.999, 1.0)  # 1.0 = the maximum
QUANTILE_N = 512
QUANTILE_DRAWS = 20
SATURATION_CUT = 0.9
SATURATION_CUTS = (0.5, 0.7, 0.9)
ROC_GRID = np.logspace(-4, 0, 121)
BOOTSTRAP_RESAMPLES = 1000


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
    """What the fits and plots need from one cell (the large arrays are not kept)."""

    classes: int
    shots: int
    seed: int
    models: int
    examples: int
    keep: np.ndarray = field(repr=False)  # (M, N) bool
    scores: dict = field(repr=False)  # score name -> (M, N)
    roc: dict = field(repr=False)  # score name -> pooled TPR on ROC_GRID
    delta: np.ndarray = field(repr=False)  # (N,)
    example_advantage: np.ndarray = field(repr=False)  # (len(fpr), N)
    example_tpr: np.ndarray = field(repr=False)  # (len(fpr), N) empirical, online LiRA
    grad_norm: np.ndarray = field(repr=False)  # (N,) mean over the models that trained on it
    atypicality: np.ndarray = field(repr=False)  # (N,)
    accuracy: float
    train_seconds: float
    iterations: float
    pool_overlap: float
    in_count: float  # mean number of IN models per example, over all the cell's models
    ids: np.ndarray | None = field(default=None, repr=False)  # (N,) the examples' indices

    def experiment(self, name: str):
        """The measurement of one attack; the examples' indices into the feature set are their
        ids, so seeds whose candidate pools overlap are bootstrapped jointly."""
        from mialaw.theory.measure import Experiment

        return Experiment(self.scores[name], self.keep, ids=self.ids)

    @property
    def noise_floor_sd(self) -> float:
        """The standard deviation of Δ̂ without signal: sqrt(1/n_in + 1/n_out)."""
        n_in = self.in_count
        return float(np.sqrt(1 / n_in + 1 / (self.models - n_in)))


def summarize_cell(arrays: dict, fpr, config=None) -> CellSummary:
    """Evaluate one cell's saved arrays at the FPRs ``fpr``.

    The attacks' scores are derived here from the saved statistics with the run's settings
    (``config``: a ``RunConfig``; its defaults when None), by ``attacks.scores_of``; RMIA only
    when the cell holds population statistics. Cells that carry scores (imported from another
    tool) are evaluated as they are.
    """
    from mialaw.empirical.attacks import scores_of
    from mialaw.empirical.config import RunConfig
    from mialaw.theory.measure import Experiment, mean_roc

    keep = np.asarray(arrays["keep"], dtype=bool)
    alphas = tuple(float(a) for a in fpr)
    given = {name: arrays[name] for name in SCORES if name in arrays}
    if given:  # imported cells carry the scores their tool computed (e.g. dedicated targets)
        all_scores = {name: np.asarray(v, dtype=np.float64) for name, v in given.items()}
    else:
        if config is None:
            config = RunConfig(dataset="given", backbone="given")
        pop = arrays.get("population_stats")
        pop = None if pop is None or np.size(pop) == 0 else pop
        all_scores = scores_of(keep, arrays["stats"], pop, config)
    delta, example_adv = per_example_vulnerability(keep, arrays["stats"], alphas)
    in_count = float(keep.sum(0).mean())
    targets = keep.shape[0] if config is None or config.targets is None else config.targets
    full_keep = keep
    keep, all_scores = keep[:targets], {k: v[:targets] for k, v in all_scores.items()}
    scores, roc = {}, {}
    example_tpr = np.full((len(alphas), keep.shape[1]), np.nan)
    for name in all_scores:  # every registered attack (or every score an imported cell holds)
        scores[name] = all_scores[name]
        experiment = Experiment(scores[name], keep)
        roc[name] = mean_roc(experiment, ROC_GRID)
        if name == "lira_online":
            for i, r in enumerate(experiment.roc().tpr_at_fpr(alphas)):
                if alphas[i] * experiment.negatives >= 1:  # resolvable: one seed threshold
                    hits = keep & (scores[name] >= r.threshold)
                    example_tpr[i] = hits.sum(0) / np.maximum(keep.sum(0), 1)
    grad = np.asarray(arrays.get("grad_norm", np.full(full_keep.shape, np.nan)), np.float64)
    grad_in = np.where(full_keep, grad, 0.0).sum(0) / np.maximum(full_keep.sum(0), 1)
    return CellSummary(
        classes=int(arrays["classes"]),
        shots=int(arrays["shots"]),
        seed=int(arrays["seed"]),
        models=full_keep.shape[0],
        examples=keep.shape[1],
        keep=keep,
        scores=scores,
        roc=roc,
        delta=delta,
        example_advantage=example_adv,
        example_tpr=example_tpr,
        grad_norm=grad_in,
        atypicality=np.asarray(arrays.get("atypicality", np.full(keep.shape[1], np.nan))),
        accuracy=float(np.mean(arrays.get("accuracy", np.nan))),
        train_seconds=float(arrays.get("train_seconds", np.nan)),
        iterations=float(np.mean(arrays.get("iterations", np.nan))),
        pool_overlap=float(arrays.get("pool_overlap", np.nan)),
        in_count=in_count,
        ids=_example_ids(arrays, config),
    )


def _example_ids(arrays: dict, config) -> np.ndarray | None:
    """Which underlying examples a cell's columns are (its indices into the feature set), or
    None where indices do not identify data across cells (imported score folders)."""
    if "indices" not in arrays or (config is not None and config.learner == "imported"):
        return None
    return np.asarray(arrays["indices"], dtype=np.int64)


def subset_models(arrays: dict, models: int) -> dict:
    """A cell as if only its first ``models`` models (whole complementary pairs) had been
    trained: the shadow-count study reads M = 16 and 64 from cells of 256 shadows (the models of
    a cell are exchangeable, so the first M + 2 are a cell of M shadows)."""
    keep = np.asarray(arrays["keep"])
    if models % 2 or not 4 <= models <= keep.shape[0]:
        raise ValueError(f"models must be even, in [4, {keep.shape[0]}]; got {models}")
    per_model = ("keep", "stats", "population_stats", "grad_norm", "accuracy", "objective")
    per_model += ("iterations", "converged")
    out = dict(arrays)
    for name in per_model:
        if name in arrays and np.ndim(arrays[name]) >= 1 and len(arrays[name]) == keep.shape[0]:
            out[name] = np.asarray(arrays[name])[:models]
    return out


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
    """Read a run directory: its manifest and exactly the cells of its configuration (or
    ``cells``: (C, S, seed)s), as the current code addresses them (``cells.read_cell``)."""
    from mialaw.empirical.cells import read_cell, read_settings
    from mialaw.empirical.config import RunConfig

    out_dir = Path(out_dir)
    settings = read_settings(out_dir)
    alphas = tuple(settings["config"]["fpr"]) if fpr is None else tuple(fpr)
    config = RunConfig.from_dict(settings["config"])
    cells = config.cells() if cells is None else cells
    if not cells:
        raise ValueError(f"{out_dir}: no cells asked for")
    summaries = [
        summarize_cell(read_cell(out_dir, *cell, settings), alphas, config) for cell in cells
    ]
    summaries.sort(key=lambda c: (c.classes, c.shots, c.seed))
    return Run(path=str(out_dir), settings=settings, cells=tuple(summaries))


# --------------------------------------------------------------------------- points
def measured_points(run: Run, attacks, alphas, level, resamples=None) -> list[dict]:
    """TPR at every α of every attack of ``attacks``' families, per (C, S), by the measurement
    rules (one threshold per seed, bootstrap intervals over examples)."""
    from mialaw.theory.measure import measure_tpr

    groups: dict = {}
    for cell in run.cells:
        groups.setdefault((cell.classes, cell.shots), []).append(cell)
    from mialaw.empirical.attacks import ATTACK_FAMILIES

    names = [n for a in attacks for n in ATTACK_FAMILIES[a]]
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
                    log10_advantage_se=_none_if_nan(m.log10_advantage_se()),
                    accuracy=float(np.mean([cell.accuracy for cell in cells])),
                    pool_overlap=float(max(cell.pool_overlap for cell in cells)),
                )
                rows.append(row)
    return rows


def _none_if_nan(value):
    return None if value is None or not np.isfinite(value) else float(value)


def fit_rule(points, fpr, cut: float = SATURATION_CUT) -> np.ndarray:
    """Which points enter a fit: resolvable, detected and not saturated at ``cut``."""
    from mialaw.theory.metrics import unsaturated

    adv = np.array([np.nan if p["advantage"] is None else p["advantage"] for p in points])
    ok = np.array([bool(p["resolvable"] and p["detected"]) for p in points])
    with np.errstate(invalid="ignore"):
        return ok & unsaturated(np.nan_to_num(adv, nan=np.inf), fpr, cut)


def _sigma(points) -> np.ndarray:
    return np.array(
        [np.nan if p["log10_advantage_se"] is None else p["log10_advantage_se"] for p in points]
    )


def _power_laws(points, level) -> list[dict]:
    from mialaw.theory.fits import fit_power_law, local_slopes

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
        sigma = _sigma(rows)
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
    return X, np.log10([p["advantage"] for p in rows]), _sigma(rows)


def _regressions(points, level) -> list[dict]:
    """log10 adv = β_S log10 S + β_C log10 C + β_0 per (attack, fpr), with held-out R²."""
    from mialaw.theory.metrics import fit_linear

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
        "gap_fits": _gap_fits(quantiles, level),
    }


def _gap_fits(quantiles, level) -> list[dict]:
    """Power laws of the quantiles of the standardised gap |Δ̂| itself (not of the advantage).

    The advantage of the most vulnerable examples saturates long before their gap stops
    falling, so where the advantage law cannot be fitted the gap's still can. Fitted from the S
    at which the quantile peaks (below it the gap still grows with S), over points at least twice
    above the noise floor; unweighted (no interval per point), t intervals.
    """
    from mialaw.theory.metrics import fit_power_law

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
    from scipy.special import ndtr, ndtri

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


@dataclass(frozen=True)
class SweepResult:
    """Points (pooled TPR at FPR per dataset, backbone, C, S, attack, α) and fits of some runs."""

    runs: tuple  # of Run
    points: list = field(repr=False)
    fit: dict = field(repr=False)

    def records(self):
        """The typed form (``mialaw.theory.records.ResultSet``): one schema for every point."""
        from mialaw.theory.records import Point, PowerLaw, ResultSet

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
                lines.append(f"{head}{'unresolvable (fewer than 1/fpr non-members)':>40}")
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
        "power_law": _power_laws(points, level),
        "regression": _regressions(points, level),
        "per_example": _per_example(runs, alphas_all, level),
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
