"""The mechanism stage: what makes the real slopes steeper than −½ (``science.md`` section 5).

It reads the cells of the large-S run and of the runs that change one thing about it (the
``mechanism`` role of ``profiles.py``: features projected to d dimensions, other λ, the class-mean
learner), plus the Gaussian feature-space runs with the head and with the class-mean learner (the
bridge's known answer), and computes for each: the per-example gaps followed from S₀ through every
larger S (``empirical.gaps``), and, where listed, the calibrated bridge from S₀
(``empirical.bridge``), whose measured side is the run's own empirical stage's points. Returns one
JSON-ready dict.
"""

from __future__ import annotations

from pathlib import Path

from mialaw.empirical.analysis import json_ready
from mialaw.empirical.bridge import bridge
from mialaw.empirical.gaps import follow_gaps, gap_rows

# Part of the stage's configuration: bump it when what it computes changes.
MECHANISM_VERSION = 1
# label -> S0 of the followed examples, and (for the bridge) S0 of the prediction.
GAP_BASE = {"gaussian": 16, "gaussian-class-mean": 32}
DEFAULT_GAP_BASE = 64
BRIDGE_BASE = {
    "fashion-mnist-lite0-c2-large": 64,
    "fashion-mnist-lite0-c2-class-mean": 64,
    "gaussian": 32,
    "gaussian-class-mean": 64,
}
GAP_RESAMPLES = 1000
BRIDGE_INTERVALS = 100


def plan_labels(spec) -> list[str]:
    """The runs of a profile the stage reads: the large-S run and every mechanism run, plus the
    Gaussian head run where its class-mean twin is in the profile."""
    labels = [e.label for e in spec.empirical if e.role in ("large", "mechanism")]
    if "gaussian-class-mean" in labels and any(e.label == "gaussian" for e in spec.empirical):
        labels.append("gaussian")
    return labels


def _measured(points, classes: int) -> dict:
    return {
        (p["shots"], p["attack"], p["fpr"]): p
        for p in points
        if p["classes"] == classes and p["attack"] in ("lira_online", "lira_offline")
    }


def mechanism(
    out: Path,
    labels,
    results: dict,
    *,
    gap_resamples: int = GAP_RESAMPLES,
    intervals: int = BRIDGE_INTERVALS,
) -> dict:
    """Gap laws for every run in ``labels`` and the bridge where ``BRIDGE_BASE`` lists it
    (``gap_resamples``, ``intervals``: bootstrap resamples of the gaps and of the bridge's S₀
    examples)."""

    runs = {}
    for label in labels:
        run_dir = Path(out) / "runs" / label
        base = GAP_BASE.get(label, DEFAULT_GAP_BASE)
        followed = follow_gaps(run_dir, base)
        entry = {"gaps": gap_rows(followed, resamples=gap_resamples)}
        stage = results.get(f"empirical-{label}") or {}
        if label in BRIDGE_BASE and stage.get("points"):
            found = bridge(
                run_dir,
                BRIDGE_BASE[label],
                measured=_measured(stage["points"], followed.classes),
                intervals=intervals,
            )
            entry["bridge"] = found.to_json()
        entry["gaps"]["run"] = f"runs/{label}"
        if "bridge" in entry:
            entry["bridge"]["run"] = f"runs/{label}"
        runs[label] = entry
    return json_ready({"version": MECHANISM_VERSION, "runs": runs})
