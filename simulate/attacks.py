"""Attacks on simulated models: the oracle (exact Neyman–Pearson) and a realistic shadow-model LiRA.

Every pooled TPR is measured by the project's rules (``mialaw.theory.measure``, through
``measure.measure``): one threshold at α over all target models' pooled scores, NaN when
unresolvable (α·negatives < 1), and an interval from a bootstrap of the whole threshold-then-count
procedure (seeded from the engine's seed), unless ``Measurement(method="clopper-pearson")``.

``oracle_attack``: N independent games, each with a fresh target x ~ N(e_0, Σ) that is a member in
exactly half of the games (alternating). The oracle knows the exact IN/OUT laws of s = <x, m̂_0>
and reports
  * pooled: TPR at FPR α of one global threshold on log LR over all games: one experiment with
    one "target model" (T = 1), whose bootstrap resamples the games;
  * per-example-calibrated: TPR of "p(s) <= α" with the exact NP p-value of each target, whose
    expectation is E_x[TPR_NP(x)] at per-example FPR α (its achieved FPR is reported too and must
    be ≈ α: a built-in check). No threshold is estimated: each game's decision depends on that
    game alone, so the counts are independent Bernoulli trials, one per game, and the
    Clopper–Pearson interval is exact for it (unlike for the pooled TPR, whose threshold is
    estimated from all the games at once).

``lira_attack``: N fixed targets and M models (M even), every target IN for exactly M/2 of them;
model m's statistic on target n is what a real attacker would compute from the released class
means (true-class score, or logit-scaled confidence of the softmax), drawn by the sampler. Scores
come from ``mialaw.theory.lira.lira_scores`` (numpy engine) or its compiled twins in
``lira_kernel`` (numba engine), evaluated by
  * **pair rotation** (``evaluation="pairs"``, the default): the keep matrix has complementary
    model pairs (row 2k+1 = ¬row 2k) and target model t is scored against all models but t and
    t ^ 1, so every example keeps M/2 − 1 IN and M/2 − 1 OUT shadows whatever t's membership:
    no tilt, and all M models are targets;
  * **leave-one-out rotation** (``"loo"``, kept to reproduce earlier runs): each model in turn is
    the target and the other M − 1 its shadows, on a balanced keep matrix. A member target leaves
    M/2 − 1 IN and M/2 OUT shadows, a non-member the reverse; with online LiRA this tilts the
    scores towards "non-member" by about (1/(M/2 − 1) − 1/(M/2))/2, which shows when the signal
    is weak (large S, few shadows): TPR below α;
  * **dedicated target models** (``"dedicated"``): T more models, never shadows, attacked with
    the Gaussians fitted once on all M shadows.
The scores of all target models (T × N, labels = their keep rows) form one experiment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mialaw.theory.lira import lira_scores
from mialaw.theory.measure import Experiment, TprMeasurement
from mialaw.theory.metrics import clopper_pearson
from mialaw.theory.model import GaussianModel

from .engines import Engine, derive_seed
from .lira_kernel import lira_dedicated, lira_loo, lira_pairs
from .measure import Measurement, measure
from .samplers import SCORE, STATISTICS

ATTACKS = ("oracle", "lira-online", "lira-offline")
EVALUATIONS = ("pairs", "loo", "dedicated")
# Sub-seeds of an engine's seed: 1 = the dedicated target models' draws, this one the bootstrap.
_BOOTSTRAP_KEY = 101
DEFAULT_MEASUREMENT = Measurement()  # 95 % bootstrap intervals, 1000 resamples


@dataclass(frozen=True)
class PerExample:
    """The per-example-calibrated oracle at FPR α: counts of "p <= α" among members/non-members.

    Each game is decided on its own (no estimated threshold): the counts are independent
    Bernoulli trials and ``tpr_ci`` (Clopper–Pearson) is exact for them.
    """

    fpr: float
    true_positives: int
    positives: int
    false_positives: int
    negatives: int

    @property
    def tpr(self) -> float:
        return self.true_positives / self.positives

    @property
    def achieved_fpr(self) -> float:
        return self.false_positives / self.negatives

    def tpr_ci(self, level: float = 0.95):
        return clopper_pearson(self.true_positives, self.positives, level)


@dataclass(frozen=True)
class AttackResult:
    """One attack at one number of shots: the pooled measurement per α (and per-example for the
    oracle); ``experiment`` holds the scores and labels it was measured on."""

    attack: str
    shots: int
    pooled: tuple[TprMeasurement, ...]
    per_example: tuple[PerExample, ...] | None = None
    experiment: Experiment | None = field(default=None, repr=False, compare=False)


def _fprs(fpr) -> tuple[float, ...]:
    return tuple(float(a) for a in np.atleast_1d(fpr))


def _measured(engine: Engine, experiment: Experiment, fpr, how: Measurement):
    """The shared measurement, its bootstrap seeded from the engine's seed (reproducible)."""
    if not isinstance(how, Measurement):
        raise ValueError(f"measurement must be a Measurement; got {type(how).__name__}")
    return measure(experiment, fpr, how, derive_seed(engine.seed, _BOOTSTRAP_KEY))


def _labels(n: int) -> np.ndarray:
    return (np.arange(n) % 2) == 0


def oracle_attack(
    model: GaussianModel,
    shots: int,
    fpr,
    *,
    targets: int,
    sampler: str,
    engine: Engine,
    measurement: Measurement = DEFAULT_MEASUREMENT,
) -> AttackResult:
    """The oracle on ``targets`` independent games at ``shots`` (>= 2); see the module docstring."""
    fpr = _fprs(fpr)
    member = _labels(targets)
    games = engine.targets(model, targets, sampler)
    stats = engine.stats(model, games, member[None, :], shots, SCORE, sampler)[0]
    log_lr, pvalue = engine.oracle(stats, games, shots)
    experiment = Experiment(scores=log_lr[None, :], labels=member[None, :])
    pooled = _measured(engine, experiment, fpr, measurement)
    positives = int(member.sum())
    per_example = tuple(
        PerExample(
            fpr=a,
            true_positives=int(np.count_nonzero(pvalue[member] <= a)),
            positives=positives,
            false_positives=int(np.count_nonzero(pvalue[~member] <= a)),
            negatives=targets - positives,
        )
        for a in fpr
    )
    return AttackResult("oracle", int(shots), pooled, per_example, experiment)


def lira_attack(
    model: GaussianModel,
    shots: int,
    fpr,
    *,
    targets: int,
    shadows: int,
    online: bool,
    variance: str = "per-example",
    statistic: str = "score",
    sampler: str,
    engine: Engine,
    evaluation: str = "pairs",
    target_models: int = 16,
    measurement: Measurement = DEFAULT_MEASUREMENT,
) -> AttackResult:
    """Shadow-model LiRA with ``shadows`` models; see the module docstring.

    evaluation "pairs": pair rotation over ``shadows`` models in complementary pairs (no tilt).
    evaluation "loo": leave-one-out rotation over the ``shadows`` models (tilted).
    evaluation "dedicated": ``target_models`` further models (their own balanced keep matrix and
    independent draws) are attacked with the Gaussians fitted once on all ``shadows`` models.

    The numpy engine scores with the shared ``mialaw.theory.lira.lira_scores`` (for "dedicated":
    on the shadows stacked with one target model, that model the target); the Numba engine with
    their compiled equivalents in ``lira_kernel`` (held equal to them by the tests). Both draw
    their keep matrices from the engine's seed.
    """
    if evaluation not in EVALUATIONS:
        raise ValueError(f"evaluation must be one of {EVALUATIONS}; got {evaluation!r}")
    fpr = _fprs(fpr)
    stat = STATISTICS[statistic]
    games = engine.targets(model, targets, sampler)
    keep = engine.keep(shadows, targets, pairs=evaluation == "pairs")
    stats = engine.stats(model, games, keep, shots, stat, sampler)
    options = {"online": online, "variance": variance}
    if evaluation == "pairs":
        labels = keep
        if engine.name == "numba":
            scores = lira_pairs(keep, stats, **options)
        else:
            scores = lira_scores(keep, stats, rotation="pairs", **options)
    elif evaluation == "loo":
        labels = keep
        if engine.name == "numba":
            scores = lira_loo(keep, stats, **options)
        else:
            scores = lira_scores(keep, stats, rotation="loo", **options)
    else:
        labels, scores = _dedicated(
            model, engine, games, keep, stats, shots, stat, sampler, target_models, options
        )
    experiment = Experiment(scores=scores, labels=labels)
    pooled = _measured(engine, experiment, fpr, measurement)
    name = "lira-online" if online else "lira-offline"
    return AttackResult(name, int(shots), pooled, None, experiment)


def _dedicated(model, engine, games, keep, stats, shots, stat, sampler, target_models, options):
    """(labels, scores) of ``target_models`` dedicated target models against all the shadows."""
    # Independent streams for the target models: a second engine under a derived seed.
    other = Engine(engine.name, derive_seed(engine.seed, 1))
    labels = other.keep(target_models, games.size)
    target_stats = other.stats(model, games, labels, shots, stat, sampler)
    if engine.name == "numba":
        return labels, lira_dedicated(keep, stats, target_stats, **options)
    shadows = keep.shape[0]
    # Plain leave-one-out on the stack: the target model is past the shadows, so it removes
    # only itself and every shadow stays (no tilt).
    scores = np.vstack(
        [
            lira_scores(
                np.vstack([keep, labels[t : t + 1]]),
                np.vstack([stats, target_stats[t : t + 1]]),
                rotation="loo",
                targets=[shadows],
                **options,
            )
            for t in range(target_models)
        ]
    )
    return labels, scores
