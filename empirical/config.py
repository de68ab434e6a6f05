"""What an empirical sweep runs: :class:`RunConfig`, an immutable, validated description.

A sweep is a grid of cells (C, S, seed). Each field of the config has a role: most define the
content of every cell (and so enter the cell's identity in the store, ``cells.py``); the few in
:data:`NOT_CELL_SETTINGS` only choose the grid, the evaluation or the machine. A field added later
is cell-defining unless it is declared there, so a new setting can never be silently ignored by
the store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from mialaw.empirical import attacks as attack_registry
from mialaw.empirical.datasets import FEATURE_SPACE
from mialaw.empirical.learners import get_learner
from mialaw.theory.model import check_fpr
from mialaw.theory.validation import check_choice, check_int, check_ints

__all__ = ["FORMAT", "HEADS", "NOT_CELL_SETTINGS", "RunConfig", "cell_name"]

FORMAT = "mialaw-empirical-run/3"
HEADS = ("linear", "mlp")
# Settings that do not change a cell's arrays, with why. Every other field does.
NOT_CELL_SETTINGS = {
    "classes": "grid (each cell has one C)",
    "shots": "grid (each cell has one S)",
    "fpr": "evaluation: TPRs are read off the scores",
    "attacks": "evaluation: scores are derived from the stored statistics",
    "variance": "LiRA scoring option, applied by the analysis",
    "centre": "LiRA scoring option, applied by the analysis",
    "rmia_a": "RMIA scoring option, applied by the analysis",
    "rmia_gamma": "RMIA scoring option, applied by the analysis",
    "attack_settings": "scoring options of registered attacks, applied by the analysis",
    "targets": "evaluation: how many of the cell's models are measured as targets",
    "device": "machine (results agree to float rounding)",
    "data_dir": "where the data lie",
    "cache_dir": "where the features are cached",
}


@dataclass(frozen=True)
class RunConfig:
    """Every setting of an empirical sweep (immutable, validated, JSON-serialisable).

    dataset, backbone : names understood by ``mialaw.empirical.features.get_features``.
    classes : class counts C (>= 2); the first C classes of the dataset are used.
    shots : examples per class S (>= 1); each cell samples 2·S per class as candidates.
    shadows : M, even, >= 4: every target model is scored against M shadows (M/2 IN and M/2
        OUT for every example); M + 2 models are trained per cell, in complementary pairs, and
        every one is a target in turn.
    seeds : K >= 1 seeds 0..K-1 (part of a cell's identity: the candidate blocks depend on K).
    fpr : target FPRs α in (0, 1) for the reported TPRs.
    attacks : the attack families to report (``attacks.ATTACK_FAMILIES``: "lira", "rmia" and any
        registered later); None: every registered family. Scores are derived from the saved
        statistics by the analysis.
    learner : a registered learner (``mialaw.empirical.learners.learner_names()``; default
        "head").
    head : "linear" (softmax regression) or "mlp" (one hidden layer of ``hidden`` units).
    weight_decay : λ > 0 of (1/n)·Σ_i CE_i + (λ/2)||W||² per model (n = S·C, mean loss).
    flip : add the horizontally flipped image as a second query (needs flipped features).
    standardize : standardise features with population statistics (default: yes, except for the
        feature-space ``gaussian`` dataset, whose origin is part of the theory's model).
    variance, centre : LiRA options ("per-example"|"global", "mean"|"median").
    rmia_a, rmia_gamma : RMIA's a and γ; rmia_population : population examples P for RMIA.
    targets : how many models of a cell are measured as targets (the first ones; each is still
        scored against all M shadows outside its pair); None: all M + 2. Fewer targets cost
        less to bootstrap and lose little: the examples, not the models, limit the precision.
    threads : CPU threads for a large cell's training. Float sums depend on the thread count,
        so it is part of a cell's identity: every executor then gives bit-identical cells.
    dataset_options : extra keyword arguments for ``get_features`` (e.g. the gaussian model's
        ``dim``, ``sigma``, ``n_per_class``, ``seed``; a backbone's ``resolution``).
    learner_settings : the learner's own settings, checked and completed by the learner (e.g.
        FiLM's; see ``mialaw.empirical.film_run``); part of the identity of its cells only.
    attack_settings : {attack name: its parameters}, checked and completed by each attack
        (``mialaw.empirical.attacks``); scoring options, not cell settings.
    device : "auto", "cpu" or "cuda" (does not change results beyond float rounding).
    """

    dataset: str
    backbone: str
    classes: tuple = (2,)
    shots: tuple = (1, 2, 4, 8)
    shadows: int = 16
    seeds: int = 1
    fpr: tuple = (0.1, 0.01, 0.001)
    attacks: tuple | None = None
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
    threads: int = 2
    targets: int | None = None
    dataset_options: dict = field(default_factory=dict)
    data_dir: str | None = None
    cache_dir: str | None = None
    device: str = "auto"
    learner: str = "head"
    learner_settings: dict = field(default_factory=dict)
    attack_settings: dict = field(default_factory=dict)

    def __post_init__(self):
        self._check_names()
        self._check_sampling()
        self._check_evaluation()
        self._check_training()
        learner = get_learner(self.learner)
        # The learner checks (and completes) its own settings, e.g. FiLM's, then anything else
        # it needs of the common ones.
        self._set("learner_settings", learner.complete_settings(self.learner_settings, self))
        for name, value in learner.validate(self).items():
            self._set(name, value)
        self._check_attack_settings()

    def _set(self, name, value):
        object.__setattr__(self, name, value)

    def _check_names(self):
        for name in ("dataset", "backbone", "learner"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty name; got {value!r}")
        if not isinstance(self.dataset_options, dict):
            raise ValueError("dataset_options must be a dict of keyword arguments")
        self._set("dataset_options", dict(self.dataset_options))
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda'; got {self.device!r}")

    def _check_sampling(self):
        self._set("classes", check_ints("classes", self.classes, 2))
        self._set("shots", check_ints("shots", self.shots, 1))
        # A target's M shadows hold M/2 IN and M/2 OUT models of every example; a variance
        # needs >= 2 of each (one value per example leaves no within-example spread to pool).
        shadows = check_int(
            "shadows", self.shadows, 4, why=" (>= 2 IN and 2 OUT shadows per example)"
        )
        if shadows % 2:
            raise ValueError(
                f"shadows must be even (half IN and half OUT for every example); got {shadows}"
            )
        self._set("shadows", shadows)
        self._set("seeds", check_int("seeds", self.seeds, 1))
        self._set("rmia_population", check_int("rmia_population", self.rmia_population, 10))
        if self.targets is not None:
            targets = check_int("targets", self.targets, 1)
            if targets > self.models:
                raise ValueError(
                    f"targets must be at most the cell's M + 2 = {self.models} models; "
                    f"got {targets}"
                )
            self._set("targets", targets)

    def _check_evaluation(self):
        fpr = np.atleast_1d(check_fpr(self.fpr))
        self._set("fpr", tuple(sorted({float(a) for a in fpr}, reverse=True)))
        families = attack_registry.ATTACK_FAMILIES
        if self.attacks is None:  # every registered family: a registered attack is reported
            self._set("attacks", tuple(families))
        attacks = (self.attacks,) if isinstance(self.attacks, str) else tuple(self.attacks)
        if not attacks or any(a not in families for a in attacks):
            raise ValueError(f"attacks must be among {tuple(families)}; got {self.attacks!r}")
        self._set("attacks", tuple(a for a in families if a in attacks))
        check_choice("variance", self.variance, ("per-example", "global"))
        check_choice("centre", self.centre, ("mean", "median"))
        if not 0 <= float(self.rmia_a) <= 1:
            raise ValueError(f"rmia_a must lie in [0, 1]; got {self.rmia_a!r}")
        self._set("rmia_a", float(self.rmia_a))
        if not float(self.rmia_gamma) > 0:
            raise ValueError(f"rmia_gamma must be > 0; got {self.rmia_gamma!r}")
        self._set("rmia_gamma", float(self.rmia_gamma))

    def _check_attack_settings(self):
        if not isinstance(self.attack_settings, dict):
            raise ValueError("attack_settings must be a dict {attack name: its settings}")
        completed = {}
        for name, options in sorted(self.attack_settings.items()):
            completed[name] = attack_registry.get_attack(name).complete_settings(options, self)
        self._set("attack_settings", completed)

    def _check_training(self):
        check_choice("head", self.head, HEADS)
        self._set("hidden", check_int("hidden", self.hidden, 1))
        self._set("threads", check_int("threads", self.threads, 1))
        wd = float(self.weight_decay)
        if not np.isfinite(wd) or wd <= 0:
            raise ValueError(f"weight_decay must be a finite number > 0; got {self.weight_decay!r}")
        self._set("weight_decay", wd)
        self._set("flip", bool(self.flip))
        if self.standardize is None:  # feature-space data keep their origin (the model's)
            self._set("standardize", self.dataset.lower() not in FEATURE_SPACE)
        self._set("standardize", bool(self.standardize))
        check_choice("dtype", self.dtype, ("float32", "float64"))

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
        """The settings that define a cell's content: all but :data:`NOT_CELL_SETTINGS`."""
        settings = {k: v for k, v in self.to_dict().items() if k not in NOT_CELL_SETTINGS}
        # Cell format 3 recorded a learner's own settings under "film" (the first learner that
        # had any); the key is kept so that every stored cell keeps its address. Rename it
        # with the next cell format.
        settings["film"] = settings.pop("learner_settings")
        return settings

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        d = dict(d)
        if "film" in d:  # the field's name in runs written before learner_settings
            d["learner_settings"] = d.pop("film")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown run settings {unknown}")
        return cls(**d)


def cell_name(classes: int, shots: int, seed: int) -> str:
    """The human-readable name of a cell in a run's manifest."""
    return f"C{classes}_S{shots}_seed{seed}"
