"""`run_sweep`: every cell of a :class:`~mialaw.empirical.config.RunConfig`, through an executor.

The flow: validate everything that can be checked before writing (settings, device, the prepared
features or images); write the run's manifest; find which cells the store lacks (entries are
verified as they are read: a damaged one is reported and recomputed); compute those with
``executor.map(compute_cell, tasks)`` — serially in this process by default, or on local processes
or a Dask cluster (any ``concurrent.futures.Executor``; see ``mialaw.paper.executors``); then
analyse exactly the cells of this configuration and write ``summary.json`` and the plots.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mialaw.empirical.analysis import result_from_runs
from mialaw.empirical.backbone_images import resolve_device
from mialaw.empirical.cell_summary import load_run
from mialaw.empirical.cells import CellSpec, CellTask, compute_cell, store_of, write_settings
from mialaw.empirical.config import RunConfig
from mialaw.empirical.learners import get_learner
from mialaw.empirical.plots import plot_run

__all__ = ["run_sweep"]


def _check_out(config, out_dir) -> Path:
    if not isinstance(config, RunConfig):
        raise ValueError(f"config must be a RunConfig; got {type(config).__name__}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} exists and is not a directory")

    resolve_device(config.device)  # e.g. "cuda" without a GPU fails here, before any writing
    return out_dir


def _tasks(config, out_dir, prepared, carried) -> list[CellTask]:
    """Tasks of the cells the store lacks (valid entries are kept); ``carried`` travels with
    each task (the prepared input, or None for workers to load it themselves)."""
    store = store_of(out_dir)
    specs = [CellSpec(config, prepared.key, c, s, k) for c, s, k in config.cells()]
    todo = [spec for spec in specs if store.get(spec.identity()) is None]
    # An absolute store path: workers of a cluster may run in another working directory.
    return [CellTask(spec, str(store.root.absolute()), carried) for spec in todo]


def run_sweep(
    config: RunConfig,
    out_dir,
    *,
    features=None,
    progress: bool = True,
    plots: bool = True,
    executor=None,
):
    """Run (or resume) every cell of ``config`` into ``out_dir``; returns the ``SweepResult``.

    features : optional input handed to the learner instead of the named dataset (for the head:
        an object with ``features``, ``labels`` and optionally ``flipped``).
    executor : None (serial, in this process) or a ``concurrent.futures.Executor`` (e.g.
        ``ProcessPoolExecutor`` or a Dask client's ``get_executor()``); cells are bit-identical
        whichever runs them.
    """
    out_dir = compute_cells(
        config, out_dir, features=features, progress=progress, executor=executor
    )
    return _summarize(config, out_dir, plots)


def compute_cells(config: RunConfig, out_dir, *, features=None, progress=True, executor=None):
    """Compute (or resume) every cell of ``config`` into ``out_dir`` without analysing them
    (what ``run_sweep`` does before its analysis); returns the run folder."""
    from tqdm.auto import tqdm

    out_dir = _check_out(config, out_dir)
    prepared = get_learner(config.learner).prepare(config, features)
    write_settings(out_dir, config, prepared.key)
    # Serially the prepared input is used in place (nothing is pickled); an executor's workers
    # receive it only when the caller handed it in, and otherwise load it from the feature
    # cache once per process instead of receiving it with every task.
    carried = prepared if executor is None or features is not None else None
    tasks = _tasks(config, out_dir, prepared, carried)
    results = map(compute_cell, tasks) if executor is None else executor.map(compute_cell, tasks)
    bar = tqdm(
        results,
        total=len(tasks),
        desc="cells",
        unit="cell",
        file=sys.stderr,
        disable=not progress or not tasks,
    )
    for _ in bar:
        pass
    return out_dir


def _summarize(config: RunConfig, out_dir: Path, plots: bool):

    run = load_run(out_dir, fpr=config.fpr, cells=config.cells())
    result = result_from_runs([run], attacks=config.attacks, fpr=config.fpr)
    tmp = out_dir / f".summary.json.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(result.to_json(), indent=1))
        os.replace(tmp, out_dir / "summary.json")
    except BaseException:  # a full disk, an interrupt: no temporary left behind
        tmp.unlink(missing_ok=True)
        raise
    if plots:
        plot_run(result, out_dir)
    return result
