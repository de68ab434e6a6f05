"""Benchmark of the executors: a CPU-bound sweep serially and on local Dask workers, side by side.

    python -m mialaw.paper.bench_executors            # 16 cells of about a second each
    python -m mialaw.paper.bench_executors --quick    # a few tiny cells (the test suite's check)

The workload is the simulated sweep's own task, ``mialaw.simulate.sweep.sweep_point`` (an oracle
Monte Carlo point with its bootstrap interval and the exact theory beside it), with Numba limited
to one thread in every arm, so that a cell is single-threaded wherever it runs and the comparison
is one core against two. It reports:

* the speed-up of two local workers (``--workers 2``) over serial (target >= 1.7x on 2 cores);
* the per-cell overhead of the Dask path: with one worker, the wall time beyond the cells' own
  time (scheduling, pickling, transfers) per cell, as a percentage of the mean serial cell
  (target < 5 %); and, beside it, one worker against serial end to end.

Each arm also says what share of a core its cells got (their CPU time over their wall time): on a
machine busy with other work it falls below 100 %, and the speed-up with it.

Each arm is warmed up first (imports, Numba's cached kernels) and starting the local cluster is
timed apart: both are paid once per run, not per cell. Every arm's points are checked to be
bit-identical to the serial ones.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from mialaw.paper.executors import executor_from


def one_thread_point(config, index: int):
    """One cell of the workload: ``sweep_point`` with Numba on one thread (a thread-local
    setting, so it is set in the thread that runs the cell); returns (points, wall seconds, CPU
    seconds of this thread) so that the cell's own time can be told from the executor's."""
    import numba

    from mialaw.simulate.sweep import sweep_point

    numba.set_num_threads(1)
    wall, cpu = time.perf_counter(), time.thread_time()
    points = sweep_point(config, index, True)
    return points, time.perf_counter() - wall, time.thread_time() - cpu


def warm_up(config, pause_s: float) -> int:
    """Load what a first cell loads (imports, Numba's cache), then pause: with a pause, the
    warm-up tasks spread over all workers. Returns the process id."""
    one_thread_point(config, 0)
    time.sleep(pause_s)
    return os.getpid()


def _config(cells: int, targets: int):
    from mialaw.simulate.sweep import SweepConfig

    # Distinct S, log-spaced as in a real sweep; the cost of a cell barely depends on S.
    shots = np.unique(np.round(np.geomspace(16, 16 * 4 * cells, cells)).astype(int))
    return SweepConfig(dim=16, sigma=1.0, shots=tuple(shots), fpr=(0.1, 0.01), targets=targets)


@dataclass
class Arm:
    """One way of running the cells: its best wall time and what its cells reported."""

    name: str
    workers: int
    wall_s: float = float("inf")
    cell_wall_s: float = 0.0  # the cells' own wall time, summed
    cell_cpu_s: float = 0.0  # the cells' CPU time, summed
    startup_s: float = 0.0
    points: list = field(default_factory=list)

    def measure(self, run, config, repeats: int) -> Arm:
        n = len(config.shots)
        for _ in range(repeats):
            start = time.perf_counter()
            found = list(run(one_thread_point, [config] * n, range(n)))
            wall = time.perf_counter() - start
            if wall < self.wall_s:
                self.wall_s = wall
                self.points = [f[0] for f in found]
                self.cell_wall_s = sum(f[1] for f in found)
                self.cell_cpu_s = sum(f[2] for f in found)
        return self

    def line(self, cells: int) -> str:
        # The share of a core the cells got: below 100 % the machine was busy with other work.
        # A cell's CPU time says whether it ran slower there (it should not).
        share = 100.0 * self.cell_cpu_s / self.cell_wall_s
        start = f"; cluster start and warm-up {self.startup_s:.1f} s" if self.startup_s else ""
        return (
            f"  {self.name:<24}{self.wall_s:8.2f} s  (CPU {self.cell_cpu_s / cells:.3f} s per "
            f"cell, cells got {share:.0f} % of a core{start})"
        )


def _dask_arm(workers: int, config, repeats: int) -> Arm:
    arm = Arm(f"Dask, {workers} local worker{'s' if workers > 1 else ''}:", workers)
    start = time.perf_counter()
    with executor_from(workers=workers) as executor:
        pids = set(executor.map(warm_up, [config] * (2 * workers), [0.5] * (2 * workers)))
        arm.startup_s = time.perf_counter() - start
        if len(pids) != workers:
            print(f"  note: the warm-up reached {len(pids)} of {workers} workers", flush=True)
        arm.measure(executor.map, config, repeats)
    return arm


def run(cells: int, targets: int, repeats: int) -> dict:
    """Measure the three arms; returns the timings (seconds) and the derived ratios."""
    config = _config(cells, targets)
    n = len(config.shots)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(
        f"workload: {n} cells of mialaw.simulate.sweep.sweep_point (oracle, d=16, "
        f"{targets} games per cell, bootstrap {config.resamples}, exact theory), Numba on 1 "
        f"thread in every arm; {cores} cores visible{load}; best of {repeats}",
        flush=True,
    )
    warm_up(config, 0.0)
    serial = Arm("serial (this process):", 1).measure(map, config, repeats)
    print(serial.line(n), flush=True)
    one = _dask_arm(1, config, repeats)
    print(one.line(n), flush=True)
    two = _dask_arm(2, config, repeats)
    print(two.line(n), flush=True)
    identical = all(_same(serial.points, arm.points) for arm in (one, two))
    mean_cell = serial.wall_s / n
    speedup = serial.wall_s / two.wall_s
    # The Dask path's own cost: the 1-worker run's wall time beyond its cells' own time
    # (scheduling, pickling, transfers), per cell; immune to load changing between the arms.
    dispatch = 100.0 * (one.wall_s - one.cell_wall_s) / n / mean_cell
    end_to_end = 100.0 * (one.wall_s - serial.wall_s) / n / mean_cell
    print(f"  identical points in every arm: {'yes' if identical else 'NO'}")
    print(f"speed-up (serial / 2 workers): {speedup:.2f}x (target >= 1.7x on 2 free cores)")
    print(
        f"per-cell overhead of the Dask path: {dispatch:.1f} % of a mean cell "
        f"({1000 * dispatch * mean_cell / 100:+.1f} ms per cell; target < 5 %); "
        f"1 worker against serial end to end: {end_to_end:+.1f} %",
        flush=True,
    )
    return {
        "cells": n,
        "serial_s": serial.wall_s,
        "dask1_s": one.wall_s,
        "dask2_s": two.wall_s,
        "speedup": speedup,
        "overhead_percent": dispatch,
        "end_to_end_percent": end_to_end,
        "identical": identical,
    }


def _same(a, b) -> bool:
    # As text: NaN (an unresolvable point) is not equal to itself as a float.
    as_text = lambda cells: json.dumps([[p.to_dict() for p in cell] for cell in cells])  # noqa: E731
    return as_text(a) == as_text(b)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mialaw.paper.bench_executors", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--cells", type=_positive, default=16, help="cells in the sweep")
    parser.add_argument(
        "--targets", type=_positive, default=1_500_000, help="games per cell (its cost)"
    )
    parser.add_argument("--repeats", type=_positive, default=1, help="best of this many runs")
    parser.add_argument("--quick", action="store_true", help="4 tiny cells (checks it runs)")
    args = parser.parse_args(argv)
    if args.quick:
        args.cells, args.targets, args.repeats = 4, 2_000, 1
    result = run(args.cells, args.targets, args.repeats)
    return 0 if result["identical"] else 1


if __name__ == "__main__":  # guarded: spawned worker processes import this module again
    sys.exit(main())
