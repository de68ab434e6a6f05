"""Figures a reader can read: tick labels on every log axis (however short), one legend holding
every series of every panel, a message in an empty panel, and no matplotlib warning (the test
suite turns matplotlib's warnings into errors: pyproject's filterwarnings)."""

import matplotlib
import numpy as np
import pytest
from figure_checks import check_readable, legend_texts, panel_message, tick_labels

from mialaw.empirical.analysis import fit_runs
from mialaw.empirical.experiment import RunConfig, run_sweep
from mialaw.empirical.figure_axes import figure_legend, mark_empty, readable_log_ticks
from mialaw.empirical.plots import plot_run
from mialaw.paper import cell_figures, figures

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402


# --------------------------------------------------------------------------- the helpers alone
def test_a_short_log_axis_gets_tick_labels():
    fig, ax = plt.subplots()
    ax.plot([12, 40, 210], [0.021, 0.05, 0.089], "o")
    ax.set(xscale="log", yscale="log")
    # As the figures did before: majors at powers of ten only, minor labels switched off.
    ax.yaxis.set_minor_formatter(NullFormatter())
    assert tick_labels(ax, "y") == []  # the failure this guards against: a bare axis
    readable_log_ticks(ax)
    labels = tick_labels(ax, "y")
    assert len(labels) >= 2 and all(0.01 <= float(t) <= 0.1 for t in labels), labels
    assert len(tick_labels(ax, "x")) >= 2
    plt.close(fig)


def test_one_legend_holds_the_series_of_every_panel():
    fig, axes = plt.subplots(1, 2)
    axes[0].plot([1, 2], [1, 2], label="digits")
    axes[1].plot([1, 2], [2, 1], label="Fashion-MNIST")
    axes[1].plot([1, 2], [1, 1], label="digits")  # the same series again: one entry
    axes[1].legend()
    legend = figure_legend(fig)
    assert [t.get_text() for t in legend.get_texts()] == ["digits", "Fashion-MNIST"]
    assert axes[1].get_legend() is None  # per-panel legends give way
    plt.close(fig)
    fig, ax = plt.subplots()
    assert figure_legend(fig) is None and not fig.legends  # nothing labelled: no empty box
    plt.close(fig)


def test_an_empty_panel_says_so_and_a_scatter_is_not_empty():
    fig, axes = plt.subplots(1, 2)
    axes[0].set(xscale="log", yscale="log")
    axes[0].axhline(0.5)  # a reference line is not data
    axes[1].scatter([1.0, 2.0], [3.0, 4.0])
    assert mark_empty(axes[0], "no resolvable point")
    assert not mark_empty(axes[1], "no resolvable point")
    assert panel_message(axes[0]) == "no resolvable point" and panel_message(axes[1]) == ""
    with pytest.raises(AssertionError, match="without a message"):
        fig2, ax2 = plt.subplots()
        check_readable(fig2)
    plt.close("all")


# --------------------------------------------------------------------------- the paper's figures
@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Two small real runs, digits and Gaussian features, as the paper's stages record them."""
    root = tmp_path_factory.mktemp("figures")
    found = {}
    for label, options in (
        ("digits-pixels", dict(dataset="digits", backbone="pixels")),
        (
            "gaussian-identity",
            dict(
                dataset="gaussian",
                backbone="identity",
                dataset_options={"dim": 16, "n_per_class": 300, "seed": 0},
            ),
        ),
    ):
        config = RunConfig(
            classes=(2,), shots=(2, 4, 8, 16), shadows=4, fpr=(0.1, 0.001), **options
        )
        result = run_sweep(config, root / "runs" / label, progress=False, plots=False)
        found[f"empirical-{label}"] = {"label": label, "run_dir": f"runs/{label}"}
        found[f"empirical-{label}"] |= result.to_json()
    return root, found


@pytest.fixture
def drawn(monkeypatch):
    """Every figure the code under test saves (kept open for inspection after it is closed)."""
    saved = []
    original = matplotlib.figure.Figure.savefig

    def record(fig, *args, **kwargs):
        if fig not in saved:
            saved.append(fig)
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    return saved


@pytest.mark.parametrize(
    "draw",
    ["law", "empirical_by_class", "quantiles", "per_example", "roc"],
)
def test_paper_figures_are_readable(results, drawn, tmp_path, draw):
    root, res = results
    fprs = (0.1, 0.001)
    paths = {
        "law": lambda: figures.law_figure(res, fprs, tmp_path),
        "empirical_by_class": lambda: figures.empirical_by_class_figure(res, fprs, tmp_path),
        "quantiles": lambda: figures.quantile_figure(res, fprs, tmp_path),
        "per_example": lambda: cell_figures.per_example_figure(res, 0.1, tmp_path, root),
        "roc": lambda: cell_figures.roc_figure(res, tmp_path, root),
    }[draw]()
    assert paths and drawn
    for fig in drawn:
        check_readable(fig)
    if draw == "law":  # both runs are in the one legend (each draws in one panel only)
        texts = " ".join(legend_texts(drawn[0]))
        assert "digits-pixels" in texts and "gaussian-identity" in texts, texts
    if draw == "per_example":  # titled by the run and the cell it shows
        title = drawn[0]._suptitle.get_text()
        assert "run digits-pixels" in title or "run gaussian-identity" in title, title
        assert "S = 16" in title, title


def test_empirical_plots_are_readable(results, drawn, tmp_path):
    root, _ = results
    plot_run(fit_runs([root / "runs" / "gaussian-identity"]), tmp_path)
    assert len(drawn) == 2  # advantage.png and roc.png
    for fig in drawn:
        check_readable(fig)


def test_roc_legend_says_which_curves_cannot_be_seen():
    fpr = np.geomspace(1e-5, 1, 50)
    saturated = np.ones_like(fpr)
    curves = [
        ("S = 1", fpr, saturated),  # drawn first, then covered by S = 4
        ("S = 4", fpr, saturated),
        ("S = 16", fpr, np.sqrt(fpr)),
        ("S = 64", fpr, fpr.copy()),  # chance
    ]
    notes = {name: note for name, _, _, note in cell_figures.roc_notes(curves)}
    assert notes == {
        "S = 1": " (under S = 4)",
        "S = 4": "",
        "S = 16": "",
        "S = 64": " (on the chance line)",
    }
