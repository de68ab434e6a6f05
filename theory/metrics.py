"""Attack metrics shared by simulate and empirical: ROC, TPR at FPR, Clopper–Pearson intervals.

Conventions (science.md, section 3): labels True mean "member"; a larger score means "more likely
member"; the attack says "member" iff score >= threshold. TPR at FPR α is the largest TPR on the
empirical ROC whose FPR is <= α (the "≤ α" rule), reported with the achieved FPR and the counts.
How an experiment's TPR is measured (one threshold per experiment, resolvability, intervals that
hold their coverage) is ``measure.measure_tpr``; this module holds its building blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .estimate import Estimate, check_level


def clopper_pearson(successes, trials, level: float = 0.95) -> Estimate:
    """Exact (Clopper–Pearson) interval for a binomial proportion, elementwise over arrays.

    Uses ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``; n = 0 gives (0, nan, 1).
    """
    level = check_level(level)
    k = np.asarray(successes)
    n = np.asarray(trials)
    if np.any(k < 0) or np.any(n < 0) or np.any(k > n):
        raise ValueError("need 0 <= successes <= trials for a binomial interval")
    if not (np.all(k == np.round(k)) and np.all(n == np.round(n))):
        raise ValueError("successes and trials must be whole counts")
    k, n = np.broadcast_arrays(k.astype(np.int64), n.astype(np.int64))
    lower = np.zeros(k.shape)
    upper = np.ones(k.shape)
    estimate = np.full(k.shape, np.nan)
    for idx in np.ndindex(k.shape):
        if n[idx] == 0:
            continue
        ci = stats.binomtest(int(k[idx]), int(n[idx])).proportion_ci(
            confidence_level=level, method="exact"
        )
        lower[idx], upper[idx] = ci.low, ci.high
        estimate[idx] = k[idx] / n[idx]
    if k.ndim == 0:
        return Estimate(float(lower), float(estimate), float(upper))
    return Estimate(lower, estimate, upper)


def _scores_labels(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if labels.dtype != bool:
        if not np.all(np.isin(labels, (0, 1))):
            raise ValueError("labels must be boolean (True = member) or 0/1")
        labels = labels.astype(bool)
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in size: {scores.size} vs {labels.size}")
    if np.any(np.isnan(scores)):
        raise ValueError("scores must not contain NaN (±inf is allowed)")
    if labels.all() or not labels.any():
        raise ValueError("need at least one member and one non-member to measure an attack")
    return scores, labels


@dataclass(frozen=True)
class RocCurve:
    """Empirical ROC: point i says "member" for score >= thresholds[i]; point 0 is nobody."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    true_positives: np.ndarray
    false_positives: np.ndarray
    positives: int
    negatives: int

    def tpr_at_fpr(self, fpr):
        """TPR at FPR α by the ≤ rule: a ``TprAtFpr`` for a scalar α, a tuple for a sequence."""
        alphas = np.asarray(fpr, dtype=np.float64)
        if alphas.size == 0 or np.any(~(alphas > 0)) or np.any(alphas >= 1):
            raise ValueError(f"fpr must lie strictly between 0 and 1; got {fpr!r}")
        # fpr never decreases along the curve: the last point with fpr <= α has the largest TPR.
        idx = np.searchsorted(self.fpr, alphas, side="right") - 1
        results = tuple(
            TprAtFpr(
                fpr=float(a),
                tpr=float(self.tpr[i]),
                achieved_fpr=float(self.fpr[i]),
                threshold=float(self.thresholds[i]),
                true_positives=int(self.true_positives[i]),
                positives=self.positives,
                false_positives=int(self.false_positives[i]),
                negatives=self.negatives,
            )
            for a, i in zip(alphas.ravel(), idx.ravel())
        )
        return results[0] if alphas.ndim == 0 else results

    def auc(self) -> float:
        """Area under the ROC curve (ties counted as half)."""
        return float(np.trapezoid(self.tpr, self.fpr))


def roc_curve(scores, labels) -> RocCurve:
    """The empirical ROC of "member iff score >= threshold", one point per distinct score."""
    scores, labels = _scores_labels(scores, labels)
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    member = labels[order]
    # Only the last position of each run of equal scores is an operating point.
    last_of_run = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(member)[last_of_run]
    fp = np.cumsum(~member)[last_of_run]
    positives, negatives = int(member.sum()), int((~member).sum())
    tp = np.r_[0, tp]
    fp = np.r_[0, fp]
    return RocCurve(
        fpr=fp / negatives,
        tpr=tp / positives,
        thresholds=np.r_[np.inf, s[last_of_run]],
        true_positives=tp,
        false_positives=fp,
        positives=positives,
        negatives=negatives,
    )


@dataclass(frozen=True)
class TprAtFpr:
    """TPR of the attack at a target FPR α, with the achieved FPR, threshold and counts."""

    fpr: float
    tpr: float
    achieved_fpr: float
    threshold: float
    true_positives: int
    positives: int
    false_positives: int
    negatives: int

    @property
    def advantage(self) -> float:
        """TPR − α (against the target FPR; the achieved FPR is <= α, so this is conservative)."""
        return self.tpr - self.fpr

    def tpr_ci(self, level: float = 0.95) -> Estimate:
        """Clopper–Pearson interval of the TPR (true positives over positives)."""
        return clopper_pearson(self.true_positives, self.positives, level)

    def fpr_ci(self, level: float = 0.95) -> Estimate:
        """Clopper–Pearson interval of the achieved FPR (false positives over negatives)."""
        return clopper_pearson(self.false_positives, self.negatives, level)

    def to_dict(self, level: float = 0.95) -> dict:
        ci = self.tpr_ci(level)
        return {
            "fpr": self.fpr,
            "tpr": self.tpr,
            "tpr_ci": [ci.lower, ci.upper],
            "advantage": self.advantage,
            "achieved_fpr": self.achieved_fpr,
            "threshold": self.threshold,
            "true_positives": self.true_positives,
            "positives": self.positives,
            "false_positives": self.false_positives,
            "negatives": self.negatives,
        }


def tpr_at_fpr(scores, labels, fpr):
    """TPR at FPR α (≤ rule) of scores against membership labels; see ``RocCurve.tpr_at_fpr``."""
    return roc_curve(scores, labels).tpr_at_fpr(fpr)


def unsaturated(advantage, fpr, fraction: float = 0.9) -> np.ndarray:
    """Drop rule for power-law fits: keep points whose attack is not (nearly) perfect.

    An advantage within ``1 − fraction`` of its ceiling 1 − α carries no power-law information
    (TPR is pinned at 1 for small S), and such points flatten a fitted slope.
    """
    adv = np.asarray(advantage, dtype=np.float64)
    return adv < fraction * (1.0 - np.asarray(fpr, dtype=np.float64))


__all__ = [
    "Estimate",
    "RocCurve",
    "TprAtFpr",
    "clopper_pearson",
    "roc_curve",
    "tpr_at_fpr",
    "unsaturated",
]
