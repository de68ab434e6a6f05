"""The full study's mechanism sentences (the class-mean gaps, λ, capacity, the regression across
backbones), each decided by the intervals of the table it describes."""

from __future__ import annotations

from .claims import number, position, slope_rows
from .render import format_number


def _overlap(rows: list[dict]) -> bool | None:
    """Whether every pair of the rows' slope intervals overlaps (None: an interval is missing)."""
    bounds = [(number(r, "ci_low"), number(r, "ci_high")) for r in rows]
    if not rows or any(lo is None or hi is None for lo, hi in bounds):
        return None
    return max(lo for lo, _ in bounds) <= min(hi for _, hi in bounds)


def _offline_c2(tables: dict, label: str) -> dict | None:
    return next(
        (
            r
            for r in slope_rows(tables, label, 2)
            if r["source"].endswith("(LiRA offline)") and number(r, "fpr") == 0.01
        ),
        None,
    )


def mechanism_claims(tables: dict) -> dict:
    """The full study's mechanism sentences, each decided by its table's intervals."""
    gaps = [
        r
        for r in tables.get("gap_laws", [])
        if r["run"] == "fashion-mnist-lite0-c2-class-mean"
        and (r["law"] in ("mean gap", "rms gap") or r["law"].startswith("S0-gap quintile"))
    ]
    where = [position(r, -0.5) for r in gaps]
    if gaps and all(w == "includes" for w in where):
        gap_claim = "every example's gap falls as S^−½ (every law's interval includes −½)"
    else:
        gap_claim = (
            f"the examples' gaps fall close to S^−½ ({where.count('includes')} of the "
            f"{len(gaps)} laws' intervals include −½)"
        )
    base = "fashion-mnist-lite0-c2-large"
    lambdas = [_offline_c2(tables, f"{base}{s}") for s in ("-lambda0.001", "", "-lambda0.1")]
    overlap = _overlap([r for r in lambdas if r is not None]) if all(lambdas) else None
    lambda_claim = {
        True: "λ over two decades does not move the law beyond its intervals",
        False: "λ moves the law beyond its intervals",
        None: "not every λ has an interval to compare",
    }[overlap]
    narrow, full = (
        _offline_c2(tables, f"{base.replace('large', 'pca16')}"),
        _offline_c2(tables, base),
    )
    shallower = None
    if narrow and full and None not in (number(narrow, "slope"), number(full, "ci_high")):
        shallower = number(narrow, "slope") > number(full, "ci_high")
    capacity_claim = {
        False: "is not supported: at d = 16 every S ≥ 8 has S·C/d ≥ 1, and the curve is no "
        "shallower there than with all 1,280 features",
        True: "finds support: with d = 16 the fitted slope lies above the interval of the run "
        "with all 1,280 features",
        None: "cannot be judged: a fit lacks an interval",
    }[shallower]
    mean_rows = [
        r
        for r in slope_rows(tables, "fashion-mnist-lite0-c2-class-mean", 2)
        if number(r, "fpr") == 0.01
    ]
    below = [position(r, -0.5) == "below" for r in mean_rows]
    class_mean_claim = (
        "is steep too (its FPR 0.01 intervals lie below −½)"
        if below and all(below)
        else f"is steeper than −½ in {sum(below)} of its {len(below)} FPR 0.01 fits"
    )
    return {
        "class_mean_claim": class_mean_claim,
        "class_mean_gap_claim": gap_claim,
        "lambda_claim": lambda_claim,
        "capacity_claim": capacity_claim,
        "backbone_claim": _backbone_claim(tables),
        "max_gap_at_largest": _max_gap(tables, base),
    }


def _max_gap(tables: dict, run: str) -> str:
    """The largest standardised gap Δ̂ of the run's followed examples at its largest S."""
    rows = [r for r in tables.get("gaps", []) if r["run"] == run and number(r, "max_scaled")]
    if not rows:
        return "not measured"
    last = max(rows, key=lambda r: float(r["shots"]))
    gap = number(last, "max_scaled") / float(last["shots"]) ** 0.5
    return f"about {gap:.0f}"


def _backbone_claim(tables: dict) -> str:
    """Section 8 (iv): how the regression predicts held-out backbones and held-out datasets."""
    held = [
        number(r, "r2_held_out")
        for r in tables.get("regression_backbones", [])
        if r["design"].startswith("fitted on") and r["attack"] == "lira_offline"
    ]
    held = [h for h in held if h is not None]
    datasets = [
        number(r, "held_out_r2")
        for r in tables.get("regression", [])
        if r["source"] == "all datasets" and r["attack"] == "lira_offline"
    ]
    datasets = [d for d in datasets if d is not None]
    if not held:
        return "The regression has no held-out backbone to predict."
    text = (
        "Fitted on one backbone, the regression (offline LiRA) predicts the held-out backbones "
        f"with R² from {format_number(str(min(held)))} to {format_number(str(max(held)))}"
    )
    if datasets:
        verdict = "worse than predicting the mean" if max(datasets) < 0 else "better than the mean"
        text += (
            "; fitted across datasets, predicting one dataset from the others gives R² from "
            f"{format_number(str(min(datasets)))} to {format_number(str(max(datasets)))} "
            f"({verdict})"
        )
    return text + "."
