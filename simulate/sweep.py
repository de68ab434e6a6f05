"""Sweeps of the simulated membership game over shots S, with power-law fits and exact theory.

``SweepConfig`` (frozen, validated; ``sweep_config``) says what is run; ``run_sweep(config)``
runs one attack at every S (a fresh, independently seeded set of games per S) and returns a
``SweepResult``, the analysis (``sweep_result``): one ``SweepPoint`` per (S, α).

Measurement (``mialaw.theory.measure``, the project's rules): a point's pooled TPR has one
threshold over all target models' pooled scores; it is *resolvable* only if α·negatives >= 1
(else its TPR is NaN, written null, and it never enters a fit); its interval (``interval_method``
names it) comes from a bootstrap of the whole threshold-then-count procedure, seeded from the
sweep's seed, so the same config gives bit-identical JSON. A point is *detected* when the
interval's lower end lies above α. The per-example-calibrated oracle ("p <= α" per game) is
another quantity: its counts are independent Bernoulli trials and keep Clopper–Pearson intervals.

``fit(fpr)`` is the weighted fit of log10(TPR − α) on log10 S over the resolvable, detected and
unsaturated (advantage < 0.9·(1 − α)) points with S >= ``fit_min_shots``, each weighted by the
standard error of its log10 advantage (delta method from its interval); ``fits()`` adds the local
slopes between neighbouring such points at all S (the curve's shape,
``mialaw.theory.fits.local_slopes``).

Exact theory (``mialaw.theory.average``): ``theory_pooled`` is the pooled Neyman–Pearson TPR at
global FPR α (the oracle's expectation, an upper bound for every attack); ``theory_per_example``
is E_x[TPR_NP(x)] at per-example FPR α (the per-example-calibrated oracle's expectation).
"""

from __future__ import annotations

import dataclasses
import itertools

from mialaw.theory.average import average_tpr, pooled_tpr
from mialaw.theory.model import GaussianModel

from .attacks import AttackResult, lira_attack, oracle_attack
from .engines import Engine, derive_seed
from .sweep_config import SweepConfig
from .sweep_result import SweepPoint, SweepResult

__all__ = ["SweepConfig", "SweepResult", "run_attack", "run_grid", "run_sweep", "sweep_point"]


def _exact_theory(model: GaussianModel, shots: int, fpr: float):
    """(pooled NP TPR at global FPR α, E_x[TPR_NP(x)] at per-example FPR α) by quadrature."""

    pooled = float(pooled_tpr(model, shots, fpr, statistic="lr").tpr)
    average = float(average_tpr(model, shots, fpr, test="np"))
    return pooled, average


def _points(config: SweepConfig, result: AttackResult, theory: bool) -> list[SweepPoint]:
    points = []
    for i, m in enumerate(result.pooled):
        extra = {}
        if result.per_example is not None:
            pe = result.per_example[i]
            pe_ci = pe.tpr_ci(config.level)
            extra = {
                "per_example_tpr": pe.tpr,
                "per_example_tpr_ci": (float(pe_ci.lower), float(pe_ci.upper)),
                "per_example_achieved_fpr": pe.achieved_fpr,
            }
        if theory:
            t_pooled, t_average = _exact_theory(config.model, result.shots, m.fpr)
            extra["theory_pooled"] = t_pooled
            if result.per_example is not None:
                extra["theory_per_example"] = t_average
        points.append(
            SweepPoint(
                shots=result.shots,
                fpr=m.fpr,
                tpr=m.tpr,
                tpr_ci=(float(m.interval.lower), float(m.interval.upper)),
                interval_method=m.method,
                achieved_fpr=m.achieved_fpr,
                true_positives=m.true_positives,
                positives=m.positives,
                false_positives=m.false_positives,
                negatives=m.negatives,
                resolvable=m.resolvable,
                detected=m.detected,
                log10_advantage_se=m.log10_advantage_se(),
                **extra,
            )
        )
    return points


def run_attack(config: SweepConfig, index: int) -> AttackResult:
    """The attack of ``config`` at its ``index``-th S, with that point's own seed."""
    shots = config.shots[index]
    engine = Engine(config.engine, derive_seed(config.seed, index))
    if config.attack == "oracle":
        return oracle_attack(
            config.model,
            shots,
            config.fpr,
            targets=config.targets,
            sampler=config.sampler,
            engine=engine,
            measurement=config.measurement,
        )
    return lira_attack(
        config.model,
        shots,
        config.fpr,
        targets=config.targets,
        shadows=config.shadows,
        online=config.attack == "lira-online",
        variance=config.variance,
        statistic=config.statistic,
        sampler=config.sampler,
        engine=engine,
        evaluation=config.evaluation,
        target_models=config.target_models,
        measurement=config.measurement,
    )


def sweep_point(config: SweepConfig, index: int, theory: bool = True) -> list[SweepPoint]:
    """The points (one per α) of ``config``'s ``index``-th S: one task of a sweep.

    A pure function of its arguments (the point has its own seed), so it gives the same bits in
    this process or on any worker; module-level, so executors can pickle it by name.
    """
    return _points(config, run_attack(config, index), theory)


def run_sweep(
    config: SweepConfig, *, progress: bool = False, theory: bool = True, executor=None
) -> SweepResult:
    """Run ``config`` at every S; ``progress`` shows a tqdm bar on stderr; ``theory`` adds the
    exact values of ``mialaw.theory.average`` beside each point.

    ``executor``: None runs the S-points one after another in this process; a
    ``concurrent.futures.Executor`` (a process pool, a Dask client's ``get_executor()``) runs them
    through its ``map``. The results are bit-identical either way.
    """
    if not isinstance(config, SweepConfig):
        raise ValueError(f"config must be a SweepConfig; got {type(config).__name__}")
    if executor is not None and not callable(getattr(executor, "map", None)):
        raise ValueError(
            "executor must be None (serial) or a concurrent.futures.Executor; "
            f"got {type(executor).__name__}"
        )
    from tqdm import tqdm

    indices = range(len(config.shots))
    run = map if executor is None else executor.map
    per_index = run(sweep_point, [config] * len(indices), indices, [theory] * len(indices))
    points: list[SweepPoint] = []
    bar = tqdm(
        per_index, total=len(indices), desc=f"{config.attack}", unit="S", disable=not progress
    )
    for found in bar:  # in the order of config.shots, whatever the executor
        points.extend(found)
    return SweepResult(config=config, points=tuple(points))


GRID_AXES = (
    "dim",
    "sigma",
    "classes",
    "shadows",
    "attack",
    "variance",
    "statistic",
    "sampler",
    "evaluation",
    "interval",
)


def run_grid(
    config: SweepConfig, *, progress: bool = False, theory: bool = True, executor=None, **axes
):
    """Sweeps over S for every combination of other settings: ``axes`` maps a field of
    ``SweepConfig`` in ``GRID_AXES`` to a sequence of values, e.g. ``shadows=(16, 64, 256)``.

    Returns a tuple of SweepResult in the order of the Cartesian product (last axis fastest);
    each result's ``config`` says what it ran, and every run keeps ``config.seed``.
    ``executor`` runs each sweep's S-points (as in ``run_sweep``).
    """
    for name, values in axes.items():
        if name not in GRID_AXES:
            raise ValueError(f"cannot vary {name!r}; the axes are {', '.join(GRID_AXES)}")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or not values:
            raise ValueError(f"axis {name!r} needs a non-empty sequence of values")
    names = list(axes)
    results = []
    for combo in itertools.product(*(tuple(axes[n]) for n in names)):
        changed = dataclasses.replace(config, **dict(zip(names, combo)))
        results.append(run_sweep(changed, progress=progress, theory=theory, executor=executor))
    return tuple(results)
