"""(lower, estimate, upper): how every uncertain number in mialaw is reported."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval: (lower, estimate, upper)."""

    lower: float
    estimate: float
    upper: float

    def __iter__(self):
        return iter((self.lower, self.estimate, self.upper))

    def contains(self, value: float) -> bool:
        return bool(self.lower <= value <= self.upper)

    def to_dict(self) -> dict:
        return {
            "lower": _plain(self.lower),
            "estimate": _plain(self.estimate),
            "upper": _plain(self.upper),
        }


def _plain(value):
    a = np.asarray(value)
    return a.item() if a.ndim == 0 else a.tolist()


def check_level(level: float) -> float:
    """A confidence level strictly between 0 and 1."""
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"confidence level must lie strictly between 0 and 1; got {level!r}")
    return level
