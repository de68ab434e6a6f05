"""Attacks on simulated models: the oracle (exact Neyman–Pearson) and a realistic shadow-model LiRA.

``oracle_attack``: N independent games, each with a fresh target x ~ N(e_0, Σ) that is a member in
exactly half of the games (alternating). The oracle knows the exact IN/OUT laws of s = <x, m̂_0>
and reports
  * pooled: TPR at FPR α of one global threshold on log LR over all games (counts, CP intervals);
  * per-example-calibrated: TPR of "p(s) <= α" with the exact NP p-value of each target, whose
    expectation is E_x[TPR_NP(x)] at per-example FPR α (its achieved FPR is reported too and must
    be ≈ α: a built-in check).

``lira_attack``: N fixed targets and M models (M even) with a balanced keep matrix, every target IN
for exactly M/2 models; model m's statistic on target n is what a real attacker would compute from
the released class means (true-class score, or logit-scaled confidence of the softmax), drawn by
the sampler. The scores come from ``mialaw.theory.lira.lira_scores`` (the code the empirical
module uses), evaluated by **leave-one-out rotation** (default: each model in turn is the target
model and the other M − 1 are its shadows) or on **dedicated target models** (T more models, never
shadows). One global threshold over all (target model, example) pairs gives the pooled TPR at α.

Leave-one-out on a balanced keep matrix leaves M/2 − 1 IN and M/2 OUT shadows when the target model
trained on the example, and the reverse otherwise; with online LiRA this tilts the scores towards
"non-member" by about (1/(M/2 − 1) − 1/(M/2))/2, which matters when the signal is weak (large S,
few shadows). Dedicated target models do not have this imbalance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mialaw.theory.lira import lira_scores
from mialaw.theory.metrics import TprAtFpr, clopper_pearson, tpr_at_fpr
from mialaw.theory.model import GaussianModel

from .engines import Engine, derive_seed
from .lira_kernel import lira_dedicated, lira_loo, pooled_tpr_at_fpr
from .samplers import SCORE, STATISTICS

ATTACKS = ("oracle", "lira-online", "lira-offline")
EVALUATIONS = ("loo", "dedicated")


@dataclass(frozen=True)
class PerExample:
    """The per-example-calibrated oracle at FPR α: counts of "p <= α" among members/non-members."""

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
    """One attack at one number of shots: pooled results per α (and per-example for the oracle)."""

    attack: str
    shots: int
    pooled: tuple[TprAtFpr, ...]
    per_example: tuple[PerExample, ...] | None = None


def _evaluate(engine: Engine, scores, labels, fpr) -> tuple[TprAtFpr, ...]:
    """Pooled TPR at each α: the shared sort-based metric (numpy) or the selection (numba)."""
    if engine.name == "numba":
        return pooled_tpr_at_fpr(scores, labels, fpr)
    return tuple(tpr_at_fpr(np.ravel(scores), np.ravel(labels), fpr))


def _labels(n: int) -> np.ndarray:
    return (np.arange(n) % 2) == 0


def oracle_attack(
    model: GaussianModel, shots: int, fpr, *, targets: int, sampler: str, engine: Engine
) -> AttackResult:
    """The oracle on ``targets`` independent games at ``shots`` (>= 2); see the module docstring."""
    fpr = tuple(float(a) for a in np.atleast_1d(fpr))
    member = _labels(targets)
    games = engine.targets(model, targets, sampler)
    stats = engine.stats(model, games, member[None, :], shots, SCORE, sampler)[0]
    log_lr, pvalue = engine.oracle(stats, games, shots)
    pooled = _evaluate(engine, log_lr, member, fpr)
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
    return AttackResult("oracle", int(shots), tuple(pooled), per_example)


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
    evaluation: str = "loo",
    target_models: int = 16,
) -> AttackResult:
    """Shadow-model LiRA with ``shadows`` models; see the module docstring.

    evaluation "loo": leave-one-out rotation over the ``shadows`` models (each in turn the target).
    evaluation "dedicated": ``target_models`` further models (their own balanced keep matrix and
    independent draws) are attacked with the Gaussians fitted once on all ``shadows`` models.

    The numpy engine scores with the shared ``mialaw.theory.lira.lira_scores`` (for "dedicated":
    on the shadows stacked with one target model, that model the target) and evaluates with
    ``mialaw.theory.metrics.tpr_at_fpr``; the Numba engine with their compiled equivalents in
    ``lira_kernel`` (held equal to them by the tests).
    """
    if evaluation not in EVALUATIONS:
        raise ValueError(f"evaluation must be one of {EVALUATIONS}; got {evaluation!r}")
    fpr = tuple(float(a) for a in np.atleast_1d(fpr))
    stat = STATISTICS[statistic]
    games = engine.targets(model, targets, sampler)
    keep = engine.keep(shadows, targets)
    stats = engine.stats(model, games, keep, shots, stat, sampler)
    if evaluation == "loo":
        labels = keep
        if engine.name == "numba":
            scores = lira_loo(keep, stats, online=online, variance=variance)
        else:
            scores = lira_scores(keep, stats, online=online, variance=variance)
    else:
        # Independent streams for the target models: a second engine under a derived seed.
        other = Engine(engine.name, derive_seed(engine.seed, 1))
        labels = other.keep(target_models, targets)
        target_stats = other.stats(model, games, labels, shots, stat, sampler)
        if engine.name == "numba":
            scores = lira_dedicated(keep, stats, target_stats, online=online, variance=variance)
        else:
            scores = np.vstack(
                [
                    lira_scores(
                        np.vstack([keep, labels[t : t + 1]]),
                        np.vstack([stats, target_stats[t : t + 1]]),
                        online=online,
                        variance=variance,
                        targets=[shadows],
                    )
                    for t in range(target_models)
                ]
            )
    pooled = _evaluate(engine, scores, labels, fpr)
    name = "lira-online" if online else "lira-offline"
    return AttackResult(name, int(shots), tuple(pooled))
