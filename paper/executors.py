"""Where the cells of a sweep run: in this process (the default), on local worker processes, or on
an existing Dask cluster.

The protocol between layers is the standard library's ``concurrent.futures.Executor``: the lower
layers (``mialaw.simulate``, ``mialaw.empirical``) take ``executor=None`` (serial, in-process, no
pickling) or an executor and only ever call ``executor.map(module_level_function, tasks)``. This
module, at the top, builds the executors; it imports nothing from mialaw and nothing heavy at
module level, so command-line modules may use ``add_executor_arguments`` without slowing
``mialaw --help``.

Beyond one process we use an existing engine, Dask distributed (and dask-jobqueue for SLURM/PBS),
never a scheduler of our own:

* ``--workers N`` starts a ``distributed.LocalCluster`` of N single-threaded worker processes;
* ``--scheduler ADDRESS`` connects to a running cluster (``dask scheduler`` + ``dask worker``, or a
  dask-jobqueue cluster), whose workers must see the same output folder (a shared file system).

Why the results are bit-identical whatever the executor: every task is a pure function of its
arguments (each simulated S-point and each empirical cell carries its own seed), and
``executor.map`` hands the results back in task order. Tasks are submitted with ``pure=False``:
their keys are then fresh ids instead of hashes of the arguments, which saves hashing large
arguments and can never serve a stale result held by a long-lived cluster. A worker that dies
mid-task is Dask's to handle: the scheduler reruns its tasks elsewhere (up to
``distributed.scheduler.allowed-failures`` deaths per task, 3 by default, then ``KilledWorker``).
We set no ``retries``: those rerun tasks that *raised*, and a deterministic task raises again.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import logging
import threading
from collections.abc import Iterator

INSTALL_HINT = "pip install 'dask[distributed]' (or pip install -e '.[cluster]')"
CONNECT_TIMEOUT_S = 20


class SerialExecutor(cf.Executor):
    """A ``concurrent.futures.Executor`` that runs each call at once, in the caller's process.

    Nothing is pickled and nothing runs concurrently: ``submit`` returns an already finished
    future. It is what ``executor=None`` means, as an object (for code that wants one).
    """

    def __init__(self):
        self._shutdown = False
        self._lock = threading.Lock()

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
        future: cf.Future = cf.Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # handed to the caller through the future, as a pool does
            future.set_exception(err)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True


def check_workers(workers) -> int | None:
    """``workers`` as an int >= 1, or None; ValueError otherwise."""
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers must be an integer >= 1; got {workers!r}")
    return workers


def check_scheduler(scheduler) -> str | None:
    """``scheduler`` as a stripped, non-empty address, or None; ValueError otherwise."""
    if scheduler is None:
        return None
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ValueError(
            "--scheduler must be the address of a running Dask scheduler, e.g. "
            f"tcp://10.0.0.5:8786; got {scheduler!r}"
        )
    return scheduler.strip()


def check_options(workers, scheduler) -> tuple[int | None, str | None]:
    """Both options checked (ValueError if bad, or if both are given)."""
    workers, scheduler = check_workers(workers), check_scheduler(scheduler)
    if workers is not None and scheduler is not None:
        raise ValueError(
            "give either --workers (start a local cluster) or --scheduler (use a running one), "
            "not both"
        )
    return workers, scheduler


def _distributed():
    try:
        import distributed
    except ImportError as err:
        raise ValueError(
            f"--workers and --scheduler run cells on Dask, which is not installed: {INSTALL_HINT}"
        ) from err
    return distributed


@contextlib.contextmanager
def executor_from(workers: int | None = None, scheduler: str | None = None) -> Iterator:
    """The executor for ``--workers``/``--scheduler``: None (serial, the default), a local Dask
    cluster of ``workers`` single-threaded processes, or a client of the cluster at ``scheduler``.

    Everything it started (client, local cluster and its processes) is closed on exit; on an
    error, the tasks still pending are cancelled first.
    """
    workers, scheduler = check_options(workers, scheduler)
    if workers is None and scheduler is None:
        yield None
        return
    distributed = _distributed()
    with contextlib.ExitStack() as stack:
        if workers is not None:
            cluster = stack.enter_context(_local_cluster(distributed, workers))
            client = stack.enter_context(distributed.Client(cluster))
        else:
            client = stack.enter_context(_connect(distributed, scheduler))
        executor = client.get_executor(pure=False)
        try:
            yield executor
        except BaseException:
            executor.shutdown(wait=False)  # cancel what is still queued on the cluster
            raise
        executor.shutdown(wait=True)


def _local_cluster(distributed, workers: int):
    import dask

    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's
    # adaptive thresholds: every large numpy temporary is then mapped and unmapped afresh, and a
    # simulated cell ran 1.5x slower than in this process. Workers keep glibc's default here.
    # (The nanny reads this once, so a worker it restarts after a crash keeps it too.)
    unset = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    with dask.config.set(unset):
        return distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,  # one cell per process: no contention inside a worker
            processes=True,
            # No dashboard; the scheduler's small HTTP server (health, metrics) on a free port of
            # the loopback interface, instead of 8787 and a warning when that is taken.
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            # Dask's own warnings (a cancelled task, a worker killed at shutdown after Ctrl-C)
            # are not the user's business: what fails a task reaches the caller as its error.
            silence_logs=logging.CRITICAL,
        )


def _connect(distributed, address: str):
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as err:
        raise ValueError(
            f"cannot reach a Dask scheduler at {address} within {CONNECT_TIMEOUT_S} s ({err}); "
            "start one with `dask scheduler` and workers with `dask worker ADDRESS`"
        ) from err


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--workers N`` and ``--scheduler ADDRESS`` to a command's parser."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run the cells on N local worker processes (a Dask LocalCluster); default: serial",
    )
    group.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the cells on the running Dask cluster at ADDRESS (e.g. tcp://host:8786); "
        "its workers must see the output folder",
    )


def executor_for(args) -> contextlib.AbstractContextManager:
    """``executor_from`` for parsed arguments that may lack the two options."""
    return executor_from(getattr(args, "workers", None), getattr(args, "scheduler", None))
