"""Property-based fuzz of the command line: argument values (typical, edge and absurd) and crafted
files. Whatever the input, a command ends with status 0 or 2, never a traceback (every stderr line
is ``mialaw ...``), leaves no temporary file, and stays within a bounded memory (what its arguments
would need beyond ``MIALAW_MEMORY_LIMIT`` is refused before it is allocated).

The default profile runs a fixed, small set of examples (conftest.py); the slow test searches
many more.
"""

from __future__ import annotations

import json
import resource
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mialaw.paper.cli import main

LIMIT = "1G"  # MIALAW_MEMORY_LIMIT while fuzzing
EDGES = ["0", "-1", "1e-300", "1e300", "nan", "inf", "-inf", "1e30", "10" * 16, "x", "", "-0"]


def numbers(typical: list[str]) -> st.SearchStrategy[str]:
    """Float argument text: mostly typical values, often an edge, sometimes any float or int."""
    common = st.sampled_from(typical)
    return st.one_of(
        common,
        common,
        common,
        st.sampled_from(EDGES),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(-(10**30), 10**30).map(str),
    )


def integers(typical: list[str]) -> st.SearchStrategy[str]:
    """Integer argument text: mostly typical values, else edges and any integer."""
    common = st.sampled_from(typical)
    edges = st.sampled_from(["0", "-1", "1000000000", "10" * 16, "1e3", "x"])
    return st.one_of(common, common, common, edges, st.integers(-(10**30), 10**30).map(str))


def run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def check(argv, code, err, folder: Path | None = None) -> None:
    """Status 0 or 2, each stderr line ``mialaw ...`` (warnings, then at most one error), and no
    temporary file or lock left in ``folder``."""
    event(f"status {code}" + (f": {err.split(': error: ')[-1][:40]}" if code else ""))
    assert code in (0, 2), (argv, code, err[-3000:])
    lines = err.strip().splitlines()
    assert "Traceback" not in err and all(line.startswith("mialaw") for line in lines), (argv, err)
    if code == 2:
        assert lines and ": error: " in lines[-1], (argv, err)
        assert "not enough memory" not in err, (argv, err)  # an allocation the estimate missed
        assert sum(": error: " in line for line in lines) == 1, (argv, err)
    if folder is not None:
        left = [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name == ".lock"]
        assert not left, (argv, left)


@pytest.fixture
def bounded(monkeypatch):
    """A memory limit for the fuzzed commands, and the check that this process stayed in it."""
    monkeypatch.setenv("MIALAW_MEMORY_LIMIT", LIMIT)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 1.5 * 2**20, f"the fuzzed commands took {grown_kib / 2**20:.1f} GiB more"


FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

theory_args = st.fixed_dictionaries(
    {
        "--dim": integers(["2", "8", "64"]),
        "--sigma": numbers(["1", "0.5", "3"]),
        "--classes": integers(["2", "3"]),
        "--shots": st.lists(numbers(["1", "16", "1e4", "1e16"]), min_size=1, max_size=3),
        "--fpr": st.lists(numbers(["0.1", "0.01", "1e-12"]), min_size=1, max_size=2),
        "--test": st.sampled_from(["lira", "exact", "np"]),
    }
)


def argv_of(options: dict) -> list[str]:
    argv = []
    for key, value in options.items():
        values = value if isinstance(value, list) else [value]
        argv += [key, *values]
    return argv


@FUZZ
@given(options=theory_args, pooled=st.booleans())
def test_theory_tpr_survives_any_arguments(options, pooled, capsys, bounded):
    argv = ["theory", "tpr", *argv_of(options), *(["--pooled"] if pooled else []), "--json"]
    check(argv, *run(argv, capsys))


@FUZZ
@given(
    epsilon=st.lists(numbers(["0.5", "1", "8"]), min_size=1, max_size=2),
    delta=numbers(["1e-5", "0"]),
    fpr=numbers(["0.1", "0.001"]),
    law=st.one_of(st.none(), st.tuples(numbers(["-0.5", "-1"]), numbers(["0", "-1"]))),
    dim=integers(["8", "64"]),
)
def test_theory_dp_shots_survives_any_arguments(epsilon, delta, fpr, law, dim, capsys, bounded):
    argv = ["theory", "dp-shots", "--epsilon", *epsilon, f"--delta={delta}"]
    argv += [f"--fpr={fpr}", f"--dim={dim}"]
    if law is not None:
        argv += ["--power-law", *law]
    check(argv, *run(argv, capsys))


@FUZZ
@given(
    options=st.fixed_dictionaries(
        {
            "--dim": integers(["2", "8"]),
            "--sigma": numbers(["1", "2"]),
            "--shots": st.lists(numbers(["16", "64"]), min_size=1, max_size=2),
            "--fpr": st.lists(numbers(["0.1", "0.2"]), min_size=1, max_size=2),
            "--targets": numbers(["50", "200"]),
            "--shadows": integers(["6", "8"]),
            "--resamples": integers(["100"]),
            "--seed": integers(["0", "3"]),
            "--fit-min-shots": numbers(["1"]),
        }
    ),
    attack=st.sampled_from(["oracle", "lira-offline", "lira-online"]),
    write=st.booleans(),
)
def test_simulate_survives_any_arguments(options, attack, write, capsys, bounded):
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["simulate", *argv_of(options), f"--attack={attack}", "--engine=numpy"]
        argv += ["--no-progress", "--json"] + (["--out", f"{tmp}/sim"] if write else [])
        check(argv, *run(argv, capsys), Path(tmp))


@FUZZ
@given(
    shots=st.lists(numbers(["10", "1000"]), min_size=1, max_size=2),
    classes=integers(["2", "10"]),
    fpr=numbers(["0.01", "0.1"]),
    target=st.booleans(),
)
def test_predict_survives_any_arguments(shots, classes, fpr, target, capsys, bounded):
    what = "--target-advantage" if target else "--shots"
    argv = ["predict", what, *shots, f"--classes={classes}", f"--fpr={fpr}"]
    check(argv, *run(argv, capsys))


# --------------------------------------------------------------------------- crafted files
DTYPES = ["<f8", "<f4", "|b1", "<i8", "|u1", "<c16", "|O", "<U3", "|V8", "weird"]
SHAPES = st.one_of(
    st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple),
    st.sampled_from([(10**12,), (2**62, 2**62), (-1,), (3, 10**15)]),
)


def crafted_npy(path: Path, data) -> None:
    """A .npy file with a drawn header (dtype, shape, version) and drawn payload bytes."""
    descr = data.draw(st.sampled_from(DTYPES))
    shape = data.draw(SHAPES)
    header = repr({"descr": descr, "fortran_order": data.draw(st.booleans()), "shape": shape})
    header = data.draw(st.sampled_from([header, header[:-3], "garbage", ""]))
    version = data.draw(st.sampled_from([1, 2, 3]))
    text = (header + " " * (64 - (len(header) + 12) % 64) + "\n").encode()
    size = len(text).to_bytes(2 if version == 1 else 4, "little")
    payload = data.draw(st.binary(max_size=200))
    path.write_bytes(b"\x93NUMPY" + bytes([version, 0]) + size + text + payload)


@FUZZ
@given(data=st.data())
def test_theory_target_survives_crafted_npy_files(data, capsys, bounded):
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "x.npy"
        if data.draw(st.booleans()):
            crafted_npy(target, data)
        else:  # a well-formed array of any shape and values
            shape = data.draw(st.lists(st.integers(0, 4), max_size=2).map(tuple))
            values = data.draw(st.sampled_from([0.0, 1.0, np.nan, np.inf, 1e300, -1e-300]))
            np.save(target, np.full(shape, values))
        argv = ["theory", "tpr", "--dim=3", "--shots=16", "--fpr=0.1", "--target", target]
        check(argv, *run(argv, capsys))


@FUZZ
@given(data=st.data())
def test_empirical_score_and_import_survive_crafted_score_folders(data, capsys, bounded):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "scores"
        folder.mkdir()
        for name in data.draw(st.sets(st.sampled_from(["keep", "stats", "labels"]), min_size=1)):
            if data.draw(st.booleans()):
                crafted_npy(folder / f"{name}.npy", data)
            else:
                models, examples = data.draw(st.integers(0, 6)), data.draw(st.integers(0, 20))
                shape = (models, examples) if name != "labels" else (examples,)
                kind = data.draw(st.sampled_from(["bool", "int", "float", "nan"]))
                rng = np.random.default_rng(0)
                value = {
                    "bool": rng.random(shape) < 0.5,
                    "int": rng.integers(0, 3, shape),
                    "float": rng.normal(size=shape),
                    "nan": np.full(shape, np.nan),
                }[kind]
                np.save(folder / f"{name}.npy", value)
        meta = data.draw(
            st.one_of(
                st.none(),
                st.sampled_from(["[1, 2]", "{not json", '"text"', "null", "\xff"]),
                st.fixed_dictionaries({"shots": numbers(["4"]), "classes": numbers(["2"])}).map(
                    lambda d: json.dumps({k: _json_number(v) for k, v in d.items()})
                ),
            )
        )
        if meta is not None:
            (folder / "mialaw.json").write_text(meta)
        argv = ["empirical", "score", folder, "--fpr", "0.1"]
        check(argv, *run(argv, capsys), root)
        argv = ["empirical", "import", folder, "--out", root / "imported"]
        if data.draw(st.booleans()):
            argv += ["--shots", data.draw(numbers(["4"])), "--classes", data.draw(numbers(["2"]))]
        check(argv, *run(argv, capsys), root)


def _json_number(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(options=theory_args, data=st.data())
def test_many_more_crafted_inputs(options, data, capsys, bounded):
    """The same properties, searched much further (theory and crafted .npy targets)."""
    argv = ["theory", "tpr", *argv_of(options), "--json"]
    check(argv, *run(argv, capsys))
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "x.npy"
        crafted_npy(target, data)
        argv = ["theory", "tpr", "--dim=3", "--shots=16", "--fpr=0.1", "--target", target]
        check(argv, *run(argv, capsys))
