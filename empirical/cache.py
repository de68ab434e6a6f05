"""A small on-disk array cache that never silently returns wrong data.

Each entry is one uncompressed ``.npz`` holding the arrays plus a JSON ``__meta__`` string with the
full key (not only its hash) and a SHA-256 checksum over the arrays' names, dtypes, shapes and
bytes. Loading re-checks both: an unreadable or truncated file, a checksum mismatch or a key that
differs from the one asked for raise :class:`CacheError` and the caller rebuilds. Writes go to a
temporary file in the same directory and are moved into place with ``os.replace``, so an
interrupted write never leaves a partial entry under the final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

_META = "__meta__"


class CacheError(Exception):
    """A cache entry exists but is unreadable, corrupt or stale (the message says which)."""


class CacheWarning(UserWarning):
    """A cache entry was discarded and is being rebuilt."""


def default_cache_dir() -> Path:
    """``$MIALAW_CACHE`` if set, else ``~/.cache/mialaw``."""
    env = os.environ.get("MIALAW_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mialaw"


def key_digest(key: dict) -> str:
    """SHA-256 of the key's canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def array_checksum(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_arrays(path, arrays: dict, key: dict) -> Path:
    """Atomically write ``arrays`` (name -> ndarray) with ``key`` to ``path``."""
    path = Path(path)
    if _META in arrays:
        raise ValueError(f"array name {_META!r} is reserved")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"key": key, "checksum": array_checksum(arrays)}, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays, **{_META: np.array(meta)})
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a cache is ordinary data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_arrays(path, key: dict) -> dict | None:
    """The arrays stored at ``path`` for ``key``; None when there is no entry.

    Raises CacheError when the entry is unreadable, fails its checksum or was written for another
    key.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(str(arrays.pop(_META)))
        stored_key, checksum = meta["key"], meta["checksum"]
    except Exception as exc:  # zip/zlib/json/key errors: any of them means an unusable file
        raise CacheError(f"unreadable or truncated ({type(exc).__name__}: {exc})") from exc
    if stored_key != json.loads(json.dumps(key)):
        changed = sorted(
            k
            for k in set(stored_key) | set(key)
            if stored_key.get(k) != json.loads(json.dumps(key)).get(k)
        )
        raise CacheError(f"stale: written for a different key (differs in {changed})")
    if array_checksum(arrays) != checksum:
        raise CacheError("corrupt: checksum of the stored arrays does not match")
    return arrays
