"""What every figure of the paper does: pyplot on the Agg backend with the paper's font sizes, and
``save_figure`` (a message in each empty panel, readable log ticks, one legend of every panel's
series, PNG and SVG)."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from mialaw.empirical.figure_axes import figure_legend, mark_empty, readable_log_ticks

FIG_FORMATS = ("png", "svg")
# The formats of the figures being written now: `figure_formats` narrows them for one rendering
# (a profile's `figure_formats`; the SVG copy costs about a third of a figure's time).
_FORMATS: ContextVar[tuple[str, ...]] = ContextVar("figure_formats", default=FIG_FORMATS)


@contextmanager
def figure_formats(formats):
    """Write the figures saved inside this block in ``formats`` (a subset of FIG_FORMATS)."""
    formats = tuple(formats)
    if not formats or not set(formats) <= set(FIG_FORMATS):
        raise ValueError(f"figure formats must be among {FIG_FORMATS}; got {formats}")
    token = _FORMATS.set(formats)
    try:
        yield
    finally:
        _FORMATS.reset(token)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 9, "legend.fontsize": 7})
    return plt


def save_figure(fig, out: Path, stem: str, legend: dict | None = None) -> list[Path]:
    """Every panel finished (a message in an empty one, readable log ticks), then one legend of
    every panel's series below the figure (``legend``: its options; None: the panels keep what
    they have), written as PNG and SVG."""
    for ax in fig.axes:
        if ax.get_visible():
            mark_empty(ax, "nothing to draw here:\nno resolvable point")
            readable_log_ticks(ax)
    fig.tight_layout()
    if legend is not None:
        figure_legend(fig, **legend)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in _FORMATS.get():
        path = out / f"{stem}.{fmt}"
        fig.savefig(path, dpi=110 if fmt == "png" else None, bbox_inches="tight")
        paths.append(path)
    pyplot().close(fig)
    return paths
