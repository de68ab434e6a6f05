"""The sections' sentences that depend on the run (sections 4 to 9 of paper.md): the settings of
the theory, the simulations and every real-model run as they ran, the primary run's table of fits
and what its intervals say, the regression and per-example results of the runs that have them,
and the comparison with the published claims, each counted from its table."""

from __future__ import annotations

from .answer import dp_shots_found
from .claims import (
    ATTACK_NAMES,
    RunSettings,
    fit_tally,
    fpr_text,
    interval,
    listing,
    number,
    plural,
    position,
    run_settings,
    slope_rows,
)
from .mechanism_claims import mechanism_claims
from .render import format_number
from .run_selection import empirical_results, headline_run, primary_run

FPRS = (0.1, 0.01, 0.001)
HELD_OUT_NAMES = {"classes": "C"}


def theory_extra(profile) -> dict:
    theory = profile.theory
    low, high = (f"10^{len(str(int(v))) - 1}" for v in theory.slope_range)
    return {
        "theory_dim": theory.dim,
        "theory_sigma": f"{theory.sigma:g}",
        "theory_max_shots": f"10^{theory.max_log10_shots}",
        "theory_slope_range": f"[{low}, {high}]",
    }


def theory_agreement(tables: dict) -> str:
    """To how many decimal places both exact slopes at FPR 10^−3 round to −½."""
    slopes = [
        number(r, "slope")
        for r in tables.get("slopes", [])
        if r["source"].startswith("exact theory") and number(r, "fpr") == 0.001
    ]
    slopes = [s for s in slopes if s is not None]
    if not slopes:
        return "no exact slope was fitted"
    places = 0
    while places < 12 and all(round(s, places + 1) == -0.5 for s in slopes):
        places += 1
    return f"−½ to {plural(places, 'decimal place')}"


def simulation_extra(profile) -> dict:
    """The simulated sweeps' settings, by attack (a profile without one leaves its keys out)."""
    extra = {}
    for sim in profile.simulations:
        options = sim.options
        if options["attack"] == "oracle":
            extra["oracle_fit_min"] = f"{options.get('fit_min_shots', 1):,}"
        elif options["attack"] == "lira-offline":
            extra["lira_shadows"] = options["shadows"]
            extra["lira_fit_min"] = f"{options.get('fit_min_shots', 1):,}"
        elif options["attack"] == "lira-online":
            extra["online_shadows"] = options["shadows"]
            extra["online_per_side"] = options["shadows"] // 2
    return extra


def runs_table(results: dict, notes) -> str:
    """Every real-model run this reproduction holds, as it ran, and the ones it skipped."""
    lines = [
        "| run | role | data, features | learner | C | S per class | seeds | models per cell |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in ("main", "lambda", "film", "mechanism"):
        for s in run_settings(results, kind):
            shots = f"{min(s.shots):,} … {max(s.shots):,}"
            lines.append(
                f"| `{s.label}` | {s.role} | {s.data} | {s.learner} | "
                f"{', '.join(map(str, s.classes))} | {shots} | {s.seeds} | {s.models} |"
            )
    skipped = [n for n in notes if n.startswith("empirical-")]
    if len(lines) == 2:
        return "No real-model run was computed." + "".join(f" {n}." for n in skipped)
    return "\n".join(lines)


def _fits_table(tables: dict, settings: RunSettings) -> str:
    lines = ["| attack | C | " + " | ".join(f"FPR {fpr_text(f)}" for f in FPRS) + " |"]
    lines.append("|---|---|" + "---|" * len(FPRS))
    for name in ATTACK_NAMES.values():
        for classes in settings.classes:
            rows = {
                float(r["fpr"]): r
                for r in slope_rows(tables, settings.label, classes)
                if r["source"].endswith(f"({name})")
            }
            cells = [interval(rows[f]) if f in rows else "no fit" for f in FPRS]
            lines.append(f"| {name} | {classes} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fit_ranges(rows: list[dict]) -> str:
    ranges = sorted(
        {r["shots"] for r in rows if r.get("shots")}, key=lambda s: int(s.split("-")[0])
    )
    return listing(f"S = {r.replace('-', ' … ')}" for r in ranges) if ranges else "none"


def primary_extra(results: dict, tables: dict) -> dict:
    """Section 7's table of the primary run's fits and what its intervals say."""
    run = primary_run(results)
    if run is None:
        return {}
    settings = RunSettings.from_result(run)
    rows = slope_rows(tables, settings.label)
    tally = fit_tally(rows)
    intervals = tally["below"] + tally["includes"] + tally["above"]
    if intervals and tally["below"] == intervals:
        first = (
            f"Every one of the {intervals} fits with an interval is clearly negative "
            "(interval below 0)"
        )
    else:
        first = (
            f"Of the {plural(intervals, 'fit')} with an interval, {tally['below']} lie wholly "
            f"below 0 and {tally['includes'] + tally['above']} do not"
        )
    per_class = []
    for classes in settings.classes:
        slopes = [number(r, "slope") for r in slope_rows(tables, settings.label, classes)]
        slopes = sorted(s for s in slopes if s is not None)
        if slopes:
            span = format_number(str(slopes[0]))
            if len(slopes) > 1:
                span = f"from {span} to {format_number(str(slopes[-1]))}"
            per_class.append(f"{span} at C = {classes}")
    summary = (
        f"{first}; {tally['none']} have no interval or no fit. The point estimates run "
        f"{listing(per_class) or 'nowhere'}; against −½, "
        f"{sum(position(r, -0.5) == 'below' for r in rows)} intervals lie below it and "
        f"{sum(position(r, -0.5) == 'includes' for r in rows)} include it. The fits span "
        f"{_fit_ranges(rows)} (where the attack is detected and no longer saturated)."
    )
    return {
        "primary_label": settings.label,
        "primary_setting": settings.describe(),
        "primary_table": _fits_table(tables, settings),
        "primary_summary": summary,
    }


def regression_text(tables: dict) -> str:
    """Offline LiRA at FPR 10^−3 (else 0.01) of every source the regression table has."""
    rows = [r for r in tables.get("regression", []) if r.get("attack") == "lira_offline"]
    if not rows:
        return "No run of this reproduction has enough C and S for the regression."
    sentences = []
    for source in dict.fromkeys(r["source"] for r in rows):
        mine = {float(r["fpr"]): r for r in rows if r["source"] == source}
        fpr = next(
            (f for f in (0.001, 0.01, 0.1) if number(mine.get(f, {}), "r2") is not None), None
        )
        if fpr is None:
            continue
        r = mine[fpr]
        held = number(r, "held_out_r2")
        held_text = "no held-out prediction"
        if held is not None:
            worse = " (below 0: worse than predicting the mean)" if held < 0 else ""
            group = HELD_OUT_NAMES.get(r["held_out_by"], r["held_out_by"])
            held_text = (
                f"predicting each {group} from the others gives R² = "
                f"{format_number(r['held_out_r2'])}{worse}"
            )
        sentences.append(
            f"{source} (offline LiRA, FPR {fpr_text(fpr)}, {plural(int(float(r['n'])), 'point')}): "
            f"β_S = {interval(r, 'beta_S', 'beta_S_ci_low', 'beta_S_ci_high')}, "
            f"β_C = {format_number(r['beta_C'])}, R² = {format_number(r['r2'])}; {held_text}"
        )
    published = rows[0]
    return (
        "log10(TPR − FPR) = β_S log10 S + β_C log10 C + β_0 fitted by least squares: "
        + "; ".join(sentences)
        + f" (published: {format_number(published['published_r2'])} on the fitting set and "
        f"{format_number(published['published_held_out_r2'])} on a held-out backbone)."
    )


def per_example_text(results: dict, tables: dict) -> str:
    """The primary run's gradient-norm correlation at its largest C and S."""
    run = primary_run(results)
    rows = [r for r in tables.get("per_example", []) if run and r.get("run") == run["label"]]
    rows = [r for r in rows if number(r, "spearman_gradient_norm") is not None]
    if not rows:
        return "This run has no per-example correlations."
    r = max(rows, key=lambda r: (int(r["classes"]), int(r["shots"])))
    where = position(r, 0.0, "gradient_ci_low", "gradient_ci_high")
    verdict = {
        "above": "tracks the end-of-training gradient norm",
        "below": "falls as the gradient norm grows",
        "includes": "is not resolved against the gradient norm (its interval includes 0)",
        None: "has no interval against the gradient norm",
    }[where]
    return (
        f"In `{r['run']}` at C = {r['classes']}, S = {int(r['shots']):,} "
        f"({int(r['n']):,} examples), the "
        f"per-example vulnerability (the standardised IN/OUT gap |Δ̂| of the logit-scaled "
        f"confidence) {verdict}: Spearman's ρ = "
        f"{interval(r, 'spearman_gradient_norm', 'gradient_ci_low', 'gradient_ci_high')}. The "
        "theory's predictor |⟨x, x − m⟩|/√(xᵀΣx), estimated on the features, gives ρ = "
        f"{interval(r, 'spearman_atypicality', 'atypicality_ci_low', 'atypicality_ci_high')}."
    )


def agree_text(results: dict, tables: dict) -> str:
    """Section 8's agreements, each counted from its table."""
    parts = []
    real = [r for run in empirical_results(results) for r in slope_rows(tables, run["label"])]
    tally = fit_tally(real)
    resolved = tally["below"] + tally["includes"] + tally["above"]
    if resolved:
        parts.append(
            f"of the real models' {plural(resolved, 'LiRA fit')} with an interval, "
            f"{tally['below']} show a decrease of the advantage in S (interval below 0)"
        )
    betas = [
        number(r, "beta_C") for r in tables.get("regression", []) if r["source"] != "all datasets"
    ]
    betas = [b for b in betas if b is not None]
    if betas:
        parts.append(
            f"{sum(b > 0 for b in betas)} of the {len(betas)} within-dataset regressions have "
            "β_C > 0 (the published sign)"
        )
    run = primary_run(results)
    rho = [
        position(r, 0.0, "gradient_ci_low", "gradient_ci_high")
        for r in tables.get("per_example", [])
        if run and r.get("run") == run["label"]
    ]
    rho = [w for w in rho if w]
    if rho:
        parts.append(
            f"{rho.count('above')} of the {len(rho)} per-example correlations with the gradient "
            "norm in the primary run lie above 0"
        )
    if not parts:
        return ""
    return "Counted from the tables: " + "; ".join(parts) + "."


def dp_text(results: dict, tables: dict) -> str:
    run = headline_run(results)
    if run is None:
        return "No real-model run was measured, so only the exact model's column is filled."
    rows = [r for r in tables.get("dp_shots", []) if number(r, "epsilon") == 1.0]
    published = [r for r in rows if number(r, "published_average") is not None]
    text = (
        f"The empirical columns invert `{run['label']}`'s fitted C = 2 online-LiRA law (the "
        "interval: a bootstrap over the fit's first S and the points within their errors); an "
        "empty cell is a law this run does not resolve, and `decades_beyond_data` says how far "
        "each value extrapolates."
    )
    found, missing = dp_shots_found(rows)
    if found:
        text += f" At ε = 1 the average example needs {listing(found)}"
        text += f"; at FPR {listing(missing)} the law is not resolved." if missing else "."
    if published:
        text += (
            " Published (secondary summary) at ε = 1: "
            + listing(
                f"{format_number(r['published_average'])} at FPR {fpr_text(float(r['fpr']))}"
                for r in published
            )
            + "."
        )
    return text


def large_extra(results: dict) -> dict:
    """The large-S run's settings, for the passages that need it."""
    run = next((r for r in empirical_results(results) if r.get("role") == "large"), None)
    if run is None:
        return {}
    s = RunSettings.from_result(run)
    return {
        "large_max_shots": f"{max(s.shots):,}",
        "large_seeds": s.seeds,
        "large_shadows": s.models - 2,
        "large_setting": s.describe(),
    }


def film_extra(results: dict, tables: dict) -> dict:
    """The FiLM comparison's settings and what its online FPR 0.01 intervals say."""
    runs = [RunSettings.from_result(r) for r in empirical_results(results, kind="film")]
    film = next((s for s in runs if s.learner == "film"), None)
    row = next(
        (
            r
            for r in tables.get("film", [])
            if r["attack"] == "LiRA online" and number(r, "fpr") == 0.01
        ),
        None,
    )
    if film is None or row is None:
        return {}
    f_lo, f_hi = number(row, "film_ci_low"), number(row, "film_ci_high")
    h_lo, h_hi = number(row, "head_ci_low"), number(row, "head_ci_high")
    if None in (f_lo, f_hi, h_lo, h_hi):
        claim = "One of the two learners has no interval to compare"
    elif f_hi < h_lo:
        claim = "FiLM's vulnerability falls faster than the head's on the same cells"
    elif f_lo > h_hi:
        claim = "FiLM's vulnerability falls more slowly than the head's on the same cells"
    else:
        steeper = (
            "steeper" if number(row, "film_slope") < number(row, "head_slope") else "shallower"
        )
        claim = (
            f"FiLM's fitted slope is {steeper} than the head's on the same cells, but their "
            "intervals overlap"
        )
    bare = sorted(
        {
            float(r["fpr"])
            for r in tables.get("film", [])
            if number(r, "film_ci_low") is None and number(r, "head_ci_low") is None
        },
        reverse=True,
    )
    unresolved = (
        f"At FPR {listing(fpr_text(f) for f in bare)} neither learner has enough unsaturated, "
        "detected points for an interval."
        if bare
        else "Both learners have an interval at every FPR."
    )
    return {
        "film_unresolved": unresolved,
        "film_setting": film.describe(),
        "film_models": film.models,
        "film_max_shots": f"{max(film.shots):,}",
        "film_claim": claim,
    }


def lambda_extra(results: dict) -> dict:
    """The L2 strengths the head runs used, read from their results, and whether Table λ exists."""
    strengths = sorted(
        {float(r["weight_decay"]) for r in empirical_results(results) if "weight_decay" in r}
    )
    setting = "λ = " + listing(f"{v:g}" for v in strengths) if strengths else "no head was trained"
    if len(strengths) > 1:
        setting += " in this run's main runs"
    note = ""
    if empirical_results(results, kind="lambda"):
        note = "; Table λ shows how the slope moves with λ"
    return {"lambda_setting": setting, "lambda_note": note}


def limits_text(results: dict) -> str:
    runs = run_settings(results)
    if not runs:
        return "No real model was measured by this run."
    top = max(runs, key=lambda s: max(s.shots))
    return (
        f"The real-model runs reach at most S = {max(top.shots):,} per class (`{top.label}`, "
        f"C = {listing(top.classes)}, {plural(top.seeds, 'seed')}); the runs' settings are in "
        "section 7."
    )


def section_extra(results: dict, tables: dict, profile, notes) -> dict:
    return (
        theory_extra(profile)
        | {"theory_agreement": theory_agreement(tables)}
        | simulation_extra(profile)
        | primary_extra(results, tables)
        | large_extra(results)
        | film_extra(results, tables)
        | lambda_extra(results)
        | mechanism_claims(tables)
        | {
            "runs_table": runs_table(results, notes),
            "regression_text": regression_text(tables),
            "per_example_text": per_example_text(results, tables),
            "agree_text": agree_text(results, tables),
            "dp_text": dp_text(results, tables),
            "limits_text": limits_text(results),
            "saturation_cuts": listing(
                f"{c:g}" for c in sorted({float(r["cut"]) for r in tables.get("saturation", [])})
            )
            or "none",
        }
    )
