"""The audit report's plots, as base64 PNG for the self-contained HTML.

Each function takes an ``AuditReport`` (not imported here: the report module imports this one).
"""

from __future__ import annotations

import math

import numpy as np

from mialaw.empirical.audit_format import audit_attacks, label
from mialaw.empirical.figure_axes import figure_legend, mark_empty, readable_log_ticks


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
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
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
        label=label(attack),
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
    for i, attack in enumerate(_attacks(report)):
        _measured_points(ax, report.points, attack, alpha, f"C{i}")
        top = _law_curve(ax, report, attack, alpha, f"C{i}", top)
    ax.set_title(f"FPR = {alpha:g}")
    if mark_empty(ax, f"no resolvable measurement\nand no fit at FPR {alpha:g}"):
        return
    ax.axvline(have, color="k", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    for (a, criterion), b in bounds.items():
        if a == alpha:
            ax.axhline(b, color="grey", ls="--", lw=1)
            # x in axes fraction, y in data: the label sits on its line at the left edge
            ax.text(0.01, b, criterion, fontsize=8, va="bottom",
                    transform=ax.get_yaxis_transform())  # fmt: skip
    ax.set_xlabel("shots per class S (dotted: yours)")
    ax.set_ylabel("TPR − FPR")


def _attacks(report) -> tuple[str, ...]:
    """The audited attacks, in the registry's order (their colours are C0, C1, ...)."""
    return audit_attacks(law.attack for law in report.laws)


def _finish(fig, **legend) -> None:
    """Readable log ticks, a tight layout and one legend of every panel's series."""
    for ax in fig.axes:
        readable_log_ticks(ax)
    fig.tight_layout()
    figure_legend(fig, fontsize=8, **legend)


def advantage_figure(report):
    """TPR − FPR against S, one panel per FPR (a matplotlib figure)."""
    plt = _pyplot()
    alphas = report.settings["fpr"]
    fig, axes = plt.subplots(1, len(alphas), figsize=(4.6 * len(alphas), 3.8), squeeze=False)
    bounds = {}
    for n in report.needed:
        bounds.setdefault((n.fpr, n.criterion), n.bound)
    for ax, alpha in zip(axes[0], alphas):
        _advantage_panel(ax, report, alpha, bounds)
    _finish(fig)
    return fig


def roc_figure(roc: dict):
    """The ROC of every attack at the largest measured S (a matplotlib figure)."""
    fig, ax = _pyplot().subplots(figsize=(4.3, 3.8))
    grid = np.asarray(roc["grid"])
    for i, attack in enumerate(audit_attacks(k for k in roc if k not in ("shots", "grid"))):
        ax.plot(grid, np.maximum(roc[attack], 1e-5), color=f"C{i}", label=label(attack))
    ax.plot(grid, grid, ":", color="grey", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 1)
    ax.set_xlabel("FPR")
    ax.set_ylabel("TPR")
    ax.set_title(f"ROC at S = {roc['shots']} (your largest measured S)")
    _finish(fig, ncol=3)
    return fig


def vulnerable_figure(vulnerable, shots):
    """The most vulnerable examples' gaps (a matplotlib figure)."""
    fig, ax = _pyplot().subplots(figsize=(4.3, 3.8))
    names = [str(x.get("name") or x["index"]) for x in vulnerable][::-1]
    ax.barh(range(len(vulnerable)), [x["delta"] for x in vulnerable][::-1], color="C3")
    ax.set_yticks(range(len(vulnerable)), [n[-24:] for n in names], fontsize=7)
    ax.set_xlabel("standardised IN−OUT gap |Δ̂| (larger = more exposed)")
    ax.set_title(f"Most vulnerable examples at S = {shots}")
    fig.tight_layout()
    return fig


ADVANTAGE_TITLE = (
    "TPR − FPR against S: measured (95% bootstrap intervals), the fitted law and its 95% band; "
    "dashed: the bounds asked for"
)


def report_figures(report) -> list[tuple[str, str]]:
    """(title, base64 PNG) of the advantage-against-S plot, the ROC and the vulnerable examples."""
    figures = [(ADVANTAGE_TITLE, _encode(advantage_figure(report)))]
    if report.roc.get("grid"):
        figures.append((f"ROC at S = {report.roc['shots']}", _encode(roc_figure(report.roc))))
    if report.vulnerable:
        fig = vulnerable_figure(report.vulnerable, report.roc.get("shots"))
        figures.append(("Most vulnerable examples (index or file name)", _encode(fig)))
    return figures
