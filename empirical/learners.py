"""The registry of learners: the ways of fine-tuning a cell's M + 2 models.

A learner is one small object (:class:`Learner`): how a sweep's inputs are prepared once
(features for a head, images and a backbone for FiLM), how one (C, S, seed) cell is trained and
queried (its arrays: ``keep``, ``stats``, ``population_stats``, ``labels``, ...), which settings it
accepts, and a code ``version`` that enters the identity of every cell it makes (bump it when a
change alters the numbers: the store then recomputes exactly the cells of this learner).

Built-in learners are named by import path and loaded on first use, so that this module imports
nothing heavy and no module of the package imports another in a circle. A new learner is one file
that calls :func:`register_learner` (a test registers a toy learner this way).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Learner", "get_learner", "learner_names", "register_learner"]


def _no_settings(config) -> dict:
    if getattr(config, "film", None):
        raise ValueError(f"film settings need learner='film'; the learner is {config.learner!r}")
    return {}


@dataclass(frozen=True)
class Learner:
    """One way of fine-tuning the models of a cell.

    prepare(config, given) -> prepared : load what every cell of the sweep needs, once (``given``
        replaces the dataset, e.g. features or images handed in by a caller); the result has a
        ``key`` naming its content (part of every cell's identity).
    run_cell(prepared, config, classes, shots, seed) -> dict of arrays : one cell, deterministic.
    validate(config) -> dict : checks the learner's own settings and returns fields to replace
        with their completed form ({} when there is nothing to complete).
    version : the learner's code version (a string; part of every cell's identity).
    """

    name: str
    version: str
    prepare: Callable
    run_cell: Callable
    validate: Callable = _no_settings
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.replace("-", "_").isidentifier():
            raise ValueError(
                f"a learner's name must be an identifier (hyphens allowed); got {self.name!r}"
            )
        if not isinstance(self.version, str) or not self.version:
            raise ValueError(f"learner {self.name!r} needs a non-empty version string")
        for part in ("prepare", "run_cell", "validate"):
            if not callable(getattr(self, part)):
                raise ValueError(f"learner {self.name!r}: {part} must be callable")


# name -> "module:attribute" of a Learner, imported on first use.
_BUILTIN = {
    "head": "mialaw.empirical.head_learner:LEARNER",
    "film": "mialaw.empirical.film_run:LEARNER",
    "imported": "mialaw.empirical.interchange:IMPORTED",
    "class-mean": "mialaw.empirical.class_mean_learner:LEARNER",
}
_REGISTERED: dict[str, Learner] = {}


def register_learner(learner: Learner, *, replace: bool = False) -> Learner:
    """Make ``learner`` available as ``RunConfig(learner=learner.name)``; returns it."""
    if not isinstance(learner, Learner):
        raise ValueError(f"register_learner takes a Learner; got {type(learner).__name__}")
    if not replace and (learner.name in _REGISTERED or learner.name in _BUILTIN):
        raise ValueError(f"a learner named {learner.name!r} exists; pass replace=True")
    _REGISTERED[learner.name] = learner
    return learner


def learner_names() -> tuple[str, ...]:
    return tuple(sorted(set(_BUILTIN) | set(_REGISTERED)))


def get_learner(name: str) -> Learner:
    """The learner called ``name``; ValueError listing the known ones otherwise."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in _BUILTIN:
        raise ValueError(f"learner must be one of {list(learner_names())}; got {name!r}")
    module, attribute = _BUILTIN[name].split(":")
    learner = getattr(importlib.import_module(module), attribute)
    _REGISTERED[name] = learner
    return learner
