"""Sweeps of the simulated membership game over shots S, with power-law fits and exact theory.

``SweepConfig`` (frozen, validated) says what is run; ``run_sweep(config)`` runs one attack at
every S (a fresh, independently seeded set of games per S) and returns a ``SweepResult``, the
analysis: one ``SweepPoint`` per (S, α).

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
import json
import math
from dataclasses import dataclass, field

import numpy as np

from mialaw.theory.average import average_tpr, pooled_tpr
from mialaw.theory.fits import fit_power_law, local_slopes
from mialaw.theory.measure import INTERVAL_METHODS
from mialaw.theory.metrics import unsaturated
from mialaw.theory.model import GaussianModel
from mialaw.theory.records import Point, PowerLaw, ResultSet

from .attacks import ATTACKS, EVALUATIONS, AttackResult, lira_attack, oracle_attack
from .engines import ENGINES, SAMPLERS, Engine, derive_seed
from .measure import MIN_RESAMPLES, Measurement
from .samplers import STATISTICS

VARIANCES = ("per-example", "global")
SATURATION_CUT = 0.9  # fits keep advantages below this fraction of their ceiling 1 − α


def _int(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if not (isinstance(value, float) and value.is_integer()):
            raise ValueError(f"{name} must be an integer; got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {bound}; got {value}")
    return value


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


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
        set_("attack", _choice("attack", self.attack, ATTACKS))
        set_("sampler", _choice("sampler", self.sampler, SAMPLERS))
        set_("engine", _choice("engine", self.engine, ENGINES))
        set_("variance", _choice("variance", self.variance, VARIANCES))
        set_("statistic", _choice("statistic", self.statistic, tuple(STATISTICS)))
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
        set_("targets", _int("targets", self.targets, 2))
        set_("seed", _int("seed", self.seed, 0, 2**63 - 1))
        if self.attack != "oracle":
            shadows = _int("shadows", self.shadows, 6)
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
        set_("fit_min_shots", _int("fit_min_shots", self.fit_min_shots, 1))
        set_("evaluation", _choice("evaluation", self.evaluation, EVALUATIONS))
        target_models = _int("target_models", self.target_models, 2)
        if target_models % 2:
            raise ValueError(
                f"target_models must be even (each target IN for exactly half); got {target_models}"
            )
        set_("target_models", target_models)
        set_("interval", _choice("interval", self.interval, INTERVAL_METHODS))
        set_("resamples", _int("resamples", self.resamples, MIN_RESAMPLES))
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


@dataclass(frozen=True)
class SweepPoint:
    """One (S, α) of a sweep: the pooled attack, the per-example oracle and the exact theory.

    ``tpr`` is NaN (null in JSON) when unresolvable (α·negatives < 1), and so are ``tpr_ci`` and
    ``log10_advantage_se`` (the standard error of log10(TPR − α) by the delta method from the
    interval: the fit's weight; NaN unless TPR > α).
    """

    shots: int
    fpr: float
    tpr: float
    tpr_ci: tuple[float, float]
    interval_method: str
    achieved_fpr: float
    true_positives: int
    positives: int
    false_positives: int
    negatives: int
    resolvable: bool
    detected: bool
    log10_advantage_se: float
    theory_pooled: float | None = None
    per_example_tpr: float | None = None
    per_example_tpr_ci: tuple[float, float] | None = None
    per_example_achieved_fpr: float | None = None
    theory_per_example: float | None = None

    @property
    def advantage(self) -> float:
        return self.tpr - self.fpr

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tpr_ci"] = list(self.tpr_ci)
        if self.per_example_tpr_ci is not None:
            d["per_example_tpr_ci"] = list(self.per_example_tpr_ci)
        d["advantage"] = self.advantage
        return d


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


def _log10_se(lower, upper, advantage, level: float) -> np.ndarray:
    """Standard error of log10(advantage) by the delta method from an interval's width (as
    ``TprMeasurement.log10_advantage_se``); NaN where the advantage is not positive."""
    from scipy.stats import norm

    se = (np.asarray(upper) - np.asarray(lower)) / (2.0 * norm.ppf(0.5 + level / 2.0))
    adv = np.asarray(advantage, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(adv > 0, se / (adv * np.log(10.0)), np.nan)


@dataclass(frozen=True)
class SweepResult:
    """The analysis of a sweep: its points (S-major, then α) and fits; ``config`` is what ran."""

    config: SweepConfig
    points: tuple[SweepPoint, ...] = field(repr=False)

    def select(self, fpr: float) -> tuple[SweepPoint, ...]:
        """The points at one α, in the order of ``config.shots``."""
        chosen = tuple(p for p in self.points if math.isclose(p.fpr, fpr, rel_tol=1e-12))
        if not chosen:
            raise ValueError(f"fpr {fpr!r} is not in this sweep; it has {list(self.config.fpr)}")
        return chosen

    def _fit_inputs(self, fpr: float, per_example: bool):
        """(shots, advantage, sigma, usable) at α: usable = resolvable, detected and not
        saturated (advantage < ``SATURATION_CUT``·(1 − α): a nearly perfect attack carries no
        power-law information and flattens the slope)."""
        pts = self.select(fpr)
        shots = np.array([p.shots for p in pts], dtype=np.float64)
        if per_example:
            if pts[0].per_example_tpr is None:
                raise ValueError("per-example results exist only for the oracle attack")
            adv = np.array([p.per_example_tpr for p in pts]) - fpr
            ci = np.array([p.per_example_tpr_ci for p in pts])
            sigma = _log10_se(ci[:, 0], ci[:, 1], adv, self.config.level)
            usable = ci[:, 0] > fpr  # every game counts: always resolvable
        else:
            adv = np.array([p.advantage for p in pts])
            sigma = np.array([p.log10_advantage_se for p in pts])
            usable = np.array([p.resolvable and p.detected for p in pts])
        with np.errstate(invalid="ignore"):
            usable &= unsaturated(np.nan_to_num(adv, nan=np.inf), fpr, SATURATION_CUT)
        return shots, adv, sigma, usable

    def fit(self, fpr: float, *, per_example: bool = False):
        """Weighted power-law fit of log10(TPR − α) on log10 S over the resolvable, detected,
        unsaturated points at α with S >= ``config.fit_min_shots`` (weights: 1/σ² of log10
        advantage).

        ``per_example=True`` fits the per-example-calibrated oracle instead of the pooled attack.
        Raises ValueError when fewer than two distinct S are usable.
        """
        shots, adv, sigma, usable = self._fit_inputs(fpr, per_example)
        keep = usable & (shots >= self.config.fit_min_shots)
        return fit_power_law(shots, adv, keep=keep, sigma=sigma, level=self.config.level)

    def local_slopes(self, fpr: float, *, per_example: bool = False):
        """Slopes of log10(TPR − α) between neighbouring points at α that the fit rule admits
        (resolvable, detected, unsaturated), at all S: they show where the law sets in."""
        shots, adv, sigma, usable = self._fit_inputs(fpr, per_example)
        return local_slopes(shots, np.where(usable, adv, np.nan), sigma, level=self.config.level)

    def theory_fit(self, fpr: float, *, per_example: bool = False):
        """The same fit (unweighted: exact values) on the exact theory's values at the sweep's S,
        unsaturated ones with S >= ``fit_min_shots`` (None without theory)."""
        pts = self.select(fpr)
        values = [p.theory_per_example if per_example else p.theory_pooled for p in pts]
        if any(v is None for v in values):
            return None
        shots = np.array([p.shots for p in pts], dtype=np.float64)
        adv = np.array(values) - fpr
        keep = (shots >= self.config.fit_min_shots) & unsaturated(adv, fpr, SATURATION_CUT)
        return fit_power_law(shots, adv, keep=keep, level=self.config.level)

    def records(self):
        """The typed form (``mialaw.theory.records.ResultSet``): the same point schema as the
        real models' (source "simulation"; the Gaussian model as dataset, the class means as the
        learner) and the pooled power law at every α that has one."""

        c = self.config
        where = dict(source="simulation", dataset=f"gaussian d={c.dim} sigma={c.sigma:g}")
        where |= dict(backbone="identity", classes=c.classes, attack=c.attack)
        points = []
        for p in self.points:
            row = p.to_dict() | where | {"learner": "class means", "seeds": 1}
            if not p.resolvable:  # the schema's null: no TPR without a threshold
                row |= {"tpr": None, "tpr_ci": None}
            points.append(Point.from_dict(row))
        laws = []
        for alpha, fit in self.fits().items():
            pooled = fit.get("pooled")
            if pooled:
                laws.append(PowerLaw.from_dict(pooled | where | {"fpr": float(alpha)}))
        return ResultSet(tuple(points), tuple(laws))

    def fits(self) -> dict:
        """Every fit as plain data, keyed by α: pooled, per-example (oracle) and theory fits,
        and the local slopes (``pooled_local_slopes``, ``per_example_local_slopes``)."""
        out = {}
        for a in self.config.fpr:
            entry = {"fpr": a}
            for key, per_example in (("pooled", False), ("per_example", True)):
                if per_example and self.config.attack != "oracle":
                    continue
                entry[key] = _fit_dict(lambda a=a, pe=per_example: self.fit(a, per_example=pe))
                theory = _fit_dict(lambda a=a, pe=per_example: self.theory_fit(a, per_example=pe))
                entry[f"theory_{key}"] = theory
                slopes = self.local_slopes(a, per_example=per_example)
                entry[f"{key}_local_slopes"] = [ls.to_dict() for ls in slopes]
            # The headline slope of this α: the pooled attack's.
            pooled = entry["pooled"]
            entry["slope"] = pooled["slope"] if pooled else None
            entry["slope_ci"] = pooled["slope_ci"] if pooled else None
            out[str(a)] = entry
        return out

    def to_json(self) -> dict:
        """One JSON-ready object: {"config", "points", "fit"}; non-finite numbers (e.g. the
        unbounded slope interval of a two-point fit) become null, so the JSON is strict."""
        return _finite(
            {
                "config": self.config.to_dict(),
                "points": [p.to_dict() for p in self.points],
                "fit": self.fits(),
            }
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), allow_nan=False)


def _finite(value):
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _fit_dict(make) -> dict | None:
    try:
        fit = make()
    except ValueError:  # fewer than two resolvable points: no fit, said as null
        return None
    if fit is None:
        return None
    d = fit.to_dict()
    d.pop("kept", None)
    d["kept"] = [bool(k) for k in fit.kept]
    return d


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
    import itertools

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
