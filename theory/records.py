"""Typed results: one point schema and one power-law schema for every source, in one versioned
JSON form.

A :class:`Point` is one measured (or computed) vulnerability: where it comes from (``source``:
"empirical", "simulation" or "theory"; dataset, backbone, learner), the cell coordinates (C, S),
the attack and α, the TPR with its interval *and the interval's method*, whether it is
resolvable and detected, and the counts it rests on. A :class:`PowerLaw` is a fitted
log10(TPR − α) = slope·log10 S + intercept with its intervals and S range. :class:`ResultSet`
holds both and writes/reads ``{"format": RESULTS_FORMAT, ...}``; a file of another format is
refused with a message that says what to do, never half-read.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields

__all__ = ["RESULTS_FORMAT", "Point", "PowerLaw", "ResultSet", "SweepRecords"]

RESULTS_FORMAT = "mialaw-results/2"
# Format 1 (mialaw 0.1): summary.json with "points" and "fit" but no "format" field, per-target
# thresholds and Clopper–Pearson intervals. Its numbers are not comparable: refused.
_OLD_FORMATS = {None: "mialaw 0.1 (no 'format' field)", "mialaw-results/1": "mialaw 0.1"}
SOURCES = ("empirical", "simulation", "theory")


def _number(value):
    """JSON's form of a value: NaN (no number) as None, tuples as lists, recursively."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_number(v) for v in value]
    if isinstance(value, dict):
        return {k: _number(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Point:
    """One vulnerability measurement; ``extra`` keeps source-specific fields (e.g. accuracy)."""

    source: str
    dataset: str
    backbone: str
    learner: str
    classes: int
    shots: int
    attack: str
    fpr: float
    tpr: float | None
    tpr_ci: tuple | None
    interval_method: str
    resolvable: bool
    detected: bool
    positives: int
    negatives: int
    seeds: int
    extra: dict = field(default_factory=dict, compare=True)

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}; got {self.source!r}")
        if not 0 < self.fpr < 1:
            raise ValueError(f"fpr must lie in (0, 1); got {self.fpr!r}")
        if self.tpr is not None and not self.resolvable:
            raise ValueError("an unresolvable point carries no TPR (tpr must be None)")
        if self.tpr_ci is not None:
            object.__setattr__(self, "tpr_ci", tuple(self.tpr_ci))

    @property
    def advantage(self) -> float | None:
        return None if self.tpr is None else self.tpr - self.fpr

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        d["tpr_ci"] = None if self.tpr_ci is None else list(self.tpr_ci)
        return d | dict(self.extra)

    @classmethod
    def from_dict(cls, row: dict, **defaults) -> Point:
        """From a flat row (the JSON form); missing schema fields come from ``defaults``."""
        row = dict(defaults) | dict(row)
        names = [f.name for f in fields(cls) if f.name != "extra"]
        missing = [n for n in names if n not in row]
        if missing:
            raise ValueError(f"a point lacks the fields {missing}")
        known = {n: _number(row[n]) for n in names}
        return cls(**known, extra={k: _number(v) for k, v in row.items() if k not in names})


@dataclass(frozen=True)
class PowerLaw:
    """log10(TPR − α) = slope·log10 S + intercept over the points that entered the fit."""

    source: str
    dataset: str
    backbone: str
    classes: int
    attack: str
    fpr: float
    slope: float | None
    slope_ci: tuple | None
    intercept: float | None
    n: int
    shots_range: tuple | None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        extra = d.pop("extra")
        for key in ("slope_ci", "shots_range"):
            d[key] = None if d[key] is None else list(d[key])
        return d | extra

    @classmethod
    def from_dict(cls, row: dict, **defaults) -> PowerLaw:
        row = dict(defaults) | dict(row)
        names = [f.name for f in fields(cls) if f.name != "extra"]
        values = {n: _number(row.get(n)) for n in names}
        for key in ("slope_ci", "shots_range"):
            if values[key] is not None:
                values[key] = tuple(values[key])
        if values["n"] is None:
            values["n"] = 0  # a fit that failed (its "error" says why) used no points
        return cls(**values, extra={k: _number(v) for k, v in row.items() if k not in names})


@dataclass(frozen=True)
class ResultSet:
    """Points, power laws and any further analysis (``other``: regressions, per-example...,
    written beside the power laws under "fit")."""

    points: tuple
    power_laws: tuple
    other: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """{"format", "points", "fit": {"power_law": [...], **other}}."""
        fit = {"power_law": [f.to_dict() for f in self.power_laws]} | dict(self.other)
        return {"format": RESULTS_FORMAT, "points": [p.to_dict() for p in self.points], "fit": fit}

    @classmethod
    def from_json(cls, payload: dict) -> ResultSet:
        found = payload.get("format") if isinstance(payload, dict) else "not an object"
        if found in _OLD_FORMATS:
            raise ValueError(
                f"these results were written by {_OLD_FORMATS[found]}, whose thresholds and "
                "intervals this version does not reproduce; recompute them (e.g. `mialaw "
                "empirical fit RUN`, or rerun the sweep)"
            )
        if found != RESULTS_FORMAT:
            raise ValueError(f"results format {found!r} is not {RESULTS_FORMAT!r}")
        fit = dict(payload["fit"])
        return cls(
            points=tuple(Point.from_dict(p) for p in payload["points"]),
            power_laws=tuple(PowerLaw.from_dict(f) for f in fit.pop("power_law")),
            other=fit,
        )

    def laws(self, **where) -> list:
        """The power laws whose named fields equal ``where`` (e.g. classes=2); values may also be
        collections of allowed values (attack=("lira_online", "lira_offline")); a field that is
        not in the schema is an error."""
        names = {f.name for f in fields(PowerLaw)} - {"extra"}
        unknown = sorted(set(where) - names)
        if unknown:
            raise ValueError(f"power laws have no fields {unknown}; they have {sorted(names)}")

        def matches(law, key, value):
            found = getattr(law, key)
            if isinstance(value, (set, frozenset, tuple, list, dict)):
                return found in value
            return found == value

        return [f for f in self.power_laws if all(matches(f, k, v) for k, v in where.items())]

    def select(self, **where) -> list:
        """The points whose named fields equal ``where`` (e.g. attack="lira_online", fpr=0.01);
        a field that is not in the schema is an error."""
        names = {f.name for f in fields(Point)} - {"extra"}
        unknown = sorted(set(where) - names)
        if unknown:
            raise ValueError(f"points have no fields {unknown}; they have {sorted(names)}")
        return [p for p in self.points if all(getattr(p, k) == v for k, v in where.items())]


class SweepRecords(ABC):
    """What every sweep result is, simulated (``mialaw.simulate.sweep_result.SweepResult``) or
    measured on real models (``mialaw.empirical.analysis.SweepResult``): its typed records in the
    one schema above, selected by field, and its JSON form. Code that reads sweeps reads these."""

    @abstractmethod
    def records(self) -> ResultSet:
        """The points and power laws as :class:`ResultSet`."""

    @abstractmethod
    def to_json(self) -> dict:
        """The JSON form written to disk."""

    def points_where(self, **where) -> list:
        """The typed points whose named fields equal ``where`` (``ResultSet.select``)."""
        return self.records().select(**where)

    def laws_where(self, **where) -> list:
        """The power laws whose named fields match ``where`` (``ResultSet.laws``)."""
        return self.records().laws(**where)
