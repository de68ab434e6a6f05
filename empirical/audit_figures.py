"""The audit report's plots, as base64 PNG for the self-contained HTML.

Each function takes an ``AuditReport`` (not imported here: the report module imports this one).
"""

from __future__ import annotations

import math

import numpy as np

from mialaw.empirical.audit_format import ATTACK_LABELS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _encode(fig) -> str:
    """The figure as base64 PNG; the figure is closed."""
    import base64
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _measured_points(ax, points, attack: str, alpha: float, color: str) -> None:
    """The resolvable, positive measurements with their bootstrap intervals."""
    pts = sorted(
        (p for p in points if p["attack"] == attack and p["fpr"] == alpha and p["resolvable"]),
        key=lambda p: p["shots"],
    )
    pts = [p for p in pts if (p["advantage"] or 0) > 0]
    if not pts:
        return
    s = np.array([p["shots"] for p in pts], dtype=float)
    adv = np.array([p["advantage"] for p in pts])
    lo = np.maximum(np.array([p["tpr_ci"][0] for p in pts]) - alpha, adv / 50)
    hi = np.array([p["tpr_ci"][1] for p in pts]) - alpha
    ax.errorbar(
        s, adv, yerr=[adv - lo, hi - adv], fmt="o", ms=3, capsize=2, color=color,
        label=ATTACK_LABELS[attack],
    )  # fmt: skip


def _law_curve(ax, report, attack: str, alpha: float, color: str, top: float) -> float:
    """The fitted law and its band from the smallest fitted S to ``top`` or to the S needed
    (at most 1000 times the user's S); returns the right end reached so far in this panel."""
    law = next((x for x in report.laws if x.attack == attack and x.fpr == alpha), None)
    if law is None or law.line is None:
        return top
    have = report.data["train_shots"]
    for n in report.needed:
        if n.attack == attack and n.fpr == alpha and math.isfinite(n.shots[1]):
            top = max(top, min(n.shots[1], 1e3 * have))
    grid = np.geomspace(min(law.shots_fitted), max(top, max(law.shots_fitted)), 80)
    blo, best, bhi = law.line.band(np.log10(grid))
    ax.plot(grid, 10**best, "-", color=color, lw=1)
    ax.fill_between(grid, 10**blo, 10**bhi, color=color, alpha=0.15, lw=0)
    return top


def _advantage_panel(ax, report, alpha: float, bounds: dict) -> None:
    have = report.data["train_shots"]
    top = have  # the curves of later attacks reach at least as far as earlier ones
    for i, attack in enumerate(ATTACK_LABELS):
        _measured_points(ax, report.points, attack, alpha, f"C{i}")
        top = _law_curve(ax, report, attack, alpha, f"C{i}", top)
    ax.axvline(have, color="k", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    for (a, criterion), b in bounds.items():
        if a == alpha:
            ax.axhline(b, color="grey", ls="--", lw=1)
            # x in axes fraction, y in data: the label sits on its line at the left edge
            ax.text(0.01, b, criterion, fontsize=6, va="bottom",
                    transform=ax.get_yaxis_transform())  # fmt: skip
    ax.set_xlabel("shots per class S (dotted: yours)")
    ax.set_ylabel("TPR − FPR")
    ax.set_title(f"FPR = {alpha:g}")
    ax.legend(fontsize=7)


def _advantage_figure(report) -> tuple[str, str]:
    plt = _pyplot()
    alphas = report.settings["fpr"]
    fig, axes = plt.subplots(1, len(alphas), figsize=(4.3 * len(alphas), 3.6), squeeze=False)
    bounds = {}
    for n in report.needed:
        bounds.setdefault((n.fpr, n.criterion), n.bound)
    for ax, alpha in zip(axes[0], alphas):
        _advantage_panel(ax, report, alpha, bounds)
    fig.tight_layout()
    title = (
        "TPR − FPR against S: measured (95% bootstrap intervals), the fitted law and its 95% "
        "band; dashed: the bounds asked for"
    )
    return title, _encode(fig)


def _roc_figure(roc: dict) -> tuple[str, str]:
    fig, ax = _pyplot().subplots(figsize=(4.3, 3.8))
    grid = np.asarray(roc["grid"])
    for i, attack in enumerate(ATTACK_LABELS):
        if attack in roc:
            ax.plot(grid, np.maximum(roc[attack], 1e-5), color=f"C{i}", label=ATTACK_LABELS[attack])
    ax.plot(grid, grid, ":", color="grey", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 1)
    ax.set_xlabel("FPR")
    ax.set_ylabel("TPR")
    ax.set_title(f"ROC at S = {roc['shots']} (your largest measured S)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return f"ROC at S = {roc['shots']}", _encode(fig)


def _vulnerable_figure(vulnerable, shots) -> tuple[str, str]:
    fig, ax = _pyplot().subplots(figsize=(4.3, 3.8))
    names = [str(x.get("name") or x["index"]) for x in vulnerable][::-1]
    ax.barh(range(len(vulnerable)), [x["delta"] for x in vulnerable][::-1], color="C3")
    ax.set_yticks(range(len(vulnerable)), [n[-24:] for n in names], fontsize=6)
    ax.set_xlabel("standardised IN−OUT gap |Δ̂| (larger = more exposed)")
    ax.set_title(f"Most vulnerable examples at S = {shots}")
    fig.tight_layout()
    return "Most vulnerable examples (index or file name)", _encode(fig)


def report_figures(report) -> list[tuple[str, str]]:
    """(title, base64 PNG) of the advantage-against-S plot, the ROC and the vulnerable examples."""
    figures = [_advantage_figure(report)]
    if report.roc.get("grid"):
        figures.append(_roc_figure(report.roc))
    if report.vulnerable:
        figures.append(_vulnerable_figure(report.vulnerable, report.roc.get("shots")))
    return figures
