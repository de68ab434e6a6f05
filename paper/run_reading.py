"""The command line's read commands over run folders (``empirical fit``, ``empirical bridge``,
``empirical export``, ...): a damaged cell is reported, never removed or recomputed.

``reading(dirs)`` holds the store read-only for its block and turns a damaged cell into one
``ValueError`` that names the cell and how to repair it (``cells.damaged_message``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from mialaw.empirical.cells import damaged_message
from mialaw.empirical.store import DamagedCell, read_only

__all__ = ["reading"]


@contextlib.contextmanager
def reading(dirs: Iterable) -> Iterator[None]:
    """The block reads the run folders ``dirs`` without writing to them; a damaged cell found
    there is a ValueError naming it."""
    dirs = [dirs] if isinstance(dirs, str) else list(dirs)
    try:
        with read_only():
            yield
    except DamagedCell as err:
        raise ValueError(damaged_message(dirs) or str(err)) from None
