"""A fits file: the regressions ``mialaw predict`` reads, with their provenance and transfer.

Each :class:`Regression` is log10(TPR − FPR) = β_0 + β_S·log10 S + β_C·log10 C for one attack
and FPR, with the coefficients' intervals, their covariance where it could be recovered, its
held-out R² (by data set, backbone or C within its own runs), its held-out-by-task R² (how it
predicts tasks it was not fitted on, ``task_r2``) and the between-task spread τ of the intercept
(``intercept_spread``) with the error of predictions for a left-out data set (``transfer_rmse``).
The file names its default source: the one that transfers best.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .fit_build import FORMAT, NAMES, build_fits
from .laws import Line

__all__ = ["ATTACKS", "FitSet", "Regression", "SHIPPED_FITS", "load_fit_set", "load_fits"]

SHIPPED_FITS = Path(__file__).with_name("shipped_fits.json")
ATTACKS = ("lira_online", "lira_offline", "rmia")


def _optional_float(value):
    return None if value is None else float(value)


def _spread(d: dict, name: str) -> float | None:
    value = _optional_float(d.get(name))
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a number >= 0; got {value}")
    return value


@dataclass(frozen=True)
class Regression:
    """One fitted regression: coefficients in ``NAMES`` order and where they came from."""

    source: str
    attack: str
    fpr: float
    coef: tuple
    ci: tuple  # ((lower, upper),) per coefficient
    level: float
    n: int
    covariance: tuple | None = None  # 3 × 3, or None when not stored
    dof: int | None = None
    scale_estimated: bool = True  # False: a weighted fit that took its errors as known
    r2: float | None = None
    held_out_r2: float | None = None
    held_out_by: str | None = None
    task_r2: float | None = None  # mean R² over the tasks it was not fitted on
    task_r2_by_task: dict = field(default_factory=dict)
    intercept_spread: float | None = None  # τ: standard deviation of the tasks' intercepts
    transfer_rmse: float | None = None  # RMSE of log10 advantage predicted for a left-out data set
    provenance: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.source}/{self.attack}/{self.fpr:g}"

    @property
    def new_task_spread(self) -> float:
        """The standard deviation a data set that is not one of ours adds to a prediction (log10):
        the larger of the intercepts' spread τ and the held-out-by-data-set RMSE; 0 if unknown."""
        known = [v for v in (self.intercept_spread, self.transfer_rmse) if v is not None]
        return max(known, default=0.0)

    @property
    def transfers(self) -> bool | None:
        """Whether it predicts held-out tasks better than their own mean (R² > 0); None if
        unknown."""
        return None if self.task_r2 is None else self.task_r2 > 0

    def warning(self) -> str | None:
        """A one-line warning where a held-out R² is below 0, else None."""
        bad = [
            f"held-out R² by {what} {value:.2f}"
            for what, value in (("task", self.task_r2), (self.held_out_by, self.held_out_r2))
            if value is not None and value < 0
        ]
        if not bad:
            return None
        return (
            f"warning: {self.id} does worse than a constant on what it was not fitted on "
            f"({', '.join(bad)}): its predictions do not transfer there"
        )

    def line(self, classes: float, *, new_task: bool = False) -> Line:
        """The ``laws.Line`` in log10 S at fixed C (needs the covariance). ``new_task``: add the
        between-data-set variance (``new_task_spread`` squared) to the intercept's."""
        if self.covariance is None:
            raise ValueError(f"fit {self.id} stores no covariance")
        z = math.log10(classes)
        c = np.asarray(self.covariance, dtype=np.float64)
        b0, bs, bc = self.coef
        extra = self.new_task_spread**2 if new_task else 0.0
        return Line(
            intercept=b0 + bc * z,
            slope=bs,
            covariance=(
                (c[0, 0] + 2 * z * c[0, 2] + z * z * c[2, 2] + extra, c[0, 1] + z * c[1, 2]),
                (c[0, 1] + z * c[1, 2], c[1, 1]),
            ),
            dof=self.dof if self.dof is not None else self.n - 3,
            level=self.level,
            known_scale=not self.scale_estimated,
        )

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "attack": self.attack,
            "fpr": self.fpr,
            "coefficients": {
                name: {"estimate": c, "ci": list(ci)}
                for name, c, ci in zip(NAMES, self.coef, self.ci)
            },
            "covariance": None if self.covariance is None else [list(r) for r in self.covariance],
            "dof": self.dof,
            "scale_estimated": self.scale_estimated,
            "level": self.level,
            "n": self.n,
            "r2": self.r2,
            "held_out_r2": self.held_out_r2,
            "held_out_by": self.held_out_by,
            "task_r2": self.task_r2,
            "task_r2_by_task": dict(self.task_r2_by_task),
            "intercept_spread": self.intercept_spread,
            "transfer_rmse": self.transfer_rmse,
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Regression:
        try:
            coefs = d["coefficients"]
            coef = tuple(float(coefs[n]["estimate"]) for n in NAMES)
            ci = tuple(tuple(float(v) for v in coefs[n]["ci"]) for n in NAMES)
            cov = d.get("covariance")
            if cov is not None:
                cov = tuple(tuple(float(v) for v in row) for row in cov)
                if np.shape(cov) != (3, 3):
                    raise ValueError("covariance must be 3 × 3")
            spread = _spread(d, "intercept_spread")
            rmse = _spread(d, "transfer_rmse")
            return cls(
                source=str(d.get("source", "user")),
                attack=str(d["attack"]),
                fpr=float(d["fpr"]),
                coef=coef,
                ci=ci,
                level=float(d.get("level", 0.95)),
                n=int(d["n"]),
                covariance=cov,
                dof=None if d.get("dof") is None else int(d["dof"]),
                scale_estimated=bool(d.get("scale_estimated", True)),
                r2=_optional_float(d.get("r2")),
                held_out_r2=_optional_float(d.get("held_out_r2")),
                held_out_by=d.get("held_out_by"),
                task_r2=_optional_float(d.get("task_r2")),
                task_r2_by_task=dict(d.get("task_r2_by_task") or {}),
                intercept_spread=spread,
                transfer_rmse=rmse,
                provenance=dict(d.get("provenance", {})),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"not a regression fit ({err!r}); a fit needs attack, fpr, n and coefficients "
                f"{list(NAMES)} each with estimate and ci"
            ) from None


@dataclass(frozen=True)
class FitSet:
    """The fits of one file and its default source (the one that transfers best), with why."""

    fits: tuple
    default_source: str | None = None
    default_reason: str = ""

    @property
    def sources(self) -> list[str]:
        return sorted({f.source for f in self.fits})


def load_fit_set(path=None) -> FitSet:
    """The fits in ``path`` (default: the shipped ones) and the file's default source.

    Accepts this module's format (``{"format": "mialaw-fits/1", "fits": [...]}``), a single fit
    object or a list of them, or anything ``fit_build.build_fits`` reads (a stage JSON, ``mialaw
    empirical fit --json`` output).
    """
    path = SHIPPED_FITS if path is None else Path(path)
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"fit file {path} does not exist") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"fit file {path} is not readable JSON ({err})") from None
    default = {}
    if isinstance(data, dict) and data.get("format") == FORMAT:
        items, default = data.get("fits", []), data.get("default") or {}
    elif isinstance(data, dict) and ("result" in data or "fit" in data):
        items = build_fits([path])["fits"]
    elif isinstance(data, dict):
        items = [data]
    elif isinstance(data, list):
        items = data
    else:
        raise ValueError(f"fit file {path} holds neither fits nor a fit result")
    fits = tuple(Regression.from_dict(d) for d in items if "error" not in d)
    if not fits:
        raise ValueError(f"fit file {path} holds no usable regression fit")
    return FitSet(fits, default.get("source"), default.get("why", ""))


def load_fits(path=None) -> tuple[Regression, ...]:
    """The fits in ``path`` (default: the shipped ones); see :func:`load_fit_set`."""
    return load_fit_set(path).fits
