"""What every figure of the project does to its axes before it is saved (matplotlib, no pyplot).

* ``readable_log_ticks``: a log axis that spans less than two of its major ticks (e.g. TPR − FPR
  from 0.02 to 0.09) gets ticks at 1, 2 and 5 times each power of ten (on a very short axis every
  integer multiple and 1.5), labelled in plain numbers; on longer axes the minor ticks stay
  unlabelled so that labels never overlap.
* ``mark_empty``: a panel with nothing drawn says so (and has no legend box).
* ``figure_legend``: one legend for the whole figure holding every labelled series of every
  panel (a legend built from one panel omits the series only other panels draw).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["drawn_anything", "figure_legend", "mark_empty", "readable_log_ticks"]

# Ticks on an axis shorter than ~0.6 decades: every integer multiple of a power of ten, and 1.5
# (so that 8 to 16 is labelled 8, 9, 10, 15).
SHORT_AXIS_SUBS = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)


def _powers_inside(lo: float, hi: float, base: float) -> int:
    """How many integer powers of ``base`` lie in [lo, hi]."""
    if not (lo > 0 and hi > 0 and math.isfinite(lo) and math.isfinite(hi)):
        return 0
    lo, hi = min(lo, hi), max(lo, hi)
    eps = 1e-9
    return max(0, math.floor(math.log(hi, base) + eps) - math.ceil(math.log(lo, base) - eps) + 1)


def readable_log_ticks(ax) -> None:
    """Labels on every log axis of ``ax``, however short (see the module docstring)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log":
            continue
        base = getattr(axis.get_transform(), "base", 10.0)
        axis.set_minor_formatter(NullFormatter())
        if _powers_inside(*limits, base) >= 2:
            continue  # the major ticks are labelled and enough
        lo, hi = sorted(limits)
        decades = math.log10(hi / lo) if lo > 0 and hi > 0 else 0.0
        subs = (1.0, 2.0, 5.0) if decades > 0.6 else SHORT_AXIS_SUBS
        axis.set_major_locator(LogLocator(base=10.0, subs=subs))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))


def drawn_anything(ax) -> bool:
    """Whether the panel shows data: a line with a finite point, or a collection (scatter, error
    bars, bands) with at least one element."""
    for line in ax.get_lines():
        x = np.asarray(line.get_xdata(), dtype=float)
        y = np.asarray(line.get_ydata(), dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        if ax.get_yscale() == "log":
            ok &= y > 0
        if ax.get_xscale() == "log":
            ok &= x > 0
        if ok.any() and not _reference_line(line):
            return True
    for collection in ax.collections:
        if len(collection.get_offsets()) or len(collection.get_paths()):
            return True
    return bool(ax.patches) or bool(ax.images)


def _reference_line(line) -> bool:
    """A line spanning the axes (axhline, axvline): a reference, not data."""
    return line.get_transform() is not line.axes.transData


def mark_empty(ax, message: str) -> bool:
    """Write ``message`` in the middle of a panel that shows no data (linear axes, no legend);
    returns whether it did."""
    if drawn_anything(ax):
        return False
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.set_xscale("linear")
    ax.set_yscale("linear")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)
    return True


def figure_legend(fig, axes=None, **options):
    """One legend of ``fig`` holding every labelled artist of ``axes`` (default: all), each label
    once, in the order first drawn; no legend (and no empty box) when nothing is labelled.
    Per-panel legends are removed. ``options`` go to ``fig.legend`` (default: below the panels;
    save with ``bbox_inches="tight"`` so that it is kept)."""
    handles: dict = {}
    for ax in fig.axes if axes is None else list(np.ravel(axes)):
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label and not label.startswith("_"):
                handles.setdefault(label, handle)
    if not handles:
        return None
    options = {
        "loc": "upper center",
        "bbox_to_anchor": (0.5, 0.0),
        "ncol": min(4, len(handles)),
        "fontsize": 7,
        "frameon": False,
    } | options
    return fig.legend(list(handles.values()), list(handles), **options)
