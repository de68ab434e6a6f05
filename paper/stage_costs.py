"""What each stage of `mialaw reproduce` will compute, and roughly how long it takes.

Each function returns (estimated seconds, (cells, unit)) for the plan `mialaw reproduce` prints
before it starts. The rates are wall times on the 2-core development machine with the Numba
kernels compiled and the features cached (a first run adds both); they are for the plan only and
decide nothing.
"""

from __future__ import annotations

# Seconds on 2 cores, from the quick profile's stages (warm caches).
DERIVE_S = 3.0
THEORY_S_PER_POINT = 0.02  # per (S, FPR) point of the exact grid, pooled root searches included
POINT_S = 0.1  # per simulated S-point: set-up, measurement, bootstrap
ORACLE_S_PER_GAME = 0.5e-6  # per simulated game (target) of one S-point
LIRA_S_PER_TRIAL = 0.8e-6  # per (model, target) statistic of one S-point, scored and measured
RUN_S = 2.0  # per empirical run: its features loaded and checked
CELL_S = 0.12  # per empirical cell: sampling, bookkeeping, scoring
HEAD_S_PER_EXAMPLE = 2.5e-5  # per (model, candidate, class) of a cell: training the heads
ANALYSIS_S = 1.0  # per run read by an analysis stage
# FiLM trains the backbone's FiLM layers: per image through the network once at 64 px (a training
# step counts 3: forward and backward), 2 cores. Measured: the full profile's FiLM stage (14
# cells, 18 models, 5 epochs) 17.6 min beside other work, the plan's 4 ms giving 10.4 min.
FILM_S_PER_FORWARD_64PX = 4e-3
# The class-mean learner averages features instead of training: a tenth of a head's cost
# (measured: 1.9 min for the full profile's 72 cells, which the head's rate put at 21 min).
CLASS_MEAN_SHARE = 0.1


def derive() -> tuple[float, tuple[int, str]]:
    return DERIVE_S, (1, "derivation")


def theory(spec) -> tuple[float, tuple[int, str]]:
    points = (spec.max_log10_shots * spec.shots_per_decade + 1) * len(spec.fpr)
    return points * THEORY_S_PER_POINT, (points, "(S, FPR) points")


def simulation(options: dict) -> tuple[float, tuple[int, str]]:
    points = len(options["shots"])
    targets = options["targets"]
    if options.get("attack", "oracle") == "oracle":
        per_point = targets * ORACLE_S_PER_GAME
    else:
        per_point = targets * (options.get("shadows", 64) + 2) * LIRA_S_PER_TRIAL
    return points * (POINT_S + per_point), (points, "S-points")


def simulations(options: list[dict]) -> tuple[float, tuple[int, str]]:
    estimates = [simulation(o) for o in options]
    points = sum(cells for _, (cells, _) in estimates)
    return sum(seconds for seconds, _ in estimates), (points, "S-points")


def empirical(options: dict) -> tuple[float, tuple[int, str]]:
    classes, shots, seeds = options["classes"], options["shots"], options.get("seeds", 1)
    models = options.get("shadows", 64) + 2
    cells = len(classes) * len(shots) * seeds
    if options.get("learner") == "film":
        return RUN_S + cells * CELL_S + _film_seconds(options, models), (
            cells,
            "cells (C, S, seed)",
        )
    work = seeds * sum(models * 2 * s * c * c for c in classes for s in shots)
    if options.get("learner") == "class-mean":
        work *= CLASS_MEAN_SHARE
    return RUN_S + cells * CELL_S + work * HEAD_S_PER_EXAMPLE, (cells, "cells (C, S, seed)")


def _film_seconds(options: dict, models: int) -> float:
    """Each model trains ``epochs`` passes over its S·C examples and then scores the cell's
    2·S·C candidates; the cost of a pass grows with the image's area."""
    settings = options.get("learner_settings") or {}
    epochs = settings.get("epochs", 5)
    side = (options.get("dataset_options") or {}).get("resolution", 224)
    per_image = (3 * epochs + 2) * FILM_S_PER_FORWARD_64PX * (side / 64) ** 2
    images = sum(s * c for c in options["classes"] for s in options["shots"])
    return options.get("seeds", 1) * models * images * per_image


def analysis(runs: int, per: float = ANALYSIS_S) -> tuple[float, tuple[int, str]]:
    return runs * per, (runs, "runs read")
