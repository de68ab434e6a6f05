"""The study's remaining tables: shots for DP equivalence, per-example correlations, the exact
theory's grid, the curve's shape at the largest S beside theory and simulation, and the slope
against the number of shadow models."""

from __future__ import annotations

import math

import numpy as np

from mialaw.empirical.attacks import law_attacks

from .dp_bootstrap import dp_law_columns, headline_laws
from .published import PUBLISHED_DP_SHOTS, PUBLISHED_DP_WORST
from .run_selection import empirical_results, headline_run, result_set
from .slope_tables import shots_range
from .table_format import Table

__all__ = [
    "ASYMPTOTE_COLUMNS",
    "CORRELATION_COLUMNS",
    "DP_COLUMNS",
    "SHADOW_COLUMNS",
    "TABLES",
    "THEORY_COLUMNS",
    "asymptote_rows",
    "correlation_rows",
    "dp_rows",
    "shadow_rows",
]


DP_COLUMNS = [
    "epsilon",
    "fpr",
    "theory_average",
    "empirical_average",
    "empirical_average_low",
    "empirical_average_high",
    "empirical_most_vulnerable",
    "empirical_most_vulnerable_low",
    "empirical_most_vulnerable_high",
    "gap_most_vulnerable",
    "gap_most_vulnerable_low",
    "gap_most_vulnerable_high",
    "largest_measured_shots",
    "average_decades_beyond_data",
    "most_vulnerable_decades_beyond_data",
    "gap_decades_beyond_data",
    "decades_beyond_data",
    "extrapolated",
    "published_average",
    "published_most_vulnerable",
]


def dp_rows(results: dict, profile) -> list[dict]:
    """Shots per class at which the attack first falls inside an (ε, δ)-DP bound: the exact
    theory, and the headline run's laws inverted with a bootstrap over the fit's start and the
    points' errors (``dp_bootstrap``), two significant digits, with how far each value reaches
    beyond the largest measured S."""
    theory = {(r["epsilon"], r["fpr"]): r for r in (results.get("theory") or {}).get("dp", [])}
    laws = headline_laws(headline_run(results), profile.headline_attack)
    rows = []
    for eps in profile.epsilons:
        for alpha in profile.fpr:
            row = {"epsilon": eps, "fpr": alpha}
            t = theory.get((eps, alpha))
            row["theory_average"] = math.ceil(t["shots"]) if t else None
            row |= dp_law_columns(laws, eps, profile.delta, alpha)
            row["published_average"] = PUBLISHED_DP_SHOTS.get((eps, alpha))
            row["published_most_vulnerable"] = PUBLISHED_DP_WORST if eps == 1.0 else None
            rows.append(row)
    return rows


CORRELATION_COLUMNS = [
    "run",
    "dataset",
    "backbone",
    "classes",
    "shots",
    "n",
    "spearman_gradient_norm",
    "gradient_ci_low",
    "gradient_ci_high",
    "spearman_atypicality",
    "atypicality_ci_low",
    "atypicality_ci_high",
]


def correlation_rows(results: dict, profile=None) -> list[dict]:
    """Spearman correlations of per-example vulnerability with gradient norm and atypicality."""
    rows = []
    for res in empirical_results(results):
        for r in res["fit"]["per_example"]["correlations"]:
            g = r.get("spearman_gradient_norm_ci") or [None, None]
            a = r.get("spearman_atypicality_ci") or [None, None]
            rows.append(
                {
                    "run": res["label"],
                    **{k: r[k] for k in ("dataset", "backbone", "classes", "shots", "n")},
                    "spearman_gradient_norm": r.get("spearman_gradient_norm"),
                    "gradient_ci_low": g[0],
                    "gradient_ci_high": g[1],
                    "spearman_atypicality": r.get("spearman_atypicality"),
                    "atypicality_ci_low": a[0],
                    "atypicality_ci_high": a[1],
                }
            )
    return rows


THEORY_COLUMNS = [
    "shots",
    "fpr",
    "advantage_lira",
    "advantage_np",
    "pooled_advantage",
    "log_advantage_lira",
    "log_asymptote",
]


ASYMPTOTE_COLUMNS = [
    "attack",
    "fpr",
    "shots_low",
    "shots_high",
    "real_slope",
    "real_ci_low",
    "real_ci_high",
    "theory_slope",
    "simulated_slope",
    "simulated_ci_low",
    "simulated_ci_high",
    "simulated_window",
    "pool_overlap",
]


def _theory_local(theory: dict, alpha: float, low: float, high: float) -> float | None:
    """The exact theory's slope of log(TPR − α) between S = low and high (interpolated in
    log S on its grid)."""
    rows = sorted(
        (r["shots"], r["log_advantage_lira"]) for r in theory["rows"] if r["fpr"] == alpha
    )
    if not rows:
        return None
    s, y = np.array(rows, dtype=float).T
    if low < s[0] or high > s[-1]:
        return None
    ends = np.interp(np.log([low, high]), np.log(s), y)
    return float((ends[1] - ends[0]) / (np.log(high) - np.log(low)))


def _simulated_local(results: dict, attack: str, alpha: float, low: float, high: float):
    """The simulated LiRA's local slope over the window that holds the real window's centre."""
    centre = math.sqrt(low * high)
    for name, res in results.items():
        config = res.get("config", {}) if name.startswith("simulate-") else {}
        if config.get("attack") != attack.replace("_", "-") or config.get("shadows") != 64:
            continue
        for ls in (res["fit"].get(str(alpha)) or {}).get("pooled_local_slopes", []):
            if ls["shots_low"] <= centre <= ls["shots_high"]:
                return ls
    return None


def asymptote_rows(results: dict, profile=None) -> list[dict]:
    """The curve's shape at the largest S: the real local slopes (the headline run) beside the
    exact theory's over the same S window and the simulated LiRA's (64 shadows) near it."""
    run, theory = headline_run(results), results.get("theory")
    rows = []
    if run is None:
        return rows
    # The fraction of a seed's candidates shared with the next seed's, at each S: where it is
    # above 0 the seeds are not independent and the bootstrap (seeds as strata) is narrow.
    overlap = {p["shots"]: p.get("pool_overlap") for p in run["points"]}
    names = law_attacks()
    for f in result_set(run).laws(classes=2, attack=tuple(names)):
        for ls in f.extra.get("local_slopes", []):
            low, high = ls["shots_low"], ls["shots_high"]
            sim = _simulated_local(results, f.attack, f.fpr, low, high)
            rows.append(
                {
                    "attack": names[f.attack],
                    "fpr": f.fpr,
                    "shots_low": low,
                    "shots_high": high,
                    "real_slope": ls["slope"],
                    "real_ci_low": ls["slope_ci"][0],
                    "real_ci_high": ls["slope_ci"][1],
                    "theory_slope": _theory_local(theory, f.fpr, low, high) if theory else None,
                    "simulated_slope": sim["slope"] if sim else None,
                    "simulated_ci_low": sim["slope_ci"][0] if sim else None,
                    "simulated_ci_high": sim["slope_ci"][1] if sim else None,
                    "simulated_window": f"{sim['shots_low']:g}-{sim['shots_high']:g}"
                    if sim
                    else None,
                    "pool_overlap": overlap.get(high),
                }
            )
    return rows


SHADOW_COLUMNS = [
    "source",
    "shadows",
    "attack",
    "variance",
    "fpr",
    "slope",
    "ci_low",
    "ci_high",
    "n",
    "shots",
    "last_local_slope",
]


def _shadow_row(source, m, attack, variance, fit) -> dict:
    local = fit.get("local_slopes") or fit.get("pooled_local_slopes") or []
    return {
        "source": source,
        "shadows": m,
        "attack": attack,
        "variance": variance,
        "fpr": fit.get("fpr"),
        "slope": fit.get("slope"),
        "ci_low": (fit.get("slope_ci") or [None, None])[0],
        "ci_high": (fit.get("slope_ci") or [None, None])[1],
        "n": fit.get("n"),
        "shots": shots_range(fit) if "shots_range" in fit else None,
        "last_local_slope": local[-1]["slope"] if local else None,
    }


def shadow_rows(results: dict, profile=None) -> list[dict]:
    """LiRA's slope at M = 16/64/256 shadows, real (cells of one run read with fewer models)
    and simulated (the Gaussian model), per-example and global variance."""
    rows = []
    real = results.get("shadows") or {}
    for fit in real.get("power_law", []):
        if "error" in fit:
            continue
        source = f"{fit['dataset']} / {fit['backbone']}, C={fit['classes']}"
        rows.append(_shadow_row(source, fit["shadows"], fit["attack"], fit["variance"], fit))
    for sweep in (results.get("shadows-simulated") or {}).get("sweeps", []):
        config = sweep["config"]
        attack = config["attack"].replace("-", "_")
        for alpha, entry in sweep["fit"].items():
            pooled = entry.get("pooled")
            if not pooled:
                continue
            fit = pooled | {"fpr": float(alpha), "local_slopes": entry.get("pooled_local_slopes")}
            source = f"simulated d={config['dim']}"
            rows.append(_shadow_row(source, sweep["shadows"], attack, sweep["variance"], fit))
    return sorted(rows, key=lambda r: (r["source"], r["attack"], r["variance"], r["fpr"] or 0))


def theory_rows(results: dict, profile=None) -> list[dict]:
    """The exact theory's grid as computed (the theory stage's rows)."""
    return (results.get("theory") or {}).get("rows", [])


TABLES = (
    Table(
        "theory", "Exact theory of the Gaussian model", THEORY_COLUMNS, theory_rows, needs="theory"
    ),
    Table(
        "asymptote",
        "Local slopes at C = 2: real models beside the exact theory and the simulated LiRA",
        ASYMPTOTE_COLUMNS,
        asymptote_rows,
    ),
    Table(
        "shadows",
        "LiRA slopes against the number of shadow models M (real and simulated)",
        SHADOW_COLUMNS,
        shadow_rows,
    ),
    Table(
        "dp_shots",
        lambda profile: f"Shots per class for (epsilon, delta={profile.delta:g})-DP equivalence",
        DP_COLUMNS,
        dp_rows,
    ),
    Table(
        "per_example",
        "Per-example vulnerability: Spearman correlations with 95 % intervals",
        CORRELATION_COLUMNS,
        correlation_rows,
    ),
)
