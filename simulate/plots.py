"""Log-log plot of a sweep: advantage TPR − α against S with intervals, theory and fitted lines."""

from __future__ import annotations

import numpy as np


def plot_sweep(result, path) -> None:
    """Write a PNG of ``result`` (a SweepResult): one colour per α.

    Markers: measured pooled advantage with its interval (the point's ``interval_method``,
    bootstrap by default); resolvable points whose interval reaches α (not detected) are drawn
    hollow at their upper bound; unresolvable points (no TPR) are not drawn. Dashed: the exact
    theory (pooled Neyman–Pearson) at the same S; solid: the weighted power-law fit over the
    detected points it used.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config = result.config
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, a in enumerate(config.fpr):
        _plot_fpr(ax, result, a, colours[i % len(colours)])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("shots per class S")
    ax.set_ylabel("advantage TPR − FPR (pooled)")
    ax.set_title(f"d={config.dim}, σ={config.sigma:g}, C={config.classes}, {config.attack}")
    _label_short_log_axis(ax.yaxis)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no detected point", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _label_short_log_axis(axis) -> None:
    """A log axis spanning less than two powers of ten gets labels at 1, 2 and 5 times each
    (matplotlib labels only the powers of ten, so a short axis would show none)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    lo, hi = sorted(axis.get_view_interval())
    if lo > 0 and np.floor(np.log10(hi)) - np.ceil(np.log10(lo)) + 1 < 2:
        axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())


def _plot_fpr(ax, result, a: float, colour) -> None:
    """The measured points, the theory and the fitted law at one α."""
    pts = result.select(a)
    shots = np.array([p.shots for p in pts], dtype=np.float64)
    _plot_measured(ax, pts, shots, a, colour, result.config.attack)
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
        return
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


def _plot_measured(ax, pts, shots, a: float, colour, attack: str) -> None:
    """Detected points with their intervals; resolvable undetected ones as upper bounds."""
    adv = np.array([p.advantage for p in pts])
    low = np.array([p.tpr_ci[0] - a for p in pts])
    high = np.array([p.tpr_ci[1] - a for p in pts])
    resolvable = np.array([p.resolvable for p in pts])
    ok = resolvable & np.array([p.detected for p in pts])
    if ok.any():
        # The bootstrap interval need not contain the estimate's own log: clip at zero.
        yerr = np.vstack(
            [np.clip(adv[ok] - low[ok], 0, None), np.clip(high[ok] - adv[ok], 0, None)]
        )
        ax.errorbar(
            shots[ok],
            adv[ok],
            yerr=yerr,
            fmt="o",
            color=colour,
            capsize=3,
            label=f"{attack}, α={a:g}",
        )
    bound = resolvable & ~ok & (high > 0)
    if bound.any():
        ax.plot(
            shots[bound],
            high[bound],
            "v",
            mfc="none",
            color=colour,
            label=f"α={a:g}: upper bound (not detected)",
        )
