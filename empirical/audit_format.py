"""How the audit's reports write numbers, intervals of shots and attack names.

Attacks are named and ordered by the attack registry (``mialaw.empirical.attacks``), so a newly
registered attack flows through the audit without an edit here.
"""

from __future__ import annotations

import math

from mialaw.empirical.attacks import attack_label, attack_names

NOT_DETERMINED = "not determined by your data"


def audit_attacks(names) -> tuple[str, ...]:
    """The attacks among ``names``, in the registry's order (unregistered ones after, sorted)."""
    present = set(names)
    ordered = [a for a in attack_names() if a in present]
    return tuple(ordered + sorted(present - set(ordered)))


def label(attack: str) -> str:
    """How the reports name ``attack`` (its registered label)."""
    return attack_label(attack)


def fmt_interval(lo, hi) -> str:
    return f"[{fmt_number(lo)}, {fmt_number(hi)}]"


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
