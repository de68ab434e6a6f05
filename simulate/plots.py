"""Log-log plot of a sweep: advantage TPR − α against S with intervals, theory and fitted lines."""

from __future__ import annotations

import numpy as np


def plot_sweep(result, path) -> None:
    """Write a PNG of ``result`` (a SweepResult): one colour per α.

    Markers: measured pooled advantage with its Clopper–Pearson interval (points whose advantage is
    not resolvably above zero are drawn hollow at their upper bound); dashed: the exact theory
    (pooled Neyman–Pearson) at the same S; solid: the fitted power law over the resolvable points.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config = result.config
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, a in enumerate(config.fpr):
        colour = colours[i % len(colours)]
        pts = result.select(a)
        shots = np.array([p.shots for p in pts], dtype=np.float64)
        adv = np.array([p.advantage for p in pts])
        low = np.array([p.tpr_ci[0] - a for p in pts])
        high = np.array([p.tpr_ci[1] - a for p in pts])
        ok = np.array([p.resolvable for p in pts])
        if ok.any():
            yerr = np.vstack([adv[ok] - low[ok], high[ok] - adv[ok]])
            ax.errorbar(
                shots[ok],
                adv[ok],
                yerr=yerr,
                fmt="o",
                color=colour,
                capsize=3,
                label=f"{config.attack}, α={a:g}",
            )
        if (~ok & (high > 0)).any():
            ax.plot(
                shots[~ok & (high > 0)],
                high[~ok & (high > 0)],
                "v",
                mfc="none",
                color=colour,
                label=f"α={a:g}: upper bound (not resolvable)",
            )
        theory = [p.theory_pooled for p in pts]
        if all(t is not None for t in theory):
            ax.plot(
                shots,
                np.array(theory) - a,
                "--",
                color=colour,
                alpha=0.7,
                label=f"exact theory (pooled NP), α={a:g}",
            )
        try:
            fit = result.fit(a)
        except ValueError:
            continue
        fitted = shots[fit.kept]  # draw the fitted law over the range it was fitted on
        grid = np.geomspace(fitted.min(), fitted.max(), 50)
        slope = fit.slope
        ax.plot(
            grid,
            fit.predict(grid),
            "-",
            color=colour,
            alpha=0.5,
            label=f"fit slope {slope.estimate:.3f} [{slope.lower:.3f}, {slope.upper:.3f}]",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("shots per class S")
    ax.set_ylabel("advantage TPR − FPR (pooled)")
    ax.set_title(f"d={config.dim}, σ={config.sigma:g}, C={config.classes}, {config.attack}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
