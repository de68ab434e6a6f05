"""The analysis of a simulated sweep: one :class:`SweepPoint` per (S, α) and the
:class:`SweepResult` with its fits (the weighted power law, local slopes, the exact theory's) and
its typed records (``mialaw.theory.records``)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import numpy as np

from mialaw.theory.fits import fit_power_law, local_slopes, log10_se
from mialaw.theory.metrics import unsaturated
from mialaw.theory.records import Point, PowerLaw, ResultSet, SweepRecords

from .sweep_config import SweepConfig

__all__ = ["SATURATION_CUT", "SweepPoint", "SweepResult", "finite_json", "fit_dict"]

SATURATION_CUT = 0.9  # fits keep advantages below this fraction of their ceiling 1 − α


@dataclass(frozen=True)
class SweepPoint:
    """One (S, α) of a sweep: the pooled attack, the per-example oracle and the exact theory.

    ``tpr`` is NaN (null in JSON) when unresolvable (α·negatives < 1), and so are ``tpr_ci`` and
    ``log10_advantage_se`` (the standard error of log10(TPR − α) by the delta method from the
    interval: the fit's weight; NaN unless TPR > α).
    """

    shots: int
    fpr: float
    tpr: float
    tpr_ci: tuple[float, float]
    interval_method: str
    achieved_fpr: float
    true_positives: int
    positives: int
    false_positives: int
    negatives: int
    resolvable: bool
    detected: bool
    log10_advantage_se: float
    theory_pooled: float | None = None
    per_example_tpr: float | None = None
    per_example_tpr_ci: tuple[float, float] | None = None
    per_example_achieved_fpr: float | None = None
    theory_per_example: float | None = None

    @property
    def advantage(self) -> float:
        return self.tpr - self.fpr

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tpr_ci"] = list(self.tpr_ci)
        if self.per_example_tpr_ci is not None:
            d["per_example_tpr_ci"] = list(self.per_example_tpr_ci)
        d["advantage"] = self.advantage
        return d


@dataclass(frozen=True)
class SweepResult(SweepRecords):
    """The analysis of a sweep: its points (S-major, then α) and fits; ``config`` is what ran."""

    config: SweepConfig
    points: tuple[SweepPoint, ...] = field(repr=False)

    def select(self, fpr: float) -> tuple[SweepPoint, ...]:
        """The points at one α, in the order of ``config.shots``."""
        chosen = tuple(p for p in self.points if math.isclose(p.fpr, fpr, rel_tol=1e-12))
        if not chosen:
            raise ValueError(f"fpr {fpr!r} is not in this sweep; it has {list(self.config.fpr)}")
        return chosen

    def _fit_inputs(self, fpr: float, per_example: bool):
        """(shots, advantage, sigma, usable) at α: usable = resolvable, detected and not
        saturated (advantage < ``SATURATION_CUT``·(1 − α): a nearly perfect attack carries no
        power-law information and flattens the slope)."""
        pts = self.select(fpr)
        shots = np.array([p.shots for p in pts], dtype=np.float64)
        if per_example:
            if pts[0].per_example_tpr is None:
                raise ValueError("per-example results exist only for the oracle attack")
            adv = np.array([p.per_example_tpr for p in pts]) - fpr
            ci = np.array([p.per_example_tpr_ci for p in pts])
            sigma = log10_se(ci[:, 0], ci[:, 1], adv, self.config.level)
            usable = ci[:, 0] > fpr  # every game counts: always resolvable
        else:
            adv = np.array([p.advantage for p in pts])
            sigma = np.array([p.log10_advantage_se for p in pts])
            usable = np.array([p.resolvable and p.detected for p in pts])
        with np.errstate(invalid="ignore"):
            usable &= unsaturated(np.nan_to_num(adv, nan=np.inf), fpr, SATURATION_CUT)
        return shots, adv, sigma, usable

    def fit(self, fpr: float, *, per_example: bool = False):
        """Weighted power-law fit of log10(TPR − α) on log10 S over the resolvable, detected,
        unsaturated points at α with S >= ``config.fit_min_shots`` (weights: 1/σ² of log10
        advantage).

        ``per_example=True`` fits the per-example-calibrated oracle instead of the pooled attack.
        Raises ValueError when fewer than two distinct S are usable.
        """
        shots, adv, sigma, usable = self._fit_inputs(fpr, per_example)
        keep = usable & (shots >= self.config.fit_min_shots)
        return fit_power_law(shots, adv, keep=keep, sigma=sigma, level=self.config.level)

    def local_slopes(self, fpr: float, *, per_example: bool = False):
        """Slopes of log10(TPR − α) between neighbouring points at α that the fit rule admits
        (resolvable, detected, unsaturated), at all S: they show where the law sets in."""
        shots, adv, sigma, usable = self._fit_inputs(fpr, per_example)
        return local_slopes(shots, np.where(usable, adv, np.nan), sigma, level=self.config.level)

    def theory_fit(self, fpr: float, *, per_example: bool = False):
        """The same fit (unweighted: exact values) on the exact theory's values at the sweep's S,
        unsaturated ones with S >= ``fit_min_shots`` (None without theory)."""
        pts = self.select(fpr)
        values = [p.theory_per_example if per_example else p.theory_pooled for p in pts]
        if any(v is None for v in values):
            return None
        shots = np.array([p.shots for p in pts], dtype=np.float64)
        adv = np.array(values) - fpr
        keep = (shots >= self.config.fit_min_shots) & unsaturated(adv, fpr, SATURATION_CUT)
        return fit_power_law(shots, adv, keep=keep, level=self.config.level)

    def records(self):
        """The typed form (``mialaw.theory.records.ResultSet``): the same point schema as the
        real models' (source "simulation"; the Gaussian model as dataset, the class means as the
        learner) and the pooled power law at every α that has one."""

        c = self.config
        where = dict(source="simulation", dataset=f"gaussian d={c.dim} sigma={c.sigma:g}")
        where |= dict(backbone="identity", classes=c.classes, attack=c.attack)
        points = []
        for p in self.points:
            row = p.to_dict() | where | {"learner": "class means", "seeds": 1}
            if not p.resolvable:  # the schema's null: no TPR without a threshold
                row |= {"tpr": None, "tpr_ci": None}
            points.append(Point.from_dict(row))
        laws = []
        for alpha, fit in self.fits().items():
            pooled = fit.get("pooled")
            if pooled:
                laws.append(PowerLaw.from_dict(pooled | where | {"fpr": float(alpha)}))
        return ResultSet(tuple(points), tuple(laws))

    def fits(self) -> dict:
        """Every fit as plain data, keyed by α: pooled, per-example (oracle) and theory fits,
        and the local slopes (``pooled_local_slopes``, ``per_example_local_slopes``)."""
        out = {}
        for a in self.config.fpr:
            entry = {"fpr": a}
            for key, per_example in (("pooled", False), ("per_example", True)):
                if per_example and self.config.attack != "oracle":
                    continue
                entry[key] = fit_dict(lambda a=a, pe=per_example: self.fit(a, per_example=pe))
                theory = fit_dict(lambda a=a, pe=per_example: self.theory_fit(a, per_example=pe))
                entry[f"theory_{key}"] = theory
                slopes = self.local_slopes(a, per_example=per_example)
                entry[f"{key}_local_slopes"] = [ls.to_dict() for ls in slopes]
            # The headline slope of this α: the pooled attack's.
            pooled = entry["pooled"]
            entry["slope"] = pooled["slope"] if pooled else None
            entry["slope_ci"] = pooled["slope_ci"] if pooled else None
            out[str(a)] = entry
        return out

    def to_json(self) -> dict:
        """One JSON-ready object: {"config", "points", "fit"}; non-finite numbers (e.g. the
        unbounded slope interval of a two-point fit) become null, so the JSON is strict."""
        return finite_json(
            {
                "config": self.config.to_dict(),
                "points": [p.to_dict() for p in self.points],
                "fit": self.fits(),
            }
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), allow_nan=False)


def finite_json(value):
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def fit_dict(make) -> dict | None:
    try:
        fit = make()
    except ValueError:  # fewer than two resolvable points: no fit, said as null
        return None
    if fit is None:
        return None
    d = fit.to_dict()
    d.pop("kept", None)
    d["kept"] = [bool(k) for k in fit.kept]
    return d
