"""What a learner is: one small frozen object that the registry (:mod:`mialaw.empirical.learners`)
holds by name. Kept apart from the registry so that a learner's own module imports only this
(the registry imports every built-in learner; a learner importing the registry would be a loop).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Learner"]


def _no_validation(config) -> dict:
    return {}


@dataclass(frozen=True)
class Learner:
    """One way of fine-tuning the models of a cell.

    prepare(config, given) -> prepared : load what every cell of the sweep needs, once (``given``
        replaces the dataset, e.g. features or images handed in by a caller); the result has a
        ``key`` naming its content (part of every cell's identity).
    run_cell(prepared, config, classes, shots, seed) -> dict of arrays : one cell, deterministic.
    settings(options, config) -> dict : the learner's own settings (``RunConfig.learner_settings``)
        checked and completed (ValueError naming what is wrong); the completed dict is stored
        with the run and enters the identity of this learner's cells only. None: the learner
        takes no settings, and any given are refused.
    validate(config) -> dict : further checks of the run's common settings for this learner;
        returns common fields to replace with their completed form ({} when none).
    version : the learner's code version (a string; part of every cell's identity).
    label : how reports name it (default: its name).
    trains : whether it trains models (False: its cells are read from elsewhere, e.g. imported
        score folders; ``mialaw empirical run`` does not offer it).
    indexes_data : whether a cell's ``indices`` identify the same examples across cells (False:
        the bootstrap does not join seeds by them).
    """

    name: str
    version: str
    prepare: Callable
    run_cell: Callable
    settings: Callable | None = None
    validate: Callable = _no_validation
    description: str = ""
    label: str = ""
    trains: bool = True
    indexes_data: bool = True

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
        if self.settings is not None and not callable(self.settings):
            raise ValueError(f"learner {self.name!r}: settings must be callable or None")
        if not self.label:
            object.__setattr__(self, "label", self.name)

    def complete_settings(self, options, config) -> dict:
        """``options`` checked and completed by the learner (a new dict)."""
        if options is not None and not isinstance(options, dict):
            raise ValueError(
                f"learner_settings must be a dict of {self.name!r} settings; got "
                f"{type(options).__name__}"
            )
        if self.settings is None:
            if options:
                raise ValueError(
                    f"learner {self.name!r} takes no settings; got {sorted(options)} "
                    "(learner_settings belong to the learner that defines them)"
                )
            return {}
        return dict(self.settings(dict(options or {}), config))
