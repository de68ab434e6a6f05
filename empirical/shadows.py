"""How much of the deviation from S^-1/2 is the finite number of shadow models?

Cells of a run with many shadows are read as if they had fewer: the first M + 2 models of a cell
(whole complementary pairs; the models are exchangeable) are a cell of M shadows
(``analysis.subset_models``). For every M, LiRA variance ("per-example", "global") and attack,
the TPRs are measured with the project's rules and the power law is fitted exactly as for the
main runs, so M is the only thing that changes between rows.
"""

from __future__ import annotations

import dataclasses

from mialaw.empirical.analysis import measured_points
from mialaw.empirical.attacks import family_members
from mialaw.empirical.cell_summary import Run, subset_models, summarize_cell
from mialaw.empirical.cells import read_cell, read_settings
from mialaw.empirical.config import RunConfig
from mialaw.empirical.run_fits import power_laws

__all__ = ["shadow_count_study"]

VARIANCES = ("per-example", "global")
LIRA = family_members("lira")  # the study of LiRA's shadow count


def _summaries_by_s(run_dir, config, settings, shots, shadows, variances, fpr, targets):
    """{(M, variance): [CellSummary]} for every cell at S = ``shots`` (all seeds)."""

    out: dict = {}
    for c, s, k in config.cells():
        if s != shots:
            continue
        arrays = read_cell(run_dir, c, s, k, settings)
        for m in shadows:
            sub = subset_models(arrays, m + 2)
            for variance in variances:
                cfg = dataclasses.replace(
                    config, shadows=m, variance=variance, targets=min(targets, m + 2)
                )
                out.setdefault((m, variance), []).append(summarize_cell(sub, fpr, cfg))
    return out


def shadow_count_study(
    run_dir,
    *,
    shadows=(16, 64, 256),
    variances=VARIANCES,
    fpr=(0.1, 0.01),
    targets: int = 66,
    resamples: int = 300,
    level: float = 0.95,
) -> dict:
    """Points and power-law fits of LiRA at every M in ``shadows`` (<= the run's M).

    Returns {"points": [...], "power_law": [...]}, each row tagged with ``shadows`` and
    ``variance``; ``targets`` models per cell are measured (fewer when M + 2 is smaller).
    """

    settings = read_settings(run_dir)
    config = RunConfig.from_dict(settings["config"])
    too_many = [m for m in shadows if m > config.shadows or m % 2 or m < 4]
    if too_many:
        raise ValueError(
            f"shadows must be even, >= 4 and at most the run's {config.shadows}; got {too_many}"
        )
    alphas = tuple(sorted(fpr, reverse=True))
    points = []
    for s in config.shots:
        groups = _summaries_by_s(run_dir, config, settings, s, shadows, variances, alphas, targets)
        for (m, variance), cells in groups.items():
            run = Run(path=str(run_dir), settings=settings, cells=tuple(cells))
            for row in measured_points(run, ("lira",), alphas, level, resamples=resamples):
                points.append(row | {"shadows": m, "variance": variance})
    fits = []
    for m in shadows:
        for variance in variances:
            rows = [p for p in points if p["shadows"] == m and p["variance"] == variance]
            for fit in power_laws(rows, level):
                fits.append(fit | {"shadows": m, "variance": variance})
    return {"points": points, "power_law": fits}
