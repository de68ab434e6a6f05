"""Executors: serial, local processes and Dask distributed give bit-identical sweeps; a worker
killed mid-cell is retried; `--workers`/`--scheduler` on the command line; the benchmark runs."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import io
import json
import multiprocessing
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mialaw.paper.cli import main
from mialaw.paper.executors import SerialExecutor, executor_from
from mialaw.simulate.sweep import SweepConfig, run_sweep

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent
ENV = os.environ | {"HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
ORACLE = SweepConfig(dim=16, sigma=1.0, shots=(4, 16, 64, 256), fpr=(0.1, 0.01), targets=4000)
LIRA = SweepConfig(
    dim=8,
    sigma=1.0,
    shots=(2, 8, 32),
    fpr=(0.1, 0.01),
    targets=300,
    shadows=8,
    attack="lira-online",
)


@pytest.fixture(scope="module")
def cluster(dask_cluster):
    """A real `distributed.LocalCluster`: two single-threaded worker processes (one per session,
    tests/conftest.py)."""
    return dask_cluster


@pytest.fixture(scope="module")
def spawn_pool():
    """Two local processes, started once for the module's sweeps."""
    # spawn: numba's OpenMP threads make fork() unsafe in this process.
    spawn = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        yield pool


def assert_same_sweep(a, b):
    """Every number of every point bit-identical (NaN where NaN), and the same JSON."""
    assert len(a.points) == len(b.points)
    for p, q in zip(a.points, b.points):
        for field in dataclasses.fields(p):
            x, y = getattr(p, field.name), getattr(q, field.name)
            if isinstance(x, str) or x is None:
                assert x == y, field.name
            else:
                assert np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True), field.name
    assert a.dumps() == b.dumps()


# ------------------------------------------------------------------ the executor factory
def test_default_is_serial_and_serial_executor_runs_in_process():
    with executor_from() as executor:
        assert executor is None
    serial = SerialExecutor()
    assert list(serial.map(abs, [-1, 2, -3])) == [1, 2, 3]
    assert serial.submit(os.getpid).result() == os.getpid()
    with pytest.raises(ZeroDivisionError):
        serial.submit(lambda: 1 / 0).result()
    serial.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        serial.submit(os.getpid)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"workers": 0}, "--workers must be an integer >= 1; got 0"),
        ({"workers": -2}, "--workers must be an integer >= 1"),
        ({"workers": 1.5}, "--workers must be an integer >= 1"),
        ({"workers": True}, "--workers must be an integer >= 1"),
        ({"scheduler": ""}, "--scheduler must be the address of a running Dask scheduler"),
        ({"scheduler": "   "}, "--scheduler must be the address"),
        ({"workers": 2, "scheduler": "tcp://127.0.0.1:8786"}, "not both"),
    ],
)
def test_bad_executor_options_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        with executor_from(**kwargs):
            pass


def test_missing_distributed_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ValueError, match=re.escape("pip install 'dask[distributed]'")):
        with executor_from(workers=1):
            pass


def test_unreachable_scheduler_is_a_value_error(monkeypatch):
    from mialaw.paper import executors

    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(ValueError, match="cannot reach a Dask scheduler at tcp://127.0.0.1:9"):
        with executor_from(scheduler="tcp://127.0.0.1:9"):
            pass


def test_run_sweep_rejects_a_non_executor():
    with pytest.raises(ValueError, match="executor must be None"):
        run_sweep(ORACLE, executor="dask")


def test_cli_rejects_workers_with_scheduler(capsys):
    with pytest.raises(SystemExit) as exc:
        main(
            ["simulate", "--dim", "4", "--sigma", "1", "--shots", "4", "--fpr", "0.1"]
            + ["--targets", "100", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]
        )
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# ------------------------------------------------------------------ bit-identical sweeps
@pytest.mark.parametrize("config", [ORACLE, LIRA], ids=["oracle", "lira-online"])
def test_simulate_sweep_is_identical_on_every_executor(config, cluster, spawn_pool):
    serial = run_sweep(config)
    assert_same_sweep(serial, run_sweep(config, executor=SerialExecutor()))
    assert_same_sweep(serial, run_sweep(config, executor=spawn_pool))
    assert_same_sweep(serial, run_sweep(config, executor=cluster))


def test_points_really_ran_on_the_workers(cluster):
    """The cluster is not serial in disguise: the tasks ran in two other processes."""
    from cluster_tasks import pid_after

    pids = set(cluster.map(pid_after, [0.5] * 4))
    assert len(pids) == 2 and os.getpid() not in pids


def test_worker_killed_mid_cell_is_retried_with_the_same_result(cluster, tmp_path):
    from cluster_tasks import KillOnceExecutor

    marker = tmp_path / "killed"
    serial = run_sweep(LIRA)
    retried = run_sweep(LIRA, executor=KillOnceExecutor(cluster, marker, delay_s=0.05))
    killed_pid = int(marker.read_text())
    assert killed_pid != os.getpid()  # a worker died mid-task, and its task ran again elsewhere
    assert_same_sweep(serial, retried)


# ------------------------------------------------------------------ empirical cells
EMPIRICAL = dict(
    dataset="digits", backbone="pixels", classes=(2,), shots=(1, 2, 4), shadows=4, seeds=1
)


def _cells(run_dir, config):
    from mialaw.empirical.cells import read_cell

    return {cell: read_cell(run_dir, *cell) for cell in config.cells()}


def _assert_same_cells(a, b):
    """Every array of every cell bit-identical, except the wall times a cell records."""
    assert a.keys() == b.keys()
    for cell in a:
        assert a[cell].keys() == b[cell].keys(), cell
        compared = [name for name in a[cell] if not name.endswith("_seconds")]
        assert {"keep", "stats", "labels"} <= set(compared)
        for name in compared:
            assert np.array_equal(a[cell][name], b[cell][name], equal_nan=True), (cell, name)


def test_empirical_cells_are_identical_on_a_local_cluster(cluster, tmp_path):
    pytest.importorskip("torch")
    from cluster_tasks import KillOnceExecutor

    from mialaw.empirical.experiment import RunConfig
    from mialaw.empirical.experiment import run_sweep as run_empirical

    config = RunConfig(**EMPIRICAL, device="cpu")
    serial = run_empirical(config, tmp_path / "serial", progress=False, plots=False)
    # A worker is killed in the middle of a cell (while it trains or writes to the store).
    marker = tmp_path / "killed"
    dask = run_empirical(
        config,
        (tmp_path / "dask").absolute(),
        progress=False,
        plots=False,
        executor=KillOnceExecutor(cluster, marker, delay_s=0.05),
    )
    assert marker.exists()
    _assert_same_cells(_cells(tmp_path / "serial", config), _cells(tmp_path / "dask", config))
    # (Every cell read back passed the store's checksum: a kill mid-write tore nothing.)
    assert json.dumps(serial.to_json()["points"]) == json.dumps(dask.to_json()["points"])


# ------------------------------------------------------------------ the command line
def _readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Running on many cores or a cluster (Dask)")
    return text[start : text.index("\n## ", start + 1)]


def _readme_local_commands() -> list[str]:
    block = re.findall(r"```bash\n(.*?)```", _readme_section(), flags=re.S)[0]
    commands = [line.split("  #")[0].strip() for line in block.splitlines()]
    # `reproduce --profile quick` takes minutes; reproduce under Dask is tested below (smoke).
    return [c for c in commands if c.startswith("mialaw ") and "reproduce" not in c]


@pytest.mark.slow
def test_readme_section_commands_run_on_two_local_workers(tmp_path, monkeypatch, capsys):
    commands = _readme_local_commands()
    assert len(commands) >= 2 and all("--workers 2" in c for c in commands)
    monkeypatch.chdir(tmp_path)
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0, command
        assert capsys.readouterr().out.strip(), command


@pytest.fixture
def dask_processes(tmp_path):
    """`dask scheduler` and `dask worker` as separate processes on 127.0.0.1; yields the address.

    Each runs in its own process group, which is killed at the end whatever happened.
    """
    info = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("scheduler", "worker")}
    procs = []

    def start(args, log):
        procs.append(
            subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=ENV, start_new_session=True
            )
        )

    try:
        start(dask + ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                      "--scheduler-file", str(info)], logs["scheduler"])  # fmt: skip
        address = _wait_for_address(info, procs[0], tmp_path / "scheduler.log")
        start(dask + ["worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                      "--local-directory", str(tmp_path / "worker")], logs["worker"])  # fmt: skip
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for log in logs.values():
            log.close()


def _wait_for_address(info: Path, proc, log: Path, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dask scheduler exited: {log.read_text()[-2000:]}")
        try:
            return json.loads(info.read_text())["address"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
    raise TimeoutError(f"no scheduler address after {timeout_s} s: {log.read_text()[-2000:]}")


def _mialaw(args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mialaw.paper", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


SIMULATE = "simulate --dim 16 --sigma 1 --shots 16 64 256 --fpr 0.1 0.01 --targets 4000 --seed 3"


@pytest.mark.slow
def test_cli_on_an_external_dask_scheduler_matches_serial(dask_processes, tmp_path, capsys):
    args = shlex.split(SIMULATE) + ["--json"]
    assert main(args) == 0
    serial = capsys.readouterr().out
    remote = _mialaw(args + ["--scheduler", dask_processes], tmp_path)
    assert remote.returncode == 0, remote.stderr[-3000:]
    assert remote.stdout == serial
    # The whole study's simulated stages, sent to the same cluster, give the same tables.
    skip = ["--skip", "derive", "theory", "empirical"]
    remote = _mialaw(["reproduce", "--profile", "smoke", "--out", "dask", *skip,
                      "--scheduler", dask_processes], tmp_path)  # fmt: skip
    assert remote.returncode == 0, remote.stderr[-3000:]
    from mialaw.paper.reproduce import reproduce

    reproduce("smoke", tmp_path / "serial", skip=tuple(skip[1:]), stream=io.StringIO())
    tables = sorted(p.name for p in (tmp_path / "serial" / "tables").iterdir())
    assert tables and tables == sorted(p.name for p in (tmp_path / "dask" / "tables").iterdir())
    for name in tables:
        serial_bytes = (tmp_path / "serial" / "tables" / name).read_bytes()
        assert (tmp_path / "dask" / "tables" / name).read_bytes() == serial_bytes, name


# ------------------------------------------------------------------ the benchmark
@pytest.mark.slow
def test_benchmark_runs_at_tiny_size(capsys):
    from mialaw.paper import bench_executors

    assert bench_executors.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"speed-up \(serial / 2 workers\): \d+\.\d+x", out), out
    assert re.search(r"per-cell overhead of the Dask path: -?\d+\.\d+ %", out), out
    assert "workload:" in out
