"""Faults and hostile input for every command that writes: the folder lock, kills and signals at
random moments (inside a cell write too), a full disk, read-only folders, memory, numeric edges
and crafted files. Each ends with one line and a status (2 for errors, 130/143 for interrupts),
no temporaries and no lock left behind, and a rerun that gives what an uninterrupted run gives.

The default part is small; ``@pytest.mark.slow`` tests repeat the kills and signals many times.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from mialaw.paper.cli import main
from mialaw.paper.lock import LOCK_NAME

ENV = os.environ | {"HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
RUN = "--dataset digits --backbone pixels --classes 2 --shots 1 2 4 --shadows 4 --seeds 1 --fpr 0.1"
SIMULATE = "--dim 4 --sigma 1 --shots 16 --fpr 0.1 --targets 200 --resamples 100 --engine numpy"
SEED = 20261203


# --------------------------------------------------------------------------- helpers
def cli(argv, capsys) -> tuple[int, str, str]:
    """``mialaw ARGV`` in this process: (status, stdout, stderr)."""
    argv = argv.split() if isinstance(argv, str) else [str(a) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def mialaw(*argv, preamble: str = "", user: int | None = None, timeout: float = 300):
    """``mialaw ARGV`` in a subprocess (after ``preamble``, Python run first in it)."""
    code = (
        f"{preamble}\nimport sys\nfrom mialaw.paper.cli import main\nsys.exit(main(sys.argv[1:]))"
    )
    setid = None
    if user is not None:

        def setid():
            os.setgid(user)
            os.setuid(user)

    return subprocess.run(
        [sys.executable, "-c", code, *map(str, argv)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
        preexec_fn=setid,
    )


def one_line(err: str) -> str:
    """The stderr of a failed command: exactly one line, ``mialaw ...``, no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mialaw") and "Traceback" not in err, err
    return lines[0]


def leftovers(folder: Path) -> list[Path]:
    """Temporaries and locks under ``folder``."""
    return [p for p in Path(folder).rglob("*") if p.name.endswith(".tmp") or p.name == LOCK_NAME]


def summary(out: Path) -> dict:
    return json.loads((Path(out) / "summary.json").read_text().replace(str(out), "OUT"))


def cells(out: Path) -> dict[str, dict]:
    """Every cell's arrays, but its timings (which no two runs share)."""
    found = {}
    for path in sorted((Path(out) / "cells").rglob("*.npz")):
        with np.load(path) as npz:
            found[path.name] = {
                k: npz[k].tobytes() for k in npz.files if "seconds" not in k and k != "__meta__"
            }
    return found


@contextlib.contextmanager
def held(folder: Path):
    """``folder``'s lock held by another process; yields its pid."""
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom mialaw.paper.lock import folder_lock\n"
        "with folder_lock(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(600)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True, env=ENV
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small finished empirical run (digits, raw pixels): the reference of the kill tests."""
    out = tmp_path_factory.mktemp("reference") / "run"
    code = main(["empirical", "run", *RUN.split(), "--out", str(out), "--no-progress"])
    assert code == 0
    return out


# --------------------------------------------------------------------------- the lock
def _writers(tmp_path: Path, run_dir: Path) -> dict[str, list[str]]:
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((40, 3)))
    np.save(tmp_path / "y.npy", np.repeat([0, 1], 20))
    return {
        "simulate": ["simulate", *SIMULATE.split()],
        "empirical run": ["empirical", "run", *RUN.split(), "--no-progress"],
        "empirical import": ["empirical", "import", str(run_dir), "--shots", "4", "--classes", "2"],
        "empirical export": ["empirical", "export", str(run_dir)],
        "audit": ["audit", "--features", tmp_path / "x.npy", "--labels", tmp_path / "y.npy"],
        "reproduce": ["reproduce", "--profile", "smoke", "--device", "cpu"],
    }


def test_every_writing_command_is_refused_while_another_holds_the_folder(tmp_path, run_dir, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("untouched")
    with held(out) as holder:
        for name, argv in _writers(tmp_path, run_dir).items():
            code, _, err = cli([*argv, "--out", str(out)], capsys)
            assert code == 2, (name, err)
            line = one_line(err)
            assert f"another run is writing to {out} (pid {holder.pid})" in line, line
            assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "keep.txt"], name
    assert (out / "keep.txt").read_text() == "untouched"


def test_a_dead_holders_lock_is_taken_over_and_its_temporaries_swept(tmp_path, capsys):
    out = tmp_path / "sim"
    stale = out / "sub" / ".points.csv.abc123.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_text("torn")
    with held(out) as holder:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert (out / LOCK_NAME).exists()  # the file is left, the flock is gone with its holder
        code, _, err = cli(["simulate", *SIMULATE.split(), "--out", out, "--no-progress"], capsys)
    assert code == 0, err
    assert not leftovers(out) and (out / "sweep.json").is_file()


@pytest.mark.slow
def test_two_concurrent_runs_into_one_folder_one_is_refused_and_the_other_is_complete(
    tmp_path, run_dir
):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "mialaw.paper", "empirical", "run", *RUN.split(), "--out", out]
    first = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 120
        while not (out / LOCK_NAME).exists():
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.02)
        other = "--dataset digits --backbone pixels --classes 2 --shots 4 8 --shadows 4 --fpr 0.1"
        second = mialaw("empirical", "run", *other.split(), "--out", out)
        assert first.wait(timeout=300) == 0, first.stderr.read()
    finally:
        first.kill()
        first.wait()
        first.stderr.close()
    assert second.returncode == 2
    assert "another run is writing to" in one_line(second.stderr)
    # The first run's settings and results, untouched by the second.
    assert summary(out) == summary(run_dir) and cells(out) == cells(run_dir)
    assert not leftovers(out)


# --------------------------------------------------------------------------- kills and signals
KILL_IN_WRITE = """
import os, signal
import numpy as np
real, calls = np.savez, [0]
def savez(fh, *args, **kwargs):
    calls[0] += 1
    if calls[0] == {nth}:  # this cell's file half written, then the process dies
        fh.write(b"PK\\x03\\x04 torn")
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real(fh, *args, **kwargs)
np.savez = savez
"""


def kill_inside_a_cell_write(out: Path, nth: int) -> None:
    done = mialaw(
        "empirical", "run", *RUN.split(), "--out", out, preamble=KILL_IN_WRITE.format(nth=nth)
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert any(p.name.endswith(".tmp") for p in (out / "cells").rglob("*"))  # the torn write


@pytest.mark.slow
@pytest.mark.parametrize("nth", [2])
def test_sigkill_inside_a_cell_write_then_rerun_is_identical_and_clean(tmp_path, run_dir, nth):
    out = tmp_path / "run"
    kill_inside_a_cell_write(out, nth)
    rerun = mialaw("empirical", "run", *RUN.split(), "--out", out, "--no-progress")
    assert rerun.returncode == 0, rerun.stderr
    assert cells(out) == cells(run_dir) and summary(out) == summary(run_dir)
    assert not leftovers(out)


def signal_at(argv, sig: int, delay: float, *, group: bool = False) -> subprocess.CompletedProcess:
    """Start ``mialaw ARGV``, send ``sig`` after ``delay`` seconds (to its whole process group
    when ``group``, as Ctrl-C in a terminal does), wait for it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mialaw.paper", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=delay)
    except subprocess.TimeoutExpired:
        (os.killpg if group else os.kill)(proc.pid, sig)
        out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def check_interrupted(done, sig: int) -> None:
    """Finished (0), or stopped with the one line and 128 + the signal's number (as a shell
    reports it)."""
    if done.returncode == 0:
        return
    # 128 + n, or ended by the signal itself (Python does that when the interrupt went through
    # code run by PyRun_*, e.g. inside a C extension): a shell reports both as 128 + n.
    assert done.returncode in (128 + sig, -sig), (done.returncode, done.stderr[-2000:])
    assert "rerun the same command to resume" in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr and "leaked" not in done.stderr, done.stderr[-2000:]


@pytest.mark.slow
def test_sigterm_mid_run_leaves_no_lock_and_the_rerun_is_identical(tmp_path, run_dir):
    out = tmp_path / "run"
    argv = ["empirical", "run", *RUN.split(), "--out", out, "--no-progress"]
    done = signal_at(argv, signal.SIGTERM, 4.0)
    check_interrupted(done, signal.SIGTERM)
    assert not leftovers(out)
    assert mialaw(*argv).returncode == 0
    assert cells(out) == cells(run_dir) and summary(out) == summary(run_dir)
    assert not leftovers(out)


@pytest.mark.slow
def test_signals_and_kills_at_random_moments_then_rerun_is_identical(tmp_path, run_dir):
    """SIGINT (to the process group, as Ctrl-C), SIGTERM and SIGKILL at random moments of a run,
    SIGKILL inside the k-th cell write; after each, a rerun gives the uninterrupted cells and
    summary and leaves nothing behind."""
    rng = np.random.default_rng(SEED)
    argv = ["empirical", "run", *RUN.split(), "--no-progress"]
    trials = []
    for trial in range(int(os.environ.get("MIALAW_FAULT_TRIALS", "12"))):
        out = tmp_path / f"run{trial}"
        kind = ("SIGINT", "SIGTERM", "SIGKILL", "write")[trial % 4]
        if kind == "write":
            kill_inside_a_cell_write(out, int(rng.integers(1, 4)))
            code = -signal.SIGKILL
        else:
            sig = getattr(signal, kind)
            done = signal_at([*argv, "--out", out], sig, float(rng.uniform(0.5, 8.0)), group=True)
            code = done.returncode
            if sig != signal.SIGKILL:
                check_interrupted(done, sig)
                assert not leftovers(out)
        rerun = mialaw(*argv, "--out", out)
        assert rerun.returncode == 0, rerun.stderr
        assert cells(out) == cells(run_dir) and summary(out) == summary(run_dir), kind
        assert not leftovers(out), kind
        trials.append((kind, code))
    print("trials (signal, status):", trials)
    landed = [code for _, code in trials if code != 0]
    assert len(landed) >= len(trials) // 2, "most signals arrived after the run had finished"


@pytest.mark.slow
def test_ctrl_c_with_two_workers_is_one_line_without_leaks(tmp_path):
    argv = [
        "simulate", *"--dim 16 --sigma 1 --shots 64 256 1024 4096 --fpr 0.1".split(),
        "--targets", "400000", "--workers", "2", "--no-progress", "--out", tmp_path / "sim",
    ]  # fmt: skip
    for sig, delay in ((signal.SIGINT, 10.0), (signal.SIGTERM, 10.0)):
        done = signal_at(argv, sig, delay, group=sig == signal.SIGINT)
        check_interrupted(done, sig)
        if done.returncode:
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert not leftovers(tmp_path / "sim")


# --------------------------------------------------------------------------- the environment
def _no_space(real):
    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith((".npz", ".json", ".csv")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))
        return real(src, dst, *args, **kwargs)

    return replace


def test_a_full_disk_is_one_line_and_leaves_nothing_then_the_rerun_completes(
    tmp_path, run_dir, capsys, monkeypatch
):
    out = tmp_path / "run"
    argv = ["empirical", "run", *RUN.split(), "--out", out, "--no-progress"]
    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", _no_space(os.replace))
        code, _, err = cli(argv, capsys)
        assert code == 2
        assert "no space left on the device writing" in one_line(err)
        assert "rerun the same command" in err
        assert not leftovers(out)
        sim = ["simulate", *SIMULATE.split(), "--out", tmp_path / "sim", "--no-progress"]
        code, _, err = cli(sim, capsys)
        assert code == 2 and "no space left" in one_line(err) and not leftovers(tmp_path / "sim")
    assert cli(argv, capsys)[0] == 0
    assert cells(out) == cells(run_dir) and summary(out) == summary(run_dir)


def test_a_read_only_folder_is_one_line(tmp_path, capsys, monkeypatch):
    """As root, permissions do not stop writes: the OS's answer is patched in here, and a real
    unprivileged user is tried in the next test."""
    real = os.open

    def refuse(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    code, _, err = cli(["simulate", *SIMULATE.split(), "--out", tmp_path / "ro"], capsys)
    assert code == 2
    assert f"permission denied: {tmp_path / 'ro' / LOCK_NAME}" in one_line(err)


# Become `nobody` inside the process, after importing what the commands need: the interpreter
# may live where only root can read (e.g. under /root).
AS_NOBODY = """
import os
import mialaw.empirical.analysis, mialaw.paper.empirical_cli, mialaw.paper.lock
import mialaw.paper.resources, mialaw.paper.simulate_cli, mialaw.simulate.sweep
import mialaw.paper.theory_cli
os.setgid(65534)
os.setuid(65534)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_a_read_only_folder_for_a_real_unprivileged_user(run_dir):
    root = Path(tempfile.mkdtemp(prefix="mialaw-ro-"))
    try:
        os.chmod(root, 0o755)  # readable by everyone, writable by root only
        done = mialaw("simulate", *SIMULATE.split(), "--out", root, preamble=AS_NOBODY)
        assert done.returncode == 2, done.stderr
        assert f"permission denied: {root / LOCK_NAME}" in one_line(done.stderr)
        # A read command on a store it cannot write, with a damaged cell: named, not touched.
        run = root / "run"
        subprocess.run(["cp", "-r", str(run_dir), str(run)], check=True)
        damaged = sorted((run / "cells").rglob("*.npz"))[0]
        damaged.write_bytes(damaged.read_bytes()[:300])
        subprocess.run(["chmod", "-R", "a+rX,go-w", str(root)], check=True)
        done = mialaw("empirical", "fit", run, preamble=AS_NOBODY)
        assert done.returncode == 2, done.stderr
        assert str(damaged) in one_line(done.stderr) and damaged.exists()
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=True)


# --------------------------------------------------------------------------- memory
def test_arguments_that_need_more_memory_than_there_is_are_refused_up_front(tmp_path, capsys):
    huge = tmp_path / "huge.npy"
    with open(huge, "wb") as fh:  # a header claiming 10^12 float64, and no data
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
        )
    np.save(tmp_path / "y.npy", np.zeros(10, int))
    for name in ("experiment-0_2", "experiment-1_2"):
        (tmp_path / "exp" / name / "scores").mkdir(parents=True)
        (tmp_path / "exp" / name / "keep.npy").write_bytes(huge.read_bytes())
        (tmp_path / "exp" / name / "scores" / "0000000100.npy").write_bytes(huge.read_bytes())
    commands = {
        "theory": "theory tpr --dim 1000000000 --sigma 1 --shots 16 --fpr 0.1",
        "dp-shots": "theory dp-shots --dim 1000000000 --epsilon 1 --delta 1e-5 --fpr 0.1",
        "simulate dim": "simulate --dim 1000000000 --sigma 1 --shots 16 --fpr 0.1 --targets 100",
        "simulate targets": "simulate --dim 4 --sigma 1 --shots 16 --fpr 0.1 --targets 1e12",
        "run": f"empirical run {RUN.replace('1 2 4', '1000000000')} --out {tmp_path}/r",
        "audit": f"audit --features {huge} --labels {tmp_path}/y.npy --out {tmp_path}/a",
        "score": f"empirical score {tmp_path}/exp",
        "import": f"empirical import {tmp_path}/exp --shots 4 --classes 2 --out {tmp_path}/i",
    }
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name, argv in commands.items():
        code, _, err = cli(argv, capsys)
        assert code == 2, (name, err[-2000:])
        assert "of memory, more than the" in one_line(err), name
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 2**20, f"a refused command took {grown_kib / 2**20:.1f} GiB more"
    assert not any((tmp_path / d).exists() for d in ("r", "a", "i"))
    code, _, err = cli(f"theory tpr --dim 3 --shots 1 --fpr 0.1 --target {huge}", capsys)
    assert code == 2 and "shape (3,); got (1000000000000,)" in one_line(err)


def test_memory_limit_variable_lowers_the_bound(monkeypatch, capsys):
    monkeypatch.setenv("MIALAW_MEMORY_LIMIT", "100M")
    code, _, err = cli("theory tpr --dim 100 --shots 16 --fpr 0.1", capsys)
    assert code == 2 and "more than the 100 MiB available" in one_line(err)


# --------------------------------------------------------------------------- inputs
def test_numeric_edges_are_refused_with_the_allowed_range(capsys):
    for argv in (
        "theory tpr --dim 8 --sigma 1e300 --shots 16 --fpr 0.1",
        "theory tpr --dim 8 --sigma 1e-300 --shots 16 --fpr 0.1",
        "theory dp-shots --sigma nan --epsilon 1 --delta 1e-5 --fpr 0.1",
        "simulate --dim 8 --sigma 1e-300 --shots 16 --fpr 0.1 --targets 100",
    ):
        code, _, err = cli(argv, capsys)
        assert code == 2 and "--sigma must lie in [0.0001, 1e+100]" in one_line(err), argv


def test_an_existing_file_as_out_is_refused_before_any_work(tmp_path, capsys):
    file = tmp_path / "file"
    file.write_text("mine")
    for argv in (
        ["reproduce", "--profile", "smoke", "--out", file],
        ["simulate", *SIMULATE.split(), "--out", file],
        ["empirical", "run", *RUN.split(), "--out", file],
    ):
        start = time.monotonic()
        code, _, err = cli(argv, capsys)
        assert code == 2 and "exists and is not a directory" in one_line(err), argv
        assert time.monotonic() - start < 20, "refused only after computing"
    assert file.read_text() == "mine"


def test_crafted_interchange_metadata_is_one_line_naming_the_file(tmp_path, run_dir, capsys):
    exported = tmp_path / "exported"
    assert cli(["empirical", "export", run_dir, "--out", exported], capsys)[0] == 0
    folder = sorted(exported.iterdir())[0]
    meta = folder / "mialaw.json"
    for text, message in (
        ("[1, 2]", "must hold a JSON object"),
        ("{not json", "is not valid JSON"),
        (json.dumps(json.loads(meta.read_text()) | {"shots": 10**30}), "--shots must be"),
    ):
        meta.write_text(text)
        out = tmp_path / "imported"
        code, _, err = cli(["empirical", "import", folder, "--out", out], capsys)
        assert code == 2, err
        line = one_line(err)
        assert message in line and (str(meta) in line or "shots" in message), line
        assert not out.exists()


def test_a_linked_duplicate_experiment_folder_is_refused(tmp_path, run_dir, capsys):
    exported = tmp_path / "exported"
    assert cli(["empirical", "export", run_dir, "--out", exported], capsys)[0] == 0
    folder = sorted(exported.iterdir())[0]
    first = sorted(folder.glob("experiment*"))[0]
    (folder / "experiment-99_99").symlink_to(first, target_is_directory=True)
    code, _, err = cli(["empirical", "score", folder], capsys)
    assert code == 2 and "are the same folder (a link)" in one_line(err)


def test_fit_reports_every_damaged_cell_and_modifies_nothing(tmp_path, run_dir, capsys):
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(run_dir), str(run)], check=True)
    files = sorted((run / "cells").rglob("*.npz"))
    files[0].write_bytes(files[0].read_bytes()[:400])  # truncated
    files[1].unlink()
    files[1].mkdir()  # a directory at a cell's address
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    code, _, err = cli(["empirical", "fit", run], capsys)
    assert code == 2
    line = one_line(err)
    assert "2 damaged cell(s), left in place" in line and "rerun `mialaw empirical run`" in line
    assert str(files[0]) in line and str(files[1]) in line
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


@pytest.fixture
def python_sigint():
    """Ctrl-C as a terminal-started mialaw gets it: Python's own SIGINT handler, installed afresh.
    Under pytest-xdist (tests in a varying order per process) the SIGINT half of the next test
    failed in two of five full runs, the signal having no effect, and passed alone; the cause was
    not pinned down (signal.getsignal and the kernel's SIGINT masks stayed the same between
    tests), so the test no longer depends on what earlier tests left in the process."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_sigterm_and_ctrl_c_inside_a_command_release_the_lock_and_leave_nothing(
    tmp_path, capsys, monkeypatch, python_sigint
):
    from mialaw.simulate import sweep

    real = sweep.run_sweep
    for sig in (signal.SIGTERM, signal.SIGINT):
        out = tmp_path / sig.name

        def stopped(*args, sig=sig, **kwargs):
            result = real(*args, **kwargs)
            # To this (the main) thread, while the command holds its folder: os.kill would let
            # the kernel pick any thread of the process, such as a native pool an earlier test
            # left running.
            signal.raise_signal(sig)
            time.sleep(5)
            return result

        monkeypatch.setattr(sweep, "run_sweep", stopped)
        code, _, err = cli(["simulate", *SIMULATE.split(), "--out", out, "--no-progress"], capsys)
        assert code == 128 + sig, err
        assert one_line(err).endswith("; rerun the same command to resume")
        assert not leftovers(out)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored after the command


def test_ctrl_c_inside_a_cell_write_leaves_nothing_and_the_rerun_is_identical(
    tmp_path, run_dir, capsys, monkeypatch
):
    from mialaw.empirical import cache

    real, calls = cache.np.savez, []

    def interrupted(fh, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second cell, half written
            fh.write(b"PK\x03\x04 torn")
            raise KeyboardInterrupt
        return real(fh, *args, **kwargs)

    out = tmp_path / "run"
    argv = ["empirical", "run", *RUN.split(), "--out", out, "--no-progress"]
    with monkeypatch.context() as patch:
        patch.setattr(cache.np, "savez", interrupted)
        code, _, err = cli(argv, capsys)
    assert code == 130 and one_line(err).endswith("interrupted; rerun the same command to resume")
    assert not leftovers(out) and len(calls) == 2
    assert cli(argv, capsys)[0] == 0
    assert cells(out) == cells(run_dir) and summary(out) == summary(run_dir)


def test_interrupt_and_internal_error_lines(capsys, monkeypatch):
    from mialaw.paper import theory_cli

    def boom(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(theory_cli, "model_for", boom)
    code, _, err = cli("theory tpr --dim 3 --shots 1 --fpr 0.1", capsys)
    assert code == 130 and one_line(err).endswith("interrupted; rerun the same command to resume")

    def bug(args):
        raise TypeError("a bug")

    monkeypatch.setattr(theory_cli, "model_for", bug)
    code, _, err = cli("theory tpr --dim 3 --shots 1 --fpr 0.1", capsys)
    assert code == 1 and "internal error (TypeError: a bug); rerun with --debug" in one_line(err)
    with pytest.raises(TypeError, match="a bug"):
        main(["theory", "tpr", "--dim", "3", "--shots", "1", "--fpr", "0.1", "--debug"])
