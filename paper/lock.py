"""One writer per folder: ``FOLDER/.lock``, and the temporaries that killed writers left.

Every command that writes a folder (``mialaw reproduce``, ``simulate --out``, ``empirical run``,
``empirical import``, ``empirical export``, ``audit``) holds the folder's lock from before it writes
anything until it is done: a second writer is refused at once with one line naming the holder's
pid. The lock is an ``flock`` on ``.lock``, so the OS drops it when its holder dies however it dies
(SIGKILL included): a lock left by a dead holder is simply taken over. ``writing(folder)`` takes
the lock and then sweeps the temporaries (``.NAME.*.tmp``) that killed runs left behind.

This module imports nothing from mialaw and nothing heavy, so command-line modules may use it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LOCK_NAME", "folder_lock", "remove_temporaries", "writing"]

LOCK_NAME = ".lock"


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


@contextlib.contextmanager
def writing(folder) -> Iterator[Path]:
    """Hold ``folder``'s lock (``folder_lock``) and, once held, remove the temporaries killed runs
    left under it; yields the folder. ValueError if ``folder`` exists and is not a directory.
    Folders the lock had to create are removed again if the command left nothing in them."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} exists and is not a directory; give a folder (new or existing)")
    created = _missing(folder)
    try:
        with folder_lock(folder):
            remove_temporaries(folder)
            yield folder
    finally:
        for path in created:  # folders the lock made and nothing filled (refused input)
            try:
                path.rmdir()
            except OSError:
                break


def _missing(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    path = folder.absolute()
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing
