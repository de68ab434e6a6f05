"""Predict membership-inference vulnerability from a fitted regression, without training anything.

The project's regression log10(TPR − FPR) = β_S·log10 S + β_C·log10 C + β_0 (one per attack and
FPR; ``mialaw.empirical.analysis``) is shipped with the package in ``shipped_fits.json``, each fit
with its provenance (source run(s), datasets, backbones, the S and C it was fitted on, the fit
rule), the coefficients' covariance where it could be recovered, how it transfers to tasks it was
not fitted on (``task_r2``, ``mialaw.empirical.transfer``) and the between-task spread τ of the
intercept. ``predict`` gives the TPR at (S, C, FPR) with an interval, ``shots_for`` inverts for
the S per class at which the advantage falls under a target. The default fit is the file's
default source: the one that transfers best by the held-out-by-task measure.

Intervals. With the covariance, the prediction is the fitted plane's band at (log10 S, log10 C)
(Student t with the fit's residual degrees of freedom, or the normal quantile for a weighted fit
that took its errors as known), which widens with the distance from the fitted S and C; the S
needed is Fieller's interval (``mialaw.empirical.laws``). For a data set that is not one of the
fit's (``new_task=True``, the default), the square of ``Regression.new_task_spread`` is added to
the intercept's variance: the larger of the intercepts' spread τ between our tasks and the RMSE
of predictions for a left-out data set (which also carries slope and curvature differences).
Without the covariance (a fit JSON that stores only per-coefficient intervals), every coefficient
is let range over its own interval at once (conservative: it ignores that intercept and slopes are
strongly negatively correlated), and the spread widens both ends by its normal quantile.

The fits file is regenerated from stage JSONs by
``python -m mialaw.empirical.predict STAGE... --tasks STAGE... --out FILE`` (``fit_build``).
"""

from __future__ import annotations

import argparse
import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mialaw.theory.estimate import Estimate
from mialaw.theory.model import check_fpr

from .fit_build import write_fits
from .fit_file import ATTACKS, SHIPPED_FITS, FitSet, Regression, load_fit_set, load_fits

__all__ = [
    "SHIPPED_FITS",
    "FitSet",
    "Prediction",
    "Regression",
    "ShotsPrediction",
    "check_prediction_fpr",
    "load_fit_set",
    "load_fits",
    "predict",
    "select_fit",
    "shots_for",
]

# Where a file names no default: a pretrained backbone, the practitioners' setting.
FALLBACK_SOURCE = "fashion-mnist-lite0"


@dataclass(frozen=True)
class Prediction:
    """Predicted TPR − FPR (and TPR) at (S, C, FPR) with its interval."""

    shots: float
    classes: int
    fpr: float
    advantage: tuple  # (lower, estimate, upper)
    method: str
    fit: str
    extrapolated: bool
    new_task: bool = False  # the between-task spread of the intercept is in the interval

    @property
    def estimate(self) -> Estimate:
        """TPR − FPR as (lower, estimate, upper)."""
        return Estimate(*self.advantage)

    @property
    def tpr(self) -> tuple:
        return tuple(min(1.0, self.fpr + a) for a in self.advantage)

    def __str__(self) -> str:
        lo, est, hi = self.advantage
        return f"TPR − FPR {est:.3g} [{lo:.3g}, {hi:.3g}] at S = {self.shots:g}, C = {self.classes}"

    def to_dict(self) -> dict:
        lo, est, hi = self.advantage
        return {
            "shots": self.shots,
            "classes": self.classes,
            "fpr": self.fpr,
            "advantage": est,
            "advantage_ci": [lo, hi],
            "tpr": self.tpr[1],
            "tpr_ci": [self.tpr[0], self.tpr[2]],
            "interval": self.method,
            "fit": self.fit,
            "extrapolated": self.extrapolated,
            "new_task": self.new_task,
        }


@dataclass(frozen=True)
class ShotsPrediction:
    """S per class at which the predicted TPR − FPR falls under ``target_advantage``.

    ``lower``, ``estimate`` and ``upper`` are the S (inf: not reached within what the fit can
    say); ``shots`` is the same as a tuple.
    """

    target_advantage: float
    classes: int
    fpr: float
    shots: tuple  # (lower, estimate, upper)
    method: str
    fit: str
    extrapolated: bool
    new_task: bool = False

    @property
    def lower(self) -> float:
        return self.shots[0]

    @property
    def estimate(self) -> float:
        return self.shots[1]

    @property
    def upper(self) -> float:
        return self.shots[2]

    @property
    def bounded(self) -> bool:
        """Whether the data determine the S needed (a finite upper end)."""
        return math.isfinite(self.upper)

    def __str__(self) -> str:
        lo, est, hi = (_format_shots(v) for v in self.shots)
        return f"S >= {est} per class [{lo}, {hi}] for TPR − FPR <= {self.target_advantage:g}"

    def to_dict(self) -> dict:
        lo, est, hi = self.shots
        return {
            "target_advantage": self.target_advantage,
            "classes": self.classes,
            "fpr": self.fpr,
            "shots": est,
            "shots_ci": [lo, hi],
            "shots_ceil": math.ceil(est) if math.isfinite(est) else None,
            "interval": self.method,
            "fit": self.fit,
            "extrapolated": self.extrapolated,
            "new_task": self.new_task,
        }


def _format_shots(v: float) -> str:
    if math.isinf(v):
        return "∞"
    return f"{math.ceil(v):,}" if v < 1e7 else f"{v:.1e}"


# --------------------------------------------------------------------------- choosing a fit
def check_prediction_fpr(fpr) -> float:
    """The FPR as a float; ValueError "FPR must lie in (0, 1)" otherwise."""
    try:
        return float(check_fpr(fpr))
    except (TypeError, ValueError):
        raise ValueError(f"FPR must lie in (0, 1); got {fpr!r}") from None


def select_fit(fits, *, fpr: float, attack: str = "lira_online", source=None) -> Regression:
    """The fit of ``attack`` at ``fpr`` from ``source`` (default: the file's default source, the
    one that transfers best; else the only source there is). ``fits``: a ``FitSet`` or fits."""
    fpr = check_prediction_fpr(fpr)
    fit_set = fits if isinstance(fits, FitSet) else FitSet(tuple(fits))
    sources = fit_set.sources
    if source is None:
        default = fit_set.default_source or FALLBACK_SOURCE
        if default in sources:
            source = default
        elif len(sources) == 1:
            source = sources[0]
        else:
            raise ValueError(f"several fit sources {sources}; choose one with source=")
    if source not in sources:
        raise ValueError(f"unknown fit source {source!r}; allowed: {', '.join(sources)}")
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}; got {attack!r}")
    mine = [f for f in fit_set.fits if f.source == source and f.attack == attack]
    found = [f for f in mine if math.isclose(f.fpr, fpr)]
    if not found:
        have = ", ".join(f"{a:g}" for a in sorted({f.fpr for f in mine})) or "none"
        raise ValueError(
            f"no {attack} fit at FPR {fpr:g} in {source}; fitted FPRs: {have} (the regression "
            "is not interpolated across FPR)"
        )
    return found[0]


def _check(name, value, minimum, integer=False):
    v = value
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number >= {minimum}; got {value!r}")
    if integer and int(v) != v:
        raise ValueError(f"{name} must be a whole number >= {minimum}; got {value!r}")
    if not (math.isfinite(float(v)) and v >= minimum):
        raise ValueError(f"{name} must be a number >= {minimum}; got {value!r}")
    return int(v) if integer else float(v)


def _outside(fit: Regression, shots=None, classes=None) -> bool:
    prov = fit.provenance
    lo, hi = prov.get("shots_range", (None, None))
    cs = prov.get("classes") or []
    out = False
    if shots is not None and lo is not None:
        out |= not (lo <= shots <= hi)
    if classes is not None and cs:
        out |= not (min(cs) <= classes <= max(cs))
    return bool(out)


def _resolve_fit(fit, fits_path, fpr, attack, source) -> Regression:
    if isinstance(fit, Regression):
        if not math.isclose(fit.fpr, fpr):
            raise ValueError(f"the given fit is at FPR {fit.fpr:g}, not {fpr:g}")
        return fit
    return select_fit(load_fit_set(fits_path), fpr=fpr, attack=attack, source=source)


def _spread_half(reg: Regression, new_task: bool) -> float:
    """The new-data-set spread's share of a box interval's half-width (normal quantile)."""
    if not new_task or not reg.new_task_spread:
        return 0.0
    return float(stats.norm.ppf(0.5 + reg.level / 2) * reg.new_task_spread)


def _method(reg: Regression, new_task: bool, fieller: bool) -> str:
    if reg.covariance is not None:
        what = "Fieller" if fieller else "band of the fitted plane"
        text = f"{reg.level:.0%} {what} (coefficient covariance"
    else:
        text = f"per-coefficient {reg.level:.0%} intervals at their extremes (conservative"
    if new_task and reg.new_task_spread:
        text += (
            f"; plus the spread between data sets, {reg.new_task_spread:.2f} in log10 (the larger "
            "of the intercepts' spread and the held-out-by-data-set RMSE)"
        )
    return text + ")"


# --------------------------------------------------------------------------- predictions
def predict(
    shots,
    classes,
    fpr,
    *,
    attack="lira_online",
    source=None,
    fit=None,
    fits_path=None,
    new_task: bool = True,
) -> tuple[Prediction, ...]:
    """Predicted TPR − FPR at each S in ``shots`` for C = ``classes`` at FPR ``fpr``.

    ``fit``: a ``Regression`` to use; else the fit of ``attack`` at ``fpr`` from ``fits_path``
    (default: the shipped fits) and ``source``. ``new_task``: the data set is not one of the
    fit's, so the interval includes the between-task spread of the intercept (where known).
    """
    fpr = check_prediction_fpr(fpr)
    classes = _check("classes", classes, 2, integer=True)
    values = np.atleast_1d(np.asarray(shots, dtype=object))
    if values.size == 0:
        raise ValueError("shots must hold at least one value")
    shots = [_check("shots", s, 1) for s in values]
    reg = _resolve_fit(fit, fits_path, fpr, attack, source)
    widened = bool(new_task and reg.new_task_spread)
    out = []
    for s in shots:
        x, z = math.log10(s), math.log10(classes)
        if reg.covariance is not None:
            lo, est, hi = (float(v) for v in reg.line(classes, new_task=new_task).band(x))
        else:
            extra = _spread_half(reg, new_task)
            est = reg.coef[0] + reg.coef[1] * x + reg.coef[2] * z
            ys = [b0 + bs * x + bc * z for b0, bs, bc in itertools.product(*reg.ci)]
            lo, hi = min(ys) - extra, max(ys) + extra
        cap = 1.0 - fpr
        adv = tuple(min(10.0**v, cap) for v in (lo, est, hi))
        method = _method(reg, new_task, fieller=False)
        out.append(
            Prediction(s, classes, fpr, adv, method, reg.id, _outside(reg, s, classes), widened)
        )
    return tuple(out)


def shots_for(
    target_advantage,
    classes,
    fpr,
    *,
    attack="lira_online",
    source=None,
    fit=None,
    fits_path=None,
    new_task: bool = True,
) -> ShotsPrediction:
    """The S per class at which the predicted TPR − FPR at FPR ``fpr`` falls to
    ``target_advantage`` for C = ``classes``, with its interval (see the module docstring)."""
    fpr = check_prediction_fpr(fpr)
    classes = _check("classes", classes, 2, integer=True)
    target = _check("target_advantage", target_advantage, 0)
    if not 0 < target < 1 - fpr:
        raise ValueError(
            f"target_advantage must lie in (0, 1 − fpr) = (0, {1 - fpr:g}); "
            f"got {target_advantage!r}"
        )
    reg = _resolve_fit(fit, fits_path, fpr, attack, source)
    y, z = math.log10(target), math.log10(classes)
    if reg.covariance is not None:
        lo, est, hi = reg.line(classes, new_task=new_task).solve(y)
    else:
        lo, est, hi = _box_solve(reg, y, z, _spread_half(reg, new_task))
    if not reg.coef[1] < 0:
        est = math.inf
    shots = tuple(_shots(v) for v in (lo, est, hi))
    return ShotsPrediction(
        target,
        classes,
        fpr,
        shots,
        _method(reg, new_task, fieller=True),
        reg.id,
        _outside(reg, shots[1], classes),
        bool(new_task and reg.new_task_spread),
    )


def _box_solve(reg: Regression, y: float, z: float, extra: float):
    """log10 S where the box of coefficients (intercepts widened by ``extra``) meets y."""
    est = (y - reg.coef[0] - reg.coef[2] * z) / reg.coef[1]
    (a_lo, a_hi), slopes, classes_ci = reg.ci
    box = list(itertools.product((a_lo - extra, a_hi + extra), slopes, classes_ci))
    if max(slopes) >= 0:  # the slope may be zero: S is not bounded above
        xs = [(y - b0 - bc * z) / bs for b0, bs, bc in box if bs < 0]
        return (min(xs) if xs else -math.inf), est, math.inf
    xs = [(y - b0 - bc * z) / bs for b0, bs, bc in box]
    return min(xs), est, max(xs)


def _shots(log10_s: float) -> float:
    log10_s = float(log10_s)
    if math.isnan(log10_s):
        return math.nan
    if log10_s > 300:
        return math.inf
    return max(1.0, 10.0**log10_s)


def main(argv=None) -> None:
    """python -m mialaw.empirical.predict STAGE.json... [--tasks STAGE.json...] --out FILE"""
    parser = argparse.ArgumentParser(description="build the shipped regression fits file")
    parser.add_argument("stages", nargs="+", help="stage JSONs whose regressions are shipped")
    parser.add_argument(
        "--tasks", nargs="*", default=(), help="stage JSONs of the tasks (the transfer measure)"
    )
    parser.add_argument("--out", default=str(SHIPPED_FITS))
    args = parser.parse_args(argv)
    print(write_fits(args.stages, args.out, tasks=args.tasks))


if __name__ == "__main__":
    main()
