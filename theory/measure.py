"""TPR at FPR as the reference measures it: one threshold per experiment, honest intervals.

The rules (``science.md`` in this folder, section 3):

* **One threshold per experiment.** An *experiment* (one seed: its own candidate pool, shadows and
  target models) holds the scores of T target models on N examples with membership labels. All
  T·N scores are pooled and one threshold is set at α on all their non-members (the ≤ α rule:
  the largest TPR on the pooled empirical ROC whose FPR is ≤ α). Experiments (seeds) are then
  combined by the mean of their TPRs. Never a threshold per target model on its own non-members:
  when α·(non-members) < 1 it allows no false positive and "TPR at α" becomes TPR at a smaller,
  S-dependent FPR.
* **Resolvable.** A TPR at α is resolvable only if every experiment has at least 1/α non-members
  (α·negatives >= 1, so at least one false positive is allowed). Unresolvable points carry no
  TPR (NaN), are reported as such, and never enter a fit.
* **Intervals that hold their coverage** (``method="bootstrap"``): a bootstrap of the whole
  threshold-then-count procedure, so the threshold's own noise is included. Within an experiment
  the examples are resampled with Poisson(1) weights, an example's scores under all target models
  moving together (they share the example's vulnerability and its shadow fit): the sampling unit
  is the example. ``resample="targets-and-examples"`` also resamples target models (the two-way
  "pigeonhole" bootstrap): safe when target models differ as a whole, but it counts the
  independent noise about twice (measured: 1.5-2× too wide when target models do not differ), so
  it is not the default. Experiments (seeds) are resampled separately (stratified) and the
  replicate TPRs averaged, as the estimate is. The interval is the percentile interval.
  ``method="clopper-pearson"`` treats all pooled decisions as independent trials and ignores the
  threshold's noise: kept to show how much it under-covers.

Randomness is explicit: the bootstrap takes ``seed``; the same seed gives identical intervals.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .estimate import Estimate, check_level
from .metrics import clopper_pearson, roc_curve

INTERVAL_METHODS = ("bootstrap", "clopper-pearson")
RESAMPLE_UNITS = ("examples", "targets-and-examples")


@dataclass(frozen=True, eq=False)
class Experiment:
    """The scores (T × N, larger = member) and membership labels of one experiment.

    ``ids`` (optional, N integers): which underlying example each column is. Experiments whose
    ids overlap share those examples (e.g. seeds whose candidate pools overlap); the bootstrap
    then gives a shared example one weight in every experiment, so the shared data are not
    counted as independent.
    """

    scores: np.ndarray
    labels: np.ndarray
    ids: np.ndarray | None = None

    def __post_init__(self):
        if self.ids is not None:
            ids = np.asarray(self.ids)
            if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
                raise ValueError(f"ids must be a 1-d integer array; got {ids.dtype} {ids.shape}")
            if np.unique(ids).size != ids.size:
                raise ValueError("ids must not repeat within an experiment")
            object.__setattr__(self, "ids", ids.astype(np.int64))
        self._check_scores()

    def _check_scores(self):
        scores = np.asarray(self.scores, dtype=np.float64)
        labels = np.asarray(self.labels)
        if scores.ndim == 1:
            scores, labels = scores[None], labels[None]
        if scores.ndim != 2 or labels.shape != scores.shape:
            raise ValueError(
                "an experiment needs scores and labels of one shape (target models × examples); "
                f"got {np.shape(self.scores)} and {np.shape(self.labels)}"
            )
        if labels.dtype != bool:
            if not np.all(np.isin(labels, (0, 1))):
                raise ValueError("labels must be boolean (True = member) or 0/1")
            labels = labels.astype(bool)
        if np.any(np.isnan(scores)):
            raise ValueError("scores must not contain NaN (±inf is allowed)")
        if labels.all() or not labels.any():
            raise ValueError("an experiment needs at least one member and one non-member score")
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "labels", labels)
        if self.ids is not None and self.ids.size != scores.shape[1]:
            raise ValueError(f"ids must name the {scores.shape[1]} examples; got {self.ids.size}")

    @property
    def negatives(self) -> int:
        return int((~self.labels).sum())

    @property
    def positives(self) -> int:
        return int(self.labels.sum())

    def roc(self):
        """The pooled empirical ROC of all target models' scores."""
        return roc_curve(self.scores.ravel(), self.labels.ravel())


@dataclass(frozen=True)
class TprMeasurement:
    """TPR at a target FPR α over one or more experiments, with its interval and counts.

    ``tpr`` is the mean over experiments of each one's pooled TPR at α (NaN when unresolvable);
    ``interval`` its (lower, estimate, upper) by ``method``; ``achieved_fpr`` the mean achieved
    FPR (<= α); counts are totals over experiments; ``min_negatives`` is the smallest experiment's.
    """

    fpr: float
    tpr: float
    interval: Estimate
    method: str
    level: float
    achieved_fpr: float
    true_positives: int
    positives: int
    false_positives: int
    negatives: int
    min_negatives: int
    experiments: int
    tpr_per_experiment: tuple

    @property
    def resolvable(self) -> bool:
        """Whether every experiment's non-members allow at least one false positive at α."""
        return bool(self.fpr * self.min_negatives >= 1)

    @property
    def advantage(self) -> float:
        """TPR − α (NaN when unresolvable)."""
        return self.tpr - self.fpr

    @property
    def advantage_interval(self) -> Estimate:
        lo, est, hi = self.interval
        return Estimate(lo - self.fpr, est - self.fpr, hi - self.fpr)

    @property
    def detected(self) -> bool:
        """Resolvable and the interval's lower end lies above α: a signal, not noise."""
        return self.resolvable and bool(self.interval.lower > self.fpr)

    def log10_advantage_se(self) -> float:
        """Standard error of log10(TPR − α) by the delta method from the interval's width."""
        from scipy.stats import norm

        half = (self.interval.upper - self.interval.lower) / 2.0
        se = half / norm.ppf(0.5 + self.level / 2.0)
        adv = self.advantage
        return float(se / (adv * np.log(10.0))) if adv > 0 else float("nan")

    def to_dict(self) -> dict:
        lo, _, hi = self.interval
        return {
            "fpr": self.fpr,
            "tpr": _finite(self.tpr),
            "tpr_ci": [_finite(lo), _finite(hi)],
            "interval_method": self.method,
            "level": self.level,
            "advantage": _finite(self.advantage),
            "achieved_fpr": self.achieved_fpr,
            "resolvable": self.resolvable,
            "detected": self.detected,
            "true_positives": self.true_positives,
            "positives": self.positives,
            "false_positives": self.false_positives,
            "negatives": self.negatives,
            "min_negatives": self.min_negatives,
            "experiments": self.experiments,
            "tpr_per_experiment": [_finite(t) for t in self.tpr_per_experiment],
        }


def _finite(value):
    value = float(value)
    return value if np.isfinite(value) else None


def _check_experiments(experiments) -> tuple[Experiment, ...]:
    if isinstance(experiments, Experiment):
        return (experiments,)
    out = tuple(e if isinstance(e, Experiment) else Experiment(*e) for e in experiments)
    if not out:
        raise ValueError("need at least one experiment")
    return out


def _check_fprs(fpr) -> np.ndarray:
    alphas = np.atleast_1d(np.asarray(fpr, dtype=np.float64))
    if alphas.size == 0 or alphas.ndim != 1 or np.any(~(alphas > 0)) or np.any(alphas >= 1):
        raise ValueError(f"fpr must be values strictly between 0 and 1; got {fpr!r}")
    return alphas


def _check_interval_options(method: str, resamples, resample: str) -> None:
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {INTERVAL_METHODS}; got {method!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)):
        raise ValueError(f"resamples must be an integer >= 100; got {resamples!r}")
    if resamples < 100:
        raise ValueError(f"resamples must be an integer >= 100; got {resamples!r}")
    if resample not in RESAMPLE_UNITS:
        raise ValueError(f"resample must be one of {RESAMPLE_UNITS}; got {resample!r}")


def _shared(experiments) -> bool:
    """Whether some experiments share examples (by their ids)."""
    ids = [e.ids for e in experiments]
    if len(ids) < 2 or any(i is None for i in ids):
        return False
    return np.unique(np.concatenate(ids)).size < sum(i.size for i in ids)


def _shared_replicates(experiments, alphas, resamples: int, seed: int) -> np.ndarray:
    """(resamples, alphas) bootstrap TPRs when experiments share examples: one Poisson(1)
    weight per underlying example and replicate, the same in every experiment that holds it."""
    from .measure_kernel import sorted_scores, weighted_tpr

    universe, where = np.unique(np.concatenate([e.ids for e in experiments]), return_inverse=True)
    bounds = np.cumsum([0] + [e.ids.size for e in experiments])
    columns = [where[bounds[k] : bounds[k + 1]] for k in range(len(experiments))]
    prepared = [sorted_scores(e.scores, e.labels) for e in experiments]
    ones = [np.ones(e.scores.shape[0]) for e in experiments]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5A4ED]))
    out = np.empty((resamples, len(experiments), alphas.size))
    for b in range(resamples):
        weights = rng.poisson(1.0, universe.size).astype(np.float64)
        for k, arrays in enumerate(prepared):
            weighted_tpr(*arrays, ones[k], weights[columns[k]], alphas, out[b, k])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(out, axis=1)


def _bootstrap_replicates(experiments, alphas, resamples: int, seed: int, by_model: bool):
    """(resamples, alphas) bootstrap TPRs, each replicate averaged over the experiments (as the
    estimate is); each experiment resamples from its own stream of ``seed`` — unless they share
    examples (``Experiment.ids``), which then carry one weight across experiments."""
    from .measure_fast import bootstrap_tpr

    if _shared(experiments):
        if by_model:
            raise ValueError(
                "resample='targets-and-examples' is not available for experiments that share "
                "examples; use resample='examples'"
            )
        return _shared_replicates(experiments, alphas, resamples, seed)

    stack = np.array(
        [
            bootstrap_tpr(
                e.scores, e.labels, alphas, resamples, _stream(seed, k), by_model=by_model
            )
            for k, e in enumerate(experiments)
        ]
    )
    # A replicate that weighs every target model (or member) zero is NaN and left out.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(stack, axis=0)


def measure_tpr(
    experiments,
    fpr,
    *,
    level: float = 0.95,
    method: str = "bootstrap",
    resamples: int = 1000,
    resample: str = "examples",
    seed: int = 0,
) -> tuple[TprMeasurement, ...]:
    """TPR at each α in ``fpr`` over ``experiments`` (``Experiment`` or (scores, labels) pairs).

    See the module docstring for the threshold rule, resolvability and the interval methods.
    Returns one ``TprMeasurement`` per α, in the order given.
    """
    level = check_level(level)
    _check_interval_options(method, resamples, resample)
    experiments = _check_experiments(experiments)
    alphas = _check_fprs(fpr)
    found = [e.roc().tpr_at_fpr(alphas) for e in experiments]  # [experiment][alpha]
    if method == "bootstrap":
        by_model = resample == "targets-and-examples"
        replicates = _bootstrap_replicates(experiments, alphas, resamples, seed, by_model)
    shared = _shared(experiments)
    results = []
    for i, alpha in enumerate(alphas):
        per = [f[i] for f in found]
        min_neg = min(e.negatives for e in experiments)
        tpr = float(np.mean([r.tpr for r in per])) if alpha * min_neg >= 1 else float("nan")
        tp = sum(r.true_positives for r in per)
        fp = sum(r.false_positives for r in per)
        pos = sum(r.positives for r in per)
        neg = sum(r.negatives for r in per)
        if not np.isfinite(tpr):
            interval, name = Estimate(float("nan"), float("nan"), float("nan")), method
        elif method == "bootstrap":
            low, high = np.nanquantile(replicates[:, i], [(1 - level) / 2, (1 + level) / 2])
            design = "shared examples weighted jointly" if shared else "seeds stratified"
            name = f"bootstrap percentile, {resamples} resamples of {resample} ({design})"
            interval = Estimate(float(low), tpr, float(high))
        else:
            cp = clopper_pearson(tp, pos, level)
            interval, name = Estimate(cp.lower, tpr, cp.upper), "clopper-pearson (pooled counts)"
        results.append(
            TprMeasurement(
                fpr=float(alpha),
                tpr=tpr,
                interval=interval,
                method=name,
                level=level,
                achieved_fpr=float(np.mean([r.achieved_fpr for r in per])),
                true_positives=int(tp),
                positives=int(pos),
                false_positives=int(fp),
                negatives=int(neg),
                min_negatives=int(min_neg),
                experiments=len(experiments),
                tpr_per_experiment=tuple(
                    r.tpr if alpha * e.negatives >= 1 else float("nan")
                    for r, e in zip(per, experiments)
                ),
            )
        )
    return tuple(results)


def _stream(seed: int, k: int) -> int:
    """An independent 32-bit seed for experiment k's bootstrap under ``seed``."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(int(k),))
    return int(ss.generate_state(1, np.uint32)[0])


def mean_roc(experiments, grid) -> np.ndarray:
    """Mean over experiments of each one's pooled ROC (TPR by the ≤ rule) on an FPR grid."""
    experiments = _check_experiments(experiments)
    grid = np.asarray(grid, dtype=np.float64)
    curves = []
    for e in experiments:
        rc = e.roc()
        idx = np.searchsorted(rc.fpr, grid, side="right") - 1
        curves.append(rc.tpr[idx])
    return np.mean(curves, axis=0)
