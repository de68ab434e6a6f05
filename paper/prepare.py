"""Cold caches filled in the background while the first stages of `mialaw reproduce` run.

A first run pays twice before it computes anything of the simulations and the image sweeps: Numba
compiles the simulation kernels (kept on disk afterwards, ``cache=True``) and the backbone extracts
the features (kept under ``$MIALAW_CACHE``). Neither needs the earlier stages, so one helper
process does both while the derivation and the exact theory run: for each simulated stage it runs
that stage's own sweep at a tiny size (compiling exactly the kernels the stage needs, nothing
else), for each image run it loads the run's features, and it says when each is ready. The stage
waits for its line, then finds everything cached. Nothing the helper does enters a result: if it
fails or is slow, a stage just compiles or extracts for itself.

``python -m mialaw.paper.prepare`` is that helper: tasks as JSON on stdin, one line per finished
task on stdout.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys

from mialaw.empirical.config import RunConfig
from mialaw.empirical.datasets import FEATURE_SPACE
from mialaw.empirical.learners import get_learner

_TINY_TARGETS = {"oracle": 64, "lira": 16}


class Warmup:
    """The helper process; ``wait(name)`` blocks until stage ``name``'s caches are ready."""

    def __init__(self, tasks: list[tuple[str, str, dict]]):
        self.pending = {name for name, _, _ in tasks}
        self.proc = None
        if not tasks:
            return
        env = os.environ | {"PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mialaw.paper.prepare"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self.proc.stdin.write(json.dumps(tasks, default=list))
        self.proc.stdin.close()

    def wait(self, name: str) -> None:
        """Until the helper has finished ``name`` (at once if it has no such task or ended)."""
        while name in self.pending and self.proc is not None:
            line = self.proc.stdout.readline()
            if not line:  # the helper ended (or died): the stage does its own work
                self.pending.clear()
                return
            self.pending.discard(line.strip())

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _die_with_parent() -> None:
    """In the helper (Linux): SIGKILL when the run that started it dies, however it dies."""

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def tasks_for(plan, runner, spec, run_options: dict) -> list[tuple[str, str, dict]]:
    """The helper's tasks: every simulated stage and image run of ``plan`` that will compute;
    ``run_options`` (the device, the data folder) complete each image run's configuration."""

    sims = {f"simulate-{s.label}": s.options for s in spec.simulations}
    emps = {f"empirical-{e.label}": e.options for e in spec.empirical}
    tasks = []
    for name, config, *_ in plan:
        if not runner.force and runner.load(name, config) is not None:
            continue
        if name in sims:
            tasks.append((name, "simulate", sims[name]))
        elif name in emps and not _cheap_features(emps[name], FEATURE_SPACE):
            tasks.append((name, "features", emps[name] | run_options))
    return sorted(tasks, key=lambda task: task[1] != "simulate")  # kernels first


def _cheap_features(options: dict, feature_space) -> bool:
    """Features that cost nothing to make: feature-space data, raw pixels."""
    return options["dataset"] in feature_space or options["backbone"] in ("pixels", "identity")


def _simulate(options: dict) -> None:
    """The stage's sweep at one S-point and a few targets: the same kernels, compiled."""
    from mialaw.simulate.sweep import SweepConfig, run_sweep

    kind = "oracle" if options.get("attack", "oracle") == "oracle" else "lira"
    tiny = {"shots": tuple(options["shots"])[:1], "targets": _TINY_TARGETS[kind]}
    run_sweep(SweepConfig(**(options | tiny | {"fit_min_shots": 1})), progress=False)


def _features(options: dict) -> None:
    config = RunConfig(**options)
    get_learner(config.learner).prepare(config, None)


def main() -> int:
    for name, kind, options in json.loads(sys.stdin.read()):
        try:
            (_simulate if kind == "simulate" else _features)(options)
        except Exception:  # the stage itself will say what is wrong
            pass
        print(name, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
