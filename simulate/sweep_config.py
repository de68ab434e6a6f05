"""What a simulated sweep runs: :class:`SweepConfig`, frozen and validated on construction."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from mialaw.theory.measure import INTERVAL_METHODS
from mialaw.theory.model import GaussianModel
from mialaw.theory.validation import check_choice, check_int

from .attacks import ATTACKS, EVALUATIONS
from .engines import ENGINES, SAMPLERS
from .measure import MIN_RESAMPLES, Measurement
from .samplers import STATISTICS

__all__ = ["VARIANCES", "SweepConfig"]

VARIANCES = ("per-example", "global")


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep runs (immutable, validated on construction).

    dim, sigma, classes : the Gaussian model (Σ = σ²I, means e_0..e_{C-1}).
    shots : numbers of examples per class S (integers; the oracle needs S >= 2).
    fpr : target false-positive rates α in (0, 1).
    targets : games per S for the oracle; target examples N for LiRA.
    shadows : models M for LiRA (even, >= 6), every target IN for exactly M/2 of them.
    attack : "oracle", "lira-online" or "lira-offline".
    sampler : "fast" (sufficient statistics) or "full" (every training example in d dimensions).
    engine : "numba" or "numpy".
    variance : LiRA's scale, "per-example" or "global".
    statistic : "score" (s = <x, m̂_y>) or "logit" (logit-scaled softmax confidence; C >= 2).
    seed : the run's seed; S-point i uses the independent seed derive_seed(seed, i).
    level : confidence level of intervals and fits.
    fit_min_shots : only points with S >= this enter the power-law fits (the law is asymptotic).
    evaluation : LiRA's evaluation: "pairs" (the default: pair rotation over shadows drawn in
        complementary pairs, untilted), "loo" (leave-one-out rotation: tilted towards
        "non-member", kept to reproduce earlier runs) or "dedicated" (``target_models`` further
        models, balanced, never used as shadows).
    target_models : number of dedicated target models (even, >= 2).
    interval : "bootstrap" (the default; holds its coverage) or "clopper-pearson" (ignores the
        threshold's noise: for comparison only).
    resamples : bootstrap replicates per S (>= 100). With one target model (the oracle) a
        replicate costs O(#α) draws whatever the number of games (``measure``), so the default
        1000 costs little; for LiRA (examples resampled, their scores under all target models
        together) a replicate costs a few passes of length N plus a walk through a narrow band
        of scores around the threshold (``mialaw.theory.measure_fast``).
    """

    dim: int
    sigma: float
    shots: tuple[int, ...]
    fpr: tuple[float, ...]
    targets: int
    classes: int = 2
    shadows: int = 64
    attack: str = "oracle"
    sampler: str = "fast"
    engine: str = "numba"
    variance: str = "per-example"
    statistic: str = "score"
    seed: int = 0
    level: float = 0.95
    fit_min_shots: int = 1
    evaluation: str = "pairs"
    target_models: int = 16
    interval: str = "bootstrap"
    resamples: int = 1000

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("attack", check_choice("attack", self.attack, ATTACKS))
        set_("sampler", check_choice("sampler", self.sampler, SAMPLERS))
        set_("engine", check_choice("engine", self.engine, ENGINES))
        set_("variance", check_choice("variance", self.variance, VARIANCES))
        set_("statistic", check_choice("statistic", self.statistic, tuple(STATISTICS)))
        shots = np.atleast_1d(np.asarray(self.shots, dtype=np.float64))
        low = 2 if self.attack == "oracle" else 1
        if shots.size == 0 or not np.all(np.isfinite(shots)) or np.any(shots != np.round(shots)):
            raise ValueError(f"shots must be a non-empty list of integers; got {self.shots!r}")
        if np.any(shots < low) or np.any(shots > 1e15):
            raise ValueError(
                f"shots must lie in [{low}, 1e15] for attack {self.attack}"
                + (" (at S = 1 the IN law is a point mass)" if low == 2 else "")
                + f"; got {self.shots!r}"
            )
        set_("shots", tuple(int(s) for s in shots))
        fpr = np.atleast_1d(np.asarray(self.fpr, dtype=np.float64))
        if fpr.size == 0 or not np.all((fpr > 0) & (fpr < 1)):
            raise ValueError(f"fpr must be values strictly between 0 and 1; got {self.fpr!r}")
        set_("fpr", tuple(float(a) for a in fpr))
        set_("targets", check_int("targets", self.targets, 2))
        set_("seed", check_int("seed", self.seed, 0, 2**63 - 1))
        if self.attack != "oracle":
            shadows = check_int("shadows", self.shadows, 6)
            if shadows % 2:
                raise ValueError(
                    f"shadows must be even (each target IN for exactly half); got {shadows}"
                )
            set_("shadows", shadows)
        if self.statistic == "logit" and self.classes < 2:
            raise ValueError("statistic 'logit' needs classes >= 2")
        if self.statistic == "logit" and self.attack == "oracle":
            raise ValueError(
                "the oracle uses the exact law of s = <x, m̂_y> (statistic 'score'); "
                "'logit' is for LiRA"
            )
        if not 0 < float(self.level) < 1:
            raise ValueError(f"level must lie strictly between 0 and 1; got {self.level!r}")
        if self.sampler == "full" and max(self.shots) * self.dim > 10**7:
            raise ValueError(
                "the full-data sampler draws S·d normals per class and game; "
                f"S·d = {max(self.shots) * self.dim} is too large (<= 1e7; use --sampler fast)"
            )
        set_("level", float(self.level))
        set_("fit_min_shots", check_int("fit_min_shots", self.fit_min_shots, 1))
        set_("evaluation", check_choice("evaluation", self.evaluation, EVALUATIONS))
        target_models = check_int("target_models", self.target_models, 2)
        if target_models % 2:
            raise ValueError(
                f"target_models must be even (each target IN for exactly half); got {target_models}"
            )
        set_("target_models", target_models)
        set_("interval", check_choice("interval", self.interval, INTERVAL_METHODS))
        set_("resamples", check_int("resamples", self.resamples, MIN_RESAMPLES))
        set_("sigma", float(self.sigma))
        self.model  # validates dim, classes, sigma  # noqa: B018

    @property
    def model(self) -> GaussianModel:
        return GaussianModel(self.dim, self.classes, self.sigma)

    @property
    def measurement(self) -> Measurement:
        return Measurement(self.level, self.interval, self.resamples)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"shots": list(self.shots), "fpr": list(self.fpr)}
