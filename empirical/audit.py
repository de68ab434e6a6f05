"""Audit your own fine-tuning data: how exposed is it now, and how many shots would make it safe?

``audit(features, labels)`` measures membership-inference vulnerability (online and offline LiRA,
offline RMIA) of a linear head trained on the user's features at several shots per class S
subsampled from their data, by the project's own sweep (``mialaw.empirical.sweep.run_sweep``
with given features: complementary model pairs, pair rotation, one threshold per experiment,
bootstrap intervals), fits the power law log10(TPR − FPR) = slope·log10 S + intercept per attack
and FPR (weighted least squares over the points the analysis admits: resolvable, detected,
unsaturated), and reports

* the vulnerability at the user's full S (``train_shots``, default: the smallest class, i.e.
  training on everything), *measured* when the data allow a sweep cell at that S (a cell needs
  2·S candidates and >= 10 held-out examples per class, so the full S itself never fits and is
  always *predicted* unless ``train_shots`` is smaller), *predicted* by the fit otherwise;
* the S per class at which TPR − FPR falls under ``target_advantage``, and under the (ε, δ)-DP
  bound (e^ε − 1)·α + δ (``mialaw.theory.dp``), each with Fieller's interval from the fit's full
  covariance (``mialaw.empirical.laws``).

Intervals beyond the measured S. A prediction's interval is where a *measurement* at that S would
fall: the fitted line's band (covariance included) widened by one measurement's noise (the
standard error of the point at the largest fitted S). Beyond the largest fitted S its upper end
also allows the curve to flatten to the theory's large-S slope −½ (``THEORY_SLOPE``): in the
unsaturated regime local slopes are steeper than −½ and approach it, so a straight line through
the measured points under-predicts further out (seen on the Gaussian model: a fitted slope of −1.0
over S = 7…56, a measurement at S = 150 above the straight line's band). The same envelope sets
the upper end of the S needed.

Only the fit's *tail* (the usable points within ``fit_octaves`` octaves of the largest) enters
the law: the law is asymptotic, small S bend the curve (the advantage saturates), and the user asks
about larger S than measured.

Everything is checked before anything runs; bad input raises ``ValueError`` saying what was wrong
and what is allowed. The sweep's cells go to ``out/run`` (an interrupted audit resumes; an
``out`` holding another data set's audit is refused) and the reports ``report.md``,
``report.html`` (self-contained, plots as base64 PNG) and ``report.json`` are each written to a
temporary file and renamed, so none is ever half-written.

This module is the public surface; the parts, one idea each: ``audit_data`` (checking the data
and options, the default S grid), ``audit_sweep`` (the sweep on the user's features and its
largest cell), ``audit_law`` (the fitted law, its predictions and inversions), ``audit_answers``
(exposure at the user's S, S needed), ``audit_report`` (``AuditReport`` and its renderings),
``audit_figures`` (its plots) and ``audit_format`` (how numbers are written).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mialaw.empirical.audit_answers import answer
from mialaw.empirical.audit_data import (
    FIT_OCTAVES,
    MIN_HELD_OUT,
    check_data,
    check_delta,
    check_fit_options,
    check_names,
    check_positive,
    check_shots,
    check_train_shots,
    default_shots,
)
from mialaw.empirical.audit_report import AuditReport, write_reports
from mialaw.empirical.audit_sweep import GivenFeatures, content_key, run_audit_sweep
from mialaw.empirical.config import RunConfig

# What run_sweep(features=...) takes. Kept for tests/test_predict.py, which imports the old
# private name; new code imports GivenFeatures from mialaw.empirical.audit_sweep.
_GivenFeatures = GivenFeatures

__all__ = ["AuditReport", "audit", "default_shots", "check_data", "write_reports"]


def audit(
    features,
    labels,
    *,
    shots=None,
    fpr=(0.1, 0.01, 0.001),
    shadows: int = 16,
    seeds: int = 1,
    target_advantage=None,
    epsilon=None,
    delta: float = 1e-5,
    out=None,
    train_shots: int | None = None,
    weight_decay: float = 0.01,
    standardize: bool = True,
    rmia_population: int | None = None,
    fit_octaves: float | None = FIT_OCTAVES,
    level: float = 0.95,
    top: int = 10,
    names=None,
    dataset: str = "user",
    backbone: str = "given",
    device: str = "auto",
    progress: bool = True,
) -> AuditReport:
    """Audit membership-inference exposure of a linear head fine-tuned on ``features``.

    Parameters
    ----------
    features, labels : N × D numbers and N integer labels 0..C-1 (every class present).
    shots : S per class to measure (default: 1, 2, 4, ... and the largest S the data allow,
        (smallest class − 10) // 2).
    fpr : FPRs α at which TPR is measured.
    shadows, seeds : shadow heads per target (even, >= 4) and independent experiments.
    target_advantage : one or more bounds on TPR − FPR; reports the S per class that reaches each.
    epsilon, delta : one or more ε (and δ) of the (ε, δ)-DP bound (e^ε − 1)·α + δ on TPR − FPR.
    out : directory for the sweep's cells (``out/run``, resumable) and report.md/html/json; None
        runs in a temporary directory and writes nothing.
    train_shots : the S per class you train with (default: the smallest class: all your data).
    weight_decay : λ of the head's mean-loss objective (the sweep's ``RunConfig.weight_decay``).
    rmia_population : RMIA's reference population P (default: C·max(10, smallest class // 4),
        what the default grid leaves held out at its largest S, so that RMIA is the same attack
        at every S; the held-out examples shrink as S grows).
    fit_octaves : the power law is fitted to the usable points within ``fit_octaves`` octaves
        below the largest usable S (None: all usable points).
    names : optional per-example names (e.g. file paths) for the most vulnerable examples.

    Returns an ``AuditReport``. Raises ``ValueError`` for bad input before anything runs.
    """
    started = time.perf_counter()
    sweep = {"dataset": dataset, "backbone": backbone, "shadows": shadows, "seeds": seeds}
    sweep |= {"weight_decay": weight_decay, "standardize": bool(standardize), "device": device}
    plan = _plan(
        features,
        labels,
        shots=shots,
        fpr=fpr,
        train_shots=train_shots,
        target_advantage=target_advantage,
        epsilon=epsilon,
        delta=delta,
        fit_octaves=fit_octaves,
        level=level,
        top=top,
        names=names,
        rmia_population=rmia_population,
        sweep=sweep,
    )
    swept = run_audit_sweep(plan.config, plan.given, out, top, plan.names, progress)
    report = _report(plan, *swept, started=started)
    if out is not None:
        write_reports(report, out)
    return report


@dataclass(frozen=True)
class _Plan:
    """One audit's checked inputs and the sweep (``config``, a RunConfig) that measures them."""

    given: GivenFeatures
    counts: np.ndarray
    largest_measurable: int  # the largest S a sweep cell allows on these data
    train_shots: int
    train_source: str
    targets: tuple
    epsilons: tuple
    delta: float
    fit_octaves: float | None
    level: float
    names: list | None
    config: object

    @property
    def measured_train(self) -> bool:
        """Whether the sweep has a cell at the user's S (otherwise its exposure is predicted)."""
        return self.train_shots <= self.largest_measurable


def _plan(
    features,
    labels,
    *,
    shots,
    fpr,
    train_shots,
    target_advantage,
    epsilon,
    delta,
    fit_octaves,
    level,
    top,
    names,
    rmia_population,
    sweep: dict,
) -> _Plan:
    """Check every input (ValueError before anything runs) and lay out the sweep."""
    x, y = check_data(features, labels)
    counts = np.bincount(y)
    shots, top_s = check_shots(shots, counts)
    train_shots, train_source = check_train_shots(train_shots, counts)
    grid = tuple(sorted(set(shots) | ({train_shots} if train_shots <= top_s else set())))
    alphas = check_positive("fpr", fpr, upper=1.0)
    targets = check_positive("target_advantage", target_advantage, upper=1.0)
    epsilons = () if epsilon is None else check_positive("epsilon", epsilon)
    delta = check_delta(delta)
    check_fit_options(fit_octaves, top)
    names = check_names(names, x.shape[0])
    if rmia_population is None:
        rmia_population = int(counts.size) * max(MIN_HELD_OUT, int(counts.min()) // 4)
    config = RunConfig(
        classes=(int(counts.size),),
        shots=grid,
        fpr=alphas,
        head="linear",
        rmia_population=rmia_population,
        **sweep,
    )
    given = GivenFeatures(x, y, content_key(x, y))
    return _Plan(
        given,
        counts,
        top_s,
        train_shots,
        train_source,
        targets,
        epsilons,
        delta,
        fit_octaves,
        level,
        names,
        config,
    )


def _report(plan: _Plan, result, roc, vulnerable, run_dir, *, started: float) -> AuditReport:
    """The laws, exposures and S needed from the sweep's points, as an AuditReport."""
    points = tuple(result.points)
    laws, exposure, needed = answer(
        points,
        plan.config.fpr,
        plan.train_shots,
        plan.measured_train,
        targets=plan.targets,
        epsilons=plan.epsilons,
        delta=plan.delta,
        fit_octaves=plan.fit_octaves,
        level=plan.level,
    )
    return AuditReport(
        settings=_settings(plan),
        data=_data_summary(plan),
        points=points,
        laws=laws,
        exposure=exposure,
        needed=needed,
        roc=roc,
        vulnerable=vulnerable,
        seconds=time.perf_counter() - started,
        run_dir=None if run_dir is None else str(run_dir),
    )


def _settings(plan: _Plan) -> dict:
    """What the audit measured and asked, as report.json records it."""
    config = plan.config
    return {
        "shots": list(config.shots),
        "fpr": list(config.fpr),
        "shadows": config.shadows,
        "seeds": config.seeds,
        "weight_decay": config.weight_decay,
        "standardize": config.standardize,
        "rmia_population": config.rmia_population,
        "fit_octaves": plan.fit_octaves,
        "level": plan.level,
        "target_advantage": list(plan.targets),
        "epsilon": list(plan.epsilons),
        "delta": plan.delta,
        "head": "linear",
    }


def _data_summary(plan: _Plan) -> dict:
    """The user's data as report.json records it."""
    features, counts = plan.given.features, plan.counts
    return {
        "examples": int(features.shape[0]),
        "features": int(features.shape[1]),
        "classes": int(counts.size),
        "per_class": counts.tolist(),
        "train_shots": int(plan.train_shots),
        "train_shots_source": plan.train_source,
        "largest_measurable_shots": int(plan.largest_measurable),
        "feature_key": plan.given.key,
        "dataset": plan.config.dataset,
        "backbone": plan.config.backbone,
    }
