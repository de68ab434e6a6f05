"""Figure of the regression held out by task: each data set's measured log10(TPR − FPR) against
the value predicted by the fit to the other data sets (every backbone it was seen through left
out with it; stage ``regression-tasks``)."""

from __future__ import annotations

from pathlib import Path

from .figure_base import pyplot, save_figure
from .transfer_stage import STAGE

__all__ = ["transfer_figure", "write_transfer_figures"]

ATTACKS = (("lira_online", "online LiRA"), ("lira_offline", "offline LiRA"))
# Each data set left out with every backbone it was seen through: a data set that is not ours.
BY = "dataset"


def _panel(ax, entry: dict, colours) -> None:
    held_out = [h for h in entry.get(f"by_{BY}", {}).get("held_out", []) if "error" not in h]
    values = []
    for i, held in enumerate(held_out):
        r2 = "n/a" if held["r2"] is None else f"{held['r2']:.2f}"
        ax.plot(
            held["predicted"], held["observed"], "o", ms=3, color=colours(i % 10),
            label=f"{held['group']} (R² {r2})",
        )  # fmt: skip
        values += held["predicted"] + held["observed"]
    if values:
        lo, hi = min(values), max(values)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="predicted = measured")
        ax.legend(fontsize=5, loc="lower right")


def transfer_figure(results: dict, out: Path, task_set: str = "pretrained") -> list[Path]:
    """Predicted against measured per held-out data set, online and offline LiRA × every FPR."""
    entries = (results.get(STAGE) or {}).get(task_set, {}).get("regressions", [])
    by_key = {(e["attack"], e["fpr"]): e for e in entries}
    fprs = sorted({fpr for _, fpr in by_key}, reverse=True)
    if not fprs:
        return []
    plt = pyplot()
    fig, axes = plt.subplots(
        len(ATTACKS), len(fprs), figsize=(3.4 * len(fprs), 3.2 * len(ATTACKS)), squeeze=False
    )
    for i, (attack, name) in enumerate(ATTACKS):
        for j, fpr in enumerate(fprs):
            ax = axes[i, j]
            _panel(ax, by_key.get((attack, fpr), {}), plt.get_cmap("tab10"))
            pooled = by_key.get((attack, fpr), {}).get(f"by_{BY}", {}).get("held_out_r2")
            text = "" if pooled is None else f", held-out R² {pooled:.2f}"
            ax.set_title(f"{name}, FPR {fpr:g}{text}", fontsize=8)
            ax.set_xlabel("predicted log10(TPR − FPR), data set left out")
            ax.set_ylabel("measured log10(TPR − FPR)")
    fig.suptitle(f"Leave one data set out, every backbone of it ({task_set} tasks)", fontsize=9)
    return save_figure(fig, out, f"regression_tasks_{task_set}")


def write_transfer_figures(results: dict, profile, out: Path) -> list[Path]:
    figures = Path(out) / "figures"
    return [
        p for task_set in ("pretrained", "all") for p in transfer_figure(results, figures, task_set)
    ]
