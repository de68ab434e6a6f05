"""The mechanism's figures: the bridge (predicted beside measured), the gaps of the same examples
across S, and the local slopes against S·C/d and against S for other λ."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .figure_base import pyplot, save_figure
from .mechanism_tables import FEATURE_DIM, mechanism_runs, mechanism_slope_rows

RULE_STYLE = {
    "theory": {"color": "C0", "ls": "-", "label": "theory: gap × (S0/S)^1/2"},
    "group-slopes": {"color": "C2", "ls": "--", "label": "measured gap slopes"},
    "self": {"color": "0.5", "ls": ":", "label": "own cell's Gaussians"},
    "moments-paired": {"color": "C3", "ls": "-.", "label": "features' moments (protocol)"},
    "moments-iid": {"color": "C4", "ls": (0, (1, 3)), "label": "features' moments (iid model)"},
}
BRIDGE_RUNS = (
    ("fashion-mnist-lite0-c2-large", "FMNIST head"),
    ("fashion-mnist-lite0-c2-class-mean", "FMNIST class means"),
    ("gaussian-class-mean", "Gaussian class means"),
)


def _bridge_panel(ax, bridge: dict, attack: str, fpr: float) -> None:
    points = sorted(
        (p for p in bridge["points"] if p["attack"] == attack and p["fpr"] == fpr),
        key=lambda p: p["shots"],
    )
    shots = np.array([p["shots"] for p in points], float)
    tpr = np.array(
        [np.nan if p["measured"]["tpr"] is None else p["measured"]["tpr"] for p in points]
    )
    ci = np.array([p["measured"]["tpr_ci"] or [np.nan, np.nan] for p in points], float)
    ok = np.isfinite(tpr) & (tpr > fpr)
    if ok.any():
        adv = tpr[ok] - fpr
        low = np.maximum(adv - (ci[ok, 0] - fpr), 0)
        high = np.maximum(ci[ok, 1] - fpr - adv, 0)
        ax.errorbar(shots[ok], adv, yerr=[low, high], fmt="ko", ms=3, capsize=2, label="measured")
    for rule in bridge["rules"]:
        pred = np.array([p["predicted"][rule] for p in points]) - fpr
        style = dict(RULE_STYLE.get(rule, {"label": rule}))
        ax.plot(shots, np.where(pred > 0, pred, np.nan), lw=1.2, **style)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")


def bridge_figure(results: dict, out: Path) -> list[Path]:
    runs = mechanism_runs(results)
    shown = [(label, name) for label, name in BRIDGE_RUNS if runs.get(label, {}).get("bridge")]
    if not shown:
        return []
    plt = pyplot()
    rows = [
        (label, name, attack) for label, name in shown for attack in ("lira_online", "lira_offline")
    ]
    fprs = sorted({p["fpr"] for p in runs[shown[0][0]]["bridge"]["points"]}, reverse=True)
    fig, axes = plt.subplots(
        len(rows), len(fprs), figsize=(3.0 * len(fprs), 2.3 * len(rows)), squeeze=False
    )
    for i, (label, name, attack) in enumerate(rows):
        b = runs[label]["bridge"]
        for j, fpr in enumerate(fprs):
            ax = axes[i, j]
            _bridge_panel(ax, b, attack, fpr)
            kind = "online" if attack == "lira_online" else "offline"
            ax.set_title(f"{name}: {kind}, FPR {fpr:g}", fontsize=8)
            ax.set_xlabel("S (shots per class)")
            ax.set_ylabel("TPR − FPR")
    s0 = runs[shown[0][0]]["bridge"]["from_shots"]
    fig.suptitle(f"Bridge from S0 = {s0}", fontsize=9, y=1.0, va="bottom")  # above the panels
    return save_figure(fig, out, "bridge", legend={"ncol": 3})


def gaps_figure(results: dict, out: Path) -> list[Path]:
    runs = mechanism_runs(results)
    if not runs:
        return []
    plt = pyplot()
    labels = list(runs)
    cols = min(3, len(labels))
    nrows = int(np.ceil(len(labels) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.6 * nrows), squeeze=False)
    series = (
        ("rms", "RMS (noise removed)", "k"),
        ("q50", "median", "C0"),
        ("q90", "90th pct", "C1"),
    )
    series += (("q99", "99th pct", "C3"), ("max", "maximum", "C4"))
    for ax, label in zip(axes.ravel(), labels, strict=False):
        rows = runs[label]["gaps"]["by_shots"]
        shots = np.array([r["shots"] for r in rows], float)
        for key, name, color in series:
            values = np.array([r[f"{key}_scaled"] for r in rows], float)
            if key == "rms":
                ax.plot(shots, values, "-", color=color, label=name)
                continue
            ok = np.array([r[f"{key}_resolvable"] for r in rows], bool)
            ax.plot(shots, values, "-", color=color, lw=0.8, label=name)
            ax.plot(shots[ok], values[ok], "o", color=color, ms=3)
            ax.plot(shots[~ok], values[~ok], "o", mfc="none", color=color, ms=3)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{label} (S0 = {runs[label]['gaps']['base_shots']})", fontsize=7)
        ax.set_xlabel("S")
        ax.set_ylabel("√S·|gap| of the same examples")
    for ax in axes.ravel()[len(labels) :]:
        ax.set_visible(False)
    return save_figure(fig, out, "gaps", legend={"ncol": 5})


def mechanism_figure(results: dict, profile, out: Path) -> list[Path]:
    rows = mechanism_slope_rows(results, profile)
    if not rows:
        return []
    plt = pyplot()
    fprs = sorted({r["fpr"] for r in rows}, reverse=True)
    fig, axes = plt.subplots(2, len(fprs), figsize=(3.2 * len(fprs), 5.2), squeeze=False)
    for j, fpr in enumerate(fprs):
        for i, experiment in enumerate(("capacity", "regularisation")):
            ax = axes[i, j]
            chosen = [r for r in rows if r["fpr"] == fpr and r["attack"] == "LiRA offline"]
            if experiment == "capacity":
                groups = sorted({r["dim"] for r in chosen})
                pick = lambda r, g: r["dim"] == g and r["lambda"] == 0.01  # noqa: E731
            else:
                groups = sorted({r["lambda"] for r in chosen if r["dim"] == FEATURE_DIM})
                pick = lambda r, g: r["lambda"] == g and r["dim"] == FEATURE_DIM  # noqa: E731
            for k, g in enumerate(groups):
                sel = sorted((r for r in chosen if pick(r, g)), key=lambda r: r["shots_low"])
                if not sel:
                    continue
                x = np.array(
                    [
                        r["sc_over_d"] if i == 0 else np.sqrt(r["shots_low"] * r["shots_high"])
                        for r in sel
                    ]
                )
                y = np.array([r["slope"] for r in sel])
                err = np.array(
                    [[r["slope"] - r["ci_low"], r["ci_high"] - r["slope"]] for r in sel]
                ).T
                name = f"d = {g}" if i == 0 else f"λ = {g:g}"
                ax.errorbar(
                    x * (1 + 0.04 * k),
                    y,
                    yerr=err,
                    fmt="o-",
                    ms=3,
                    capsize=2,
                    lw=0.8,
                    label=name,
                    color=f"C{k}",
                )
            ax.axhline(-0.5, color="k", ls=":", lw=0.8)
            ax.set_xscale("log")
            ax.set_xlabel("S·C/d" if i == 0 else "S")
            ax.set_ylabel("local slope")
            ax.set_title(f"offline LiRA, FPR {fpr:g}: {'projected d' if i == 0 else 'λ'}")
    return save_figure(fig, out, "mechanism", legend={"ncol": 4})


def write_mechanism_figures(results: dict, profile, out: Path) -> list[Path]:
    figures = Path(out) / "figures"
    return (
        bridge_figure(results, figures)
        + gaps_figure(results, figures)
        + mechanism_figure(results, profile, figures)
    )
