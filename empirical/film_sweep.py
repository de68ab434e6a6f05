"""A FiLM sweep in one call: :func:`mialaw.empirical.sweep.run_sweep` with the FiLM learner
(:mod:`mialaw.empirical.film_run`) and, for tests, images and a backbone handed in."""

from __future__ import annotations

import dataclasses

from mialaw.empirical.film_run import film_options, film_run, prepare_images
from mialaw.empirical.sweep import run_sweep

__all__ = ["run_film_sweep"]


def run_film_sweep(
    config,
    out_dir,
    *,
    images=None,
    backbone=None,
    threads: int | None = None,
    progress: bool = True,
    plots: bool = True,
    executor=None,
):
    """Run (or resume) every cell of a FiLM sweep into ``out_dir``; the ``SweepResult``.

    ``images`` (images, labels) and ``backbone`` replace the dataset and the named backbone
    (tests); ``threads`` replaces the run's ``threads``.
    """
    fr = film_run(config)
    run = dataclasses.replace(fr.run, learner_settings=film_options(fr.settings))
    if threads is not None:
        run = dataclasses.replace(run, threads=threads)
    given = None
    if images is not None or backbone is not None:
        given = prepare_images(fr, images=images, backbone=backbone)
    return run_sweep(
        run, out_dir, features=given, progress=progress, plots=plots, executor=executor
    )
