"""Faults: `mialaw reproduce` killed with SIGKILL at random moments resumes to the same tables; two
runs into one --out cannot both write (a lock that a killed holder does not leave behind)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mialaw.paper.stages import LOCK_NAME, folder_lock

ENV = os.environ | {"HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
KILLS = 10  # the slow set's trial; README's `pytest` runs QUICK_KILLS of them
QUICK_KILLS = 1
SEED = 20240601


def _start(out: Path, *extra: str) -> subprocess.Popen:
    """`mialaw reproduce --profile smoke --out OUT` in the background; stderr to OUT.log."""
    log = open(f"{out}.log", "a")
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mialaw.paper",
                "reproduce",
                "--profile",
                "smoke",
                "--device",
                "cpu",
                "--out",
                str(out),
                *extra,
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=ENV,
        )
    finally:
        log.close()  # the child has its own copy


def _finish(proc: subprocess.Popen, timeout_s: float = 600) -> int:
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def _last_stage(log: Path) -> str:
    """The last thing the run said it was doing (for the record of where the kills landed)."""
    steps = re.findall(r"\[\d+/\d+\] [^:\n]+", log.read_text()) if log.exists() else []
    return steps[-1].split("] ", 1)[1] if steps else "starting"


def _tables(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "tables").iterdir())}


def _assert_nothing_torn(out: Path) -> None:
    """No temporary file anywhere, no lock file left, and every JSON written parses."""
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, leftovers
    assert not (out / LOCK_NAME).exists()
    stages = sorted((out / "stages").glob("*.json"))
    assert len(stages) >= 5
    for path in stages + sorted((out / "runs").rglob("*.json")):
        payload = json.loads(path.read_text())  # raises on a torn file
        assert payload, path
    for path in stages:
        assert "result" in json.loads(path.read_text()), path


STEP = re.compile(rb"\[(\d+)/\d+\] (?:[^:\n]+: running|figures and tables)")


def _steps(log: Path, offset: int) -> list[int]:
    """The numbers of the steps the run has begun computing, from byte ``offset`` of ``log``."""
    with open(log, "rb") as fh:
        fh.seek(offset)
        return [int(m.group(1)) for m in STEP.finditer(fh.read())]


def _reference_timeline(out: Path) -> tuple[list[tuple[int, float]], float]:
    """Run the reference uninterrupted; returns when each step began computing (seconds after
    the start) and the whole duration."""
    log = Path(f"{out}.log")
    start, began = time.monotonic(), {}
    proc = _start(out)
    while proc.poll() is None:
        for step in _steps(log, 0):
            began.setdefault(step, time.monotonic() - start)
        time.sleep(0.02)
    assert proc.returncode == 0, log.read_text()[-3000:]
    duration = time.monotonic() - start
    return sorted(began.items(), key=lambda item: item[1]), duration


def _timeline(stamps) -> list[tuple[int, float]]:
    """When each step began, from a run's time-stamped log (conftest's TimedLog)."""
    began = {}
    for seconds, text in stamps:
        for match in STEP.finditer(text.encode()):
            began.setdefault(int(match.group(1)), seconds)
    return sorted(began.items(), key=lambda item: item[1])


def _kill_at(out: Path, moment: float, timeline) -> tuple[float, str] | None:
    """Restart the run and SIGKILL it where the reference was ``moment`` seconds in: within the
    same step, as far into it. A restart skips the steps earlier runs finished, so each kill lands
    where it was aimed even though the run resumes. Returns (seconds after the restart, the step
    the run reported last), or None if the run finished first."""
    log = Path(f"{out}.log")
    offset = log.stat().st_size if log.exists() else 0
    step, began = max(((s, t) for s, t in timeline if t <= moment), default=(0, 0.0))
    start = time.monotonic()
    proc = _start(out)
    # Wait until the restart begins computing this step (or a later one), then as long as the
    # reference had been in it.
    while step and proc.poll() is None and not any(s >= step for s in _steps(log, offset)):
        time.sleep(0.01)
    deadline = time.monotonic() + (moment - began) if step else start + moment
    try:
        proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
        return None
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return round(time.monotonic() - start, 1), _last_stage(log)


@pytest.mark.parametrize(
    "kills",
    [
        # README's trial reads the session's smoke run (getfixturevalue): on the smoke worker
        pytest.param(QUICK_KILLS, marks=pytest.mark.xdist_group("smoke")),
        pytest.param(KILLS, marks=pytest.mark.slow),  # its own reference run
    ],
    ids=lambda k: f"{k}-kills",
)
def test_sigkill_at_random_moments_then_rerun_gives_the_uninterrupted_tables(
    tmp_path, kills, request
):
    if kills == KILLS:  # the slow set: its own uninterrupted run, a process like the killed ones
        reference = tmp_path / "reference"
        timeline, duration = _reference_timeline(reference)
    else:  # the session's smoke run (tests/conftest.py) is the reference
        reference, report = request.getfixturevalue("smoke")
        timeline, duration = _timeline(report.stamps), report.duration
    # Random moments spread over the whole uninterrupted run, from start-up to the figures;
    # more than needed, in case a restart finishes before its kill (two spare for the slow
    # trial, one for README's pytest, where each restart is a tenth of the test's time).
    spare = 2 if kills > QUICK_KILLS else 1
    moments = np.sort(np.random.default_rng(SEED).uniform(0.0, duration, kills + spare))
    out = tmp_path / "killed"
    landed = [kill for m in moments if (kill := _kill_at(out, float(m), timeline)) is not None]
    print(f"reference {duration:.0f} s; kills (seconds after restart, step): {landed}")
    assert len(landed) >= kills, landed
    assert _finish(_start(out)) == 0, Path(f"{out}.log").read_text()[-3000:]
    assert _tables(out) == _tables(reference)
    # paper.md names its own output folder; everything else in it is the same.
    ours = (out / "paper.md").read_text().replace(str(out), "OUT")
    assert ours == (reference / "paper.md").read_text().replace(str(reference), "OUT")
    _assert_nothing_torn(out)
    _assert_nothing_torn(reference)


def test_second_run_into_the_same_out_is_refused_and_sigkill_frees_the_lock(tmp_path):
    out = tmp_path / "out"
    first = _start(out)  # the whole smoke profile: busy long enough for the second to start
    try:
        deadline = time.monotonic() + 120
        while not _holds(out / LOCK_NAME, first.pid):
            assert first.poll() is None, "the first run ended before it was seen holding the lock"
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.05)
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "mialaw.paper",
                "reproduce",
                "--profile",
                "smoke",
                "--out",
                str(out),
            ],  # fmt: skip
            capture_output=True,
            text=True,
            env=ENV,
            timeout=120,
        )
        assert second.returncode == 2
        assert second.stderr.splitlines() == [
            f"mialaw reproduce: error: another run is writing to {out} (pid {first.pid}); "
            "wait for it to finish or use another --out"
        ]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # The OS dropped the killed holder's lock: the folder can be taken at once.
    with folder_lock(out):
        assert int((out / LOCK_NAME).read_text()) == os.getpid()
    assert not (out / LOCK_NAME).exists()


def _holds(lock: Path, pid: int) -> bool:
    try:
        return lock.read_text().strip() == str(pid)
    except FileNotFoundError:
        return False


def test_lock_is_reentrant_for_its_thread_and_refuses_other_threads(tmp_path):
    import threading

    errors = []
    with folder_lock(tmp_path):
        with folder_lock(tmp_path):  # the command line's handler, then reproduce() inside it
            pass
        assert (tmp_path / LOCK_NAME).exists()  # the outer hold goes on
        thread = threading.Thread(target=lambda: _try_lock(tmp_path, errors))
        thread.start()
        thread.join()
    assert len(errors) == 1 and "another run is writing to" in errors[0]
    with folder_lock(tmp_path):  # free again
        pass


def _try_lock(folder, errors):
    try:
        with folder_lock(folder):
            pass
    except ValueError as err:
        errors.append(str(err))
