"""The registry of attacks on a cell: each turns the stored statistics into membership scores.

An attack is a name, a code version (bump it with the analysis version of the paper's stages
when the scores change) and a function
``score(keep, stats, population_stats, config, rotation) -> (models × examples)`` whose larger
values mean "member". The definitions are in ``mialaw/theory/science.md`` (section 3) and
``mialaw.theory.lira``. Scores are derived in the analysis, never stored with the cells, so a
change to an attack never leaves stale scores behind. A new attack is one :class:`Attack`
passed to :func:`register_attack`; an attack with parameters gives a ``settings`` function that
checks and completes them (``RunConfig.attack_settings[name]``), and receives the completed dict as
``score(..., settings=...)``. Reports name an attack by its ``label`` and group it by ``family``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from mialaw.theory.lira import complementary_pairs, lira_scores, rmia_scores

__all__ = [
    "ATTACK_FAMILIES",
    "Attack",
    "attack_label",
    "attack_names",
    "example_tpr_attack",
    "family_members",
    "get_attack",
    "law_attacks",
    "register_attack",
    "scores_of",
]


@dataclass(frozen=True)
class Attack:
    """One membership score.

    score(keep, stats, population_stats, config, rotation[, settings=dict]) -> (models ×
        examples), larger means "member"; ``settings`` is passed only to an attack that has a
        ``settings`` function.
    settings(options, config) -> dict : checks and completes the attack's own parameters (from
        ``RunConfig.attack_settings[name]``); ValueError naming what is wrong. None: the attack
        takes none, and any given are refused.
    label : how reports name it; family : which ``RunConfig.attacks`` entry reports it.
    in_law_tables : whether the paper's per-attack power-law tables show it (every attack is
        measured, fitted and enters the regression and the audit either way).
    example_tpr : whether the analysis records this attack's empirical per-example TPR (the first
        such attack's; ``mialaw.empirical.cell_summary``).
    """

    name: str
    version: str
    score: Callable
    needs_population: bool = False
    description: str = ""
    label: str = ""
    family: str = ""
    settings: Callable | None = None
    in_law_tables: bool = True
    example_tpr: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.replace("-", "_").isidentifier():
            raise ValueError(f"an attack's name must be an identifier; got {self.name!r}")
        if not isinstance(self.version, str) or not self.version:
            raise ValueError(f"attack {self.name!r} needs a non-empty version string")
        if not callable(self.score):
            raise ValueError(f"attack {self.name!r}: score must be callable")
        if self.settings is not None and not callable(self.settings):
            raise ValueError(f"attack {self.name!r}: settings must be callable or None")
        object.__setattr__(self, "label", self.label or self.name)
        object.__setattr__(self, "family", self.family or self.name)

    def complete_settings(self, options, config) -> dict:
        """``options`` (this attack's entry of ``RunConfig.attack_settings``) checked and
        completed."""
        if options is not None and not isinstance(options, dict):
            raise ValueError(
                f"attack_settings[{self.name!r}] must be a dict; got {type(options).__name__}"
            )
        if self.settings is None:
            if options:
                raise ValueError(f"attack {self.name!r} takes no settings; got {sorted(options)}")
            return {}
        return dict(self.settings(dict(options or {}), config))

    def scores(self, keep, stats, population_stats, config, rotation):
        if self.settings is None:
            return self.score(keep, stats, population_stats, config, rotation)
        settings = self.complete_settings(config.attack_settings.get(self.name), config)
        return self.score(keep, stats, population_stats, config, rotation, settings=settings)


def _lira(online: bool):
    def score(keep, stats, population_stats, config, rotation):
        return lira_scores(
            keep,
            stats,
            online=online,
            variance=config.variance,
            centre=config.centre,
            rotation=rotation,
        )

    return score


def _rmia(keep, stats, population_stats, config, rotation):
    return rmia_scores(
        keep, stats, population_stats, a=config.rmia_a, gamma=config.rmia_gamma, rotation=rotation
    )


_ATTACKS: dict[str, Attack] = {}
# A sweep's ``attacks`` setting names families; a family reports one or more scores.
ATTACK_FAMILIES: dict[str, tuple[str, ...]] = {}


def register_attack(attack: Attack, *, family: str | None = None, replace: bool = False):
    """Score every cell with ``attack``; a sweep reports it when its ``attacks`` setting names
    its family (``family`` here, else the attack's own, else its name)."""
    if not isinstance(attack, Attack):
        raise ValueError(f"register_attack takes an Attack; got {type(attack).__name__}")
    if attack.name in _ATTACKS and not replace:
        raise ValueError(f"an attack named {attack.name!r} exists; pass replace=True")
    if family is not None:
        attack = dataclasses.replace(attack, family=family)
    _ATTACKS[attack.name] = attack
    members = ATTACK_FAMILIES.setdefault(attack.family, ())
    if attack.name not in members:
        ATTACK_FAMILIES[attack.family] = members + (attack.name,)
    return attack


def get_attack(name: str) -> Attack:
    if name not in _ATTACKS:
        raise ValueError(f"attack must be one of {sorted(_ATTACKS)}; got {name!r}")
    return _ATTACKS[name]


def attack_names() -> tuple[str, ...]:
    """Every registered attack, in registration order."""
    return tuple(_ATTACKS)


def attack_label(name: str) -> str:
    """How reports name the attack ``name`` (its own name if it is not registered here)."""
    return _ATTACKS[name].label if name in _ATTACKS else name


def family_members(family: str) -> tuple[str, ...]:
    """The attacks a ``RunConfig.attacks`` entry reports."""
    if family not in ATTACK_FAMILIES:
        raise ValueError(f"attack family must be one of {sorted(ATTACK_FAMILIES)}; got {family!r}")
    return ATTACK_FAMILIES[family]


def example_tpr_attack() -> str | None:
    """The attack whose per-example empirical TPR the analysis records (None: none does)."""
    return next((a.name for a in _ATTACKS.values() if a.example_tpr), None)


def law_attacks() -> dict[str, str]:
    """{name: label} of the attacks the per-attack power-law tables show."""
    return {a.name: a.label for a in _ATTACKS.values() if a.in_law_tables}


register_attack(
    Attack(
        "lira_online",
        "1",
        _lira(True),
        description="LiRA, IN and OUT Gaussians",
        label="LiRA online",
        family="lira",
        example_tpr=True,
    )
)
register_attack(
    Attack(
        "lira_offline",
        "1",
        _lira(False),
        description="LiRA, OUT Gaussian only",
        label="LiRA offline",
        family="lira",
    )
)
# The paper's per-attack law tables set LiRA beside the published laws (which are LiRA's);
# RMIA's points enter the regression, the audit and the figures.
register_attack(
    Attack(
        "rmia",
        "1",
        _rmia,
        needs_population=True,
        description="RMIA on a held-out population",
        label="RMIA",
        family="rmia",
        in_law_tables=False,
    )
)


def scores_of(keep, stats, population_stats, config) -> dict:
    """Every registered attack's scores of every target model (models × examples each).

    Pair rotation when the models come in complementary pairs, else leave-one-out (e.g.
    imported runs); attacks that need a population are left out when there is none.
    """
    rotation = "pairs" if complementary_pairs(keep) else "loo"
    return {
        name: attack.scores(keep, stats, population_stats, config, rotation)
        for name, attack in _ATTACKS.items()
        if population_stats is not None or not attack.needs_population
    }
