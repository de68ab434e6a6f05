"""The learner of imported runs: their cells come from another tool's score folders
(:mod:`mialaw.empirical.interchange`), not from training, so they cannot be recomputed."""

from __future__ import annotations

from mialaw.empirical.learner_base import Learner

__all__ = ["LEARNER"]


def _cannot_recompute(*args, **kwargs):
    raise ValueError(
        "an imported run holds another tool's scores; it cannot be recomputed (import again)"
    )


LEARNER = Learner(
    name="imported",
    version="1",
    prepare=_cannot_recompute,
    run_cell=_cannot_recompute,
    description="cells imported from score folders (import_runs)",
    trains=False,
    indexes_data=False,
)
