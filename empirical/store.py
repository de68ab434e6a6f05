"""A content-addressed store of cells: an entry's address is the hash of its full identity.

A cell's identity (``cells.cell_identity``) is everything its arrays depend on: the cell-defining
settings, the features' key, (C, S, seed) and the code version of every component that made it.
The entry lives at ``ROOT/<first two hex digits>/<sha256>.npz`` and carries its identity and a
checksum of its arrays (``cache.save_arrays``): written to a temporary file and renamed, so an
entry is complete or absent; read back, its identity and checksum are checked, and an entry that
is torn, corrupt or holds another identity is reported (a warning naming the file), removed, and
recomputed by the caller. Changing any component's version changes the address of exactly the
cells that component made, so nothing stale is ever read; old entries are simply not addressed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from mialaw.empirical.cache import CacheError, CacheWarning, key_digest, load_arrays, save_arrays

__all__ = ["CellStore"]


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
        try:
            return load_arrays(path, identity)
        except CacheError as err:
            warnings.warn(f"cell {path} discarded and recomputed: {err}", CacheWarning, 2)
            path.unlink(missing_ok=True)
            return None

    def put(self, identity: dict, arrays: dict) -> Path:
        """Store ``arrays`` for ``identity`` atomically; returns the entry's path."""
        return save_arrays(self.path(identity), arrays, identity)
