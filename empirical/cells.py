"""Cells: the unit of work of an empirical sweep, its identity, and how a run finds its cells.

A cell is one (C, S, seed) of a :class:`~mialaw.empirical.config.RunConfig`. Its identity
(:meth:`CellSpec.identity`) holds everything its arrays depend on: the cell-defining settings,
the key of the prepared features or images, (C, S, seed) and the code version of each component
(learner, sampling, statistics). The identity's hash is the cell's address in the run's
:class:`~mialaw.empirical.store.CellStore`, so a changed setting or component is never served a
stale cell: it addresses a cell that does not exist yet.

:func:`compute_cell` is a pure function of its task (same task, same arrays, on any machine and
under any executor: the thread count is part of the settings) and is what an executor runs. A
run folder holds ``settings.json`` (the configuration, the features' key and the cell names) and
the store under ``cells/``; :func:`read_cell` finds a cell of a run from its manifest.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mialaw.empirical import sampling, statistics
from mialaw.empirical.config import FORMAT, RunConfig, cell_name
from mialaw.empirical.learners import get_learner
from mialaw.empirical.store import CellStore

__all__ = [
    "CELL_FORMAT",
    "CellSpec",
    "CellTask",
    "compute_cell",
    "damaged_message",
    "read_cell",
    "read_settings",
    "store_of",
    "write_settings",
]

CELL_FORMAT = "mialaw-cell/1"
REQUIRED_ARRAYS = ("keep", "stats", "labels")


def code_versions(learner_name: str) -> dict:
    """The code version of every component a cell of this learner depends on."""
    learner = get_learner(learner_name)
    return {
        "learner": f"{learner.name}/{learner.version}",
        "sampling": sampling.CODE_VERSION,
        "statistics": statistics.CODE_VERSION,
    }


@dataclass(frozen=True)
class CellSpec:
    """One cell of a sweep: what is computed, independent of where and by whom."""

    config: RunConfig
    features_key: str
    classes: int
    shots: int
    seed: int

    @property
    def name(self) -> str:
        return cell_name(self.classes, self.shots, self.seed)

    def identity(self) -> dict:
        """Everything the cell's arrays depend on (JSON; its hash is the cell's address)."""
        identity = {
            "format": CELL_FORMAT,
            "settings": self.config.cell_settings(),
            "features": self.features_key,
            "classes": int(self.classes),
            "shots": int(self.shots),
            "seed": int(self.seed),
            "code": code_versions(self.config.learner),
        }
        return json.loads(json.dumps(identity))  # tuples as lists: the stored form


@dataclass(frozen=True)
class CellTask:
    """What an executor runs: a cell, where to store it, and (optionally) the prepared input.

    ``prepared`` None: the worker prepares the input itself (from the feature cache), once per
    process. Given: it is used as is (it travels with the task when the executor pickles it).
    """

    spec: CellSpec
    store_root: str
    prepared: object = None


_PREPARED: dict[str, object] = {}  # per process: the last prepared inputs, by configuration


def _prepared_for(config: RunConfig):
    key = json.dumps(config.to_dict(), sort_keys=True)
    if key not in _PREPARED:
        _PREPARED.clear()  # one sweep's inputs at a time: they can be large
        _PREPARED[key] = get_learner(config.learner).prepare(config, None)
    return _PREPARED[key]


def compute_cell(task: CellTask) -> str:
    """Compute a cell into the store unless a valid entry is there; returns its address."""
    spec = task.spec
    store = CellStore(task.store_root)
    identity = spec.identity()
    if store.get(identity) is None:
        prepared = task.prepared if task.prepared is not None else _prepared_for(spec.config)
        if prepared.key != spec.features_key:
            raise ValueError(
                f"the prepared input {prepared.key} is not the one the cell {spec.name} was "
                f"specified with ({spec.features_key}); the feature cache changed under the run"
            )
        learner = get_learner(spec.config.learner)
        arrays = learner.run_cell(prepared, spec.config, spec.classes, spec.shots, spec.seed)
        missing = [k for k in REQUIRED_ARRAYS if k not in arrays]
        if missing:
            raise ValueError(f"learner {learner.name!r} returned a cell without {missing}")
        # The cell's coordinates come from its spec, whatever the learner recorded.
        arrays = dict(arrays) | {
            "classes": np.int64(spec.classes),
            "shots": np.int64(spec.shots),
            "seed": np.int64(spec.seed),
        }
        store.put(identity, arrays)
    return store.address(identity)


# --------------------------------------------------------------------------- run folders
def store_of(run_dir) -> CellStore:
    return CellStore(Path(run_dir) / "cells")


def write_settings(run_dir, config: RunConfig, features_key: str, extra=None) -> dict:
    """Write the run's manifest ``settings.json`` atomically (the latest configuration wins:
    cells of other configurations stay in the store under their own addresses)."""
    run_dir = Path(run_dir)
    (run_dir / "cells").mkdir(parents=True, exist_ok=True)
    specs = [CellSpec(config, features_key, *cell) for cell in config.cells()]
    payload = {
        "format": FORMAT,
        "config": config.to_dict(),
        "cell_settings": config.cell_settings(),
        "feature_key": features_key,
        "code": code_versions(config.learner),
        "cells": {spec.name: CellStore.address(spec.identity()) for spec in specs},
        "python": sys.version.split()[0],
    } | dict(extra or {})
    path = run_dir / "settings.json"
    tmp = path.with_name(f".settings.json.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
        os.replace(tmp, path)
    except BaseException:  # a full disk, an interrupt: no temporary left behind
        tmp.unlink(missing_ok=True)
        raise
    return payload


def read_settings(run_dir) -> dict:
    """A run folder's manifest; ValueError when the folder is not a run of this version."""
    path = Path(run_dir) / "settings.json"
    if not path.exists():
        raise ValueError(f"{run_dir} is not an empirical run directory (no settings.json)")
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from err
    if payload.get("format") != FORMAT:
        raise ValueError(
            f"{path} has format {payload.get('format')!r}; this version reads {FORMAT!r} "
            "(run the sweep again into a new folder)"
        )
    return payload


def read_cell(run_dir, classes: int, shots: int, seed: int, settings: dict | None = None):
    """The arrays of cell (C, S, seed) of a run, as the current code addresses it.

    A cell made by other code (a component's version changed since) is not addressed and so
    reads as missing: ValueError saying to run the sweep again.
    """
    settings = read_settings(run_dir) if settings is None else settings
    config = RunConfig.from_dict(settings["config"])
    spec = CellSpec(config, settings["feature_key"], classes, shots, seed)
    arrays = store_of(run_dir).get(spec.identity())
    if arrays is None:
        raise ValueError(
            f"{run_dir} has no current cell {spec.name} (absent, damaged, or made by other "
            "code); run the sweep to compute it"
        )
    return arrays


def damaged_message(dirs) -> str | None:
    """One line naming every damaged cell of the run folders ``dirs`` (None if none is)."""

    damaged = []
    for folder in dirs:
        settings = read_settings(folder)
        config = RunConfig.from_dict(settings["config"])
        specs = [CellSpec(config, settings["feature_key"], *cell) for cell in config.cells()]
        found = store_of(folder).damaged([spec.identity() for spec in specs])
        damaged += [f"{path} ({reason.split(' (')[0]})" for path, reason in found]
    if not damaged:
        return None
    return (
        f"{len(damaged)} damaged cell(s), left in place: {'; '.join(damaged)}; rerun "
        "`mialaw empirical run` with each run's settings and --out to recompute them"
    )
