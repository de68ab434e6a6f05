"""Figures of an empirical run (matplotlib, Agg): advantage against S and log-log ROC curves.

* ``advantage.png``: TPR − FPR against shots S on log-log axes, one panel per (attack, FPR), one
  line per (dataset, backbone, C), with Clopper–Pearson intervals as error bars and the fitted
  power law (dashed) over the resolvable points. Non-positive advantages cannot be drawn on a log
  axis; they are marked at the bottom edge with open markers.
* ``roc.png``: log-log ROC curves of online LiRA (mean TPR over target models at each FPR, pooled
  over seeds) per (C, S), one panel per C.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mialaw.empirical.attacks import attack_label
from mialaw.empirical.cell_summary import ROC_GRID
from mialaw.empirical.figure_axes import mark_empty, readable_log_ticks

__all__ = ["plot_advantage", "plot_roc", "plot_run"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_advantage(result, path) -> Path:
    """Advantage against S (log-log) with intervals and fitted power laws."""
    plt = _pyplot()
    points = result.points
    panels = sorted({(p["attack"], p["fpr"]) for p in points}, key=lambda k: (k[0], -k[1]))
    cols = min(3, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    fits = {
        (f["dataset"], f["backbone"], f["classes"], f["attack"], f["fpr"]): f
        for f in result.fit["power_law"]
        if "error" not in f
    }
    for ax, (attack, alpha) in zip(axes.ravel(), panels):
        rows_ = [p for p in points if p["attack"] == attack and p["fpr"] == alpha]
        lines = sorted({(p["dataset"], p["backbone"], p["classes"]) for p in rows_})
        positive = [p["advantage"] for p in rows_ if (p["advantage"] or 0) > 0]
        floor = min(positive) / 3 if positive else alpha / 100
        for i, line in enumerate(lines):
            pts = sorted(
                (p for p in rows_ if (p["dataset"], p["backbone"], p["classes"]) == line),
                key=lambda p: p["shots"],
            )
            # Unresolvable points (no TPR) are not drawn; undetected ones as open circles.
            pts = [p for p in pts if p["resolvable"]]
            if not pts:
                continue
            s = np.array([p["shots"] for p in pts], dtype=float)
            adv = np.array([p["advantage"] for p in pts], dtype=float)
            lo = np.array([p["tpr_ci"][0] for p in pts], dtype=float) - alpha
            hi = np.array([p["tpr_ci"][1] for p in pts], dtype=float) - alpha
            good = adv > 0
            color = f"C{i % 10}"
            label = f"{line[0]}/{line[1]} C={line[2]}"
            ax.errorbar(
                s[good],
                adv[good],
                yerr=[adv[good] - np.maximum(lo[good], floor), hi[good] - adv[good]],
                fmt="o-",
                color=color,
                ms=3,
                capsize=2,
                label=label,
            )
            if np.any(~good):
                ax.plot(s[~good], np.full((~good).sum(), floor), "o", mfc="none", color=color)
            fit = fits.get(line + (attack, alpha))
            if fit is not None:
                grid = np.geomspace(s.min(), s.max(), 50)
                ax.plot(
                    grid,
                    10 ** (fit["intercept"] + fit["slope"] * np.log10(grid)),
                    "--",
                    color=color,
                    lw=1,
                    label=f"slope {fit['slope']:.2f}",
                )
        ax.set_title(f"{attack_label(attack)}, FPR = {alpha:g}")
        if mark_empty(ax, "no resolvable point"):
            continue
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("shots per class S")
        ax.set_ylabel("TPR − FPR")
        readable_log_ticks(ax)
        ax.legend(fontsize=6)  # this panel's series and its fitted slopes
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_roc(runs, path, score: str = "lira_online") -> Path:
    """Log-log ROC curves (mean TPR over targets and seeds) per (C, S), one panel per C."""
    plt = _pyplot()
    curves: dict = {}
    for run in runs:
        for cell in run.cells:
            if score in cell.roc:
                key = (run.dataset, cell.classes)
                curves.setdefault(key, {}).setdefault(cell.shots, []).append(cell.roc[score])
    keys = sorted(curves)
    if not keys:
        raise ValueError(f"no {score} scores to draw")
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes.ravel(), keys):
        shots = sorted(curves[key])
        cmap = plt.get_cmap("viridis")
        for j, s in enumerate(shots):
            tpr = np.mean(curves[key][s], axis=0)
            ax.plot(
                ROC_GRID,
                np.maximum(tpr, 1e-5),
                color=cmap(j / max(len(shots) - 1, 1)),
                label=f"S={s}",
            )
        ax.plot(ROC_GRID, ROC_GRID, ":", color="grey", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(ROC_GRID[0], 1)
        ax.set_ylim(1e-5, 1)
        ax.set_xlabel("FPR")
        ax.set_ylabel("TPR")
        ax.set_title(f"{key[0]}, C = {key[1]} ({attack_label(score)})")
        readable_log_ticks(ax)
        ax.legend(fontsize=6)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_run(result, out_dir) -> list[Path]:
    """Write advantage.png and roc.png of a ``SweepResult`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [plot_advantage(result, out_dir / "advantage.png")]
    if any("lira_online" in c.roc for r in result.runs for c in r.cells):
        paths.append(plot_roc(result.runs, out_dir / "roc.png"))
    return paths
