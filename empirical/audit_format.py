"""How the audit's reports write numbers, intervals of shots and attack names."""

from __future__ import annotations

import math

ATTACK_LABELS = {"lira_online": "LiRA online", "lira_offline": "LiRA offline", "rmia": "RMIA"}


def fmt_number(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.3g}"


def fmt_percent(a: float) -> str:
    return f"{100 * a:g}%"


def fmt_shots(v) -> str:
    if v is None or math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "∞"
    return f"{math.ceil(v):,}" if v < 1e7 else f"{v:.1e}"


def fmt_shot_list(values) -> str:
    values = list(values)
    return (
        ", ".join(f"{int(v):,}" for v in values)
        if len(values) <= 6
        else (f"{int(values[0]):,} … {int(values[-1]):,} ({len(values)} values)")
    )
