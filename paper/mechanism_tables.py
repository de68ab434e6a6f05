"""The mechanism's tables: per-example gaps across S, the calibrated bridge, local slopes by
projected dimension and by λ (``mechanism_stage.py``; ``science.md`` section 5)."""

from __future__ import annotations

import numpy as np

from mialaw.empirical.attacks import attack_label, law_attacks
from mialaw.empirical.bridge import ATTACKS as BRIDGE_ATTACKS

from .table_format import Table

GAP_COLUMNS = [
    "run",
    "base_shots",
    "shots",
    "examples",
    "noise_sd",
    "rms_scaled",
    "rms_low",
    "rms_high",
    "mean_scaled",
    "mean_low",
    "mean_high",
]
QUANTILE_KEYS = ("q50", "q90", "q99", "max")
for _q in QUANTILE_KEYS:
    GAP_COLUMNS += [f"{_q}_scaled", f"{_q}_low", f"{_q}_high", f"{_q}_resolvable"]

GAP_LAW_COLUMNS = [
    "run",
    "law",
    "base_shots",
    "shots",
    "examples",
    "slope",
    "ci_low",
    "ci_high",
    "note",
]
BRIDGE_RULES = ("theory", "group-slopes", "self", "moments-iid", "moments-paired")
BRIDGE_COLUMNS = ["run", "from_shots", "shots", "attack", "fpr", "measured", "ci_low", "ci_high"]
for _r in BRIDGE_RULES:
    BRIDGE_COLUMNS += [_r, f"{_r}_low", f"{_r}_high", f"{_r}_log10_error"]
BRIDGE_SUMMARY_COLUMNS = ["run", "from_shots", "rule", "attack", "window", "points", "median_abs"]
MECHANISM_COLUMNS = [
    "experiment",
    "run",
    "dim",
    "lambda",
    "attack",
    "fpr",
    "shots_low",
    "shots_high",
    "sc_over_d",
    "slope",
    "ci_low",
    "ci_high",
]
FEATURE_DIM = 1280  # EfficientNet-Lite0's feature size (the unprojected large-S run)


def mechanism_runs(results: dict) -> dict:
    return ((results.get("mechanism") or {}).get("runs")) or {}


def _ci(row, name, pair):
    row[f"{name}_low"], row[f"{name}_high"] = pair if pair else (None, None)


def gap_rows(results: dict, profile=None) -> list[dict]:
    rows = []
    for label, entry in mechanism_runs(results).items():
        gaps = entry["gaps"]
        for r in gaps["by_shots"]:
            row = {"run": label, "base_shots": gaps["base_shots"]}
            row |= {k: r[k] for k in ("shots", "examples", "noise_sd", "rms_scaled")}
            row["rms_low"], row["rms_high"] = r["rms_scaled_ci"]
            row["mean_scaled"] = r["mean_scaled"]
            row["mean_low"], row["mean_high"] = r["mean_scaled_ci"]
            for q in QUANTILE_KEYS:
                row[f"{q}_scaled"] = r[f"{q}_scaled"]
                _ci(row, q, r[f"{q}_scaled_ci"])
                row[f"{q}_resolvable"] = r[f"{q}_resolvable"]
            rows.append(row)
    return rows


def gap_law_rows(results: dict, profile=None) -> list[dict]:
    """Per run: the RMS gap law, each S₀-gap quintile's law, the median per-example slope."""
    rows = []
    for label, entry in mechanism_runs(results).items():
        gaps = entry["gaps"]
        base = {"run": label, "base_shots": gaps["base_shots"]}
        law = gaps["rms_law"]
        span = f"{law['shots_range'][0]}-{law['shots_range'][1]}"
        rows.append(
            base
            | {"law": "rms gap", "shots": span, "examples": gaps["examples"]}
            | {"slope": law["slope"], "ci_low": law["slope_ci"][0], "ci_high": law["slope_ci"][1]}
        )
        mean_law = gaps.get("mean_law")
        if mean_law:
            lo, hi = mean_law["shots_range"]
            rows.append(
                base
                | {"law": "mean gap", "shots": f"{lo}-{hi}", "examples": gaps["examples"]}
                | {"slope": mean_law["slope"], "ci_low": mean_law["slope_ci"][0]}
                | {"ci_high": mean_law["slope_ci"][1], "note": "signed mean of the gaps"}
            )
        for g in gaps["groups"]:
            lo, hi = g["base_gap_range"]
            resolved = g["slope_ci"][0] is not None
            note = f"gap magnitude at S0 in [{lo:.2f}, {hi:.2f}]"
            rows.append(
                base
                | {
                    "law": f"S0-gap quintile {g['group']}",
                    "shots": f"{g['shots'][0]}-{g['shots'][-1]}",
                    "examples": g["examples"],
                    # a law whose bootstrap meets a mean gap² below the noise is unresolvable
                    "slope": g["slope"] if resolved else None,
                    "ci_low": g["slope_ci"][0],
                    "ci_high": g["slope_ci"][1],
                    "note": note if resolved else note + "; unresolvable (below the noise)",
                }
            )
        s = gaps["slopes"]
        if s.get("median") is not None:
            rows.append(
                base
                | {
                    "law": "median per-example slope",
                    "shots": span,
                    "examples": s["with_slope"],
                    "slope": s["median"],
                    "ci_low": s["median_ci"][0],
                    "ci_high": s["median_ci"][1],
                    "note": f"examples above 3 noise sd at >= {s['min_points']} S "
                    f"({s['with_slope']} of {s['examples']}); 10th-90th percentile "
                    f"{s['quantiles']['0.1']:.2f} to {s['quantiles']['0.9']:.2f}; biased towards 0 "
                    "by that selection (about -0.4 where the truth is -0.5)",
                }
            )
    return rows


def bridge_rows(results: dict, profile=None) -> list[dict]:
    rows = []
    for label, entry in mechanism_runs(results).items():
        b = entry.get("bridge")
        if not b:
            continue
        for p in b["points"]:
            row = {"run": label, "from_shots": b["from_shots"], "shots": p["shots"]}
            row |= {"attack": attack_label(p["attack"]), "fpr": p["fpr"]}
            row["measured"] = p["measured"]["tpr"]
            ci = p["measured"]["tpr_ci"] or [None, None]
            row["ci_low"], row["ci_high"] = ci if p["measured"]["tpr"] is not None else (None, None)
            for rule in BRIDGE_RULES:
                row[rule] = p["predicted"].get(rule)
                _ci(row, rule, (p.get("predicted_ci") or {}).get(rule))
                row[f"{rule}_log10_error"] = p["log10_error"].get(rule)
            rows.append(row)
    return rows


def bridge_summary_rows(results: dict, profile=None) -> list[dict]:
    """Median |log10 error| per run, rule and attack, at S >= 4·S₀ and over every S >= S₀."""
    rows = []
    for label, entry in mechanism_runs(results).items():
        b = entry.get("bridge")
        if not b:
            continue
        s0 = b["from_shots"]
        for rule in b["rules"]:
            for attack in (*BRIDGE_ATTACKS, None):
                for window, low in (("from 4 S0", 4 * s0), ("from S0", s0)):
                    errs = [
                        abs(p["log10_error"][rule])
                        for p in b["points"]
                        if p["shots"] >= low
                        and (attack is None or p["attack"] == attack)
                        and p["log10_error"].get(rule) is not None
                    ]
                    rows.append(
                        {
                            "run": label,
                            "from_shots": s0,
                            "rule": rule,
                            "attack": "both" if attack is None else attack_label(attack),
                            "window": window,
                            "points": len(errs),
                            "median_abs": float(np.median(errs)) if errs else None,
                        }
                    )
    return rows


def _experiment(spec):
    """(experiment, d, λ) of the large-S run ("baseline") and its head twins with the features
    projected ("capacity") or another λ ("regularisation"); None for other runs."""
    options = spec.options
    dim = (options.get("dataset_options") or {}).get("project")
    lam = options.get("weight_decay", 0.01)
    if options.get("learner", "head") != "head" or spec.role not in ("large", "mechanism"):
        return None
    if dim is not None:
        return "capacity", dim, lam
    if spec.role == "large":
        return "baseline", FEATURE_DIM, lam
    if "weight_decay" in options:
        return "regularisation", FEATURE_DIM, lam
    return None


def mechanism_slope_rows(results: dict, profile) -> list[dict]:
    """Local slopes (C = 2) of the large-S run and of its projected and λ twins, with S·C/d."""
    specs = {e.label: e for e in profile.empirical}
    rows = []
    names = law_attacks()
    for label, spec in specs.items():
        kind = _experiment(spec)
        res = results.get(f"empirical-{label}")
        if kind is None or not res:
            continue
        experiment, dim, lam = kind
        for law in res["fit"]["power_law"]:
            if law["attack"] not in names:
                continue
            for ls in law.get("local_slopes", []):
                rows.append(
                    {
                        "experiment": experiment,
                        "run": label,
                        "dim": dim,
                        "lambda": lam,
                        "attack": names[law["attack"]],
                        "fpr": law["fpr"],
                        "shots_low": int(ls["shots_low"]),
                        "shots_high": int(ls["shots_high"]),
                        "sc_over_d": float(np.sqrt(ls["shots_low"] * ls["shots_high"]))
                        * law["classes"]
                        / dim,
                        "slope": ls["slope"],
                        "ci_low": ls["slope_ci"][0],
                        "ci_high": ls["slope_ci"][1],
                    }
                )
    return rows


def _table(name, title, columns, rows):
    return Table(name, title, tuple(columns), rows, needs="mechanism")


# Written where the profile has the mechanism stage (the full profile).
TABLES = (
    _table("gaps", "sqrt(S)-scaled gaps of the same examples", GAP_COLUMNS, gap_rows),
    _table("gap_laws", "Per-example gap laws", GAP_LAW_COLUMNS, gap_law_rows),
    _table("bridge", "Bridge: predicted beside measured TPR", BRIDGE_COLUMNS, bridge_rows),
    _table(
        "bridge_summary",
        "Bridge: median |log10 error| of the advantage",
        BRIDGE_SUMMARY_COLUMNS,
        bridge_summary_rows,
    ),
    _table(
        "mechanism_slopes",
        "Local slopes by projected dimension and by lambda (C = 2)",
        MECHANISM_COLUMNS,
        mechanism_slope_rows,
    ),
)
