"""The study's tables, built from stage results and written as Markdown with CSV beside it."""

from __future__ import annotations

import csv
import math
from pathlib import Path

# Published anchors (science.md, section 1; arXiv 2402.06674).
PUBLISHED_SLOPE_AVERAGE = -0.5
PUBLISHED_QUANTILE_SLOPES = {0.99: -0.56, 0.999: -0.57, 0.9999: -0.48, 1.0: -0.27}
PUBLISHED_R2 = {"fitting set (FPR 1e-3)": 0.93, "held-out backbone": 0.79}
# Shots per class before the average-case LiRA advantage is inside (ε = 1, δ = 1e-5)-DP, C = 2.
PUBLISHED_DP_SHOTS = {(1.0, 0.1): 160, (1.0, 0.01): 2_700, (1.0, 0.001): 19_000}
PUBLISHED_DP_WORST = 7e6


def empirical_results(results: dict) -> list[dict]:
    """The per-run empirical stage results (not the combined cross-dataset fit)."""
    return [
        res
        for name, res in results.items()
        if name.startswith("empirical-") and name != "empirical-combined"
    ]


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
SLOPE_COLUMNS = ["source", "setting", "fpr", "slope", "ci_low", "ci_high", "n", "published"]


def slope_rows(results: dict) -> list[dict]:
    """Fitted slopes of log10(TPR − FPR) on log10 S, per source and FPR, beside the paper's."""
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
    for name, res in results.items():
        if not name.startswith("simulate-"):
            continue
        cfg = res["config"]
        setting = f"d={cfg['dim']}, sigma={cfg['sigma']}, targets={cfg['targets']}"
        if cfg["attack"] != "oracle":
            setting += f", shadows={cfg['shadows']}"
        for key, fit in res["fit"].items():
            for kind in ("pooled", "per_example"):
                f = fit.get(kind)
                if not f:
                    continue
                rows.append(
                    {
                        "source": f"simulated {cfg['attack']} ({kind.replace('_', '-')})",
                        "setting": setting,
                        "fpr": float(key),
                        "slope": f["slope"],
                        "ci_low": f["slope_ci"][0],
                        "ci_high": f["slope_ci"][1],
                        "n": f["n"],
                        "published": PUBLISHED_SLOPE_AVERAGE,
                    }
                )
    for res in empirical_results(results):
        for f in res["fit"]["power_law"]:
            if "error" in f or f["attack"] not in ATTACK_NAMES:
                continue
            rows.append(
                {
                    "source": f"{f['dataset']} / {f['backbone']} ({ATTACK_NAMES[f['attack']]})",
                    "setting": f"C={f['classes']}",
                    "fpr": f["fpr"],
                    "slope": f["slope"],
                    "ci_low": f["slope_ci"][0],
                    "ci_high": f["slope_ci"][1],
                    "n": f["n"],
                    "published": PUBLISHED_SLOPE_AVERAGE,
                }
            )
        for f in res["fit"]["per_example"]["quantile_fits"]:
            if "error" in f:
                continue
            q = f["quantile"]
            label = "maximum" if q >= 1 else f"{100 * q:g}th percentile"
            rows.append(
                {
                    "source": f"{f['dataset']} / {f['backbone']} ({label} example)",
                    "setting": f"C={f['classes']}",
                    "fpr": f["fpr"],
                    "slope": f["slope"],
                    "ci_low": f["slope_ci"][0],
                    "ci_high": f["slope_ci"][1],
                    "n": f["n"],
                    "published": PUBLISHED_QUANTILE_SLOPES.get(q),
                }
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


# --------------------------------------------------------------------------- DP shots
DP_COLUMNS = [
    "epsilon",
    "fpr",
    "theory_average",
    "empirical_average",
    "empirical_most_vulnerable",
    "published_average",
    "published_most_vulnerable",
]


def dp_rows(results: dict, profile) -> list[dict]:
    """Shots per class at which the attack first falls inside an (ε, δ)-DP bound."""
    from mialaw.theory.dp import dp_shots_from_power_law

    theory = {(r["epsilon"], r["fpr"]): r for r in (results.get("theory") or {}).get("dp", [])}
    laws = _empirical_laws(results)
    rows = []
    for eps in profile.epsilons:
        for alpha in profile.fpr:
            row = {"epsilon": eps, "fpr": alpha}
            t = theory.get((eps, alpha))
            row["theory_average"] = math.ceil(t["shots"]) if t else None
            for column, law in (
                ("empirical_average", laws.get(("average", alpha))),
                ("empirical_most_vulnerable", laws.get(("maximum", alpha))),
            ):
                if law is None:
                    continue
                try:
                    res = dp_shots_from_power_law(law[0], law[1], eps, profile.delta, alpha)
                except ValueError:  # a law that does not fall (enough) never enters the bound
                    continue
                row[column] = res.shots_ceil  # whole shots per class
            row["published_average"] = PUBLISHED_DP_SHOTS.get((eps, alpha))
            row["published_most_vulnerable"] = PUBLISHED_DP_WORST if eps == 1.0 else None
            rows.append(row)
    return rows


def _empirical_laws(results: dict) -> dict:
    """(slope, intercept) of the headline run's C = 2 LiRA laws: average and maximum example."""
    laws = {}
    runs = empirical_results(results)
    if not runs:
        return laws
    fits = runs[0]["fit"]
    for f in fits["power_law"]:
        if "error" not in f and f["attack"] == "lira_online" and f["classes"] == 2:
            laws[("average", f["fpr"])] = (f["slope"], f["intercept"])
    for f in fits["per_example"]["quantile_fits"]:
        if "error" not in f and f["quantile"] >= 1 and f["classes"] == 2:
            laws[("maximum", f["fpr"])] = (f["slope"], f["intercept"])
    return laws


# --------------------------------------------------------------------------- per-example
CORRELATION_COLUMNS = [
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
