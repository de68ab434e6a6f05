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

LIMIT = "700M"  # MIALAW_MEMORY_LIMIT while fuzzing (also bounds the time of what runs)
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


@st.composite
def few_faults(draw, typical: dict, kinds: dict, many: tuple = ()) -> dict:
    """Options at typical values but for up to two drawn at random from ``numbers`` or
    ``integers`` (``kinds[key]``): most inputs then reach the computation, each with at most a
    couple of faults. Keys in ``many`` take one to three values."""
    options = {}
    for key, values in typical.items():
        size = draw(st.integers(1, 3)) if key in many else 1
        options[key] = [draw(st.sampled_from(values)) for _ in range(size)]
    for key in draw(st.lists(st.sampled_from(sorted(typical)), max_size=2, unique=True)):
        kind = kinds[key]
        if kind is int:
            hostile = integers(typical[key])
        elif kind is float:
            hostile = numbers(typical[key])
        else:  # a strategy of its own
            hostile = kind(typical[key])
        size = draw(st.integers(0, 3)) if key in many else 1
        options[key] = [draw(hostile) for _ in range(size)]
    return options


THEORY = {"--dim": ["2", "8", "64"], "--sigma": ["1", "0.5", "3"], "--classes": ["2", "3"]}
THEORY |= {"--shots": ["1", "16", "1e4", "1e16"], "--fpr": ["0.1", "0.01", "1e-12"]}


def dims(typical: list[str]) -> st.SearchStrategy[str]:
    """--dim: typical, or too small or too large to run (a valid d of thousands is only slow: the
    slow test's territory)."""
    far = st.one_of(st.integers(-(10**30), 1), st.integers(10**7, 10**30)).map(str)
    return st.one_of(st.sampled_from(typical), st.sampled_from(["0", "1e3", "x", ""]), far)


THEORY_KINDS = {"--dim": dims, "--classes": int, "--sigma": float, "--shots": float, "--fpr": float}
theory_args = few_faults(THEORY, THEORY_KINDS, ("--shots", "--fpr")).flatmap(
    lambda o: st.sampled_from(["lira", "exact", "np"]).map(lambda t: o | {"--test": [t]})
)
SIMULATE = {"--dim": ["2", "8"], "--sigma": ["1", "2"], "--shots": ["16", "64"]}
SIMULATE |= {"--fpr": ["0.1", "0.2"], "--targets": ["50", "200"], "--shadows": ["6", "8"]}
SIMULATE |= {"--resamples": ["100"], "--seed": ["0", "3"], "--fit-min-shots": ["1"]}
SIMULATE_KINDS = {key: float for key in SIMULATE} | {
    key: int for key in ("--shadows", "--resamples", "--seed")
}
SIMULATE_KINDS["--dim"] = dims


def argv_of(options: dict) -> list[str]:
    argv = []
    for key, values in options.items():
        argv += [key, *values]
    return argv


@settings(FUZZ, max_examples=20)  # valid examples compute the exact theory; the slow test does more
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


@settings(FUZZ, max_examples=8)  # each valid example is a whole sweep; the slow test does more
@given(
    options=few_faults(SIMULATE, SIMULATE_KINDS, ("--shots", "--fpr")),
    attack=st.sampled_from(["oracle", "lira-offline", "lira-online"]),
    write=st.booleans(),
)
def test_simulate_survives_any_arguments(options, attack, write, capsys, bounded):
    simulate_once(options, attack, write, capsys)


def simulate_once(options, attack, write, capsys):
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
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(options=theory_args, data=st.data())
def test_many_more_crafted_inputs(options, data, capsys, bounded):
    """The same properties, searched much further (theory, simulate, crafted .npy targets)."""
    argv = ["theory", "tpr", *argv_of(options), "--json"]
    check(argv, *run(argv, capsys))
    simulate = data.draw(few_faults(SIMULATE, SIMULATE_KINDS, ("--shots", "--fpr")))
    attack = data.draw(st.sampled_from(["oracle", "lira-offline", "lira-online"]))
    simulate_once(simulate, attack, data.draw(st.booleans()), capsys)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "x.npy"
        crafted_npy(target, data)
        argv = ["theory", "tpr", "--dim=3", "--shots=16", "--fpr=0.1", "--target", target]
        check(argv, *run(argv, capsys))
