"""The registry of attacks on a cell: each turns the stored statistics into membership scores.

An attack is a name, a code version (bump it with the analysis version of the paper's stages
when the scores change) and a function
``score(keep, stats, population_stats, config, rotation) -> (models × examples)`` whose larger
values mean "member". The definitions are in ``mialaw/theory/science.md`` (section 3) and
``mialaw.theory.lira``. Scores are derived in the analysis, never stored with the cells, so a
change to an attack never leaves stale scores behind. A new attack is one :class:`Attack`
passed to :func:`register_attack`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ATTACK_FAMILIES", "Attack", "get_attack", "register_attack", "scores_of"]


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
ATTACK_FAMILIES: dict[str, tuple[str, ...]] = {}


def register_attack(attack: Attack, *, family: str | None = None, replace: bool = False):
    """Score every cell with ``attack``; a sweep reports it when its ``attacks`` setting names
    ``family`` (default: a family of its own, named like the attack)."""
    if not isinstance(attack, Attack):
        raise ValueError(f"register_attack takes an Attack; got {type(attack).__name__}")
    if attack.name in _ATTACKS and not replace:
        raise ValueError(f"an attack named {attack.name!r} exists; pass replace=True")
    _ATTACKS[attack.name] = attack
    members = ATTACK_FAMILIES.setdefault(family or attack.name, ())
    if attack.name not in members:
        ATTACK_FAMILIES[family or attack.name] = members + (attack.name,)
    return attack


def get_attack(name: str) -> Attack:
    if name not in _ATTACKS:
        raise ValueError(f"attack must be one of {sorted(_ATTACKS)}; got {name!r}")
    return _ATTACKS[name]


register_attack(
    Attack("lira_online", "1", _lira(True), description="LiRA, IN and OUT Gaussians"),
    family="lira",
)
register_attack(
    Attack("lira_offline", "1", _lira(False), description="LiRA, OUT Gaussian only"), family="lira"
)
register_attack(
    Attack("rmia", "1", _rmia, needs_population=True, description="RMIA on a held-out population"),
    family="rmia",
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
