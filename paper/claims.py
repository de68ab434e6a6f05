"""The sentences of paper.md that depend on what a run computed: each is built from the run's own
stage results and tables, never written once for the full profile and printed for every run.

A claim about a table ("every fit is clearly negative") is a count over that table's rows, and the
sentence says what the count found. A run's settings (data, backbone, C, S, seeds, models) are read
from the points it measured, so a run that stopped early or ran at another scale is described as it
ran. Rows are the tables' CSV rows (strings; an empty cell is a null).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mialaw.empirical.attacks import law_attacks

from .render import format_number
from .run_selection import empirical_results

# How the paper names the datasets and feature extractors of the runs (others: their own name).
DATASET_NAMES = {
    "fashion-mnist": "Fashion-MNIST",
    "digits": "scikit-learn's 8×8 digits",
    "gaussian": "draws of the Gaussian model",
}
BACKBONE_NAMES = {"pixels": "raw pixels", "identity": "no feature extractor"}
LEARNER_NAMES = {"head": "linear head", "film": "FiLM", "class-mean": "class means"}
# {name: label} of the attacks the law tables show (the registry's, as the tables name them).
ATTACK_NAMES = law_attacks()
THEORY_SLOPE = -0.5


def number(row: dict, column: str) -> float | None:
    """A cell as a float; None for an empty cell (the tables' null) or a missing column."""
    cell = row.get(column)
    if cell in (None, ""):
        return None
    try:
        return float(cell)
    except ValueError:
        return None


def fpr_text(fpr: float) -> str:
    return "10^−3" if math.isclose(fpr, 0.001) else f"{fpr:g}"


def listing(items) -> str:
    """Items joined as prose: "a", "a and b", "a, b and c"."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def shots_text(shots) -> str:
    low, high = min(shots), max(shots)
    return f"S = {low:,}" if low == high else f"S = {low:,} … {high:,}"


def backbone_name(backbone: str) -> str:
    if backbone in BACKBONE_NAMES:
        return BACKBONE_NAMES[backbone]
    return backbone.replace("efficientnet-lite", "EfficientNet-Lite") + " features"


@dataclass(frozen=True)
class RunSettings:
    """What an empirical run measured, read from its points (not from the profile's request)."""

    label: str
    role: str
    dataset: str
    backbone: str
    learner: str
    classes: tuple[int, ...]
    shots: tuple[int, ...]
    seeds: int
    models: int  # per cell: the shadows plus the target's complementary pair

    @classmethod
    def from_result(cls, res: dict) -> RunSettings:
        points = res.get("points") or []
        if not points:
            raise ValueError(f"run {res.get('label')!r} has no measured points to describe")
        first = points[0]
        return cls(
            label=res["label"],
            role=res.get("role", "main"),
            dataset=first.get("dataset", "?"),
            backbone=first.get("backbone", "?"),
            learner=first.get("learner", "head"),
            classes=tuple(sorted({int(p["classes"]) for p in points})),
            shots=tuple(sorted({int(p["shots"]) for p in points})),
            seeds=max(int(p.get("seeds", 1)) for p in points),
            models=max(int(p.get("models", 0)) for p in points),
        )

    @property
    def data(self) -> str:
        return f"{DATASET_NAMES.get(self.dataset, self.dataset)}, {backbone_name(self.backbone)}"

    def describe(self) -> str:
        """The run in one phrase, e.g. "Fashion-MNIST, EfficientNet-Lite0 features; linear head;
        C = 2; S = 1 … 64 per class; 1 seed; 16 shadow models"."""
        learner = LEARNER_NAMES.get(self.learner, self.learner)
        return (
            f"{self.data}; {learner}; C = {listing(self.classes)}; {shots_text(self.shots)} per "
            f"class; {plural(self.seeds, 'seed')}; {plural(self.models - 2, 'shadow model')}"
        )


def run_settings(results: dict, kind: str = "main") -> list[RunSettings]:
    return [RunSettings.from_result(res) for res in empirical_results(results, kind=kind)]


# --- fits and what they say --------------------------------------------------------------------


def interval(row: dict, estimate="slope", low="ci_low", high="ci_high") -> str:
    """An estimate and its interval, "−0.67 [−0.69, −0.66]"; an estimate without an interval says
    so; no estimate: "no fit"."""
    value = number(row, estimate)
    if value is None:
        return "no fit"
    lo, hi = number(row, low), number(row, high)
    if lo is None or hi is None:
        return f"{format_number(row[estimate])} (no interval)"
    return f"{format_number(row[estimate])} [{format_number(row[low])}, {format_number(row[high])}]"


def position(row: dict, reference: float, low="ci_low", high="ci_high") -> str | None:
    """Where a fit's interval lies against ``reference``: "below", "includes", "above"; None
    when the fit has no interval."""
    lo, hi = number(row, low), number(row, high)
    if lo is None or hi is None:
        return None
    if hi < reference:
        return "below"
    return "above" if lo > reference else "includes"


def slope_rows(tables: dict, label: str, classes: int | None = None) -> list[dict]:
    """The run's LiRA fits (online and offline) in the slopes table, by attack, C and FPR."""
    wanted = {f"{label} ({name})": name for name in ATTACK_NAMES.values()}
    rows = [r for r in tables.get("slopes", []) if r.get("source") in wanted]
    if classes is not None:
        rows = [r for r in rows if r.get("setting") == f"C={classes}"]
    return rows


def half_tally(rows: list[dict]) -> str:
    """How many fits lie below, include or lie above −½ (intervals only)."""
    where = [position(r, THEORY_SLOPE) for r in rows]
    counted = [w for w in where if w]
    if not counted:
        return "no fit has an interval to compare"
    parts = [
        f"{counted.count('below')} lie wholly below −½ (steeper)",
        f"{counted.count('includes')} include −½",
        f"{counted.count('above')} lie wholly above it (shallower)",
    ]
    return f"of the {plural(len(counted), 'interval')}, {listing(parts)}"


def half_verdict(rows: list[dict]) -> str:
    """The headline's claim about −½, from the intervals of its fits."""
    where = [w for w in (position(r, THEORY_SLOPE) for r in rows) if w]
    if not where:
        return "no fit resolves the slope at this scale"
    if all(w == "below" for w in where):
        return "the real curve falls faster than −½ over its fitted range"
    if all(w == "above" for w in where):
        return "the real curve falls more slowly than −½ over its fitted range"
    if all(w == "includes" for w in where):
        return "the real curve is consistent with −½ over its fitted range"
    return "the real curve's fits do not agree with one another about −½"


def fit_tally(rows: list[dict], reference: float = 0.0) -> dict[str, int]:
    """Counts of fits by where their interval lies against ``reference`` (plus "none": fits
    without an interval or without a slope)."""
    tally = {"below": 0, "includes": 0, "above": 0, "none": 0}
    for row in rows:
        tally[position(row, reference) or "none"] += 1
    return tally
