"""Resumable stages: each finished stage leaves one JSON file keyed by its configuration.

A stage's result is written atomically (temporary file, then ``os.replace``) only when the stage
has finished, so an interrupted run leaves either the previous result or nothing, never a torn
file. A stored result is reused only if its configuration matches exactly; otherwise it is
recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK_NAME = ".lock"


def config_key(config: dict) -> str:
    """A stable hash of a JSON-serialisable configuration."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_json_atomic(path: Path, payload) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=1, sort_keys=True, default=_jsonable)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Folders this process holds locked: path -> [thread id, depth]. flock conflicts between two
# opens of one file even in one process, so a nested lock by the same thread (the command line's
# handler, then ``reproduce`` inside it) must not take it again.
_HELD: dict[Path, list[int]] = {}
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[Path]:
    """Hold ``folder/.lock`` exclusively while the block runs; ValueError (one line) if another
    process (or thread) holds it. Re-entrant for the thread that holds it.

    ``flock`` locks belong to the open file: the OS drops them when the holder exits, however it
    exits (SIGKILL included), so a lock is never left stale and a rerun after a crash proceeds.
    The file holds the holder's pid (for the message) and is deleted on release, so a finished
    run leaves no trace; a file left by a killed run is simply locked again.
    """
    path = Path(folder).resolve() / LOCK_NAME
    me = threading.get_ident()
    with _HELD_GUARD:
        held = _HELD.get(path)
        if held is not None and held[0] == me:
            held[1] += 1
            nested = True
        elif held is not None:
            raise ValueError(_busy(folder, os.getpid()))
        else:
            nested = False
    if nested:
        try:
            yield path
        finally:
            with _HELD_GUARD:
                _HELD[path][1] -= 1
        return
    fd = _flock(path, folder)
    with _HELD_GUARD:
        _HELD[path] = [me, 1]
    try:
        yield path
    finally:
        with _HELD_GUARD:
            del _HELD[path]
        path.unlink(missing_ok=True)  # while still locked: nobody can have locked this file
        os.close(fd)  # releases the lock


def _busy(folder, holder) -> str:
    return (
        f"another run is writing to {folder} (pid {holder}); wait for it to finish "
        "or use another --out"
    )


def _flock(path: Path, folder) -> int:
    """An open descriptor of ``path`` holding its exclusive lock (ValueError if taken)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no flock on this platform (Windows): run unlocked
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ValueError(_busy(folder, holder)) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        # The holder released and deleted this file between our open and our lock: the lock
        # is on a deleted file that another run may already have replaced. Take the new one.
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files (``.NAME.*.tmp``, as the atomic writers name them: stage
    results, empirical cells and summaries) that killed runs left anywhere under ``folder``: a
    process killed with SIGKILL cannot clean up. Only safe while holding the folder's lock."""
    stale = sorted(p for p in Path(folder).rglob(".*.tmp") if p.is_file())
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


class StageRunner:
    """Runs named stages in order, reusing finished ones, reporting progress on stderr."""

    def __init__(self, out_dir: Path, total: int, *, stream=None, force: bool = False):
        self.dir = Path(out_dir) / "stages"
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.force = force
        self.reused: list[str] = []
        self.timings: dict[str, float] = {}

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def load(self, name: str, config: dict):
        path = self.path(name)
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if stored.get("key") != config_key(config) or "result" not in stored:
            return None
        return stored["result"]

    def run(self, name: str, config: dict, compute: Callable[[], dict], estimate_s: float):
        """Return the stage's result: the stored one if its config matches, else compute it."""
        self.done += 1
        head = f"[{self.done}/{self.total}] {name}"
        if not self.force:
            cached = self.load(name, config)
            if cached is not None:
                print(f"{head}: reused finished stage ({self.path(name)})", file=self.stream)
                self.reused.append(name)
                return cached
        print(f"{head}: running (estimated {_fmt(estimate_s)})", file=self.stream, flush=True)
        start = time.perf_counter()
        result = compute()
        elapsed = time.perf_counter() - start
        self.timings[name] = elapsed
        payload = {"key": config_key(config), "config": config, "seconds": elapsed}
        payload["result"] = result
        write_json_atomic(self.path(name), payload)
        print(f"{head}: done in {_fmt(elapsed)}", file=self.stream, flush=True)
        # Hand on what a resumed run would read back, so both give identical outputs.
        return self.load(name, config)


def _fmt(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"
