"""The command line's error boundary: every failure is one line on stderr and an exit status.

``guarded(command, call, debug=...)`` runs a subcommand's handler with SIGTERM (and SIGHUP) turned
into an exception, so that every ``finally`` and context manager on the way out runs (locks
released, temporaries removed, workers shut down) whatever ends the run. What reaches it is mapped
to one line and ``SystemExit``:

* bad input (``ValueError``: every check at the public surface says what was wrong and what is
  allowed), files in the way (exists, is a directory, missing), memory the arguments ask for that
  is not there (``MemoryError``) and numbers out of range (``OverflowError``): status 2;
* the environment (disk full, permission denied, read-only file system, another ``OSError``),
  naming the file and what to do: status 2;
* Ctrl-C: "interrupted; rerun the same command to resume", status 130; SIGTERM: 143 (128 + the
  signal's number, as a shell reports it);
* anything else is a bug: one line saying so, status 1.

``debug=True`` (``mialaw --debug ...``) lets the exception through with its traceback.
This module imports nothing from mialaw and nothing heavy.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import sys
import threading
from collections.abc import Callable, Iterator

__all__ = ["Terminated", "describe", "exiting", "guarded", "signals_raise"]

RESUME = "rerun the same command to resume"


class Terminated(BaseException):
    """The process was asked to stop by a signal (SIGTERM, SIGHUP); like KeyboardInterrupt, a
    BaseException, so ``except Exception`` does not swallow it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        return signal.Signals(self.signum).name


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def signals_raise(signums=(signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """While the block runs (in the main thread), the given signals raise ``Terminated``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_terminated) for s in signums}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _name(err: OSError, where) -> str:
    names = [str(n) for n in (err.filename, err.filename2) if n is not None]
    if names:
        return " -> ".join(names)
    return str(where) if where is not None else "a file"


def _os_error(err: OSError, where) -> str:
    name = _name(err, where)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device writing {name}; free some space, then {RESUME}"
    if err.errno == errno.EROFS:
        return f"{name} is on a read-only file system; choose a writable folder"
    if isinstance(err, PermissionError):
        return f"permission denied: {name}; make it accessible to you or choose another folder"
    if isinstance(err, FileExistsError):
        return f"{name} exists and is not a directory; remove it or choose another path"
    if isinstance(err, IsADirectoryError):
        return f"{name} is a directory where a file belongs; remove it or choose another path"
    if isinstance(err, NotADirectoryError):
        return f"a file stands where a folder belongs in {name}; remove it or choose another path"
    if isinstance(err, FileNotFoundError) and err.filename is None:
        return str(err)  # a message of ours (e.g. a data set and how to get it)
    return f"{name}: {err.strerror or err}"


def describe(err: BaseException, where=None) -> tuple[int, str]:
    """(exit status, one line) for an exception that ended a command; ``where`` is the folder the
    command writes, named when the error itself names no file."""
    if isinstance(err, KeyboardInterrupt):
        return 130, f"interrupted; {RESUME}"
    if isinstance(err, Terminated):
        return 128 + err.signum, f"interrupted ({err}); {RESUME}"
    if isinstance(err, ValueError):
        return 2, str(err)
    if isinstance(err, MemoryError):
        return 2, f"not enough memory ({err or 'an allocation failed'}); use smaller arguments"
    if isinstance(err, OverflowError):
        return 2, f"a number is out of range ({err}); use smaller values"
    if isinstance(err, OSError):
        return 2, _os_error(err, where)
    if type(err).__name__ == "KilledWorker":  # Dask: the task's workers kept dying
        return (
            2,
            f"workers died running a cell ({err}); give them more memory or use fewer, "
            f"then {RESUME}",
        )
    text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return 1, f"internal error ({text}); rerun with --debug for the traceback and report it"


def _one_line(text: str) -> str:
    return " ".join(text.split())


@contextlib.contextmanager
def _warnings_on_one_line(command: Callable[[], str]) -> Iterator[None]:
    """Warnings as ``mialaw COMMAND: warning: ...`` (no source line) while a command runs."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        text = f"{_label(command())}: warning: {_one_line(str(message))}"
        print(text, file=file or sys.stderr)

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def guarded(command, call: Callable[[], int], *, debug: bool = False, where=None) -> int:
    """``call()``'s status; any exception becomes one line on stderr and ``SystemExit``.

    ``command`` and ``where`` may be callables, asked only when an error is reported (the command
    line knows them once it has parsed its arguments, inside ``call``)."""
    name = command if callable(command) else lambda: command
    with signals_raise(), _warnings_on_one_line(name):
        try:
            return call()
        except SystemExit:
            raise
        except BaseException as err:
            if debug:
                raise
            status, message = describe(err, where() if callable(where) else where)
            prefix = "" if status >= 128 else "error: "
            sys.stderr.flush()
            print(f"{_label(name())}: {prefix}{_one_line(message)}", file=sys.stderr)
            raise SystemExit(status) from None


def _label(command: str) -> str:
    return f"mialaw {command}" if command else "mialaw"


def exiting() -> None:
    """For the process's entry point, once the command has finished: a late Ctrl-C or SIGTERM
    cannot turn a finished command into a killed one (nor print a traceback at shutdown)."""
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
