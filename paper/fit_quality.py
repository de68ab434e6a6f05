"""How well the real-model power laws fit, recomputed from a stage's stored points.

The stage results hold points (TPR at FPR with intervals) and fits made by the analysis of their
day; the tables recompute every law from the points so that each gets the same rules:

* **Goodness of fit.** A weighted fit (weights from the points' intervals) reports χ²/dof and
  p = P(χ²_dof ≥ χ²): a small p says one power law does not fit the S range (the curve bends, or
  the intervals are too narrow). Unweighted laws (quantiles of the per-example vulnerability, gap
  laws: no interval per point) have no χ².
* **The asymptotic slope.** log10 adv = a + b·log10 S + c/√S (``fit_power_law_corrected``): b is
  the slope the law tends to, c the pre-asymptotic correction; needs >= 4 points.
* **Saturation.** Points above half the ceiling (advantage > 0.5·(1 − α)) enter a fit only where
  they do not move it: the fit with the 0.5 cut and the one with the 0.9 cut (the analysis's
  rule) have overlapping slope intervals and the 0.5-cut fit has >= 3 points. Otherwise the law
  is the 0.5-cut fit. ``saturation_cut`` says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mialaw.empirical.run_fits import fit_rule, point_sigma
from mialaw.theory.fits import fit_power_law, fit_power_law_corrected, log10_se
from mialaw.theory.metrics import unsaturated

CUT_STRICT = 0.5  # advantage <= 0.5·(1 − α): well below the ceiling
CUT_LOOSE = 0.9  # the analysis's rule (empirical.analysis.SATURATION_CUT)
MIN_STRICT_POINTS = 3

QUALITY_COLUMNS = [
    "saturation_cut",
    "chi2_dof",
    "p_value",
    "asymptotic_slope",
    "asymptotic_low",
    "asymptotic_high",
    "c",
    "c_low",
    "c_high",
]


@dataclass(frozen=True)
class Law:
    """One recomputed law: its data, the fit used (None if it failed) and the corrected fit."""

    key: dict  # dataset, backbone, classes, attack or quantile, fpr
    shots: np.ndarray = field(repr=False)
    values: np.ndarray = field(repr=False)  # advantage, or the gap |Δ̂|
    sigma: np.ndarray | None = field(repr=False)  # standard errors of log10 values; None: OLS
    keep: np.ndarray = field(repr=False)  # the chosen rule's points
    cut: float | None  # the saturation cut used; None where saturation does not apply
    fit: object = None  # PowerLawFit
    corrected: object = None  # CorrectedPowerLaw
    error: str | None = None

    def usable(self) -> np.ndarray:
        """The points the fit used, as a mask (``kept``), or the rule's mask if it failed."""
        return self.fit.kept if self.fit is not None else self.keep

    def row(self) -> dict:
        """The slope-table columns: slope, interval, n, shots and QUALITY_COLUMNS."""
        out = dict.fromkeys(["slope", "ci_low", "ci_high", "n", "shots"] + QUALITY_COLUMNS)
        out["saturation_cut"] = self.cut
        if self.fit is not None:
            f = self.fit
            lo, hi = f.shots_range
            out |= {
                "slope": f.slope.estimate,
                "ci_low": _finite(f.slope.lower),  # None, not ±inf, without residual dof
                "ci_high": _finite(f.slope.upper),
                "n": f.n,
                "shots": f"{lo:g}-{hi:g}",
                "chi2_dof": _finite(f.chi2_dof),
                "p_value": _finite(f.p_value),
            }
        if self.corrected is not None:
            b, c = self.corrected.slope, self.corrected.c
            out |= {
                "asymptotic_slope": b.estimate,
                "asymptotic_low": _finite(b.lower),
                "asymptotic_high": _finite(b.upper),
                "c": c.estimate,
                "c_low": _finite(c.lower),
                "c_high": _finite(c.upper),
            }
        return out


def _finite(x):
    return float(x) if x is not None and np.isfinite(x) else None


def _fit(shots, values, keep, sigma, level):
    try:
        return fit_power_law(shots, values, keep=keep, sigma=sigma, level=level), None
    except ValueError as err:
        return None, str(err)


GOODNESS_LEVEL = 0.05


def _overlap(a, b) -> bool:
    return a.slope.lower <= b.slope.upper and b.slope.lower <= a.slope.upper


def _fails(fit) -> bool:
    """The fit's χ² rejects one power law at the 5 % level (NaN p: unweighted, never fails)."""
    p = getattr(fit, "p_value", float("nan"))
    return bool(p == p and p < GOODNESS_LEVEL)


def choose_cut(strict, loose) -> float:
    """CUT_LOOSE where the points between the cuts do not move the fit (both fits exist, their
    slope intervals overlap, the strict fit has >= MIN_STRICT_POINTS points) and do not break it
    (the loose fit does not fail its χ² test where the strict one passes), else CUT_STRICT."""
    if strict is None or loose is None or strict.n < MIN_STRICT_POINTS:
        return CUT_STRICT
    if _fails(loose) and not _fails(strict):
        return CUT_STRICT
    return CUT_LOOSE if _overlap(strict, loose) else CUT_STRICT


def _law(key, shots, values, sigma, masks: dict, level: float) -> Law:
    """The law under the saturation rule; ``masks`` maps each cut to its points (one entry,
    under None, where saturation does not apply)."""

    fits = {cut: _fit(shots, values, m, sigma, level) for cut, m in masks.items()}
    if None in masks:
        cut = None
    else:
        cut = choose_cut(fits[CUT_STRICT][0], fits[CUT_LOOSE][0])
    fit, error = fits[cut]
    corrected = None
    try:
        corrected = fit_power_law_corrected(
            shots, values, keep=masks[cut], sigma=sigma, level=level
        )
    except ValueError:
        pass  # fewer than 4 points: no asymptotic slope
    return Law(key, shots, values, sigma, masks[cut], cut, fit, corrected, error)


def average_laws(points: list[dict], attacks=None, level: float = 0.95) -> list[Law]:
    """The TPR laws per (dataset, backbone, C, attack, α), weighted, under the saturation rule."""

    names = ("dataset", "backbone", "classes", "attack", "fpr")
    keys = sorted({tuple(p[k] for k in names) for p in points})
    laws = []
    for key in keys:
        if attacks is not None and key[3] not in attacks:
            continue
        rows = sorted((p for p in points if tuple(p[k] for k in names) == key), key=_by_shots)
        shots = np.array([p["shots"] for p in rows], dtype=np.float64)
        adv = np.array([np.nan if p["advantage"] is None else p["advantage"] for p in rows])
        masks = {cut: fit_rule(rows, key[4], cut) for cut in (CUT_STRICT, CUT_LOOSE)}
        laws.append(_law(dict(zip(names, key)), shots, adv, point_sigma(rows), masks, level))
    return laws


def _by_shots(p):
    return p["shots"]


def quantile_laws(quantiles: list[dict], level: float = 0.95) -> list[Law]:
    """The advantage laws of the per-example quantiles (unweighted; points above the noise
    floor), under the saturation rule."""
    names = ("dataset", "backbone", "classes", "fpr", "quantile")
    laws = []
    for key in sorted({tuple(r[k] for k in names) for r in quantiles}):
        rows = sorted((r for r in quantiles if tuple(r[k] for k in names) == key), key=_by_shots)
        shots = np.array([r["shots"] for r in rows], dtype=np.float64)
        adv = np.array([np.nan if r["advantage"] is None else r["advantage"] for r in rows])
        above = np.array([bool(r["above_noise_floor"]) for r in rows])
        masks = _saturation_masks(adv, key[3], above)
        laws.append(_law(dict(zip(names, key)), shots, adv, None, masks, level))
    return laws


def gap_laws(gap_fits: list[dict], level: float = 0.95) -> list[Law]:
    """The gap laws |Δ̂|(S) of the stored gap fits (their points and rule; no saturation)."""
    laws = []
    for f in gap_fits:
        if "gap" not in f:
            continue
        key = {k: f[k] for k in ("dataset", "backbone", "classes", "quantile")}
        shots = np.asarray(f["shots"], dtype=np.float64)
        gap = np.asarray(f["gap"], dtype=np.float64)
        keep = np.asarray(f.get("kept", [True] * shots.size), dtype=bool)
        laws.append(_law(key, shots, gap, None, {None: keep}, level))
    return laws


def run_laws(res: dict, level: float = 0.95) -> dict:
    """Every law of one empirical stage result, recomputed: "average" (per attack and α),
    "quantile" and "gap" (per-example)."""
    per_example = res["fit"].get("per_example") or {}
    return {
        "average": average_laws(res["points"], level=level),
        "quantile": quantile_laws(per_example.get("quantiles", []), level),
        "gap": gap_laws(per_example.get("gap_fits", []), level),
    }


def _saturation_masks(adv, fpr, base) -> dict:
    sat = np.nan_to_num(adv, nan=np.inf)
    return {cut: base & unsaturated(sat, fpr, cut) for cut in (CUT_STRICT, CUT_LOOSE)}


def simulated_laws(res: dict, level: float = 0.95) -> dict:
    """The simulated sweep's laws per (α, "pooled" | "per_example"), recomputed from its points
    by the sweep's rule (resolvable, detected, S >= fit_min_shots; the per-example oracle:
    interval above α) and the saturation rule above."""

    cfg, out = res["config"], {}
    for alpha in cfg["fpr"]:
        pts = sorted((p for p in res["points"] if p["fpr"] == alpha), key=_by_shots)
        if not pts:
            continue
        shots = np.array([p["shots"] for p in pts], dtype=np.float64)
        enough = shots >= cfg.get("fit_min_shots", 1)
        adv = np.array([np.nan if p["advantage"] is None else p["advantage"] for p in pts])
        sigma = np.array(
            [
                np.nan if p.get("log10_advantage_se") is None else p["log10_advantage_se"]
                for p in pts
            ]
        )
        base = enough & np.array([bool(p.get("resolvable") and p["detected"]) for p in pts])
        key = {"fpr": alpha, "kind": "pooled"}
        out[(alpha, "pooled")] = _law(
            key, shots, adv, sigma, _saturation_masks(adv, alpha, base), level
        )
        if all(p.get("per_example_tpr") is not None for p in pts):
            adv = np.array([p["per_example_tpr"] for p in pts]) - alpha
            ci = np.array([p["per_example_tpr_ci"] for p in pts], dtype=np.float64)
            sigma = log10_se(ci[:, 0], ci[:, 1], adv, cfg.get("level", level))
            masks = _saturation_masks(adv, alpha, enough & (ci[:, 0] > alpha))
            key = {"fpr": alpha, "kind": "per_example"}
            out[(alpha, "per_example")] = _law(key, shots, adv, sigma, masks, level)
    return out


def _match(laws: list[Law], entry: dict, names) -> Law | None:
    return next((law for law in laws if all(law.key[k] == entry[k] for k in names)), None)


def _quantile_label(q: float) -> str:
    return "maximum" if q >= 1 else f"{100 * q:g}th percentile"


def empirical_slope_rows(res: dict, attack_names: dict, published: float, published_q: dict):
    """The slope-table rows of one empirical run, every law recomputed from the stored points
    (one row per law the stored analysis fitted, or that the recomputation fits), with the
    goodness of fit, the asymptotic slope and the saturation cut used."""
    laws = run_laws(res)
    label, rows = res["label"], []

    def add(stored: dict, law: Law | None, source: str, fpr, pub):
        if law is None or ("error" in stored and law.fit is None):
            return
        row = {"source": source, "setting": f"C={stored['classes']}", "fpr": fpr}
        rows.append(row | law.row() | {"published": pub})

    names = ("dataset", "backbone", "classes", "attack", "fpr")
    for f in res["fit"]["power_law"]:
        if f["attack"] in attack_names:
            source = f"{label} ({attack_names[f['attack']]})"
            add(f, _match(laws["average"], f, names), source, f["fpr"], published)
    per_example = res["fit"].get("per_example") or {}
    names = ("dataset", "backbone", "classes", "fpr", "quantile")
    for f in per_example.get("quantile_fits", []):
        q, law = f["quantile"], _match(laws["quantile"], f, names)
        add(f, law, f"{label} ({_quantile_label(q)} example)", f["fpr"], published_q.get(q))
    names = ("dataset", "backbone", "classes", "quantile")
    for f in per_example.get("gap_fits", []):
        law = _match(laws["gap"], f, names)
        add(f, law, f"{label} ({_quantile_label(f['quantile'])} example, gap)", None, None)
    return rows
