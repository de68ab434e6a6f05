"""A content-addressed store of cells: an entry's address is the hash of its full identity.

A cell's identity (``cells.cell_identity``) is everything its arrays depend on: the cell-defining
settings, the features' key, (C, S, seed) and the code version of every component that made it.
The entry lives at ``ROOT/<first two hex digits>/<sha256>.npz`` and carries its identity and a
checksum of its arrays (``cache.save_arrays``): written to a temporary file and renamed, so an
entry is complete or absent; read back, its identity and checksum are checked, and an entry that
is torn, corrupt or holds another identity is reported (a warning naming the file), removed, and
recomputed by the caller. A reader that must not modify the store (``mialaw empirical fit``)
reads inside ``read_only()``: a damaged entry then raises ``DamagedCell`` and stays where it is
(``damaged(identities)`` lists every damaged entry of a run). Changing any component's version
changes the address of exactly the cells that component made, so nothing stale is ever read; old
entries are simply not addressed.
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Iterator
from pathlib import Path

from mialaw.empirical.cache import CacheError, CacheWarning, key_digest, load_arrays, save_arrays

__all__ = ["CellStore", "DamagedCell", "read_only"]

_READ_ONLY = contextvars.ContextVar("mialaw_cell_store_read_only", default=False)


class DamagedCell(ValueError):
    """A damaged entry read inside ``read_only()`` (left in place: the reader does not repair)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(
            f"cell {path} is damaged ({reason}); rerun `mialaw empirical run` with the run's "
            "settings to recompute it"
        )
        self.path, self.reason = path, reason


@contextlib.contextmanager
def read_only() -> Iterator[None]:
    """Within the block, stores are only read: a damaged entry raises ``DamagedCell`` instead of
    being removed for recomputation."""
    token = _READ_ONLY.set(True)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


class CellStore:
    """Cells addressed by the SHA-256 of their identity, under one root folder."""

    def __init__(self, root):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"CellStore({str(self.root)!r})"

    @staticmethod
    def address(identity: dict) -> str:
        return key_digest(identity)

    def path(self, identity: dict) -> Path:
        digest = self.address(identity)
        return self.root / digest[:2] / f"{digest}.npz"

    def __contains__(self, identity: dict) -> bool:
        return self.path(identity).exists()

    def get(self, identity: dict) -> dict | None:
        """The arrays stored for ``identity``, or None (absent, or found damaged and removed)."""
        path = self.path(identity)
        if path.is_dir():
            raise ValueError(
                f"{path} is a directory where a cell file belongs; remove it and rerun"
            )
        try:
            return load_arrays(path, identity)
        except CacheError as err:
            if _READ_ONLY.get():
                raise DamagedCell(path, str(err)) from None
            warnings.warn(f"cell {path} discarded and recomputed: {err}", CacheWarning, 2)
            path.unlink(missing_ok=True)
            return None

    def damaged(self, identities) -> list[tuple[Path, str]]:
        """(path, reason) of every entry among ``identities`` that exists and is damaged;
        nothing is modified."""
        found = []
        for identity in identities:
            path = self.path(identity)
            if path.is_dir():
                found.append((path, "a directory"))
                continue
            try:
                load_arrays(path, identity)
            except CacheError as err:
                found.append((path, str(err)))
        return found

    def put(self, identity: dict, arrays: dict) -> Path:
        """Store ``arrays`` for ``identity`` atomically; returns the entry's path."""
        return save_arrays(self.path(identity), arrays, identity)
