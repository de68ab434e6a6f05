"""`mialaw reproduce`: the whole study, from proof to simulation to real models, in one command.

Stages, in order: the symbolic derivation (sympy), the exact theory, the simulation sweeps (oracle
and LiRA), the empirical sweeps (when the ``empirical`` extra is installed; otherwise it says so
and carries on); then every figure and table. Each finished stage is stored under
``OUT/stages/`` keyed by its configuration, so re-running reuses it and an interrupted run
resumes (the empirical sweeps also resume cell by cell under ``OUT/runs/``).

One run at a time writes to an output folder: ``OUT/.lock`` is held for the whole run, and a second
run into the same folder stops at once with a one-line message. ``--workers N`` or
``--scheduler ADDRESS`` send the simulated S-points and the empirical cells to Dask workers
(``mialaw.paper.executors``); the results are the same bits as a serial run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from mialaw.empirical.datasets import FEATURE_SPACE

from . import mechanism_stage as mech
from . import stage_costs as cost
from . import stage_functions as fn
from . import study_stages as study
from .cli_options import add_data_dir
from .executors import add_executor_arguments, check_options, executor_for
from .outputs import write_outputs
from .prepare import Warmup, tasks_for
from .profiles import PROFILES
from .stages import (
    StageRunner,
    config_key,
    fmt_seconds,
    folder_lock,
    remove_temporaries,
    write_json_atomic,
)
from .transfer_stage import plan_transfer

DEFAULT_OUT = "results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="quick",
        help="smoke (<1 min, tests), quick (<5 min, default), full (paper scale, about 1.6 h)",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="for the empirical part"
    )
    add_data_dir(parser)
    parser.add_argument("--force", action="store_true", help="recompute finished stages")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=(),
        choices=("derive", "theory", "simulate", "empirical"),
        help="stages to leave out",
    )

    add_executor_arguments(parser)
    parser.set_defaults(handler=_main)


def _main(args) -> int:
    check_options(args.workers, args.scheduler)  # bad options: say so before touching --out
    # The lock before the executor: a second run is refused before it starts any workers.
    with folder_lock(Path(args.out)), executor_for(args) as executor:
        report = reproduce(
            args.profile,
            args.out,
            device=args.device,
            data_dir=args.data_dir,
            force=args.force,
            skip=tuple(args.skip),
            executor=executor,
        )
    print(report.summary())
    return 0 if report.ok else 1


def empirical_available() -> bool:
    """Whether the ``empirical`` extra (torch) is installed."""
    return importlib.util.find_spec("torch") is not None


class Report:
    """What a reproduction produced: stage results, artifacts, timings."""

    def __init__(self, out: Path, profile: str):
        self.out = out
        self.profile = profile
        self.results: dict = {}
        self.artifacts: list[Path] = []
        self.notes: list[str] = []
        self.seconds = 0.0
        self.timings: dict[str, float] = {}  # seconds of each stage computed (not reused)
        self.ok = True

    def summary(self) -> str:
        lines = [f"mialaw reproduce --profile {self.profile}: {self.seconds:.0f} s -> {self.out}"]
        if self.timings:
            took = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.timings.items())
            lines.append(f"  time per stage: {took}")
        lines += [f"  note: {n}" for n in self.notes]
        tables = [p for p in self.artifacts if p.suffix == ".md"]
        for table in tables:
            if table.name == "slopes.md":
                lines += ["", table.read_text()]
        lines.append(f"  {len(self.artifacts)} artifacts written (figures/, tables/, paper.md)")
        return "\n".join(lines)


def reproduce(
    profile: str = "quick",
    out=DEFAULT_OUT,
    *,
    device: str = "auto",
    data_dir=None,
    force: bool = False,
    skip: tuple[str, ...] = (),
    stream=None,
    executor=None,
) -> Report:
    """Run every stage of ``profile`` into ``out`` and write the figures, tables and paper.

    ``executor`` (None: serial, in this process) runs the simulated S-points and the empirical
    cells, e.g. a Dask client's ``get_executor()``; the results do not depend on it. ``out`` is
    locked for the whole run (ValueError if another run holds it). ``data_dir`` (None: each
    dataset's installed or cached copy) is where the empirical stages read their datasets; it is
    not part of a stage's configuration (the same data give the same cells wherever they lie).
    """

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}; got {profile!r}")
    out = Path(out)
    with folder_lock(out):
        where = Where(device, None if data_dir is None else str(data_dir))
        return _reproduce(profile, out, where, force, skip, stream, executor)


@dataclass(frozen=True)
class Where:
    """Where the empirical stages run and read their data (not part of any stage's key)."""

    device: str = "auto"
    data_dir: str | None = None

    def options(self) -> dict:
        """RunConfig options: the device, and the data folder when one is given."""
        return {"device": self.device} | ({"data_dir": self.data_dir} if self.data_dir else {})


def _reproduce(profile: str, out: Path, where: Where, force, skip, stream, executor) -> Report:
    spec = PROFILES[profile]
    out.mkdir(parents=True, exist_ok=True)
    stream = stream if stream is not None else sys.stderr
    start = time.perf_counter()
    report = Report(out, profile)
    with_empirical = "empirical" not in skip and bool(spec.empirical)
    if with_empirical and not empirical_available():
        with_empirical = False
        report.notes.append(
            "empirical stage skipped: the 'empirical' extra is not installed "
            '(pip install -e ".[empirical]")'
        )
        print(f"note: {report.notes[-1]}", file=stream)
    plan, needs = _plan(spec, out, where, skip, with_empirical, executor)
    _plan_study(spec, out, skip, with_empirical, executor, report.results, plan, needs)
    remove_temporaries(out)  # left by killed runs; we hold the folder's lock
    runner = StageRunner(out, total=len(plan) + 1, stream=stream, force=force)
    print_plan(runner, plan, profile, stream)

    # Serial runs fill the cold caches (kernels, features) in a helper process meanwhile.
    warm_tasks = tasks_for(plan, runner, spec, where.options()) if executor is None else []
    with Warmup(warm_tasks) as warm:
        _run_plan(runner, plan, needs, report, stream, warm)
    report.timings = dict(runner.timings)
    if "derive" in report.results and not report.results["derive"]["all_verified"]:
        report.ok = False
        report.notes.append("a derivation step failed to verify (see derivation.txt)")
    print(f"[{len(plan) + 1}/{len(plan) + 1}] figures and tables", file=stream, flush=True)

    begun = time.perf_counter()
    report.artifacts = write_outputs(report.results, spec, out, notes=report.notes)
    report.timings["figures and tables"] = time.perf_counter() - begun
    report.seconds = time.perf_counter() - start
    write_timings(out, report, runner)
    return report


def write_timings(out: Path, report: Report, runner: StageRunner) -> None:
    """``OUT/timings.json``: this run's wall time, each computed stage's wall and CPU time, and
    which stages were reused (a resumed or partly reused run says so rather than passing for a
    run from nothing)."""

    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    summary = {
        "profile": report.profile,
        "wall_s": round(report.seconds, 3),
        "stages_s": {name: round(s, 3) for name, s in report.timings.items()},
        "stages_cpu_s": {name: round(s, 3) for name, s in runner.cpu.items()},
        "reused": list(runner.reused),
        "cores": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in load],
    }
    write_json_atomic(out / "timings.json", summary)  # whole or not at all, like every stage


def _plan(spec, out: Path, where: Where, skip, with_empirical: bool, executor):
    """The stages to run, in order, as (name, config, compute, estimate_s), and which stages
    each one needs ({name: {names}})."""

    plan = []
    if "derive" not in skip:
        plan.append(("derive", {}, fn.derive, *cost.derive()))
    if "theory" not in skip:
        compute = lambda: fn.theory(spec)  # noqa: E731
        plan.append(("theory", fn.theory_config(spec), compute, *cost.theory(spec.theory)))
    if "simulate" not in skip:
        for sim in spec.simulations:
            compute = lambda s=sim: fn.simulate(s, executor=executor)  # noqa: E731
            estimate = cost.simulation(sim.options)
            plan.append((f"simulate-{sim.label}", sim.options, compute, *estimate))
    configs = {
        emp.label: emp.options | {"device": where.device, "analysis": fn.EMPIRICAL_ANALYSIS_VERSION}
        for emp in spec.empirical
    }
    if with_empirical:
        for emp in spec.empirical:
            run_dir = out / "runs" / emp.label
            # The data folder enters the run's configuration, not the stage's key.
            located = replace(emp, options=emp.options | where.options())
            compute = partial(fn.empirical, located, run_dir, where.device, executor=executor)
            estimate = cost.empirical(emp.options)
            plan.append((f"empirical-{emp.label}", configs[emp.label], compute, *estimate))
    # The regression across datasets (the published model is judged leaving a dataset out):
    # every image dataset together; the feature-space `gaussian` draws are not images.

    image_runs = [
        e for e in spec.empirical if e.options["dataset"] not in FEATURE_SPACE and e.role == "main"
    ]
    if with_empirical and len({e.options["dataset"] for e in image_runs}) > 1:
        dirs = [out / "runs" / e.label for e in image_runs]
        # Keyed by the runs' own configurations: redone whenever one of them changes.
        config = {e.label: config_key(configs[e.label]) for e in image_runs}
        combined = lambda: fn.empirical_combined(dirs)  # noqa: E731
        plan.append(("empirical-combined", config, combined, *cost.analysis(len(dirs))))
        return plan, {"empirical-combined": {f"empirical-{e.label}" for e in image_runs}}
    return plan, {}


def _plan_study(spec, out: Path, skip, with_empirical: bool, executor, results, plan, needs):
    """Append the stages that read other stages or runs: the shadow-count study (real and
    simulated) and the regression held out by backbone (full profile)."""

    version = {"study": study.STUDY_VERSION}
    if spec.shadow_study and "simulate" not in skip:
        options = study.simulated_shadow_options(spec.shadow_study[1])
        compute = lambda: study.simulated_shadows(options, executor=executor)  # noqa: E731
        estimate = cost.simulations(options)
        plan.append(("shadows-simulated", {"options": options} | version, compute, *estimate))
    if not with_empirical:
        return
    labels = {emp.label: emp for emp in spec.empirical}
    key = lambda label: config_key(labels[label].options)  # noqa: E731
    if spec.shadow_study and spec.shadow_study[0] in labels:
        label, counts = spec.shadow_study
        config = {"run": key(label), "shadows": list(counts)} | version
        compute = lambda: study.shadow_study(out / "runs" / label, counts)  # noqa: E731
        plan.append(("shadows", config, compute, *cost.analysis(len(counts), per=20.0)))
        needs["shadows"] = {f"empirical-{label}"}
    if spec.backbone_study and set(spec.backbone_study[1]) <= set(labels):
        fit_on, runs = spec.backbone_study
        config = {label: key(label) for label in runs} | {"fit_on": fit_on} | version

        def compute():
            points = {label: results[f"empirical-{label}"]["points"] for label in runs}
            return study.backbone_regression(points, fit_on)

        plan.append(("regression-backbones", config, compute, *cost.analysis(len(runs))))
        needs["regression-backbones"] = {f"empirical-{label}" for label in runs}
    _plan_mechanism(spec, out, labels, key, results, plan, needs)
    plan_transfer(spec, labels, key, results, plan, needs)


def _plan_mechanism(spec, out: Path, labels, key, results, plan, needs) -> None:
    """The mechanism stage (per-example gaps, the calibrated bridge) where the profile has its
    runs (full profile)."""

    runs = mech.plan_labels(spec)
    if not any(labels[label].role == "mechanism" for label in runs if label in labels):
        return
    config = {label: key(label) for label in runs} | {"mechanism": mech.MECHANISM_VERSION}
    compute = lambda: mech.mechanism(out, runs, results)  # noqa: E731
    plan.append(("mechanism", config, compute, *cost.analysis(len(runs), per=8.0)))
    needs["mechanism"] = {f"empirical-{label}" for label in runs}


def print_plan(runner, plan, profile: str, stream) -> None:
    """Before anything runs: each stage, the cells it will compute (none if it is reused) and
    its estimated time on 2 cores, and the total."""

    rows, total = [], 0.0
    for name, config, _compute, estimate, (count, unit) in plan:
        if not runner.force and runner.load(name, config) is not None:
            rows.append((name, "reused", "0 s"))
            continue
        total += estimate
        rows.append((name, f"{count} {unit}", f"~{fmt_seconds(estimate)}"))
    width = max((len(r[0]) for r in rows), default=0)
    cells = max((len(r[1]) for r in rows), default=0)
    print(f"plan of --profile {profile}: {len(plan)} stages, then figures and tables", file=stream)
    for name, what, when in rows:
        print(f"  {name:<{width}}  {what:<{cells}}  {when}", file=stream)
    if not total:
        print("  nothing to compute: every stage is reused", file=stream, flush=True)
        return
    print(
        f"  estimated {fmt_seconds(total)} of computing on 2 cores (a first run also compiles "
        "the simulation kernels and extracts the features: seconds for the quick profile, "
        "some 15 minutes for the full one)",
        file=stream,
        flush=True,
    )


def _run_plan(runner, plan, needs: dict, report: Report, stream, warm) -> None:
    """Run (or reuse) each stage into ``report.results``; a stage whose input is missing is
    skipped with a note. ``warm``: the helper filling cold caches (each stage waits for its
    own)."""
    skipped: set[str] = set()
    for name, config, compute, estimate, _cells in plan:
        missing = sorted(needs.get(name, set()) & skipped)
        if missing:  # a stage that builds on a skipped one is skipped too, with a note
            skipped.add(name)
            report.notes.append(f"{name} skipped: it needs {', '.join(missing)}")
            print(f"note: {report.notes[-1]}", file=stream)
            continue
        warm.wait(name)
        try:
            report.results[name] = runner.run(name, config, compute, estimate)
        except FileNotFoundError as err:
            # A dataset or weight file that is not on this machine: say how to get it, carry on.
            if not name.startswith("empirical-"):
                raise
            skipped.add(name)
            report.notes.append(f"{name} skipped: {err}")
            print(f"note: {report.notes[-1]}", file=stream)
