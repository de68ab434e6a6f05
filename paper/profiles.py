"""What `mialaw reproduce` runs at each profile: immutable descriptions, no code that runs them.

smoke  the test suite's end-to-end check (under a minute);
quick  README's main command (40 s on 2 cores with empty caches);
full   the paper-scale study (1 h 45 min on 2 cores with empty caches; a GPU speeds up
       the empirical part).
"""

from __future__ import annotations

from dataclasses import dataclass, field

FPRS = (0.1, 0.01, 0.001)


@dataclass(frozen=True)
class TheorySpec:
    """The exact theory's grid: the Gaussian model (d, σ) over log-spaced S."""

    dim: int = 64
    sigma: float = 1.0
    shots_per_decade: int = 4
    max_log10_shots: int = 16
    # The theory slope is fitted over this S range, where ξ(S) = O(S^-1/2) is below 1e-6.
    slope_range: tuple[float, float] = (1e14, 1e16)
    fpr: tuple[float, ...] = FPRS
    # The pooled attack needs a root search per point: a coarser grid, up to 1e8 shots.
    pooled_per_decade: int = 2
    pooled_max_log10_shots: int = 8


@dataclass(frozen=True)
class SimulationSpec:
    """One simulated sweep (keyword arguments of ``mialaw.simulate.sweep.SweepConfig``)."""

    label: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EmpiricalSpec:
    """One empirical sweep (keyword arguments of ``mialaw.empirical.experiment.RunConfig``).

    ``role``: "main" runs enter the cross-dataset regression; "lambda" runs repeat a main run at
    another L2 strength for the λ table only; "film" runs compare FiLM with the head.
    """

    label: str
    options: dict = field(default_factory=dict)
    role: str = "main"


@dataclass(frozen=True)
class Profile:
    name: str
    theory: TheorySpec
    simulations: tuple[SimulationSpec, ...]
    empirical: tuple[EmpiricalSpec, ...]
    # The shadow-count study: (label of the run whose cells are read, shadow counts M).
    shadow_study: tuple | None = None
    # The regression held out by backbone: (backbone fitted alone, labels of the runs).
    backbone_study: tuple | None = None
    epsilons: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    delta: float = 1e-5
    fpr: tuple[float, ...] = FPRS
    estimate_s: float = 60.0  # rough wall time on 2 cores, for progress messages
    # The attacks the paper's headline numbers are read from (the published laws are online
    # LiRA's; the published regression is offline LiRA's): a choice of the paper, by name.
    headline_attack: str = "lira_online"
    regression_attack: str = "lira_offline"
    # Every figure as PNG; the paper's full run adds an SVG copy for print (it costs about a
    # third of the time spent on figures, which the quick profile's user waits for).
    figure_formats: tuple[str, ...] = ("png",)


def _geometric(top: int) -> tuple[int, ...]:
    return tuple(2**k for k in range(top + 1))


def _oracle(label, shots, targets, dim=64, seed=1, fit_min_shots=1):
    options = {"dim": dim, "sigma": 1.0, "shots": shots, "fpr": FPRS, "targets": targets}
    options |= {"attack": "oracle", "seed": seed, "fit_min_shots": fit_min_shots}
    return SimulationSpec(label, options)


# Offline LiRA is the headline attack of the simulation: with 64 shadows, online LiRA's noisy
# estimate of the IN/OUT mean gap swamps the true gap at large S and its advantage falls like
# 1/S rather than S^-1/2 (a finite-shadow effect, shown as a contrast in the full profile).
def _lira(label, shots, targets, shadows, dim=64, seed=2, attack="lira-offline", fit_min_shots=1):
    options = {"dim": dim, "sigma": 1.0, "shots": shots, "fpr": FPRS, "targets": targets}
    options |= {"attack": attack, "shadows": shadows, "seed": seed}
    return SimulationSpec(label, options | {"fit_min_shots": fit_min_shots})


def _empirical(label, dataset, backbone, classes, shots, shadows, seeds, role="main", **extra):
    options = {
        "dataset": dataset,
        "backbone": backbone,
        "classes": classes,
        "shots": shots,
        "shadows": shadows,
        "seeds": seeds,
        "fpr": FPRS,
    }
    return EmpiricalSpec(label, options | extra, role)


LAMBDAS = (0.001, 0.1, 1.0)  # beside the default 0.01 of the main runs


def _lambda_runs(base: EmpiricalSpec) -> tuple[EmpiricalSpec, ...]:
    """The main run ``base`` at C = 2 only, at other mean-loss L2 strengths λ."""
    return tuple(
        EmpiricalSpec(
            f"{base.label}-lambda{lam:g}",
            base.options | {"classes": (2,), "weight_decay": lam},
            "lambda",
        )
        for lam in LAMBDAS
    )


_FULL_FASHION = _empirical(
    "fashion-mnist-lite0",
    "fashion-mnist",
    "efficientnet-lite0",
    (2, 5, 10),
    _geometric(8),
    64,
    3,
    # 1,536 images per class: three disjoint blocks of 512 = 2·S candidates at S = 256 (one per
    # seed), and >= 1,024 held-out population examples in every cell; 15,360 images in all.
    dataset_options={"max_per_class": 1536},
)
_FULL_DIGITS = _empirical("digits-pixels", "digits", "pixels", (2, 5, 10), _geometric(5), 64, 3)
_FULL_GAUSSIAN = _empirical(
    "gaussian",
    "gaussian",
    "identity",
    (2,),
    _geometric(9),
    64,
    2,
    dataset_options={"dim": 64, "sigma": 1.0, "n_per_class": 2000, "seed": 0},
)
# The bridge's known answer: the theory's learner on the theory's data, where every example's
# gap falls exactly as S^-1/2 (the same draws and candidates as the head's gaussian run).
GAUSSIAN_CLASS_MEAN = EmpiricalSpec(
    "gaussian-class-mean",
    _FULL_GAUSSIAN.options | {"learner": "class-mean", "attacks": ("lira",)},
    "mechanism",
)

# FiLM against the linear head on the same cells (Fashion-MNIST, C = 2, 64 px): the same candidates,
# keep matrices and RMIA population (a smaller one: FiLM pays a backbone pass per query).
_AT_64PX = {"dataset_options": {"resolution": 64, "max_per_class": 512}, "rmia_population": 200}
# S into the thousands (issue: reach the asymptote). C = 2, all 6,000 training images of each
# class, six seeds, 256 shadows; the shadow-count table reads M = 16 and 64 from the first M + 2
# models of the same cells (the models are exchangeable pairs). Seed blocks hold 1,000 images
# per class: pools are disjoint up to S = 500 and overlap with the next seed's above (each cell
# records the shared fraction, pool_overlap).
LARGE_S = _empirical(
    "fashion-mnist-lite0-c2-large",
    "fashion-mnist",
    "efficientnet-lite0",
    (2,),
    _geometric(11),
    256,
    6,
    role="large",
    dataset_options={"max_per_class": 6000},
    # 66 of the 258 models of a cell are measured as targets (each against all 256 shadows
    # outside its pair): the bootstrap's cost scales with targets × examples.
    targets=66,
)
# Held-out backbones for the regression: Lite1 and Lite2 at their native resolutions (240 and
# 260 px), 512 images per class (seed blocks of 170: disjoint pools up to S = 64).
HELD_OUT_BACKBONES = tuple(
    _empirical(
        f"fashion-mnist-lite{k}",
        "fashion-mnist",
        f"efficientnet-lite{k}",
        (2, 5, 10),
        _geometric(6),
        64,
        3,
        role="backbone",
        dataset_options={"max_per_class": 512},
    )
    for k in (1, 2)
)
SHADOW_COUNTS = (16, 64, 256)


# Transfer tasks for the regression held out by task (issue 21): digits through EfficientNet-Lite0
# and Lite1 (its 8×8 images resized to the backbone's resolution like Fashion-MNIST's 28×28 ones)
# and Fashion-MNIST's class groups (tops, shoes, other; the rule is fixed in
# mialaw.empirical.image_loaders), each with C = 2, a middle C and the whole group. LiRA only
# (offline and online): the regression's attacks. Digits has about 178 images per class: 3 seed
# blocks of 59, so pools overlap from S = 32 (S = 64 is the limit). The groups use 768 images per
# class: disjoint seed blocks of 256 = 2·S at S = 128 (the grid stops there to fit the computing
# time; Fashion-MNIST itself goes to 256).
def _transfer_tasks(lite: int, groups: bool = True) -> tuple[EmpiricalSpec, ...]:
    backbone = f"efficientnet-lite{lite}"
    digits = _empirical(
        f"digits-lite{lite}",
        "digits",
        backbone,
        (2, 5, 10),
        _geometric(6),
        64,
        3,
        role="transfer",
        attacks=("lira",),
    )
    fashion_groups = tuple(
        _empirical(
            f"fashion-mnist-{group}-lite{lite}",
            f"fashion-mnist-{group}",
            backbone,
            classes,
            _geometric(7),
            64,
            3,
            role="transfer",
            attacks=("lira",),
            dataset_options={"max_per_class": 768},
        )
        for group, classes in (("shoes", (2, 3)), ("other", (2, 3)), ("tops", (2, 3, 4)))
    )
    return (digits,) + (fashion_groups if groups else ())


# Measured on the shared 2 cores (cells and analysis): Lite0 digits 5.8 min, shoes 2.3, other
# 2.8, tops 6.5; digits through Lite1 48.6 min under a load of 5-7 (31 min CPU). The groups
# through Lite1 did not fit the time (about an hour at that load): they are left out.
TRANSFER_TASKS = _transfer_tasks(0) + _transfer_tasks(1, groups=False)

# The mechanism experiments (science.md section 5): what makes the real slopes steeper than -1/2.
# Each repeats the large-S run (C = 2, S to 2,048, 6 seeds, the same candidates and keep matrices
# at every (S, seed)) with one thing changed. Offline LiRA does not depend on the shadow count, so
# 64 shadows suffice where only the head changes; the class-mean learner (the theory's own, on
# the real features) keeps 256 so that online LiRA compares with the large-S run.
MECHANISM_DIMS = (16, 64, 256)
MECHANISM_LAMBDAS = (0.001, 0.1)
# LiRA only: RMIA is not part of the question, and its analysis is the costliest.
_MECHANISM_BASE = LARGE_S.options | {"shadows": 64, "targets": None, "attacks": ("lira",)}
MECHANISM = (
    tuple(
        EmpiricalSpec(
            f"fashion-mnist-lite0-c2-pca{d}",
            _MECHANISM_BASE | {"dataset_options": {"max_per_class": 6000, "project": d}},
            "mechanism",
        )
        for d in MECHANISM_DIMS
    )
    + tuple(
        EmpiricalSpec(
            f"fashion-mnist-lite0-c2-large-lambda{lam:g}",
            _MECHANISM_BASE | {"weight_decay": lam},
            "mechanism",
        )
        for lam in MECHANISM_LAMBDAS
    )
    + (
        EmpiricalSpec(
            "fashion-mnist-lite0-c2-class-mean",
            LARGE_S.options | {"learner": "class-mean", "attacks": ("lira",)},
            "mechanism",
        ),
    )
)

FILM_COMPARISON = tuple(
    _empirical(
        f"fashion-mnist-lite0-{learner}-64px",
        "fashion-mnist",
        "efficientnet-lite0",
        (2,),
        _geometric(6),
        16,
        2,
        role="film",
        learner="film" if learner == "film" else "head",
        **_AT_64PX,
    )
    for learner in ("film", "head")
)

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        theory=TheorySpec(dim=16, shots_per_decade=2, pooled_per_decade=1),
        simulations=(
            _oracle("oracle", (16, 64, 256, 1024, 4096), 20_000, dim=16),
            _lira("lira-16", (4, 16, 64, 256), 400, 16, dim=16),
        ),
        empirical=(
            _empirical("digits-pixels", "digits", "pixels", (2,), (1, 2, 4, 8), 8, 1),
            _empirical(
                "gaussian",
                "gaussian",
                "identity",
                (2,),
                (2, 8, 32),
                8,
                1,
                dataset_options={"dim": 16, "sigma": 1.0, "n_per_class": 200, "seed": 0},
            ),
        ),
        estimate_s=40,
    ),
    "quick": Profile(
        name="quick",
        theory=TheorySpec(),
        simulations=(
            # 1,000,000 games per S-point: fitted slopes keep intervals of about ±0.04 at FPR 0.1.
            _oracle("oracle", tuple(4**k for k in range(1, 11)), 1_000_000, fit_min_shots=1000),
            _lira("lira-64", tuple(4**k for k in range(1, 8)), 8_000, 64, fit_min_shots=64),
        ),
        empirical=(
            _empirical(
                "fashion-mnist-lite0",
                "fashion-mnist",
                "efficientnet-lite0",
                (2,),
                _geometric(6),
                16,
                1,
                dataset_options={"max_per_class": 256},
            ),
            _empirical("digits-pixels", "digits", "pixels", (2, 5, 10), _geometric(4), 16, 2),
            _empirical(
                "gaussian",
                "gaussian",
                "identity",
                (2,),
                (4, 16, 64, 256),
                16,
                1,
                dataset_options={"dim": 64, "sigma": 1.0, "n_per_class": 1000, "seed": 0},
            ),
        ),
        estimate_s=240,
    ),
    "full": Profile(
        name="full",
        theory=TheorySpec(shots_per_decade=8),
        simulations=(
            _oracle("oracle", tuple(2**k for k in range(1, 21)), 4_000_000, fit_min_shots=16384),
            _lira("lira-64", tuple(4**k for k in range(1, 9)), 50_000, 64, fit_min_shots=1024),
            _lira(
                "lira-64-online",
                tuple(4**k for k in range(1, 9)),
                50_000,
                64,
                attack="lira-online",
                seed=3,
                fit_min_shots=64,
            ),
        ),
        empirical=(
            _FULL_FASHION,
            _FULL_DIGITS,
            _FULL_GAUSSIAN,
        )
        + _lambda_runs(_FULL_FASHION)
        + _lambda_runs(_FULL_DIGITS)
        + FILM_COMPARISON
        + (LARGE_S,)
        + HELD_OUT_BACKBONES
        + MECHANISM
        + (GAUSSIAN_CLASS_MEAN,)
        + TRANSFER_TASKS,
        shadow_study=(LARGE_S.label, SHADOW_COUNTS),
        backbone_study=(
            "efficientnet-lite0",
            (_FULL_FASHION.label,) + tuple(e.label for e in HELD_OUT_BACKBONES),
        ),
        estimate_s=140 * 60,
        figure_formats=("png", "svg"),
    ),
}
