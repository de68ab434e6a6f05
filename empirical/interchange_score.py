"""Scoring score arrays read from a folder: LiRA (online, offline), RMIA, and TPR at FPR.

Scoring follows the project's rules (``mialaw.theory.lira``, ``mialaw.theory.measure``): models in
complementary pairs are scored by *pair rotation*; with named ``targets`` every target is scored
against the models that are not targets (dedicated targets, as the reference code's last
``ntest`` models); otherwise plain leave-one-out, which is tilted towards "non-member" when every
example is IN for a fixed number of models (the reference code's keep), so it warns
(``TiltWarning``). TPR at FPR: one threshold over all targets' pooled scores, resolvable iff
α·negatives >= 1, bootstrap intervals.

Presets: "mialaw" is the project's LiRA (mean centre, sample variance, one-sided offline test);
"reference" and "reference-fixed" are the reference LiRA code's own scores
(``mialaw.empirical.reference_lira``: median centre, population spread, every example's IN and
OUT lists cut to the smallest count, two-sided offline log-density; "-fixed" is its
``fix_variance``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from mialaw.empirical.interchange_read import ScoreArrays
from mialaw.empirical.reference_lira import reference_scores
from mialaw.theory.lira import LIRA_PRESETS, complementary_pairs, lira_scores, rmia_scores
from mialaw.theory.measure import Experiment, measure_tpr

__all__ = ["PRESETS", "ScoredAttack", "TiltWarning", "score_arrays"]

# preset -> the reference code's fix_variance, for the presets that are the reference's scores
REFERENCE_PRESETS = {"reference": False, "reference-fixed": True}
PRESETS = tuple(LIRA_PRESETS)


class TiltWarning(UserWarning):
    """Leave-one-out scoring of a balanced keep matrix is tilted towards "non-member"."""


@dataclass(frozen=True)
class ScoredAttack:
    """Scores (targets × examples) per attack, how they were made, and TPR at each FPR."""

    scores: dict = field(repr=False)
    labels: np.ndarray = field(repr=False)  # membership of the targets (targets × examples)
    targets: tuple
    rotation: str
    measurements: dict = field(repr=False)  # attack -> tuple of TprMeasurement
    fpr: tuple = ()
    preset: str = "mialaw"

    def roc(self, attack: str):
        """The pooled ROC of ``attack`` (a key of ``scores``) over all targets."""
        if attack not in self.scores:
            raise ValueError(f"attack must be one of {sorted(self.scores)}; got {attack!r}")
        return Experiment(self.scores[attack], self.labels).roc()

    def table(self) -> str:
        lines = [
            f"rotation: {self.rotation}; {len(self.targets)} target model(s); preset {self.preset}"
        ]
        width = max(map(len, self.measurements), default=0) + 2
        for name, found in self.measurements.items():
            for m in found:
                head = f"{name:<{width}}fpr={m.fpr:<7g} "
                if not m.resolvable:
                    lines.append(f"{head}unresolvable (fewer than 1/fpr non-members)")
                    continue
                lo, est, hi = m.interval
                lines.append(
                    f"{head}TPR {est:.4f} [{lo:.4f}, {hi:.4f}] "
                    f"(achieved FPR {m.achieved_fpr:.2e}, {m.negatives} negatives)"
                )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "rotation": self.rotation,
            "preset": self.preset,
            "targets": list(self.targets),
            "measurements": {
                name: [m.to_dict() for m in found] for name, found in self.measurements.items()
            },
        }


@dataclass(frozen=True)
class Scoring:
    """Which models are targets, against which shadows each is scored, and how that is said."""

    targets: np.ndarray
    how: str
    rotation: str | None  # "pairs" or "loo"; None: dedicated targets
    shadows: np.ndarray | None = None  # dedicated targets: the models that are not targets

    def shadows_of(self, target: int, models: int) -> np.ndarray:
        """The shadow models of one target."""
        if self.shadows is not None:
            return self.shadows
        gone = {target, target ^ 1} if self.rotation == "pairs" else {target}
        return np.array([m for m in range(models) if m not in gone])


def scoring_of(keep, targets, rotation) -> Scoring:
    """Dedicated ``targets`` against the other models, or every model by ``rotation`` (default:
    pairs when the keep matrix has complementary pairs, else leave-one-out with a TiltWarning)."""
    models = keep.shape[0]
    if targets is not None:
        if rotation is not None:
            raise ValueError("give targets or rotation, not both")
        t = np.unique(np.atleast_1d(np.asarray(targets)))
        if not np.issubdtype(t.dtype, np.integer) or t.min() < 0 or t.max() >= models:
            raise ValueError(f"targets must be model indices in [0, {models}); got {targets!r}")
        if models - t.size < 4:
            raise ValueError(
                f"dedicated targets leave {models - t.size} shadow models; need >= 4 "
                "(2 IN and 2 OUT for every example)"
            )
        how = f"dedicated targets {t.tolist()}, scored against the {models - t.size} other models"
        return Scoring(t, how, None, np.setdiff1d(np.arange(models), t))
    if rotation is None:
        rotation = "pairs" if complementary_pairs(keep) else "loo"
    if rotation not in ("pairs", "loo"):
        raise ValueError(f"rotation must be 'pairs' or 'loo'; got {rotation!r}")
    if rotation == "loo":
        warnings.warn(
            "the models are not in complementary pairs and no targets were named: scoring "
            "leave-one-out, which is tilted towards 'non-member' on a balanced keep matrix "
            "(name dedicated target models to avoid it)",
            TiltWarning,
            stacklevel=3,  # at score_arrays' caller
        )
    how = "pair rotation" if rotation == "pairs" else "leave-one-out (tilted)"
    return Scoring(np.arange(models), how, rotation)


def _project(fn, keep, stats, scoring: Scoring, *extra, **options) -> np.ndarray:
    """A ``mialaw.theory.lira`` scorer over every target of ``scoring``."""
    if scoring.rotation is not None:
        return fn(keep, stats, *extra, rotation=scoring.rotation, **options)
    rows = []
    for t in scoring.targets:  # each target against the non-target models only
        order = np.r_[scoring.shadows, t]
        args = [keep[order], stats[order]] + [e[order] for e in extra]
        rows.append(fn(*args, rotation="loo", targets=[len(order) - 1], **options)[0])
    return np.stack(rows)


def _reference(keep, stats, scoring: Scoring, online: bool, fix_variance: bool) -> np.ndarray:
    """The reference code's scores of every target against its shadows (in model order)."""
    models = keep.shape[0]
    if scoring.shadows is not None:  # one set of shadows for every target, as the reference
        s = scoring.shadows
        return reference_scores(
            keep[s], stats[s], stats[scoring.targets], online=online, fix_variance=fix_variance
        )
    rows = []
    for t in scoring.targets:
        s = scoring.shadows_of(int(t), models)
        rows.append(
            reference_scores(
                keep[s], stats[s], stats[[t]], online=online, fix_variance=fix_variance
            )[0]
        )
    return np.stack(rows)


def score_arrays(
    arrays: ScoreArrays,
    *,
    fpr=(0.1, 0.01, 0.001),
    targets=None,
    preset: str = "mialaw",
    rmia_a: float = 0.3,
    rmia_gamma: float = 2.0,
    level: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
    rotation: str | None = None,
) -> ScoredAttack:
    """LiRA (online, offline) and, with population statistics, RMIA scores and TPR at ``fpr``.

    ``targets``: model indices scored against the other models (dedicated targets); default:
    every model, by pair rotation when the keep matrix has complementary pairs, else by
    leave-one-out with a ``TiltWarning``. ``preset``: one of ``PRESETS`` (see the module
    docstring). ``rotation`` forces "pairs" or "loo" (no targets). A ValueError names the
    folder the arrays came from.
    """
    if not isinstance(arrays, ScoreArrays):
        raise ValueError("arrays must be a ScoreArrays (see read_scores)")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}; got {preset!r}")
    keep, stats, pop = arrays.keep, arrays.stats, arrays.population_stats
    try:
        scoring = scoring_of(keep, targets, rotation)
        scores = _lira(keep, stats, scoring, preset)
        if pop is not None:
            scores["rmia"] = _project(
                rmia_scores, keep, stats, scoring, pop, a=rmia_a, gamma=rmia_gamma
            )
    except ValueError as err:
        raise ValueError(f"{arrays.source or 'arrays'}: {err}") from None
    labels = keep[scoring.targets]
    measurements = {
        name: measure_tpr(
            Experiment(s, labels), fpr, level=level, resamples=resamples, seed=seed + k
        )
        for k, (name, s) in enumerate(scores.items())
    }
    return ScoredAttack(
        scores=scores,
        labels=labels,
        targets=tuple(int(i) for i in scoring.targets),
        rotation=scoring.how,
        measurements=measurements,
        fpr=tuple(float(a) for a in np.atleast_1d(fpr)),
        preset=preset,
    )


def _lira(keep, stats, scoring: Scoring, preset: str) -> dict:
    if preset in REFERENCE_PRESETS:
        fix = REFERENCE_PRESETS[preset]
        return {
            "lira_online": _reference(keep, stats, scoring, True, fix),
            "lira_offline": _reference(keep, stats, scoring, False, fix),
        }
    options = dict(LIRA_PRESETS[preset])
    return {
        "lira_online": _project(lira_scores, keep, stats, scoring, online=True, **options),
        "lira_offline": _project(lira_scores, keep, stats, scoring, online=False, **options),
    }
