"""The audit's two answers per attack and FPR: the exposure at the user's S (measured or
predicted) and the S per class that brings it under a bound."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mialaw.empirical.audit_format import audit_attacks, fmt_number
from mialaw.empirical.audit_law import Law, fit_law
from mialaw.theory.dp import dp_shots_from_power_law


@dataclass(frozen=True)
class Exposure:
    """TPR − FPR of one attack at one FPR at the user's S, measured or predicted (``source``)."""

    attack: str
    fpr: float
    shots: int
    advantage: tuple  # (lower, estimate, upper): where a measurement at ``shots`` falls
    source: str  # "measured", "predicted" or "unavailable"
    note: str = ""
    expected: tuple = (math.nan,) * 3  # predicted: the fitted line's band alone

    @property
    def resolved(self) -> bool:
        """Whether the data give this exposure: measured or predicted, with finite ends."""
        return self.source != "unavailable" and all(math.isfinite(v) for v in self.advantage)

    def to_dict(self) -> dict:
        lo, est, hi = self.advantage
        return {
            "attack": self.attack,
            "fpr": self.fpr,
            "shots": self.shots,
            "advantage": est,
            "advantage_ci": [lo, hi],
            "expected_ci": [self.expected[0], self.expected[2]],
            "source": self.source,
            "resolved": self.resolved,
            "note": self.note,
        }


@dataclass(frozen=True)
class ShotsNeeded:
    """S per class at which one attack's TPR − FPR falls under ``bound`` at FPR ``fpr``."""

    criterion: str  # "target advantage 0.01" or "(ε=1, δ=1e-05)-DP"
    attack: str
    fpr: float
    bound: float
    shots: tuple  # (lower, estimate, upper), real, >= 1, inf = not within the data's reach
    note: str = ""

    @property
    def determined(self) -> bool:
        """Whether the data bound the S needed from above (a finite upper end)."""
        return math.isfinite(self.shots[2])

    def to_dict(self) -> dict:
        lo, est, hi = self.shots
        return {
            "criterion": self.criterion,
            "attack": self.attack,
            "fpr": self.fpr,
            "advantage_bound": self.bound,
            "shots": est,
            "shots_ci": [lo, hi],
            "shots_ceil": None if not math.isfinite(est) else int(math.ceil(est)),
            "determined": self.determined,
            "note": self.note,
        }


def exposure_at(points, law: Law, train_shots: int, measured: bool) -> Exposure:
    if measured:
        p = next(
            (
                p
                for p in points
                if p["attack"] == law.attack and p["fpr"] == law.fpr and p["shots"] == train_shots
            ),
            None,
        )
        if p is not None and p["resolvable"]:
            lo, hi = (v - law.fpr for v in p["tpr_ci"])
            return Exposure(law.attack, law.fpr, train_shots, (lo, p["advantage"], hi), "measured")
        note = "unresolvable at this S (fewer than 1/FPR non-members)"
    else:
        note = ""
    if law.line is None:
        return Exposure(
            law.attack, law.fpr, train_shots, (math.nan,) * 3, "unavailable", f"no fit: {law.error}"
        )
    return Exposure(
        law.attack,
        law.fpr,
        train_shots,
        tuple(law.predict(train_shots)),
        "predicted",
        note,
        tuple(law.predict(train_shots, measurement=False)),
    )


def shots_needed(law: Law, criterion: str, bound: float, epsilons, delta) -> ShotsNeeded:
    if law.line is None:
        return ShotsNeeded(
            criterion, law.attack, law.fpr, bound, (math.nan,) * 3, f"no fit: {law.error}"
        )
    lo, est, hi = law.shots_for(bound)
    note = ""
    if criterion.endswith("-DP") and law.line.slope < 0:
        # The project's inversion (mialaw.theory.dp) gives the same point estimate.
        eps = next(e for e in epsilons if criterion.startswith(f"(ε={fmt_number(e)},"))
        try:
            est = dp_shots_from_power_law(
                law.line.slope, law.line.intercept, eps, delta, law.fpr
            ).shots
        except ValueError as err:
            est, note = math.inf, str(err)
    if math.isinf(hi):
        note = note or "the fit's slope is not significantly negative or the data end too early"
    return ShotsNeeded(criterion, law.attack, law.fpr, bound, (lo, est, hi), note)


def criteria(targets, epsilons, delta: float) -> list[tuple[str, object]]:
    """(name, bound on TPR − FPR as a function of the FPR α) of every bound the user asked for."""
    found = [(f"target advantage {fmt_number(t)}", lambda a, t=t: t) for t in targets]
    found += [
        (f"(ε={fmt_number(e)}, δ={delta:g})-DP", lambda a, e=e: math.expm1(e) * a + delta)
        for e in epsilons
    ]
    return found


def answer(
    points, fprs, train_shots: int, measured: bool, *, targets, epsilons, delta, fit_octaves, level
):
    """(laws, exposures, shots needed): a law per attack and FPR fitted to ``points``, its
    exposure at ``train_shots`` (``measured``: the sweep has a cell there) and the S needed for
    every bound the user asked for."""
    laws = tuple(
        fit_law(points, attack, alpha, fit_octaves, level)
        for attack in audit_attacks(p["attack"] for p in points)
        for alpha in fprs
    )
    exposure = tuple(exposure_at(points, law, train_shots, measured) for law in laws)
    needed = tuple(
        shots_needed(law, name, bound(law.fpr), epsilons, delta)
        for name, bound in criteria(targets, epsilons, delta)
        for law in laws
    )
    return laws, exposure, needed
