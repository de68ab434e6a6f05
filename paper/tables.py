"""The study's tables, built from stage results and written as Markdown with CSV beside it."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from .fit_quality import QUALITY_COLUMNS

# Published anchors (theory/science.md, section 1; arXiv 2402.06674).
PUBLISHED_SLOPE_AVERAGE = -0.5
PUBLISHED_QUANTILE_SLOPES = {0.99: -0.56, 0.999: -0.57, 0.9999: -0.48, 1.0: -0.27}
PUBLISHED_R2 = {"fitting set (FPR 1e-3)": 0.93, "held-out backbone": 0.79}
# Shots per class before the average-case LiRA advantage is inside (ε = 1, δ = 1e-5)-DP, C = 2.
PUBLISHED_DP_SHOTS = {(1.0, 0.1): 160, (1.0, 0.01): 2_700, (1.0, 0.001): 19_000}
PUBLISHED_DP_WORST = 7e6


# The mechanism runs (profiles.MECHANISM): in the slope table and the mechanism's own tables only.
MECHANISM_PARTS = ("-pca", "-class-mean", "-c2-large-lambda")


def _kind(label: str) -> str:
    """Which part of the study a run belongs to, by the label the profiles give it."""
    if any(part in label for part in MECHANISM_PARTS):
        return "mechanism"
    if "-lambda" in label:
        return "lambda"
    return "film" if label.endswith("-64px") else "main"


def empirical_results(results: dict, *, kind: str = "main") -> list[dict]:
    """The per-run empirical stage results (not the combined cross-dataset fit) of one kind:
    the main runs, the "lambda" runs (a main run at another L2 strength) or the "film" runs
    (FiLM against the head at 64 px)."""
    return [
        res
        for name, res in results.items()
        if name.startswith("empirical-")
        and name != "empirical-combined"
        and _kind(res["label"]) == kind
    ]


# The DP table's run, by name: the largest-S Fashion-MNIST run, else the main one, else digits.
HEADLINE_RUNS = ("fashion-mnist-lite0-c2-large", "fashion-mnist-lite0", "digits-pixels")


def headline_run(results: dict) -> dict | None:
    """The run the DP table reads, chosen by name, never by position."""
    runs = {res["label"]: res for res in empirical_results(results)}
    return next((runs[label] for label in HEADLINE_RUNS if label in runs), None)


def _num(value, digits=3):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e5 else f"{value:.3g}"
    return str(value)


def write_table(rows: list[dict], columns: list[str], path_stem: Path, title: str) -> list[Path]:
    """Write ``rows`` as ``<stem>.csv`` (full precision) and ``<stem>.md`` (rounded)."""
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path = path_stem.with_suffix(".csv")
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: ("" if row.get(c) is None else row.get(c)) for c in columns})
    md = [f"### {title}", "", "| " + " | ".join(columns) + " |"]
    md.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        md.append("| " + " | ".join(_num(row.get(c)) for c in columns) + " |")
    md_path = path_stem.with_suffix(".md")
    md_path.write_text("\n".join(md) + "\n")
    return [md_path, csv_path]


def read_table(path: Path) -> list[dict]:
    with Path(path).open(newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- slopes
ATTACK_NAMES = {"lira_online": "LiRA online", "lira_offline": "LiRA offline"}
SLOPE_COLUMNS = [
    "source",
    "setting",
    "fpr",
    "slope",
    "ci_low",
    "ci_high",
    "n",
    "shots",
    "published",
    *QUALITY_COLUMNS,
]


def _shots_range(fit: dict) -> str | None:
    lo, hi = fit.get("shots_range") or (None, None)
    return None if lo is None else f"{lo:g}-{hi:g}"


def slope_rows(results: dict) -> list[dict]:
    """Fitted slopes of log10(TPR − FPR) on log10 S, per source and FPR, beside the paper's."""
    return _theory_slopes(results) + _simulated_slopes(results) + _empirical_slopes(results)


def _theory_slopes(results: dict) -> list[dict]:
    rows = []
    theory = results.get("theory")
    if theory:
        for s in theory["slopes"]:
            lo, hi = s["slope_ci"]
            rows.append(
                {
                    "source": f"exact theory ({s['test']}, per-example average)",
                    "setting": "d={dim}, sigma={sigma}, S in [{:.0e}, {:.0e}]".format(
                        *s["shots_range"], **theory["model"]
                    ),
                    "fpr": s["fpr"],
                    "slope": s["slope"],
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": None,
                    "published": PUBLISHED_SLOPE_AVERAGE,
                }
            )
    return rows


def _simulated_slopes(results: dict) -> list[dict]:
    """The simulated sweeps' laws, recomputed from their points (``fit_quality``)."""
    from .fit_quality import simulated_laws

    rows = []
    for name, res in results.items():
        if not name.startswith("simulate-") or "config" not in res:
            continue
        cfg = res["config"]
        setting = f"d={cfg['dim']}, sigma={cfg['sigma']}, targets={cfg['targets']}"
        if cfg["attack"] != "oracle":
            setting += f", shadows={cfg['shadows']}"
        laws = simulated_laws(res)
        for key, fit in res["fit"].items():
            for kind in ("pooled", "per_example"):
                law = laws.get((float(key), kind))
                if not fit.get(kind) and (law is None or law.fit is None):
                    continue
                rows.append(
                    {
                        "source": f"simulated {cfg['attack']} ({kind.replace('_', '-')})",
                        "setting": setting,
                        "fpr": float(key),
                        **(law.row() if law is not None else {}),
                        "published": PUBLISHED_SLOPE_AVERAGE,
                    }
                )
    return rows


def _empirical_slopes(results: dict) -> list[dict]:
    """Every real-model law recomputed from its run's points (``fit_quality``): slope, χ²/dof,
    p, the asymptotic slope of a + b·log10 S + c/√S and the saturation cut used."""
    from .fit_quality import empirical_slope_rows

    rows = []
    for res in empirical_results(results) + empirical_results(results, kind="mechanism"):
        rows += empirical_slope_rows(
            res, ATTACK_NAMES, PUBLISHED_SLOPE_AVERAGE, PUBLISHED_QUANTILE_SLOPES
        )
    return rows


# --------------------------------------------------------------------------- regression
REGRESSION_COLUMNS = [
    "source",
    "attack",
    "fpr",
    "beta_S",
    "beta_S_ci_low",
    "beta_S_ci_high",
    "beta_C",
    "beta_0",
    "r2",
    "held_out_by",
    "held_out_r2",
    "n",
    "published_r2",
    "published_held_out_r2",
]


def regression_rows(results: dict) -> list[dict]:
    """log10(TPR − FPR) = β_S log10 S + β_C log10 C + β_0, per run and across the image runs."""
    rows = []
    combined = results.get("empirical-combined")
    sources = {"all datasets": combined} if combined else {}
    for res in empirical_results(results):
        sources[res["label"]] = res
    for source, res in sources.items():
        for r in res["fit"]["regression"]:
            if "error" in r:
                continue
            c = r["coefficients"]
            rows.append(
                {
                    "source": source,
                    "attack": r["attack"],
                    "fpr": r["fpr"],
                    "beta_S": c["log10_shots"]["estimate"],
                    "beta_S_ci_low": c["log10_shots"]["ci"][0],
                    "beta_S_ci_high": c["log10_shots"]["ci"][1],
                    "beta_C": c["log10_classes"]["estimate"],
                    "beta_0": c["intercept"]["estimate"],
                    "r2": r["r2"],
                    "held_out_by": r.get("held_out_by"),
                    "held_out_r2": r.get("held_out_r2"),
                    "n": r["n"],
                    "published_r2": PUBLISHED_R2["fitting set (FPR 1e-3)"],
                    "published_held_out_r2": PUBLISHED_R2["held-out backbone"],
                }
            )
    return rows


# --------------------------------------------------------------------------- measurement rules
LAMBDA_COLUMNS = ["dataset", "attack", "fpr", "lambda", "slope", "ci_low", "ci_high", "n", "shots"]


def lambda_rows(results: dict) -> list[dict]:
    """How the C = 2 LiRA slope moves with the mean-loss L2 strength λ (main runs and λ runs)."""
    rows = []
    varied = empirical_results(results, kind="lambda")
    bases = {res["label"].rsplit("-lambda", 1)[0] for res in varied}
    # The λ runs and the main runs they vary (not every main run: one row per λ and dataset).
    runs = [res for res in empirical_results(results) if res["label"] in bases] + varied
    for res in runs:
        lam = res.get("weight_decay")
        for f in res["fit"]["power_law"]:
            if f["classes"] != 2 or f["attack"] not in ATTACK_NAMES or lam is None:
                continue
            rows.append(
                {
                    "dataset": f"{f['dataset']} / {f['backbone']}",
                    "attack": ATTACK_NAMES[f["attack"]],
                    "fpr": f["fpr"],
                    "lambda": lam,
                    "slope": f.get("slope"),
                    "ci_low": (f.get("slope_ci") or [None])[0],
                    "ci_high": (f.get("slope_ci") or [None, None])[1],
                    "n": f.get("n"),
                    "shots": _shots_range(f),
                }
            )
    return sorted(rows, key=lambda r: (r["dataset"], r["attack"], -r["fpr"], r["lambda"]))


CUT_COLUMNS = ["source", "classes", "fpr", "cut", "slope", "ci_low", "ci_high", "n", "shots"]


def saturation_rows(results: dict) -> list[dict]:
    """The fitted slope under other saturation cuts (advantage < cut·(1 − α) enters the fit)."""
    rows = []
    for res in empirical_results(results):
        for f in res["fit"]["power_law"]:
            if f["attack"] not in ATTACK_NAMES:
                continue
            for c in f.get("saturation_sensitivity", []):
                lo, hi = c.get("slope_ci") or (None, None)
                rows.append(
                    {
                        "source": f"{res['label']} ({ATTACK_NAMES[f['attack']]})",
                        "classes": f["classes"],
                        "fpr": f["fpr"],
                        "cut": c["cut"],
                        "slope": c.get("slope"),
                        "ci_low": lo,
                        "ci_high": hi,
                        "n": c.get("n"),
                        "shots": _shots_range(c),
                    }
                )
    return rows


LOCAL_COLUMNS = [
    "source",
    "classes",
    "fpr",
    "shots_low",
    "shots_high",
    "slope",
    "ci_low",
    "ci_high",
]


def local_slope_rows(results: dict) -> list[dict]:
    """Slopes between neighbouring S (the curve's shape), with 95 % intervals."""
    rows = []
    for res in empirical_results(results):
        for f in res["fit"]["power_law"]:
            if f["attack"] not in ATTACK_NAMES:
                continue
            for ls in f.get("local_slopes", []):
                rows.append(
                    {
                        "source": f"{res['label']} ({ATTACK_NAMES[f['attack']]})",
                        "classes": f["classes"],
                        "fpr": f["fpr"],
                        "shots_low": ls["shots_low"],
                        "shots_high": ls["shots_high"],
                        "slope": ls["slope"],
                        "ci_low": ls["slope_ci"][0],
                        "ci_high": ls["slope_ci"][1],
                    }
                )
    return rows


FILM_COLUMNS = [
    "attack",
    "fpr",
    "film_slope",
    "film_ci_low",
    "film_ci_high",
    "film_n",
    "head_slope",
    "head_ci_low",
    "head_ci_high",
    "head_n",
]


def film_rows(results: dict) -> list[dict]:
    """FiLM against the linear head on the same cells (C = 2, 64 px): fitted slopes side by side."""
    fits = {}
    for res in empirical_results(results, kind="film"):
        learner = "film" if "-film-" in res["label"] else "head"
        for f in res["fit"]["power_law"]:
            if f["classes"] == 2 and f["attack"] in ATTACK_NAMES:
                fits[(learner, f["attack"], f["fpr"])] = f
    rows = []
    for attack in ATTACK_NAMES:
        for alpha in sorted({k[2] for k in fits}, reverse=True):
            row = {"attack": ATTACK_NAMES[attack], "fpr": alpha}
            for learner in ("film", "head"):
                f = fits.get((learner, attack, alpha)) or {}
                lo, hi = f.get("slope_ci") or (None, None)
                row |= {
                    f"{learner}_slope": f.get("slope"),
                    f"{learner}_ci_low": lo,
                    f"{learner}_ci_high": hi,
                    f"{learner}_n": f.get("n"),
                }
            rows.append(row)
    return rows


CHANGE_COLUMNS = ["source", "setting", "fpr", "slope_v0.1", "slope", "ci_low", "ci_high", "n"]
REFERENCE = Path(__file__).parent / "reference" / "slopes-v0.1.csv"


def change_rows(results: dict) -> list[dict]:
    """Real-model slopes of this release beside the first release's (paper/reference/), matched
    by source, setting and FPR."""
    if not REFERENCE.exists():
        return []
    old = {
        (
            _V01_SOURCES.get(r["source"].split(" (")[0], "?")
            + " ("
            + r["source"].split(" (", 1)[1],
            r["setting"],
            float(r["fpr"]),
        ): r
        for r in read_table(REFERENCE)
        if " (" in r["source"]
    }
    rows = []
    for r in _empirical_slopes(results):
        if r["fpr"] is None:
            continue
        before = old.get((r["source"], r["setting"], float(r["fpr"])))
        if before is None:
            continue
        rows.append(r | {"slope_v0.1": float(before["slope"]) if before["slope"] else None})
    return rows


# v0.1 named real-model sources "dataset / backbone"; this release names them by run.
_V01_SOURCES = {
    "fashion-mnist / efficientnet-lite0": "fashion-mnist-lite0",
    "digits / pixels": "digits-pixels",
    "gaussian / identity": "gaussian",
}


# --------------------------------------------------------------------------- DP shots
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
    from .dp_bootstrap import dp_law_columns, headline_laws

    theory = {(r["epsilon"], r["fpr"]): r for r in (results.get("theory") or {}).get("dp", [])}
    laws = headline_laws(headline_run(results))
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


# --------------------------------------------------------------------------- per-example
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


def correlation_rows(results: dict) -> list[dict]:
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


# --------------------------------------------------------------------------- theory grid
THEORY_COLUMNS = [
    "shots",
    "fpr",
    "advantage_lira",
    "advantage_np",
    "pooled_advantage",
    "log_advantage_lira",
    "log_asymptote",
]


# --------------------------------------------------------------------------- asymptote
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


def asymptote_rows(results: dict) -> list[dict]:
    """The curve's shape at the largest S: the real local slopes (the headline run) beside the
    exact theory's over the same S window and the simulated LiRA's (64 shadows) near it."""
    run, theory = headline_run(results), results.get("theory")
    rows = []
    if run is None:
        return rows
    # The fraction of a seed's candidates shared with the next seed's, at each S: where it is
    # above 0 the seeds are not independent and the bootstrap (seeds as strata) is narrow.
    overlap = {p["shots"]: p.get("pool_overlap") for p in run["points"]}
    for f in run["fit"]["power_law"]:
        if f["attack"] not in ATTACK_NAMES or f["classes"] != 2:
            continue
        for ls in f.get("local_slopes", []):
            low, high = ls["shots_low"], ls["shots_high"]
            sim = _simulated_local(results, f["attack"], f["fpr"], low, high)
            rows.append(
                {
                    "attack": ATTACK_NAMES[f["attack"]],
                    "fpr": f["fpr"],
                    "shots_low": low,
                    "shots_high": high,
                    "real_slope": ls["slope"],
                    "real_ci_low": ls["slope_ci"][0],
                    "real_ci_high": ls["slope_ci"][1],
                    "theory_slope": _theory_local(theory, f["fpr"], low, high) if theory else None,
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


# --------------------------------------------------------------------------- shadows
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
        "shots": _shots_range(fit) if "shots_range" in fit else None,
        "last_local_slope": local[-1]["slope"] if local else None,
    }


def shadow_rows(results: dict) -> list[dict]:
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


# --------------------------------------------------------------------------- backbones
BACKBONE_COLUMNS = [
    "design",
    "attack",
    "fpr",
    "held_out",
    "n",
    "r2_fit",
    "r2_held_out",
    "beta_shots",
    "beta_classes",
    "published_r2",
]


def backbone_rows(results: dict) -> list[dict]:
    """The regression across backbones: leave one backbone out, and fitted on one backbone."""
    stage = results.get("regression-backbones")
    if not stage:
        return []
    rows = []

    def coef(entry, name):
        return (entry.get("coefficients") or {}).get(name, {}).get("estimate")

    designs = [("leave one backbone out", stage["leave_one_out"])]
    designs.append((f"fitted on {stage['fit_on']}", stage["one_backbone"]))
    for design, entries in designs:
        for entry in entries:
            for held in entry.get("held_out", []):
                rows.append(
                    {
                        "design": design,
                        "attack": entry["attack"],
                        "fpr": entry["fpr"],
                        "held_out": held["group"],
                        "n": held.get("n"),
                        "r2_fit": entry.get("r2"),
                        "r2_held_out": held.get("r2"),
                        "beta_shots": coef(entry, "log10_shots"),
                        "beta_classes": coef(entry, "log10_classes"),
                        "published_r2": PUBLISHED_R2["held-out backbone"],
                    }
                )
    return rows


def write_tables(results: dict, profile, out: Path) -> list[Path]:
    tables = Path(out) / "tables"
    written = []
    written += write_table(
        slope_rows(results), SLOPE_COLUMNS, tables / "slopes", "Power-law slopes beside the paper"
    )
    written += write_table(
        regression_rows(results),
        REGRESSION_COLUMNS,
        tables / "regression",
        "Regression log10(TPR-FPR) = beta_S log10 S + beta_C log10 C + beta_0",
    )
    written += write_table(
        change_rows(results),
        CHANGE_COLUMNS,
        tables / "slopes_change",
        "Real-model slopes: the first release (v0.1) beside the corrected measurement",
    )
    written += write_table(
        film_rows(results),
        FILM_COLUMNS,
        tables / "film",
        "FiLM against the linear head on the same cells (C = 2, 64 px)",
    )
    written += write_table(
        lambda_rows(results),
        LAMBDA_COLUMNS,
        tables / "lambda",
        "C = 2 slopes against the mean-loss L2 strength lambda",
    )
    written += write_table(
        saturation_rows(results),
        CUT_COLUMNS,
        tables / "saturation",
        "Slopes under other saturation cuts",
    )
    written += write_table(
        local_slope_rows(results),
        LOCAL_COLUMNS,
        tables / "local_slopes",
        "Local slopes between neighbouring S",
    )
    written += write_table(
        asymptote_rows(results),
        ASYMPTOTE_COLUMNS,
        tables / "asymptote",
        "Local slopes at C = 2: real models beside the exact theory and the simulated LiRA",
    )
    written += write_table(
        shadow_rows(results),
        SHADOW_COLUMNS,
        tables / "shadows",
        "LiRA slopes against the number of shadow models M (real and simulated)",
    )
    written += write_table(
        backbone_rows(results),
        BACKBONE_COLUMNS,
        tables / "regression_backbones",
        "The regression held out by backbone (Fashion-MNIST, EfficientNet-Lite0/1/2)",
    )
    written += write_table(
        dp_rows(results, profile),
        DP_COLUMNS,
        tables / "dp_shots",
        f"Shots per class for (epsilon, delta={profile.delta:g})-DP equivalence",
    )
    written += write_table(
        correlation_rows(results),
        CORRELATION_COLUMNS,
        tables / "per_example",
        "Per-example vulnerability: Spearman correlations with 95 % intervals",
    )
    if "theory" in results:
        written += write_table(
            results["theory"]["rows"],
            THEORY_COLUMNS,
            tables / "theory",
            "Exact theory of the Gaussian model",
        )
    return written
