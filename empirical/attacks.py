"""The registry of attacks on a cell: each turns the stored statistics into membership scores.

An attack is a name, a code version (recorded with every analysis that used it) and a function
``score(keep, stats, population_stats, config, rotation) -> (models × examples)`` whose larger
values mean "member". The definitions are in ``mialaw/theory/science.md`` (section 3) and
``mialaw.theory.lira``. Scores are derived in the analysis, never stored with the cells, so a
change to an attack never leaves stale scores behind. A new attack is one :class:`Attack`
passed to :func:`register_attack`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ATTACK_FAMILIES", "Attack", "attack_versions", "get_attack", "register_attack"]


@dataclass(frozen=True)
class Attack:
    name: str
    version: str
    score: Callable
    needs_population: bool = False
    description: str = ""


def _lira(online: bool):
    def score(keep, stats, population_stats, config, rotation):
        from mialaw.theory.lira import lira_scores

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
    from mialaw.theory.lira import rmia_scores

    return rmia_scores(
        keep, stats, population_stats, a=config.rmia_a, gamma=config.rmia_gamma, rotation=rotation
    )


_ATTACKS: dict[str, Attack] = {}
# A sweep's ``attacks`` setting names families; a family reports one or more scores.
ATTACK_FAMILIES = {"lira": ("lira_online", "lira_offline"), "rmia": ("rmia",)}


def register_attack(attack: Attack, *, replace: bool = False) -> Attack:
    if not isinstance(attack, Attack):
        raise ValueError(f"register_attack takes an Attack; got {type(attack).__name__}")
    if attack.name in _ATTACKS and not replace:
        raise ValueError(f"an attack named {attack.name!r} exists; pass replace=True")
    _ATTACKS[attack.name] = attack
    return attack


def get_attack(name: str) -> Attack:
    if name not in _ATTACKS:
        raise ValueError(f"attack must be one of {sorted(_ATTACKS)}; got {name!r}")
    return _ATTACKS[name]


def attack_versions() -> dict:
    """name -> version of every registered attack (part of an analysis's identity)."""
    return {name: a.version for name, a in sorted(_ATTACKS.items())}


register_attack(Attack("lira_online", "1", _lira(True), description="LiRA, IN and OUT Gaussians"))
register_attack(Attack("lira_offline", "1", _lira(False), description="LiRA, OUT Gaussian only"))
register_attack(
    Attack("rmia", "1", _rmia, needs_population=True, description="RMIA on a held-out population")
)


def scores_of(keep, stats, population_stats, config) -> dict:
    """Every registered attack's scores of every target model (models × examples each).

    Pair rotation when the models come in complementary pairs, else leave-one-out (e.g.
    imported runs); attacks that need a population are left out when there is none.
    """
    from mialaw.theory.lira import complementary_pairs

    rotation = "pairs" if complementary_pairs(keep) else "loo"
    return {
        name: attack.score(keep, stats, population_stats, config, rotation)
        for name, attack in _ATTACKS.items()
        if population_stats is not None or not attack.needs_population
    }
