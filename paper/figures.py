"""The study's figures (PNG and SVG), drawn from stage results and the empirical run folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .tables import empirical_results

FIG_FORMATS = ("png", "svg")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 9, "legend.fontsize": 7})
    return plt


def _save(fig, out: Path, stem: str) -> list[Path]:
    from matplotlib.ticker import NullFormatter

    # Minor tick labels on log axes crowd small panels; the major decades are enough.
    for ax in fig.axes:
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FIG_FORMATS:
        path = out / f"{stem}.{fmt}"
        fig.savefig(path, dpi=110 if fmt == "png" else None, bbox_inches="tight")
        paths.append(path)
    _plt().close(fig)
    return paths


def _errorbars(ax, shots, tpr, ci, fpr, **style):
    """Advantage TPR − α with its Clopper–Pearson interval, drawn only where it is positive."""
    shots, tpr, ci = np.asarray(shots, float), np.asarray(tpr, float), np.asarray(ci, float)
    adv = tpr - fpr
    ok = adv > 0
    if not ok.any():
        return
    low = np.clip(adv - (ci[:, 0] - fpr), 0, None)
    high = ci[:, 1] - fpr - adv
    low = np.minimum(low, adv * 0.999)  # keep the bar on a log axis
    ax.errorbar(shots[ok], adv[ok], yerr=[low[ok], high[ok]], fmt="o", ms=3, capsize=2, **style)


def _series(ax, pts, alpha, fit, **style):
    """One source: advantage points with intervals and, when there is one, its fitted line."""
    shots = [p["shots"] for p in pts]
    _errorbars(ax, shots, [p["tpr"] for p in pts], [p["tpr_ci"] for p in pts], alpha, **style)
    if fit and "error" not in fit:
        _fit_line(ax, fit, shots, color=style.get("color"))


def _lira_points(res, alpha, classes):
    return [
        p
        for p in res["points"]
        if p["attack"] == "lira_online" and p["fpr"] == alpha and p["classes"] == classes
    ]


def _fit_line(ax, fit, shots, **style):
    if not fit or fit.get("slope") is None:
        return
    s = np.geomspace(min(shots), max(shots), 50)
    ax.plot(s, 10 ** (fit["slope"] * np.log10(s) + fit["intercept"]), "--", lw=1, **style)


def law_figure(results: dict, fprs, out: Path) -> list[Path]:
    """The law in one picture: theory, simulated oracle and LiRA, and real models, per α."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(fprs), figsize=(3.4 * len(fprs), 3.2), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, alpha in zip(axes[0], fprs):
        theory = results.get("theory")
        if theory:
            # The exact curves run to 1e16 shots; show them where the data are (up to 1e8).
            rows = [r for r in theory["rows"] if r["fpr"] == alpha and r["shots"] <= 1e8]
            s = np.array([r["shots"] for r in rows])
            ax.plot(s, [r["advantage_np"] for r in rows], "k-", lw=1.2, label="exact (NP, per-ex.)")
            pooled = [(r["shots"], r["pooled_advantage"]) for r in rows if r["pooled_advantage"]]
            if pooled:
                ps, pa = np.array(pooled).T
                ax.plot(ps, np.where(pa > 0, pa, np.nan), "k:", lw=1.2, label="exact (pooled)")
        k = 0
        for name, res in results.items():
            if not name.startswith("simulate-"):
                continue
            pts = [p for p in res["points"] if p["fpr"] == alpha]
            fit = (res["fit"].get(str(alpha)) or {}).get("pooled")
            label = f"sim. {res['config']['attack']}"
            _series(ax, pts, alpha, fit, color=colors[k % len(colors)], label=label)
            k += 1
        for res in empirical_results(results):
            c = min(p["classes"] for p in res["points"])
            law = next(
                (
                    f
                    for f in res["fit"]["power_law"]
                    if f["attack"] == "lira_online" and f["fpr"] == alpha and f["classes"] == c
                ),
                None,
            )
            label = f"{res['label']} C={c}"
            color = colors[k % len(colors)]
            _series(
                ax, _lira_points(res, alpha, c), alpha, law, color=color, marker="s", label=label
            )
            k += 1
        ax.set(xscale="log", yscale="log", xlabel="shots per class S", title=f"FPR = {alpha:g}")
        ax.set_ylim(bottom=max(1e-7, ax.get_ylim()[0]))
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("advantage TPR − FPR")
    axes[0][-1].legend(loc="lower left")
    fig.suptitle("log(TPR − FPR) = −½ log S + c: exact theory, simulation, real models", y=1.03)
    return _save(fig, out, "law")


def empirical_by_class_figure(results: dict, fprs, out: Path) -> list[Path]:
    """Per dataset/backbone: advantage against S, one line per C, with intervals and fits."""
    plt = _plt()
    runs = empirical_results(results)
    if not runs:
        return []
    fig, axes = plt.subplots(
        len(runs), len(fprs), figsize=(3.2 * len(fprs), 2.8 * len(runs)), squeeze=False
    )
    for row, res in zip(axes, runs):
        for ax, alpha in zip(row, fprs):
            for c in sorted({p["classes"] for p in res["points"]}):
                law = next(
                    (
                        f
                        for f in res["fit"]["power_law"]
                        if f["attack"] == "lira_online" and f["fpr"] == alpha and f["classes"] == c
                    ),
                    None,
                )
                color = ax.plot([], [])[0].get_color()
                _series(ax, _lira_points(res, alpha, c), alpha, law, color=color, label=f"C={c}")
            ax.set(xscale="log", yscale="log", title=f"{res['label']}, FPR {alpha:g}")
            ax.grid(True, alpha=0.3)
            ax.set_xlabel("S")
        row[0].set_ylabel("TPR − FPR (LiRA)")
        row[0].legend()
    return _save(fig, out, "empirical_by_class")


def regression_figure(results: dict, out: Path) -> list[Path]:
    """Held-out predictions of the regression against the observed log10 advantage."""
    from mialaw.theory.metrics import fit_linear

    plt = _plt()
    points = [p for r in empirical_results(results) for p in r["points"]]
    points = [
        p for p in points if p["attack"] == "lira_online" and p["resolvable"] and p["advantage"] > 0
    ]
    if len(points) < 4:
        return []
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    keys = [(p["dataset"], p["backbone"]) for p in points]
    groups = sorted(set(keys)) if len(set(keys)) > 1 else sorted({p["classes"] for p in points})
    by_group = len(set(keys)) > 1
    X = np.array([[np.log10(p["shots"]), np.log10(p["classes"])] for p in points])
    y = np.log10([p["advantage"] for p in points])
    fprs = np.array([p["fpr"] for p in points])
    for alpha in sorted(set(fprs.tolist()), reverse=True):
        for g in groups:
            held = np.array(
                [(k == g) if by_group else (p["classes"] == g) for k, p in zip(keys, points)]
            ) & (fprs == alpha)
            train = ~held & (fprs == alpha)
            if held.sum() == 0 or train.sum() < 4:
                continue
            try:
                fit = fit_linear(X[train], y[train], names=["log10_shots", "log10_classes"])
            except ValueError:
                continue
            ax.scatter(fit.predict(X[held]), y[held], s=10, label=f"FPR {alpha:g}, out: {g}")
    lims = [min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])]
    ax.plot(lims, lims, "k-", lw=0.8)
    ax.set(xlabel="predicted log10(TPR − FPR), held out", ylabel="observed log10(TPR − FPR)")
    ax.legend(fontsize=5)
    return _save(fig, out, "regression_held_out")


def _cells(results):
    """(label, cell arrays) of every empirical cell on disk, via the empirical module."""
    from mialaw.empirical.experiment import load_cell

    for res in empirical_results(results):
        if "run_dir" in res:
            for path in sorted(Path(res["run_dir"]).glob("cells/*.npz")):
                yield res["label"], path.stem, load_cell(path)


def per_example_figure(results: dict, fpr: float, out: Path) -> list[Path]:
    """Per-example vulnerability against the gradient norm and the theory's predictor."""
    from mialaw.empirical.analysis import summarize_cell

    plt = _plt()
    chosen = None
    for label, stem, cell in _cells(results):
        if chosen is None or cell["keep"].shape[1] > chosen[2]["keep"].shape[1]:
            chosen = (label, stem, cell)
    if chosen is None:
        return []
    label, stem, cell = chosen
    summary = summarize_cell(cell, (fpr,))
    vul = np.abs(summary.delta)
    fig, axes = plt.subplots(1, 2, figsize=(6.6, 3.0))
    for ax, x, name in (
        (axes[0], summary.grad_norm, "gradient norm (end of training)"),
        (axes[1], summary.atypicality, "|<x, x − m>| / sqrt(xᵀΣx)"),
    ):
        ok = np.isfinite(x) & np.isfinite(vul)
        ax.scatter(x[ok], vul[ok], s=3, alpha=0.4)
        ax.set(xscale="log", yscale="log", xlabel=name)
    axes[0].set_ylabel("per-example vulnerability |Δ|")
    fig.suptitle(f"{label}, {stem}")
    return _save(fig, out, "per_example")


def roc_figure(results: dict, out: Path) -> list[Path]:
    """Log-log ROC curves of LiRA online for the smallest C of the first run, one per S."""
    from mialaw.theory.metrics import roc_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    first_label, drawn = None, 0
    for label, stem, cell in _cells(results):
        first_label = first_label or label
        if label != first_label or not stem.endswith("seed0"):
            continue
        roc = roc_curve(cell["lira_online"].ravel(), cell["keep"].ravel())
        ax.plot(np.maximum(roc.fpr, 1e-6), np.maximum(roc.tpr, 1e-6), lw=1, label=stem)
        drawn += 1
    if not drawn:
        _plt().close(fig)
        return []
    ax.plot([1e-6, 1], [1e-6, 1], "k:", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="FPR", ylabel="TPR", title=f"LiRA ROC, {first_label}")
    ax.set_xlim(1e-5, 1)
    ax.set_ylim(1e-5, 1)
    ax.legend(fontsize=5)
    return _save(fig, out, "roc")


def quantile_figure(results: dict, fprs, out: Path) -> list[Path]:
    """Quantile and maximum per-example advantage against S."""
    plt = _plt()
    rows = [q for r in empirical_results(results) for q in r["fit"]["per_example"]["quantiles"]]
    if not rows:
        return []
    fig, axes = plt.subplots(1, len(fprs), figsize=(3.2 * len(fprs), 3.0), squeeze=False)
    for ax, alpha in zip(axes[0], fprs):
        keys = sorted({(q["dataset"], q["classes"], q["quantile"]) for q in rows})
        for ds, c, qu in keys:
            pts = sorted(
                (q["shots"], q["advantage"])
                for q in rows
                if (q["dataset"], q["classes"], q["quantile"]) == (ds, c, qu) and q["fpr"] == alpha
            )
            if not pts:
                continue
            s, a = np.array(pts).T
            name = "max" if qu >= 1 else f"q{100 * qu:g}"
            ax.plot(s, np.where(a > 0, a, np.nan), "o-", ms=2, lw=1, label=f"{ds} C={c} {name}")
        ax.set(xscale="log", yscale="log", xlabel="S", title=f"FPR {alpha:g}")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("per-example advantage")
    axes[0][-1].legend(fontsize=5)
    return _save(fig, out, "quantiles")


def write_figures(results: dict, profile, out: Path) -> list[Path]:
    figs = Path(out) / "figures"
    written = law_figure(results, profile.fpr, figs)
    written += empirical_by_class_figure(results, profile.fpr, figs)
    written += regression_figure(results, figs)
    written += per_example_figure(results, profile.fpr[0], figs)
    written += roc_figure(results, figs)
    written += quantile_figure(results, profile.fpr, figs)
    return written
