"""The lines of an audit a person reads in a minute, worded so they never look surer than the data.

* Exposure at the user's S, per FPR: the *largest* TPR − FPR over the attacks whose estimate the
  data resolve (measured, or predicted by a fit), with every resolved attack's value beside it and
  the attacks that could not be resolved named with the reason.
* S per class needed, per bound and FPR: from the attack that needs the most; an interval with an
  infinite upper end is "not determined by your data" (no number is given for [1, ∞]).
* The power-law slope of the headline attack: "not determined by your data" when its interval
  includes 0, and a fit to few points says how few.

Each function takes an ``AuditReport`` (not imported here: the report module imports this one).
"""

from __future__ import annotations

import math

from mialaw.empirical.audit_format import (
    NOT_DETERMINED,
    fmt_interval,
    fmt_number,
    fmt_percent,
    fmt_shot_list,
    fmt_shots,
    label,
)

FEW_POINTS = 4  # a fit to fewer points has at most one residual degree of freedom: said so


def largest_exposure(report, fpr: float):
    """(the resolved exposure with the largest estimate at ``fpr`` or None, every resolved one,
    the unresolved ones)."""
    found = [e for e in report.exposure if e.fpr == fpr]
    resolved = [e for e in found if e.resolved]
    unresolved = [e for e in found if not e.resolved]
    top = max(resolved, key=lambda e: e.advantage[1]) if resolved else None
    return top, resolved, unresolved


def binding(report, criterion: str, fpr: float):
    """(the attack needing the most shots for ``criterion`` at ``fpr`` among those whose S the
    data bound, else among all fitted ones; the other fitted attacks whose S the data do not
    bound; the attacks without a fit), or (None, [], [...]) when none is fitted."""
    found = [n for n in report.needed if n.criterion == criterion and n.fpr == fpr]
    fitted = [n for n in found if not math.isnan(n.shots[1])]
    unfitted = [n for n in found if math.isnan(n.shots[1])]
    determined = [n for n in fitted if n.determined]
    chosen = max(determined or fitted, key=lambda n: n.shots[1]) if fitted else None
    open_ = [n for n in fitted if not n.determined and n is not chosen]
    return chosen, open_, unfitted


def _few_points(law) -> str:
    n = len(law.shots_fitted)
    if n >= FEW_POINTS:
        return ""
    dof = n - 2
    return f"fitted to {n} points only ({dof} residual degree{'' if dof == 1 else 's'} of freedom)"


def slope_text(law) -> str:
    """A law's slope with its interval, "not determined" when the interval includes 0, and how
    many points it rests on when they are few."""
    sl = law.slope
    value = f"{sl.estimate:.2f} [{sl.lower:.2f}, {sl.upper:.2f}]".replace("-", "−")
    text = value if sl.upper < 0 else f"{NOT_DETERMINED} ({value}: the interval includes 0)"
    few = _few_points(law)
    return f"{text}, {few}" if few else text


def slope_reading(law) -> str:
    """What a fitted slope says, in a few words (the reports' power-law table)."""
    parts = ["falls with S" if law.slope.upper < 0 else f"{NOT_DETERMINED} (includes 0)"]
    few = _few_points(law)
    return "; ".join(parts + ([few] if few else []))


def _exposure_line(report, alpha: float) -> str:
    top, resolved, unresolved = largest_exposure(report, alpha)
    by_reason: dict = {}
    for e in unresolved:
        by_reason.setdefault(e.note or e.source, []).append(label(e.attack))
    missing = "; ".join(f"{', '.join(names)} ({why})" for why, names in by_reason.items())
    if top is None:
        return f"At FPR {fmt_percent(alpha)}: no attack's exposure is resolved ({missing})."
    lo, est, hi = top.advantage
    line = (
        f"At your S = {top.shots:,}, FPR {fmt_percent(alpha)}: TPR − FPR up to {fmt_number(est)} "
        f"{fmt_interval(lo, hi)} ({label(top.attack)}, {top.source}"
    )
    if len(resolved) > 1:
        others = ", ".join(f"{label(e.attack)} {fmt_number(e.advantage[1])}" for e in resolved)
        line += f"; the largest of {others}"
    line += ")."
    if unresolved:
        line += f" Not resolved: {missing}."
    return line


def _needed_line(report, n) -> str:
    lo, est, hi = n.shots
    have = report.data["train_shots"]
    head = f"TPR − FPR under {fmt_number(n.bound)} ({n.criterion}) at FPR {fmt_percent(n.fpr)}: "
    if not math.isfinite(hi) and lo <= 1:
        return f"{head}S per class {NOT_DETERMINED} (95% interval [1, ∞]; {label(n.attack)})."
    if not math.isfinite(hi):
        return (
            f"{head}S >= {fmt_shots(lo)} per class at least, the upper end {NOT_DETERMINED} "
            f"([{fmt_shots(lo)}, ∞]; {label(n.attack)}; you have {have:,})."
        )
    verdict = (
        "you are there already"
        if hi <= have
        else "you may be there already"
        if lo <= have
        else f"you have {have:,}"
    )
    return (
        f"{head}S >= {fmt_shots(est)} per class [{fmt_shots(lo)}, {fmt_shots(hi)}] "
        f"({label(n.attack)}; {verdict})."
    )


def _slope_line(report) -> list[str]:
    """The law of the attack the first FPR's headline names (else the first law fitted)."""
    alphas = report.settings["fpr"]
    top = largest_exposure(report, alphas[0])[0] if alphas else None
    fitted = [law for law in report.laws if law.line is not None]
    chosen = [law for law in fitted if top and (law.attack, law.fpr) == (top.attack, top.fpr)]
    law = (chosen or fitted or [None])[0]
    if law is None:
        return []
    return [
        f"Power-law slope ({label(law.attack)}, FPR {fmt_percent(law.fpr)}): {slope_text(law)}, "
        f"over S = {fmt_shot_list(law.shots_fitted)} (the theory's large-S slope is −0.5)."
    ]


def headline(report) -> list[str]:
    """The lines a person reads in a minute."""
    d, s = report.data, report.settings
    measured = sorted({p["shots"] for p in report.points})
    attacks = ", ".join(dict.fromkeys(label(law.attack) for law in report.laws))
    lines = [
        f"Data: {d['examples']:,} examples, {d['classes']} classes, {d['features']} features;"
        f" your S = {d['train_shots']:,} per class ({d['train_shots_source']}).",
        f"Audit: {attacks} against a linear head, {s['shadows']} shadows, {s['seeds']} seed(s), "
        f"S measured at {fmt_shot_list(measured)}.",
    ]
    lines += [_exposure_line(report, alpha) for alpha in s["fpr"]]
    for criterion in dict.fromkeys(n.criterion for n in report.needed):
        for alpha in s["fpr"]:
            n, open_, unfitted = binding(report, criterion, alpha)
            if n is None:
                continue
            line = _needed_line(report, n)
            if open_:
                names = ", ".join(label(m.attack) for m in open_)
                line += (
                    f" For {names} the S needed is {NOT_DETERMINED}: the S above holds for "
                    f"{label(n.attack)} only."
                )
            if unfitted:
                line += f" No fit for {', '.join(label(m.attack) for m in unfitted)}."
            lines.append(line)
    return lines + _slope_line(report)
