"""What a reader sees in a matplotlib figure, for the tests of the figures (test_figures,
test_audit): tick labels drawn, legend entries, messages in panels."""


def tick_labels(ax, which: str) -> list[str]:
    """The non-empty tick labels matplotlib draws on one axis of ``ax`` (after a draw), within
    the axis' view."""
    ax.figure.canvas.draw()
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = sorted(axis.get_view_interval())
    shown = []
    for minor in (False, True):
        for tick in axis.get_minor_ticks() if minor else axis.get_major_ticks():
            loc = tick.get_loc()
            if tick.label1.get_visible() and tick.label1.get_text() and lo <= loc <= hi:
                shown.append(tick.label1.get_text())
    return shown


def legend_texts(fig) -> set[str]:
    found = set()
    for legend in list(fig.legends) + [ax.get_legend() for ax in fig.axes]:
        if legend is not None:
            found |= {t.get_text() for t in legend.get_texts()}
    return found


def series_labels(fig) -> set[str]:
    return {
        label
        for ax in fig.axes
        for label in ax.get_legend_handles_labels()[1]
        if label and not label.startswith("_")
    }


def panel_message(ax) -> str:
    return " ".join(t.get_text() for t in ax.texts if t.get_transform() is ax.transAxes)


def check_readable(fig) -> None:
    """Every log axis has >= 2 tick labels; every labelled series is in a legend; no legend is
    empty; a panel that draws nothing says so."""
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for which in "xy":
            scale = ax.get_xscale() if which == "x" else ax.get_yscale()
            if scale == "log":
                labels = tick_labels(ax, which)
                assert len(labels) >= 2, (ax.get_title(), which, labels)
        legend = ax.get_legend()
        assert legend is None or legend.get_texts(), ax.get_title()
        drawn = ax.lines or ax.collections or ax.patches
        assert drawn or panel_message(ax), f"empty panel {ax.get_title()!r} without a message"
    missing = series_labels(fig) - legend_texts(fig)
    assert not missing, f"series without a legend entry: {sorted(missing)}"
