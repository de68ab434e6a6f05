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
module uses) with **leave-one-out rotation**: each model in turn is the target model and the other
M − 1 are its shadows. One global threshold over all (target model, example) pairs gives the
pooled TPR at FPR α.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mialaw.theory.lira import lira_scores
from mialaw.theory.metrics import TprAtFpr, clopper_pearson, tpr_at_fpr
from mialaw.theory.model import GaussianModel

from .engines import Engine
from .lira_kernel import lira_loo, pooled_tpr_at_fpr
from .samplers import SCORE, STATISTICS

ATTACKS = ("oracle", "lira-online", "lira-offline")


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
) -> AttackResult:
    """Shadow-model LiRA with ``shadows`` models (leave-one-out rotation); see the module docstring.

    The numpy engine scores with the shared ``mialaw.theory.lira.lira_scores`` and evaluates with
    ``mialaw.theory.metrics.tpr_at_fpr``; the Numba engine with their compiled equivalents in
    ``lira_kernel`` (held equal to them by the tests).
    """
    fpr = tuple(float(a) for a in np.atleast_1d(fpr))
    games = engine.targets(model, targets, sampler)
    keep = engine.keep(shadows, targets)
    stats = engine.stats(model, games, keep, shots, STATISTICS[statistic], sampler)
    if engine.name == "numba":
        scores = lira_loo(keep, stats, online=online, variance=variance)
    else:
        scores = lira_scores(keep, stats, online=online, variance=variance)
    pooled = _evaluate(engine, scores, keep, fpr)
    name = "lira-online" if online else "lira-offline"
    return AttackResult(name, int(shots), tuple(pooled))
