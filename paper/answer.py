"""The answer in brief of paper.md, at the scale of the run that wrote it: the headline run named
by its own label and measured settings, its fits set against −½ by their intervals, the exact
theory's local slopes at the same S, the other runs, and the shots per class for DP equivalence.
Every bullet is built from the run's tables; a bullet whose table has no rows is left out."""

from __future__ import annotations

import math

from .claims import (
    ATTACK_NAMES,
    THEORY_SLOPE,
    RunSettings,
    fpr_text,
    half_tally,
    half_verdict,
    interval,
    listing,
    number,
    plural,
    position,
    slope_rows,
)
from .render import format_number
from .run_selection import empirical_results, headline_run

PUBLISHED = (
    "every number with a 95 % bootstrap interval; the published figures quoted here come from "
    "secondary summaries of arXiv 2402.06674 and were not checked against its text"
)


def _by_attack(rows: list[dict]) -> dict[str, list[dict]]:
    """The fits of each attack, by decreasing FPR (0.1, 0.01, 10^−3)."""
    out = {}
    for name in ATTACK_NAMES.values():
        mine = [r for r in rows if r["source"].endswith(f"({name})")]
        out[name] = sorted(mine, key=lambda r: -float(r["fpr"]))
    return out


def _fit_with_quality(row: dict) -> str:
    chi2 = number(row, "chi2_dof")
    quality = f" (χ²/dof = {format_number(row['chi2_dof'])})" if chi2 is not None else ""
    return f"{interval(row)} at FPR {fpr_text(float(row['fpr']))}{quality}"


def scope(results: dict, profile_name: str, notes) -> str:
    """Which run answers, as it ran; and, when the preferred data were not computed, that the
    headline is another run's."""
    run = headline_run(results)
    if run is None:
        return (
            f"No real model was measured by this {profile_name} run (see the notes above), so "
            "only the theory and the simulation answer here."
        )
    settings = RunSettings.from_result(run)
    text = (
        f"Answered by this {profile_name} run: the headline run is `{settings.label}` "
        f"({settings.describe()}); {PUBLISHED}."
    )
    if settings.dataset != "fashion-mnist" and any(
        n.startswith("empirical-fashion-mnist") for n in notes
    ):
        text += (
            " Fashion-MNIST was not computed (see the notes above), so the headline is "
            f"`{settings.label}`, not Fashion-MNIST."
        )
    return text


def headline_bullet(results: dict, tables: dict) -> str:
    """The headline run's fits at its smallest C against −½, and its asymptotic fits."""
    run = headline_run(results)
    if run is None:
        return ""
    settings = RunSettings.from_result(run)
    classes = settings.classes[0]
    rows = slope_rows(tables, settings.label, classes)
    if not rows:
        return ""
    attacks = _by_attack(rows)
    fits = "; ".join(
        f"{name}: {listing(_fit_with_quality(r) for r in mine)}"
        for name, mine in attacks.items()
        if mine
    )
    text = (
        f"* **Measured: {half_verdict(rows)}.** `{settings.label}` at C = {classes}, fitted "
        f"slopes of log(TPR − FPR) against log S: {fits}. Against −½, {half_tally(rows)}."
    )
    ordered = [r for mine in attacks.values() for r in mine]
    asymptotic = [r for r in ordered if number(r, "asymptotic_slope") is not None]
    if asymptotic:
        parts = [
            f"{interval(r, 'asymptotic_slope', 'asymptotic_low', 'asymptotic_high')} "
            f"({r['source'].rsplit('(', 1)[1].rstrip(')')}, FPR {fpr_text(float(r['fpr']))})"
            for r in asymptotic
        ]
        where = [position(r, THEORY_SLOPE, "asymptotic_low", "asymptotic_high") for r in asymptotic]
        counted = (
            f"{where.count('includes')} of these {len(parts)} intervals include −½"
            if len(parts) > 1
            else {"includes": "its interval includes −½", None: "it has no interval"}.get(
                where[0], "its interval excludes −½"
            )
        )
        slopes = "slopes" if len(parts) > 1 else "slope"
        text += (
            f" A fit with a c/√S correction term gives asymptotic {slopes} {listing(parts)}; "
            f"{counted}"
        )
        if where.count("includes") == 0:
            text += (
                ": the correction term does not bring the curve back to −½ within "
                f"S ≤ {max(settings.shots):,}"
            )
        text += "."
    return text + " The S range and saturation cut of every fit are in `tables/slopes.csv`."


def local_bullet(results: dict, tables: dict) -> str:
    """The headline run's local slopes beside the exact theory's at the same S and FPR."""
    rows = [r for r in tables.get("asymptote", []) if number(r, "theory_slope") is not None]
    run = headline_run(results)
    if not rows or run is None:
        return ""
    theory = [number(r, "theory_slope") for r in rows]
    steeper = all(t < THEORY_SLOPE for t in theory)
    title = (
        "At these S the exact theory is steeper than −½ too"
        if steeper
        else "The exact theory's local slopes at these S"
    )
    resolved = [r for r in rows if position(r, 0.0, "real_ci_low", "real_ci_high")]
    low = min(int(float(r["shots_low"])) for r in rows)
    span = f"S = {low:,} … {max(int(float(r['shots_high'])) for r in rows):,}"
    text = (
        f"* **{title}.** Between neighbouring S ({span}) the exact model's local slope runs "
        f"from {format_number(min(theory))} to {format_number(max(theory))}: the O(S^−½) "
        "correction is not yet small (section 4)."
    )
    if not resolved:
        return text + f" None of `{run['label']}`'s local slopes has an interval."
    with_theory = sum(
        position(r, number(r, "theory_slope"), "real_ci_low", "real_ci_high") == "includes"
        for r in resolved
    )
    with_half = sum(
        position(r, THEORY_SLOPE, "real_ci_low", "real_ci_high") == "includes" for r in resolved
    )
    return text + (
        f" Of `{run['label']}`'s {plural(len(resolved), 'local slope')} with an interval "
        f"(`tables/asymptote.csv`), {with_theory} include the exact model's local slope at the "
        f"same S and FPR and {with_half} include −½."
    )


def other_runs_bullet(results: dict, tables: dict) -> str:
    """Every other main run: its C = smallest fits at FPR 0.01 and its tally against −½."""
    headline = headline_run(results)
    lines = []
    for run in empirical_results(results):
        if headline is not None and run["label"] == headline["label"]:
            continue
        settings = RunSettings.from_result(run)
        rows = slope_rows(tables, settings.label)
        if not rows:
            continue
        at = [
            r
            for r in slope_rows(tables, settings.label, settings.classes[0])
            if float(r["fpr"]) == 0.01
        ]
        fits = listing(f"{r['source'].rsplit('(', 1)[1].rstrip(')')} {interval(r)}" for r in at)
        lines.append(
            f"`{settings.label}` ({settings.describe()}): at C = {settings.classes[0]} and "
            f"FPR 0.01, {fits or 'no fit'}; over all its fits, {half_tally(rows)}"
        )
    if not lines:
        return ""
    return "* **The other runs.** " + "; ".join(lines) + " (`tables/slopes.csv`)."


def dp_shots_found(rows: list[dict]) -> tuple[list[str], list[str]]:
    """The dp_shots rows (one ε) as phrases: "1,400 (620 to 88,000) shots per class at FPR 0.01
    (1.30 decades beyond the largest measured S)" where the law is resolved, and the FPRs where
    it is not."""
    found, missing = [], []
    for row in sorted(rows, key=lambda r: -float(r["fpr"])):
        fpr = fpr_text(float(row["fpr"]))
        if number(row, "empirical_average") is None:
            missing.append(fpr)
            continue
        reach = number(row, "average_decades_beyond_data")
        beyond = ""
        if reach is not None:
            beyond = (
                f" ({reach:.1f} decades beyond the largest measured S)"
                if reach > 0
                else " (within the measured S)"
            )
        estimate = (
            interval(row, "empirical_average", "empirical_average_low", "empirical_average_high")
            .replace(" [", " (")
            .replace(", ", " to ")
            .replace("]", ")")
        )
        found.append(f"{estimate} shots per class at FPR {fpr}{beyond}")
    return found, missing


def dp_bullet(results: dict, tables: dict, profile) -> str:
    """Shots per class before the headline run's average example is inside (ε = 1)-DP."""
    run = headline_run(results)
    rows = [r for r in tables.get("dp_shots", []) if number(r, "epsilon") == 1.0]
    if run is None or not rows:
        return ""
    found, missing = dp_shots_found(rows)
    bound = f"(ε = 1, δ = {power_of_ten(profile.delta)})-DP bound"
    text = (
        f"* **Shots per class for DP equivalence.** Inverting `{run['label']}`'s fitted C = 2 "
        "online-LiRA law (a bootstrap over the fit's first S and the points), "
    )
    if found:
        text += (
            f"the average example needs {listing(found)} before LiRA's TPR is inside the {bound}"
        )
        if missing:
            text += f"; at FPR {listing(missing)} the law is not resolved"
    else:
        text += f"no FPR has a resolved law, so this run gives no shots per class for the {bound}"
    theory = [r for r in rows if number(r, "theory_average") is not None]
    if theory:
        text += f". The exact Gaussian model (d = {profile.theory.dim}) needs " + listing(
            f"{format_number(r['theory_average'])} (FPR {fpr_text(float(r['fpr']))})"
            for r in theory
        )
    return text + " (`tables/dp_shots.csv`)."


def power_of_ten(value: float) -> str:
    """10^−5 for 1e-5; other values as they are."""
    exponent = round(math.log10(value))
    return (
        f"10^{exponent}".replace("-", "−") if math.isclose(value, 10.0**exponent) else f"{value:g}"
    )


def answer_extra(results: dict, tables: dict, profile, notes) -> dict:
    """The answer's named values for the template."""
    return {
        "answer_scope": scope(results, profile.name, notes),
        "answer_headline": headline_bullet(results, tables),
        "answer_local": local_bullet(results, tables),
        "answer_other_runs": other_runs_bullet(results, tables),
        "answer_dp": dp_bullet(results, tables, profile),
    }
