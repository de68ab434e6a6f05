"""The paper's figures drawn from a run's cells (not only from stage results): per-example
vulnerability and the ROC curves of the headline run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mialaw.empirical.cell_summary import summarize_cell
from mialaw.empirical.cells import read_cell, read_settings
from mialaw.empirical.config import RunConfig, cell_name
from mialaw.theory.metrics import roc_curve

from .figure_base import pyplot, save_figure
from .run_selection import empirical_results, headline_run


def _cells(results, out: Path, labels=None):
    """(label, name, arrays, config) of the cells of each empirical run's configuration under
    OUT/runs/ (never a glob: cells of an earlier, larger sweep are not read)."""

    for res in empirical_results(results):
        if labels is not None and res["label"] not in labels:
            continue
        run_dir = Path(out) / "runs" / res["label"]
        if not (run_dir / "settings.json").exists():
            # A reproduction from finished stages alone (cells elsewhere or deleted): the figures
            # that need cells use the runs that are here.
            continue
        settings = read_settings(run_dir)
        config = RunConfig.from_dict(settings["config"])
        for c, s, k in config.cells():
            yield res["label"], cell_name(c, s, k), read_cell(run_dir, c, s, k, settings), config


def per_example_figure(results: dict, fpr: float, out: Path, runs_root: Path) -> list[Path]:
    """Per-example vulnerability against the gradient norm and the theory's predictor."""

    plt = pyplot()
    headline = headline_run(results)
    chosen = None
    # The headline run (the one the paper's text describes) when its cells are here, else the
    # run with the most examples in a cell.
    labels = {headline["label"]} if headline is not None else None
    for source in (labels, None):
        for label, stem, cell, config in _cells(results, runs_root, labels=source):
            if chosen is None or cell["keep"].shape[1] > chosen[2]["keep"].shape[1]:
                chosen = (label, stem, cell, config)
        if chosen is not None:
            break
    if chosen is None:
        return []
    label, stem, cell, config = chosen
    summary = summarize_cell(cell, (fpr,), config)
    vul = np.abs(summary.delta)
    fig, axes = plt.subplots(1, 2, figsize=(6.6, 3.0))
    for ax, x, name in (
        (axes[0], summary.grad_norm, "gradient norm (end of training)"),
        (axes[1], summary.atypicality, "|<x, x − m>| / sqrt(xᵀΣx)"),
    ):
        ok = np.isfinite(x) & np.isfinite(vul)
        ax.scatter(x[ok], vul[ok], s=3, alpha=0.4, rasterized=True)
        ax.set(xscale="log", yscale="log", xlabel=name)
    axes[0].set_ylabel("per-example vulnerability |Δ|")
    c, shots, seed = int(cell["classes"]), int(cell["shots"]), int(cell["seed"])
    fig.suptitle(
        f"Per-example vulnerability, run {label}: C = {c}, S = {shots}, seed {seed} "
        f"({cell['keep'].shape[1]:,} examples)"
    )
    return save_figure(fig, out, "per_example")


def roc_figure(results: dict, out: Path, runs_root: Path) -> list[Path]:
    """Log-log ROC curves of LiRA online (all target models pooled), headline run, C = 2, seed 0,
    one curve per S."""

    plt = pyplot()
    run = headline_run(results)
    if run is None:
        return []
    label = run["label"]
    cells = {
        stem: (cell, config)
        for _, stem, cell, config in _cells(results, runs_root, labels={label})
        if stem.startswith("C2_") and stem.endswith("_seed0")
    }
    if not cells:
        return []
    curves = []
    by_shots = sorted(cells, key=lambda stem: int(stem.split("_")[1][1:]))
    for stem in by_shots[::2]:  # every other S keeps the picture readable
        cell, config = cells[stem]
        summary = summarize_cell(cell, (0.1,), config)  # its keep: the measured targets'
        roc = roc_curve(summary.scores["lira_online"].ravel(), summary.keep.ravel())
        curves.append((f"S = {stem.split('_')[1][1:]}", *_floored(roc.fpr, roc.tpr)))
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    ax.plot([1e-5, 1], [1e-5, 1], "k:", lw=0.8, zorder=1)  # under the curves
    for name, fpr, tpr, note in roc_notes(curves):
        ax.plot(fpr, tpr, lw=1, label=name + note, rasterized=True, zorder=2)
    ax.set(xscale="log", yscale="log", xlabel="FPR", ylabel="TPR", title=f"LiRA ROC, {label}, C=2")
    ax.set_xlim(1e-5, 1)
    ax.set_ylim(1e-5, 1.6)  # a curve at TPR = 1 shows above the frame's edge
    ax.legend(fontsize=6, loc="lower right")
    return save_figure(fig, out, "roc")


ROC_FLOOR = 1e-5  # FPR and TPR below it are drawn at it (the axes' lower edge)
ROC_TOLERANCE = 0.02  # decades: curves closer than this everywhere look like one line


def _floored(fpr, tpr):
    return np.maximum(fpr, ROC_FLOOR), np.maximum(tpr, ROC_FLOOR)


def _on_grid(fpr, tpr, grid):
    """log10 TPR of a ROC curve at the FPRs ``grid`` (log-log interpolation)."""
    order = np.argsort(fpr, kind="stable")
    return np.interp(np.log10(grid), np.log10(fpr[order]), np.log10(tpr[order]))


def roc_notes(curves) -> list[tuple]:
    """(name, fpr, tpr, note) per curve (name, fpr, tpr), drawn in that order: the note says
    when a curve cannot be seen, because it lies on the chance line or under a curve drawn after
    it (within ``ROC_TOLERANCE`` decades wherever FPR >= 1e-4)."""
    grid = np.geomspace(1e-4, 1, 200)
    logs = [_on_grid(fpr, tpr, grid) for _, fpr, tpr in curves]
    found = []
    for i, (name, fpr, tpr) in enumerate(curves):
        note = ""
        if np.max(np.abs(logs[i] - np.log10(grid))) < ROC_TOLERANCE:
            note = " (on the chance line)"
        later = [
            curves[j][0]
            for j in range(i + 1, len(curves))
            if np.max(np.abs(logs[i] - logs[j])) < ROC_TOLERANCE
        ]
        if later:
            note = f" (under {later[-1]})"
        found.append((name, fpr, tpr, note))
    return found
