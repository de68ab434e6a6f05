"""Helpers for the executor tests that must be importable by worker processes (by module name).

Dask's local workers are spawned with the test process's ``sys.path``, which holds this folder, so
they unpickle these functions by reference.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import threading
import time


def pid_after(seconds: float) -> int:
    """The id of the process that ran this, after a pause (so that tasks spread over workers)."""
    time.sleep(seconds)
    return os.getpid()


def kill_first_attempt(marker: str, delay_s: float, protected_pid: int, fn, *args):
    """``fn(*args)``, except the first attempt of all (the one that creates ``marker``): its
    process is killed with SIGKILL ``delay_s`` into the work, or at the end of the work if that
    comes sooner, so the attempt always dies mid-task without handing back a result.

    ``protected_pid`` (the test process) is never killed: running this there is an error.
    """
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return fn(*args)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{os.getpid()}\n")
    if os.getpid() == protected_pid:
        raise RuntimeError("kill_first_attempt must run on a worker, not in the test process")
    timer = threading.Timer(delay_s, os.kill, (os.getpid(), signal.SIGKILL))
    timer.daemon = True
    timer.start()
    fn(*args)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: the process was killed")


class KillOnceExecutor(cf.Executor):
    """Wraps an executor so that the first task attempt it runs kills its worker mid-task."""

    def __init__(self, inner: cf.Executor, marker: str, delay_s: float = 0.2):
        self.inner = inner
        self.marker = str(marker)
        self.delay_s = float(delay_s)

    def submit(self, fn, /, *args, **kwargs):
        if kwargs:
            raise TypeError("KillOnceExecutor.submit takes positional arguments only")
        return self.inner.submit(
            kill_first_attempt, self.marker, self.delay_s, os.getpid(), fn, *args
        )

    def map(self, fn, *iterables, **kwargs):
        columns = [list(it) for it in iterables]
        n = min(len(c) for c in columns)
        fixed = ([self.marker] * n, [self.delay_s] * n, [os.getpid()] * n, [fn] * n)
        return self.inner.map(kill_first_attempt, *fixed, *columns, **kwargs)
