"""The regression tables: log10(TPR − FPR) = β_S·log10 S + β_C·log10 C + β_0 per run and across
the image runs, and held out by backbone."""

from __future__ import annotations

from .published import PUBLISHED_R2
from .run_selection import empirical_results
from .table_format import Table

__all__ = ["BACKBONE_COLUMNS", "REGRESSION_COLUMNS", "TABLES", "backbone_rows", "regression_rows"]


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


def regression_rows(results: dict, profile=None) -> list[dict]:
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


def backbone_rows(results: dict, profile=None) -> list[dict]:
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


TABLES = (
    Table(
        "regression",
        "Regression log10(TPR-FPR) = beta_S log10 S + beta_C log10 C + beta_0",
        REGRESSION_COLUMNS,
        regression_rows,
    ),
    Table(
        "regression_backbones",
        "The regression held out by backbone (Fashion-MNIST, EfficientNet-Lite0/1/2)",
        BACKBONE_COLUMNS,
        backbone_rows,
    ),
)
