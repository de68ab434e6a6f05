"""Checks of the public surface shared by every configuration (one rule each, one wording).

Each check returns the value in its plain Python form (``int``, a sorted tuple, the chosen
string) or raises ``ValueError`` whose message names the setting, says what is allowed and shows
what was given. The rules are strict so that equal settings compare, hash and print alike:

* an integer is a Python or numpy integer, never a ``bool`` and never a float (``2.0`` is refused:
  a command line that reads ``1e6`` converts it first, see ``mialaw.paper.cli_options``);
* a set of integers is one integer or a non-empty sequence of them, without repeats, returned
  sorted;
* a choice is one of the allowed values exactly (no case folding, no abbreviations).

Pure Python and numpy: the floor of the package (``theory``), so that ``simulate`` and
``empirical`` both use it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["check_choice", "check_int", "check_ints", "is_int"]


def is_int(value) -> bool:
    """Whether ``value`` is a Python or numpy integer (``bool`` is not)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _within(value, low, high) -> bool:
    return is_int(value) and (low is None or value >= low) and (high is None or value <= high)


def _bounds(low, high) -> str:
    if low is not None and high is not None:
        return f" in [{low}, {high}]"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""


def check_int(name: str, value, low: int | None = None, high: int | None = None, why: str = ""):
    """``value`` as an ``int`` in [low, high] (either bound may be None); ``why`` is appended to
    the rule in the message (e.g. ``" (each target is IN for half of them)"``)."""
    if not _within(value, low, high):
        raise ValueError(f"{name} must be an integer{_bounds(low, high)}{why}; got {value!r}")
    return int(value)


def check_ints(name: str, values, low: int | None = None, high: int | None = None) -> tuple:
    """One integer or a non-empty sequence of distinct integers in [low, high], as a sorted
    tuple of ``int``."""
    if is_int(values):
        items = [values]
    elif isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be integers{_bounds(low, high)}; got {values!r}")
    else:
        items = list(values)
    if not items:
        raise ValueError(f"{name} must not be empty; give integers{_bounds(low, high)}")
    for item in items:
        if not _within(item, low, high):
            raise ValueError(f"{name} must be integers{_bounds(low, high)}; got {values!r}")
    out = [int(item) for item in items]
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat values; got {values!r}")
    return tuple(sorted(out))


def check_choice(name: str, value, allowed: Iterable):
    """``value`` if it is one of ``allowed`` (compared exactly), else a ValueError listing them."""
    allowed = tuple(allowed)
    try:
        found = any(value == option and type(value) is type(option) for option in allowed)
    except (TypeError, ValueError):  # e.g. an array, whose == is elementwise
        found = False
    if not found:
        listed = ", ".join(str(option) for option in allowed)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")
    return value
