"""One empirical sweep: for every (C, S, seed) cell, train the target and shadow heads and attack.

A cell of a sweep over classes C, shots S and seeds k (the measurement rules are those of
``mialaw/theory/science.md``, section 3):

1. **Sampling** (``candidate_pool``). 2·S candidates of each of the first C classes. Every class
   is shuffled once (the same order for all seeds) and cut into K equal blocks, one per seed:
   seed k draws its candidates from the start of block k, so seeds use disjoint candidate pools
   whenever 2·S <= n_c/K, and pools are nested in S within a seed. When 2·S exceeds a block the
   windows overlap; the cell records the fraction of its candidates shared with the next seed's
   pool (``pool_overlap``). Everything else of those classes is the held-out *population*: it
   never enters a training set and is used for the feature standardisation, the atypicality
   predictor's class means and covariance, the heads' held-out accuracy, and RMIA's reference
   population (``rmia_population`` examples).
2. **Keep matrix** (``paired_keep``). M + 2 models in complementary pairs (row 2k+1 = ¬row 2k):
   within each class the candidates are paired at random and every model trains on exactly one
   example of each pair, so every model trains on exactly S examples per class and every example
   is IN for exactly half of the models. Drawn from ``SeedSequence([k, C, S])``.
3. **Training.** All M + 2 heads at once (``heads.train_heads``: batched L-BFGS). The L2 strength
   ``weight_decay`` λ is on the *mean* loss, (1/(S·C))·Σ_i CE_i + (λ/2)||W||², so the head is the
   same estimator at every S (a penalty on the sum of losses would weaken as S grows).
4. **Statistics and scores.** Logit-scaled confidence per query (the image, and its horizontal flip
   with ``flip``); LiRA online/offline and offline RMIA by *pair rotation* (every model is a target
   and is scored against the M models outside its pair: each example keeps M/2 IN and M/2 OUT
   shadows whatever the target's membership, so there is no leave-one-out tilt).

Each cell is saved as ``cells/C{C}_S{S}_seed{k}.npz`` (written to a temporary file and renamed,
so a cell file is either complete or absent) holding ``keep`` (bool, models × examples),
``stats`` (float64, models × examples × queries), ``population_stats`` (models × P × queries),
``labels``, ``indices`` (into the feature set), ``grad_norm`` (models × examples; NaN for the MLP),
``atypicality`` (examples), ``objective``, ``iterations``, ``converged``, ``accuracy`` (per model,
on the population), ``pool_overlap`` and ``train_seconds``. The run directory's
``settings.json`` records every setting; re-running into the same directory reuses finished
cells when the cell-defining settings match and refuses otherwise.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "ATTACKS",
    "FORMAT",
    "RunConfig",
    "candidate_pool",
    "paired_keep",
    "cell_name",
    "load_cell",
    "prepare_features",
    "run_cell",
    "run_sweep",
]

FORMAT = "mialaw-empirical-run/2"
ATTACKS = ("lira", "rmia")
HEADS = ("linear", "mlp")
# Settings that change a cell's content; the others (requested grid, evaluation FPRs, reported
# attacks, device, paths) may differ between runs into the same directory.
_CELL_FIELDS = (
    "dataset",
    "backbone",
    "dataset_options",
    "shadows",
    "head",
    "hidden",
    "weight_decay",
    "flip",
    "standardize",
    "variance",
    "centre",
    "rmia_a",
    "rmia_gamma",
    "rmia_population",
    "seeds",
    "max_iter",
    "gtol",
    "dtype",
    "learner",
    "film",
)


def _ints(name, values, minimum):
    vals = (values,) if isinstance(values, (int, np.integer)) else tuple(values)
    if not vals:
        raise ValueError(f"{name} must not be empty")
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise ValueError(f"{name} must be integers >= {minimum}; got {values!r}")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat values; got {values!r}")
    return tuple(sorted(out))


@dataclass(frozen=True)
class RunConfig:
    """Every setting of an empirical sweep (immutable, validated, JSON-serialisable).

    dataset, backbone : names understood by ``mialaw.empirical.features.get_features``.
    classes : class counts C (>= 2); the first C classes of the dataset are used.
    shots : examples per class S (>= 1); each cell samples 2·S per class as candidates.
    shadows : M, even, >= 4: every target model is scored
        against M shadows (M/2 IN and M/2 OUT for every example); M + 2 models are trained per
        cell, in complementary pairs, and every one is a target in turn.
    seeds : K >= 1 seeds 0..K-1 (part of a cell's identity: the candidate blocks depend on K).
    fpr : target FPRs α in (0, 1) for the reported TPRs.
    attacks : subset of ("lira", "rmia") to report (scores are derived from the saved
        statistics by the analysis, ``scores``).
    head : "linear" (softmax regression) or "mlp" (one hidden layer of ``hidden`` units).
    weight_decay : λ > 0 of (1/n)·Σ_i CE_i + (λ/2)||W||² per model (n = S·C, mean loss).
    flip : add the horizontally flipped image as a second query (needs flipped features).
    standardize : standardise features with population statistics (default: yes, except for the
        feature-space ``gaussian`` dataset, whose origin is part of the theory's model).
    variance, centre : LiRA options ("per-example"|"global", "mean"|"median").
    rmia_a, rmia_gamma : RMIA's a and γ; rmia_population : population examples P for RMIA.
    dataset_options : extra keyword arguments for ``get_features`` (e.g. the gaussian model's
        ``dim``, ``sigma``, ``n_per_class``, ``seed``; a backbone's ``resolution``).
    device : "auto", "cpu" or "cuda" (does not change results beyond float rounding).
    """

    dataset: str
    backbone: str
    classes: tuple = (2,)
    shots: tuple = (1, 2, 4, 8)
    shadows: int = 16
    seeds: int = 1
    fpr: tuple = (0.1, 0.01, 0.001)
    attacks: tuple = ATTACKS
    head: str = "linear"
    hidden: int = 128
    weight_decay: float = 0.01
    flip: bool = False
    standardize: bool | None = None
    variance: str = "per-example"
    centre: str = "mean"
    rmia_a: float = 0.3
    rmia_gamma: float = 2.0
    rmia_population: int = 1000
    max_iter: int = 1000
    gtol: float = 1e-4
    dtype: str = "float32"
    dataset_options: dict = field(default_factory=dict)
    data_dir: str | None = None
    cache_dir: str | None = None
    device: str = "auto"
    learner: str = "head"
    film: dict = field(default_factory=dict)

    def __post_init__(self):
        from mialaw.theory.model import check_fpr

        set_ = lambda name, value: object.__setattr__(self, name, value)
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset must be a non-empty name; got {self.dataset!r}")
        if not isinstance(self.backbone, str) or not self.backbone:
            raise ValueError(f"backbone must be a non-empty name; got {self.backbone!r}")
        set_("classes", _ints("classes", self.classes, 2))
        set_("shots", _ints("shots", self.shots, 1))
        if isinstance(self.shadows, bool) or not isinstance(self.shadows, (int, np.integer)):
            raise ValueError(f"shadows must be an even integer >= 2; got {self.shadows!r}")
        if self.shadows < 2 or self.shadows % 2:
            raise ValueError(
                "shadows must be an even integer >= 2 (half IN and half OUT for every example); "
                f"got {self.shadows}"
            )
        set_("shadows", int(self.shadows))
        if self.variance not in ("per-example", "global"):
            raise ValueError(f"variance must be 'per-example' or 'global'; got {self.variance!r}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, (int, np.integer)):
            raise ValueError(f"seeds must be an integer >= 1; got {self.seeds!r}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1; got {self.seeds}")
        set_("seeds", int(self.seeds))
        fpr = np.atleast_1d(check_fpr(self.fpr))
        set_("fpr", tuple(sorted({float(a) for a in fpr}, reverse=True)))
        attacks = (self.attacks,) if isinstance(self.attacks, str) else tuple(self.attacks)
        bad = [a for a in attacks if a not in ATTACKS]
        if bad or not attacks:
            raise ValueError(f"attacks must be among {ATTACKS}; got {self.attacks!r}")
        set_("attacks", tuple(a for a in ATTACKS if a in attacks))
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}; got {self.head!r}")
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, (int, np.integer)):
            raise ValueError(f"hidden must be an integer >= 1; got {self.hidden!r}")
        if self.hidden < 1:
            raise ValueError(f"hidden must be an integer >= 1; got {self.hidden!r}")
        wd = float(self.weight_decay)
        if not np.isfinite(wd) or wd <= 0:
            raise ValueError(f"weight_decay must be a finite number > 0; got {self.weight_decay!r}")
        set_("weight_decay", wd)
        set_("flip", bool(self.flip))
        if self.standardize is None:
            set_("standardize", self.dataset != "gaussian")
        set_("standardize", bool(self.standardize))
        # A target's M shadows hold M/2 IN and M/2 OUT models of every example; a variance
        # needs >= 2 of each (one value per example leaves no within-example spread to pool).
        if self.shadows < 4:
            raise ValueError(
                f"shadows must be >= 4 for {self.variance} LiRA variance (every example needs "
                f">= 2 IN and 2 OUT shadows per target); got {self.shadows}"
            )
        if self.centre not in ("mean", "median"):
            raise ValueError(f"centre must be 'mean' or 'median'; got {self.centre!r}")
        if not 0 <= float(self.rmia_a) <= 1:
            raise ValueError(f"rmia_a must lie in [0, 1]; got {self.rmia_a!r}")
        set_("rmia_a", float(self.rmia_a))
        if not float(self.rmia_gamma) > 0:
            raise ValueError(f"rmia_gamma must be > 0; got {self.rmia_gamma!r}")
        set_("rmia_gamma", float(self.rmia_gamma))
        if isinstance(self.rmia_population, bool) or not isinstance(
            self.rmia_population, (int, np.integer)
        ):
            raise ValueError(
                f"rmia_population must be an integer >= 10; got {self.rmia_population!r}"
            )
        if self.rmia_population < 10:
            raise ValueError(
                f"rmia_population must be an integer >= 10; got {self.rmia_population}"
            )
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64'; got {self.dtype!r}")
        if not isinstance(self.dataset_options, dict):
            raise ValueError("dataset_options must be a dict of keyword arguments")
        set_("dataset_options", dict(self.dataset_options))
        if self.learner not in ("head", "film"):
            raise ValueError(f"learner must be 'head' or 'film'; got {self.learner!r}")
        if self.learner == "film":  # FiLM (film_run.py): settings validated, stored in full
            from mialaw.empirical.film_run import film_options, film_settings

            resolution = self.dataset_options.get("resolution")
            set_("film", film_options(film_settings(self.film, resolution=resolution)))
        elif self.film:
            raise ValueError("film settings need learner='film'")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda'; got {self.device!r}")

    @property
    def models(self) -> int:
        """M + 2: every target model's pair and its M shadows."""
        return self.shadows + 2

    def cells(self) -> list[tuple[int, int, int]]:
        """Every (C, S, seed) of the sweep, cheapest first within each seed."""
        return [(c, s, k) for k in range(self.seeds) for c in self.classes for s in self.shots]

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("classes", "shots", "fpr", "attacks"):
            d[key] = list(d[key])
        return d

    def cell_settings(self) -> dict:
        """The settings that define a cell's content (compared when resuming a run)."""
        d = self.to_dict()
        return {key: d[key] for key in _CELL_FIELDS}

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown run settings {unknown}")
        return cls(**d)


def cell_name(classes: int, shots: int, seed: int) -> str:
    return f"C{classes}_S{shots}_seed{seed}.npz"


# --------------------------------------------------------------------------- features
@dataclass(frozen=True)
class PreparedFeatures:
    """The features of the largest class subset of a run, validated."""

    features: np.ndarray  # (n, F) float32
    labels: np.ndarray  # (n,) int64
    flipped: np.ndarray | None  # (n, F) or None
    key: str


def prepare_features(config: RunConfig, features=None) -> PreparedFeatures:
    """Load (or take) the features and check them against the sweep, before anything is written.

    ``features``: optional object with ``features``, ``labels`` and optionally ``flipped`` (e.g. a
    ``FeatureSet``); by default ``get_features(config.dataset, config.backbone, ...)``.
    """
    if features is None:
        from mialaw.empirical.features import get_features

        features = get_features(
            config.dataset,
            config.backbone,
            classes=max(config.classes),
            data_dir=config.data_dir,
            cache_dir=config.cache_dir,
            device=config.device,
            flip=config.flip,
            **config.dataset_options,
        )
    x = np.asarray(features.features)
    y = np.asarray(features.labels)
    flipped = getattr(features, "flipped", None)
    key = str(getattr(features, "key", "given"))
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"features must be (n, F) with n labels; got {x.shape} and {y.shape}")
    if not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.all(np.isfinite(x), axis=1)))
        raise ValueError(f"features contain NaN or infinite values ({bad} of {x.shape[0]} rows)")
    if config.flip:
        if flipped is None:
            raise ValueError(
                f"--flip needs flipped-image features, which {config.dataset}/{config.backbone} "
                "does not provide"
            )
        flipped = np.asarray(flipped)
        if flipped.shape != x.shape or not np.all(np.isfinite(flipped)):
            raise ValueError("flipped features must be finite and shaped like the features")
    else:
        flipped = None
    counts = np.bincount(y, minlength=max(config.classes))
    for c in config.classes:
        if counts.size < c or np.any(counts[:c] == 0):
            raise ValueError(f"{config.dataset} has fewer than C={c} classes in its features")
        need = 2 * max(config.shots) + 10
        smallest = int(counts[:c].min())
        if smallest < need:
            raise ValueError(
                f"S={max(config.shots)} is larger than the class size allows: each class needs "
                f"2·S = {2 * max(config.shots)} candidates plus >= 10 held-out examples, but the "
                f"smallest of the first {c} classes of {config.dataset} has {smallest}; largest "
                f"allowed S is {(smallest - 10) // 2}"
            )
    return PreparedFeatures(
        features=np.ascontiguousarray(x, dtype=np.float32),
        labels=y.astype(np.int64),
        flipped=None if flipped is None else np.ascontiguousarray(flipped, dtype=np.float32),
        key=key,
    )


# --------------------------------------------------------------------------- keep matrix
def paired_keep(models: int, labels, seed) -> np.ndarray:
    """Bool (models × examples): complementary model pairs, each model on half of every class.

    Within each class the examples (an even number, 2·S) are paired at random; model 2k trains on
    one example of every pair, chosen at random, and model 2k + 1 on the other. Hence every model
    trains on exactly S examples per class, every example is IN for exactly models/2 models, and
    removing a model pair leaves every example one IN and one OUT model fewer (pair rotation).
    """
    if models % 2 or models < 4:
        raise ValueError(f"models must be an even number >= 4; got {models}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    keep = np.zeros((int(models), labels.size), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if members.size % 2:
            raise ValueError(f"class {c} has an odd number of candidates ({members.size})")
        members = members[rng.permutation(members.size)]
        first, second = members[0::2], members[1::2]
        choose = rng.random((models // 2, first.size)) < 0.5
        keep[0::2, first], keep[0::2, second] = choose, ~choose
        keep[1::2, first], keep[1::2, second] = ~choose, choose
    return keep


def candidate_pool(labels, shots: int, classes: int, seed: int, seeds: int):
    """(indices, overlap): 2·S candidates per class for seed k of K, from disjoint blocks.

    Every class is shuffled once (the same order for every seed) and cut into K blocks; seed k
    takes the first 2·S examples of its block (nested in S), wrapping into the next block when
    2·S exceeds a block. ``overlap`` is the fraction of the candidates that the next seed's pool
    shares (0 when the pools are disjoint).
    """
    labels = np.asarray(labels)
    chosen, overlap = [], 0.0
    for c in range(classes):
        order = np.random.default_rng(np.random.SeedSequence([0x5EED, c])).permutation(
            np.flatnonzero(labels == c)
        )
        need, block = 2 * shots, order.size // seeds
        start = seed * order.size // seeds
        chosen.append(np.sort(order[(start + np.arange(need)) % order.size]))
        if seeds > 1:
            overlap = max(overlap, max(0, need - block) / need)
    return np.concatenate(chosen).astype(np.int64), overlap


# --------------------------------------------------------------------------- one cell
def _standardizer(population: np.ndarray, enabled: bool):
    if not enabled:
        return lambda a: np.asarray(a, dtype=np.float64)
    mean = population.mean(0, dtype=np.float64)
    std = population.std(0, dtype=np.float64)
    # constant features (e.g. always-black border pixels) are centred but not scaled
    std = np.where(std > 1e-8 * max(float(std.max()), 1e-300), std, 1.0)
    return lambda a: (np.asarray(a, dtype=np.float64) - mean) / std


def run_cell(prepared: PreparedFeatures, config: RunConfig, classes: int, shots: int, seed: int):
    """Train and attack one (C, S, seed) cell; returns the dict of arrays stored in its npz."""
    from mialaw.empirical.heads import train_heads

    y_all = prepared.labels
    pool, overlap = candidate_pool(y_all, shots, classes, seed, config.seeds)
    rng = np.random.default_rng(np.random.SeedSequence([seed, classes, shots]))
    population = np.setdiff1d(np.flatnonzero(y_all < classes), pool)
    if population.size > 20000:  # plenty for means, standard deviations and the covariance
        population = np.sort(rng.choice(population, 20000, replace=False))
    standardize = _standardizer(prepared.features[population], config.standardize)
    x = standardize(prepared.features[pool])
    y = y_all[pool]
    keep = paired_keep(config.models, y, rng)

    start = time.perf_counter()
    options = dict(
        # λ on the mean loss is λ·n on the sum of losses that train_heads minimises.
        weight_decay=config.weight_decay * shots * classes,
        device=config.device,
        dtype=config.dtype,
        max_iter=config.max_iter,
        gtol=config.gtol,
    )
    if config.head == "mlp":
        options["hidden"] = config.hidden
    heads = train_heads(
        config.head, x, y, keep, classes=classes, seed=int(rng.integers(2**31)), **options
    )
    train_seconds = time.perf_counter() - start
    arrays = {
        "classes": np.int64(classes),
        "shots": np.int64(shots),
        "seed": np.int64(seed),
        "keep": keep,
        "labels": y,
        "indices": pool,
        "pool_overlap": np.float64(overlap),
        "objective": np.asarray(heads.objective, dtype=np.float64),
        "iterations": np.asarray(heads.iterations, dtype=np.int64),
        "converged": np.asarray(heads.converged, dtype=bool),
        "train_seconds": np.float64(train_seconds),
    }
    # The attacks' scores are not stored: the analysis derives them from the statistics, so a
    # change to the scoring never leaves stale scores behind.
    return arrays | _statistics(prepared, config, heads, x, pool, population, standardize, rng)


def scores_of(keep, stats, population_stats, config: RunConfig) -> dict:
    """The attacks' scores of every target model (models × examples each) from a cell's
    statistics: LiRA online and offline by pair rotation (leave-one-out when the models do not
    come in complementary pairs, e.g. imported runs), and RMIA when population statistics exist."""
    from mialaw.theory.lira import complementary_pairs, lira_scores, rmia_scores

    rotation = "pairs" if complementary_pairs(keep) else "loo"
    lira = dict(variance=config.variance, centre=config.centre, rotation=rotation)
    out = {
        "lira_online": lira_scores(keep, stats, online=True, **lira),
        "lira_offline": lira_scores(keep, stats, online=False, **lira),
    }
    if population_stats is not None:
        out["rmia"] = rmia_scores(
            keep,
            stats,
            population_stats,
            a=config.rmia_a,
            gamma=config.rmia_gamma,
            rotation=rotation,
        )
    return out


def _statistics(prepared, config, heads, x, pool, population, standardize, rng) -> dict:
    """Statistics of every model on the candidates and on an RMIA population; per-example
    predictors; held-out accuracy."""
    from mialaw.empirical.statistics import attack_stats, atypicality, linear_gradient_norms

    y_all = prepared.labels
    y = y_all[pool]
    classes = int(y.max()) + 1

    def stats_of(indices, base):
        queries = [heads.logits(base, device=config.device)]
        if config.flip:
            flipped = standardize(prepared.flipped[indices])
            queries.append(heads.logits(flipped, device=config.device))
        return attack_stats(queries, y_all[indices]), queries[0]

    stats, logits = stats_of(pool, x)
    reference = np.sort(rng.permutation(population)[: config.rmia_population])
    pop_x = standardize(prepared.features[population])
    population_stats, _ = stats_of(reference, standardize(prepared.features[reference]))
    held_out = pop_x[: min(len(pop_x), 4000)]
    accuracy = (
        heads.logits(held_out, device=config.device).argmax(-1)
        == y_all[population][: len(held_out)]
    )
    if config.head == "linear":
        grad_norm = linear_gradient_norms(logits, x, y)
    else:  # no closed form for the MLP; not computed
        grad_norm = np.full(stats.shape[:2], np.nan)
    return {
        "stats": stats,
        "population_stats": population_stats,
        "grad_norm": grad_norm,
        # 4,000 population examples estimate the class means and covariance well enough for a
        # predictor (Ledoit–Wolf on all of them dominated the cost of a cell).
        "atypicality": atypicality(x, y, pop_x[:4000], y_all[population][:4000], classes=classes),
        "accuracy": accuracy.mean(1),
    }


_CELL_KEYS = ("keep", "stats", "labels")


def save_cell(path: Path, arrays: dict) -> None:
    """Write a cell atomically: a temporary file in the same directory, then a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_cell(path) -> dict:
    """A cell's arrays as a dict; raises ValueError when the file is not a complete cell."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path} is not a readable cell file ({err})") from err
    missing = [k for k in _CELL_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path} lacks {missing}; delete it to recompute the cell")
    return arrays


def write_settings(out_dir: Path, config: RunConfig, feature_key: str) -> None:
    """Create the run directory (or check it) and write settings.json atomically."""
    out_dir = Path(out_dir)
    path = out_dir / "settings.json"
    if path.exists():
        check_settings(out_dir, config)
    (out_dir / "cells").mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "config": config.to_dict(),
        "cell_settings": config.cell_settings(),
        "feature_key": feature_key,
        "python": sys.version.split()[0],
    }
    tmp = path.with_name(f".settings.json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)


def read_settings(out_dir) -> dict:
    path = Path(out_dir) / "settings.json"
    if not path.exists():
        raise ValueError(f"{out_dir} is not an empirical run directory (no settings.json)")
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from err
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path} has format {payload.get('format')!r}; expected {FORMAT!r}")
    return payload


def check_settings(out_dir, config: RunConfig) -> None:
    """Refuse to mix cells made with different cell-defining settings in one directory."""
    if not (Path(out_dir) / "settings.json").exists():
        return
    old = read_settings(out_dir)["cell_settings"]
    new = json.loads(json.dumps(config.cell_settings()))
    # A setting added after a run was written is taken at its default there.
    defaults = json.loads(json.dumps(RunConfig(config.dataset, config.backbone).cell_settings()))
    old = {k: old.get(k, defaults.get(k)) for k in set(old) | set(new)}
    diff = sorted(k for k in old if old.get(k) != new.get(k))
    if diff:
        detail = "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in diff)
        raise ValueError(
            f"{out_dir} holds a run with different settings ({detail}); use another --out or "
            "the same settings to resume"
        )


# --------------------------------------------------------------------------- the sweep
def run_sweep(config: RunConfig, out_dir, *, features=None, progress: bool = True, plots=True):
    """Run (or resume) every cell of ``config`` into ``out_dir``; returns the ``SweepResult``.

    Everything that can be checked is checked before the directory is touched: the settings,
    the features (loaded or given; finite; enough examples per class for the largest S) and an
    existing directory's settings. Finished cells are reused, so an interrupted run resumes. At
    the end ``summary.json`` (points and fits) and the plots are written.
    """
    from tqdm.auto import tqdm

    from mialaw.empirical.analysis import load_run, result_from_runs

    if not isinstance(config, RunConfig):
        raise ValueError("config must be a RunConfig")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} exists and is not a directory")
    check_settings(out_dir, config)
    from mialaw.empirical.heads import resolve_device

    resolve_device(config.device)  # e.g. "cuda" without a GPU fails here, before any writing
    if config.learner == "film":  # FiLM trains on the images: its own preparation and cells
        from mialaw.empirical.film_run import run_film_sweep

        return run_film_sweep(config, out_dir, progress=progress, plots=plots)
    prepared = prepare_features(config, features)
    write_settings(out_dir, config, prepared.key)
    cells = config.cells()
    bar = tqdm(cells, desc="cells", unit="cell", file=sys.stderr, disable=not progress)
    for c, s, k in bar:
        bar.set_postfix_str(f"C={c} S={s} seed={k}")
        path = out_dir / "cells" / cell_name(c, s, k)
        if path.exists():
            arrays = load_cell(path)
            if arrays["keep"].shape != (config.models, 2 * s * c):
                raise ValueError(f"{path} does not match the settings; delete it to recompute")
            continue
        save_cell(path, run_cell(prepared, config, c, s, k))
    bar.close()
    run = load_run(out_dir, fpr=config.fpr, cells=cells)
    result = result_from_runs([run], attacks=config.attacks, fpr=config.fpr)
    tmp = out_dir / f".summary.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(result.to_json(), indent=1))
    os.replace(tmp, out_dir / "summary.json")
    if plots:
        from mialaw.empirical.plots import plot_run

        plot_run(result, out_dir)
    return result
