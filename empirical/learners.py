"""The registry of learners: the ways of fine-tuning a cell's M + 2 models.

A learner is one small object (:class:`Learner`): how a sweep's inputs are prepared once
(features for a head, images and a backbone for FiLM), how one (C, S, seed) cell is trained and
queried (its arrays: ``keep``, ``stats``, ``population_stats``, ``labels``, ...), which settings it
accepts, and a code ``version`` that enters the identity of every cell it makes (bump it when a
change alters the numbers: the store then recomputes exactly the cells of this learner).

A learner's own module imports only :mod:`mialaw.empirical.learner_base` (never this registry,
the configuration or the sweep), so this module can import the built-in ones without a loop. A new
learner is one file that calls :func:`register_learner` (a test registers a toy learner with
settings this way).
"""

from __future__ import annotations

from mialaw.empirical import class_mean_learner, film_run, head_learner, imported_learner
from mialaw.empirical.learner_base import Learner

__all__ = ["Learner", "get_learner", "learner_names", "register_learner"]

# The built-in learners, registered at import (each module imports only ``learner_base``).
_BUILTIN = {
    m.LEARNER.name: m.LEARNER
    for m in (head_learner, film_run, imported_learner, class_mean_learner)
}
_REGISTERED: dict[str, Learner] = dict(_BUILTIN)


def register_learner(learner: Learner, *, replace: bool = False) -> Learner:
    """Make ``learner`` available as ``RunConfig(learner=learner.name)``; returns it."""
    if not isinstance(learner, Learner):
        raise ValueError(f"register_learner takes a Learner; got {type(learner).__name__}")
    if not replace and learner.name in _REGISTERED:
        raise ValueError(f"a learner named {learner.name!r} exists; pass replace=True")
    _REGISTERED[learner.name] = learner
    return learner


def learner_names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTERED))


def get_learner(name: str) -> Learner:
    """The learner called ``name``; ValueError listing the known ones otherwise."""
    if name not in _REGISTERED:
        raise ValueError(f"learner must be one of {list(learner_names())}; got {name!r}")
    return _REGISTERED[name]
