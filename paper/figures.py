"""The study's figures (PNG and SVG), drawn from stage results; those drawn from a run's cells are
in ``cell_figures``, the mechanism's in ``mechanism_figures``, what every figure does before it is
saved in ``figure_base``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mialaw.empirical.attacks import law_attacks

from .cell_figures import per_example_figure, roc_figure
from .figure_base import pyplot, save_figure
from .run_selection import empirical_results
from .study_tables import shadow_rows

ATTACK_NAMES = law_attacks()  # {name: label} of the attacks the law tables and figures show


def _errorbars(ax, shots, tpr, ci, fpr, **style):
    """Advantage TPR − α with its interval, drawn only where it is positive (unresolvable points,
    whose TPR is None, are not drawn)."""
    shots, tpr = np.asarray(shots, float), np.asarray(tpr, float)
    ci = np.asarray(ci, float).reshape(-1, 2)
    adv = tpr - fpr
    ok = np.isfinite(adv) & (adv > 0)
    if not ok.any():
        return
    low = np.clip(adv - (ci[:, 0] - fpr), 0, None)
    # A percentile interval need not contain its estimate exactly: no negative bar lengths.
    high = np.clip(ci[:, 1] - fpr - adv, 0, None)
    low = np.minimum(low, adv * 0.999)  # keep the bar on a log axis
    style = {"marker": "o"} | style
    ax.errorbar(shots[ok], adv[ok], yerr=[low[ok], high[ok]], ls="none", ms=3, capsize=2, **style)


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
    """The fitted law, drawn over the range of the points that entered the fit."""
    if not fit or fit.get("slope") is None:
        return
    shots = np.asarray(fit.get("shots", shots), dtype=float)
    kept = np.asarray(fit.get("kept", np.ones(shots.size, bool)), dtype=bool)
    if kept.size == shots.size and kept.any():
        shots = shots[kept]
    s = np.geomspace(shots.min(), shots.max(), 50)
    ax.plot(s, 10 ** (fit["slope"] * np.log10(s) + fit["intercept"]), "--", lw=1, **style)


def law_figure(results: dict, fprs, out: Path) -> list[Path]:
    """The law in one picture: theory, simulated oracle and LiRA, and real models, per α."""
    plt = pyplot()
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
        ax.set_ylim(max(1e-7, ax.get_ylim()[0]), 2.0)
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("advantage TPR − FPR")
    fig.suptitle("log(TPR − FPR) = −½ log S + c: exact theory, simulation, real models", y=1.03)
    return save_figure(fig, out, "law", legend={"ncol": 3})


def empirical_by_class_figure(results: dict, fprs, out: Path) -> list[Path]:
    """Per dataset/backbone: advantage against S, one line per C, with intervals and fits."""
    plt = pyplot()
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
        row[0].set_ylabel("TPR − FPR (LiRA online)")
    return save_figure(fig, out, "empirical_by_class", legend={"ncol": 6})


def regression_figure(results: dict, out: Path) -> list[Path]:
    """Held-out predictions of the headline run's regression (offline LiRA) against observations.

    The predictions are the analysis' own (``fit["regression"][...]["held_out"]``), so the figure
    shows exactly what the held-out R² in the regression table measures.
    """
    runs = empirical_results(results)
    if not runs:
        return []
    plt = pyplot()
    res = runs[0]
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    drawn = 0
    regressions = [r for r in res["fit"]["regression"] if r["attack"] == "lira_offline"]
    for reg in sorted(regressions, key=lambda r: -r["fpr"]):
        color = ax.plot([], [])[0].get_color()
        for marker, held in zip("os^vD", reg.get("held_out", [])):
            if "predicted" not in held:
                continue
            ax.scatter(
                held["predicted"],
                held["observed"],
                s=14,
                color=color,
                marker=marker,
                label=f"FPR {reg['fpr']:g}, {reg['held_out_by']}={held['group']} held out",
            )
            drawn += 1
    if not drawn:
        plt.close(fig)
        return []
    lims = [min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])]
    ax.plot(lims, lims, "k-", lw=0.8)
    ax.set(
        xlabel="predicted log10(TPR − FPR)",
        ylabel="observed log10(TPR − FPR)",
        title=f"{res['label']}: held-out regression (LiRA offline)",
    )
    ax.legend(fontsize=6, loc="upper left")
    return save_figure(fig, out, "regression_held_out")


def quantile_figure(results: dict, fprs, out: Path) -> list[Path]:
    """99th, 99.9th percentile and maximum per-example advantage against S (C = 2 per run), over
    the same number of examples at every S; open markers lie below twice the noise floor. Panels
    without any S that holds that many examples say so."""
    plt = pyplot()
    rows = [q for r in empirical_results(results) for q in r["fit"]["per_example"]["quantiles"]]
    rows = [q for q in rows if q["classes"] == 2]
    if not empirical_results(results):
        return []
    fig, axes = plt.subplots(1, len(fprs), figsize=(3.2 * len(fprs), 3.0), squeeze=False)
    datasets = sorted({q["dataset"] for q in rows})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = {0.99: "-", 0.999: "--", 1.0: ":"}
    for ax, alpha in zip(axes[0], fprs):
        for i, ds in enumerate(datasets):
            for qu, ls in styles.items():
                pts = sorted(
                    (q["shots"], q["advantage"], q.get("above_noise_floor", True))
                    for q in rows
                    if q["dataset"] == ds and q["quantile"] == qu and q["fpr"] == alpha
                )
                if not pts:
                    continue
                s, a, above = (np.array(v) for v in zip(*pts))
                name = "max" if qu >= 1 else f"{100 * qu:g}th pct"
                color = colors[i % len(colors)]
                a = np.where(a > 0, a, np.nan)
                ax.plot(s, a, ls, marker="o", ms=2, lw=1, color=color, label=f"{ds} {name}")
                low = ~above.astype(bool)
                ax.plot(s[low], a[low], "o", ms=5, mfc="white", color=color)
        ax.set(xscale="log", yscale="log", xlabel="S", title=f"FPR {alpha:g} (C = 2)")
        ax.grid(True, alpha=0.3)
    n = rows[0]["n_examples"] if rows else "N"
    axes[0][0].set_ylabel(f"per-example advantage ({n} examples)")
    return save_figure(fig, out, "quantiles", legend={"ncol": 3})


def _local_errorbars(ax, slopes, **style):
    """Local slopes (dicts with shots_low/high, slope, slope_ci) at the geometric mid S."""
    if not slopes:
        return
    mid = np.array([np.sqrt(d["shots_low"] * d["shots_high"]) for d in slopes])
    y = np.array([d["slope"] for d in slopes])
    lo = np.array([d["slope_ci"][0] for d in slopes], dtype=float)
    hi = np.array([d["slope_ci"][1] for d in slopes], dtype=float)
    ax.errorbar(mid, y, yerr=[y - lo, hi - y], ms=3, capsize=2, **({"marker": "o"} | style))


def local_slope_figure(results: dict, fprs, out: Path) -> list[Path]:
    """The curve's shape: local slopes of log10(TPR − FPR) between neighbouring S, real models
    (C = 2) beside the exact theory and the simulated LiRA, against the −½ of the theorem."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(fprs), figsize=(3.6 * len(fprs), 3.0), squeeze=False)
    theory = results.get("theory")
    for ax, alpha in zip(axes[0], fprs):
        ax.axhline(-0.5, color="k", lw=0.8, ls=":", label="−½")
        if theory:
            rows = sorted(
                (r["shots"], r["log_advantage_lira"])
                for r in theory["rows"]
                if r["fpr"] == alpha and 1 <= r["shots"] <= 1e5
            )
            s, y = np.array(rows).T
            ax.plot(
                np.sqrt(s[1:] * s[:-1]),
                np.diff(y) / np.diff(np.log(s)),
                "k-",
                lw=1,
                label="exact theory (d = 64)",
            )
        for name, res in results.items():
            if not name.startswith("simulate-") or res["config"]["attack"] == "oracle":
                continue
            fit = res["fit"].get(str(alpha)) or {}
            _local_errorbars(
                ax,
                fit.get("pooled_local_slopes"),
                ls="none",
                marker="s" if res["config"]["attack"] == "lira-offline" else "D",
                color="0.6" if res["config"]["attack"] == "lira-offline" else "0.2",
                label=f"simulated {res['config']['attack']}",
            )
        # The Fashion-MNIST / Lite0 runs only: the other datasets and backbones are in the table.
        for res in empirical_results(results):
            if not res["label"].startswith("fashion-mnist-lite0"):
                continue
            for f in res["fit"]["power_law"]:
                if f["classes"] == 2 and f["fpr"] == alpha and f["attack"] in ATTACK_NAMES:
                    _local_errorbars(
                        ax,
                        f.get("local_slopes"),
                        ls="-",
                        lw=0.8,
                        label=f"{res['label']} ({ATTACK_NAMES[f['attack']]})",
                    )
        ax.set(xscale="log", xlabel="S", title=f"FPR {alpha:g}")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("local slope of log(TPR − FPR)")
    return save_figure(fig, out, "local_slopes", legend={"ncol": 2})


def shadow_figure(results: dict, out: Path, fpr: float = 0.01) -> list[Path]:
    """LiRA's fitted slope against the number of shadow models M, real beside simulated."""

    rows = [r for r in shadow_rows(results) if r["fpr"] == fpr and r["slope"] is not None]
    if not rows:
        return []
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    ax.axhline(-0.5, color="k", lw=0.8, ls=":", label="−½")
    groups = sorted({(r["source"], r["attack"], r["variance"]) for r in rows})
    for i, (source, attack, variance) in enumerate(groups):
        sel = sorted(
            (
                r
                for r in rows
                if (r["source"], r["attack"], r["variance"]) == (source, attack, variance)
            ),
            key=lambda r: r["shadows"],
        )
        m = np.array([r["shadows"] for r in sel], dtype=float) * (1 + 0.04 * (i - len(groups) / 2))
        y = np.array([r["slope"] for r in sel])
        lo = np.array([r["ci_low"] if r["ci_low"] is not None else np.nan for r in sel])
        hi = np.array([r["ci_high"] if r["ci_high"] is not None else np.nan for r in sel])
        ax.errorbar(
            m,
            y,
            yerr=[y - lo, hi - y],
            marker="o" if source.startswith("simulated") else "s",
            ls="--" if variance == "global" else "-",
            lw=0.8,
            ms=3,
            capsize=2,
            label=f"{'simulated' if source.startswith('simulated') else 'real'} "
            f"{attack.replace('_', ' ')}, {variance}",
        )
    ax.set(xscale="log", xlabel="shadow models M", ylabel=f"slope at FPR {fpr:g}")
    ax.set_xticks([16, 64, 256], ["16", "64", "256"])
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return save_figure(fig, out, "shadows")


def write_figures(results: dict, profile, out: Path) -> list[Path]:
    figs = Path(out) / "figures"
    written = law_figure(results, profile.fpr, figs)
    written += empirical_by_class_figure(results, profile.fpr, figs)
    written += regression_figure(results, figs)
    written += per_example_figure(results, profile.fpr[0], figs, out)
    written += roc_figure(results, figs, out)
    written += quantile_figure(results, profile.fpr, figs)
    written += local_slope_figure(results, profile.fpr, figs)
    written += shadow_figure(results, figs)
    return written
