"""Pooled TPR of simulated attacks by the project's rules, with faster bootstrap passes.

Every pooled TPR of a sweep comes from ``mialaw.theory.measure.measure_tpr``: one threshold over
all target models' pooled scores, NaN when unresolvable (α·negatives < 1), and an interval from
a bootstrap of the whole threshold-then-count procedure. ``Measurement`` says how (level, interval
method, number of resamples); ``measure`` applies it to one experiment. Estimates, counts and
resolvability always come from ``measure_tpr``; for the bootstrap interval ``measure`` uses one of
two faster routes to the same replicates:

* **several target models (LiRA)**: ``mialaw.theory.measure_fast.bootstrap_tpr``, the shared
  bootstrap
  (examples, or target models and examples) replicate for replicate (same seeds, same weights,
  bit-identical intervals: the tests check it against ``measure_tpr(method="bootstrap")``), with
  cheaper passes over the scores;
* **one target model (the oracle's games)**: the shared bootstrap draws a Poisson(1) weight for
  every game in every replicate, 4·10⁹ draws for 4·10⁶ games × 1000 replicates, minutes per
  point. With T = 1 the same replicate *distribution* is drawn exactly with O(#α) draws per
  replicate, because only three numbers of a replicate matter:

  - the total weight W of the n non-members: a sum of n Poisson(1) is one Poisson(n) draw;
  - where the threshold falls. Given W, the W units of weight sit on the non-members like W
    independent uniform picks; ranking non-members from the highest score down, the threshold
    at α is set by the first non-member at which the running weight passes α·W, the one holding
    the (m+1)-th unit, m = the largest integer with m/W <= α. Its rank is floor(n·U) with U the
    (m+1)-th smallest of W uniforms, U ~ Beta(m+1, W−m) (several α: successive order
    statistics);
  - the weight of the k members above that threshold, Poisson(k), and of the others,
    Poisson(positives − k), independent of the non-members' weights.

  This is the shared bootstrap of examples with T = 1; resampling the one target model too
  would multiply every weight alike and leave the TPR unchanged (a replicate with model weight 0
  is dropped there). Both draw the same distribution, which the tests check against
  ``theory.measure_kernel``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from mialaw.theory.estimate import Estimate, check_level
from mialaw.theory.measure import (
    INTERVAL_METHODS,
    RESAMPLE_UNITS,
    Experiment,
    TprMeasurement,
    measure_tpr,
)

MIN_RESAMPLES = 100  # as measure_tpr


@dataclass(frozen=True)
class Measurement:
    """How pooled TPRs are measured (see ``mialaw.theory.measure``): confidence ``level``,
    interval ``method`` ("bootstrap" or "clopper-pearson"), bootstrap ``resamples`` and
    ``resample`` unit ("examples", the default: an example's scores under all target models move
    together; or "targets-and-examples", two-way)."""

    level: float = 0.95
    method: str = "bootstrap"
    resamples: int = 1000
    resample: str = "examples"

    def __post_init__(self):
        object.__setattr__(self, "level", check_level(self.level))
        if self.method not in INTERVAL_METHODS:
            raise ValueError(f"interval must be one of {INTERVAL_METHODS}; got {self.method!r}")
        if self.resample not in RESAMPLE_UNITS:
            raise ValueError(f"resample must be one of {RESAMPLE_UNITS}; got {self.resample!r}")
        r = self.resamples
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < MIN_RESAMPLES:
            raise ValueError(f"resamples must be an integer >= {MIN_RESAMPLES}; got {r!r}")
        object.__setattr__(self, "resamples", int(r))


def measure(
    experiment: Experiment, fpr, measurement: Measurement, seed: int
) -> tuple[TprMeasurement, ...]:
    """TPR at each α of ``fpr`` over one experiment, by ``measurement``; ``seed`` seeds the
    bootstrap (the same seed gives the same interval). With several target models the result
    equals ``measure_tpr(experiment, fpr, method=..., seed=seed, ...)``."""
    if not isinstance(experiment, Experiment):
        raise ValueError(f"experiment must be an Experiment; got {type(experiment).__name__}")
    how = measurement
    options = {
        "level": how.level,
        "resamples": how.resamples,
        "resample": how.resample,
        "seed": int(seed),
    }
    if how.method != "bootstrap":
        return measure_tpr(experiment, fpr, method=how.method, **options)
    # Estimates, counts and resolvability from the shared code; the interval below.
    found = measure_tpr(experiment, fpr, method="clopper-pearson", **options)
    alphas = np.array([m.fpr for m in found])
    scores, labels = experiment.scores, experiment.labels
    if scores.shape[0] == 1:  # a model weight would scale every weight alike: no effect
        reps = bootstrap_games(scores[0], labels[0], alphas, how.resamples, seed)
        name = (
            f"bootstrap percentile, {how.resamples} resamples of games "
            "(one target model: exact order-statistics draws)"
        )
    else:
        from mialaw.theory.measure_fast import bootstrap_tpr

        by_model = how.resample == "targets-and-examples"
        reps = bootstrap_tpr(
            scores, labels, alphas, how.resamples, _stream(seed), by_model=by_model
        )
        # The very same interval as measure_tpr's, so named as it names it.
        name = f"bootstrap percentile, {how.resamples} resamples of {how.resample}"
        name += " (seeds stratified)"
    q = [(1 - how.level) / 2, (1 + how.level) / 2]
    out = []
    for i, m in enumerate(found):
        interval, method = m.interval, how.method  # unresolvable: NaN, as measure_tpr says it
        if np.isfinite(m.tpr):
            low, high = np.nanquantile(reps[:, i], q)
            interval, method = Estimate(float(low), m.tpr, float(high)), name
        out.append(dataclasses.replace(m, interval=interval, method=method))
    return tuple(out)


def _stream(seed: int) -> int:
    """The bootstrap seed ``measure_tpr`` gives its first (here: only) experiment."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(0,))
    return int(ss.generate_state(1, np.uint32)[0])


def bootstrap_games(scores, labels, alphas, resamples: int, seed: int) -> np.ndarray:
    """(resamples, len(alphas)) bootstrap replicates of the pooled TPR at each α of one target
    model's scores (1-D), each game weighted Poisson(1); see the module docstring.

    The same distribution as ``mialaw.theory.measure_kernel.bootstrap_tpr_reference`` on
    scores[None, :]
    (NaN where a replicate weighs every member or every non-member zero).
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if scores.shape != labels.shape or labels.all() or not labels.any():
        raise ValueError("need one label per score and at least one member and one non-member")
    if np.any(~(alphas > 0)) or np.any(alphas >= 1):
        raise ValueError(f"alphas must lie strictly between 0 and 1; got {alphas!r}")
    neg_desc = np.sort(scores[~labels])[::-1]
    pos_asc = np.sort(scores[labels])
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    order = np.argsort(alphas, kind="stable")
    ranks = _threshold_ranks(rng, neg_desc.size, alphas[order], int(resamples))
    above = _members_above(pos_asc, neg_desc[np.maximum(ranks, 0)])  # non-decreasing in α
    tpr = _weighted_fraction(rng, above, pos_asc.size)
    tpr[ranks[:, 0] < 0] = np.nan  # no non-member weight: no threshold
    out = np.empty_like(tpr)
    out[:, order] = tpr
    return out


def _threshold_ranks(rng, negatives: int, alphas_up: np.ndarray, resamples: int) -> np.ndarray:
    """Per replicate and α (ascending): the rank, from the top, of the first non-member left out
    by the weighted ≤ α threshold, drawn as successive order statistics of the weight units."""
    total = rng.poisson(negatives, resamples)
    safe = np.maximum(total, 1)
    ranks = np.empty((resamples, alphas_up.size), dtype=np.int64)
    done_m = np.full(resamples, -1)
    done_u = np.zeros(resamples)
    for i, a in enumerate(alphas_up):
        m = _allowed_units(safe, a)
        gap = m - done_m  # units from the previous order statistic to this one (>= 0)
        # Beta(gap, W − m): the next gap-th smallest of the W − done − 1 uniforms left above u.
        step = rng.beta(np.maximum(gap, 1), safe - m)
        done_u = np.where(gap > 0, done_u + (1.0 - done_u) * step, done_u)
        done_m = m
        ranks[:, i] = np.minimum(np.floor(negatives * done_u), negatives - 1).astype(np.int64)
    ranks[total == 0] = -1  # marked: a replicate without non-member weight has no threshold
    return ranks


def _allowed_units(total: np.ndarray, a: float) -> np.ndarray:
    """The largest integer m with m / W <= α, in the same floating-point test as the kernels."""
    m = np.floor(a * total).astype(np.int64)
    up = (m + 1) / total <= a
    m[up] += 1
    down = (m > 0) & (m / total > a)
    m[down] -= 1
    return m


def _members_above(pos_asc: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Members whose score beats each cut (the ≤ α rule flags scores above the cut)."""
    return pos_asc.size - np.searchsorted(pos_asc, cuts, side="right")


def _weighted_fraction(rng, above: np.ndarray, positives: int) -> np.ndarray:
    """Weighted TPR: Poisson weight of the members above each cut over all members' weight.

    The cuts fall with α, so the sets above them are nested: the weights are drawn as
    independent Poisson increments, sharing one draw of the members' weights across α.
    """
    resamples, n_alpha = above.shape
    tp = np.empty((resamples, n_alpha))
    acc = np.zeros(resamples)
    prev = np.zeros(resamples, dtype=np.int64)
    for i in range(n_alpha):
        k = np.maximum(above[:, i], prev)
        acc = acc + rng.poisson(k - prev)
        tp[:, i] = acc
        prev = k
    weight = acc + rng.poisson(positives - prev)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = tp / weight[:, None]
    return np.where(weight[:, None] > 0, tpr, np.nan)
