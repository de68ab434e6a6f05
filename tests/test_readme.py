"""README.md's examples run: its Python blocks, and every command it documents.

A command is a line of a ```bash block (split at "&&") or an inline `code` span that starts like
one (mialaw, python -m, pip, pytest, dask). Each is either run here, in README's order in one
folder, at a tiny size (SUBSTITUTIONS and TINY_OPTIONS say how), or exercised by a named other
test (ELSEWHERE), or is a fragment of a sentence rather than a command (FRAGMENTS). A command in
none of these tables fails ``test_every_readme_command_is_accounted_for``: a new README command
needs a test.
"""

import ast
import importlib
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from mialaw.paper.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TEXT = README.read_text()
COMMAND_WORDS = ("mialaw", "python -m", "pip ", "pytest", "dask")

# README text -> what runs here instead (the profiles README names take minutes; the smoke
# profile's derive and empirical stages are run by tests/test_reproduce.py).
SUBSTITUTIONS = {
    "--profile quick": "--profile smoke --skip derive empirical",
    "--profile full": "--profile smoke --skip derive empirical",
    # README's two audit examples are alternatives with the same --out, which refuses an audit
    # of other data: the second gets its own folder.
    "--images photos/ --backbone efficientnet-lite0 --out audit": (
        "--images photos/ --backbone efficientnet-lite0 --out audit-images"
    ),
}
# Options appended (argparse keeps the last value) to make a command tiny.
TINY_OPTIONS = {
    "mialaw audit": "--shadows 4 --fpr 0.1 --no-progress",
    "mialaw empirical bridge": "--resamples 100 --intervals 20",
    "python -m mialaw.simulate.bench": "--quick --repeat 1",
}
_DASK_LOCAL = "tests/test_executors.py::test_readme_section_commands_run_on_two_local_workers"
_DASK_REMOTE = "tests/test_executors.py::test_cli_on_an_external_dask_scheduler_matches_serial"
# Commands another test runs: "tests/FILE.py::TEST" (which must exist) or ".ci/run" (the CI
# script, which must contain the command).
ELSEWHERE = {
    'pip install -e ".[all]"': "tests/test_readme.py::test_install_extras_exist",
    'pip install -e ".[test]"': ".ci/run",
    "pip install torch==2.13.0": ".ci/run",
    "pytest": ".ci/run",
    "pytest -m slow": ".ci/run",
    # The same benchmarks at their --tiny sizes (bench_film's tiny run takes minutes).
    "python -m mialaw.empirical.bench": (
        "tests/test_feature_speed.py::test_bench_runs_without_arguments"
    ),
    "python -m mialaw.empirical.bench_film": (
        "tests/test_empirical_film.py::test_benchmark_runs_at_tiny_size"
    ),
    "python -m mialaw.paper.bench_executors": (
        "tests/test_executors.py::test_benchmark_runs_at_tiny_size"
    ),
    'pip install -e ".[cluster]"': "tests/test_readme.py::test_install_extras_exist",
    # The Dask section: a scheduler and a worker process on 127.0.0.1, and the study's simulated
    # stages sent to them.
    "dask scheduler --port 8786": _DASK_REMOTE,
    "dask worker tcp://HOST:8786 --nworkers 4 --nthreads 1": _DASK_REMOTE,
    "mialaw reproduce --profile full --out /shared/results --scheduler tcp://HOST:8786": (
        _DASK_REMOTE
    ),
}
# Patterns of commands another test reads from README itself and runs as they are.
ELSEWHERE_PATTERNS = {r"mialaw (simulate|empirical run) .* --workers 2": _DASK_LOCAL}
# Inline spans that name a command inside a sentence; the complete commands are in the tour.
FRAGMENTS = {
    "mialaw",
    "mialaw empirical bridge RUN --from-shots S0",  # the synopsis; the tour's line runs
    "mialaw COMMAND: error: ...",  # the shape of an error line
    "mialaw --debug ...",
    "mialaw empirical fit",
    "mialaw empirical bridge",
    "mialaw simulate",
    "mialaw empirical run",
    "mialaw reproduce",
    "mialaw reproduce --scheduler",
    "dask worker",
    "mialaw simulate --out DIR",
    "mialaw empirical run ... --json",
    "mialaw simulate ... --json",
    "mialaw audit",
    "mialaw predict",
}


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", TEXT, flags=re.S)


def _bash_commands() -> list[str]:
    commands = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


def _inline_commands() -> list[str]:
    prose = re.sub(r"```.*?```", "", TEXT, flags=re.S)
    spans = (" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose))
    # `mialaw.theory.lira.lira_scores(...)` is a Python name, not a command.
    return [s for s in spans if s.startswith(COMMAND_WORDS) and not s.startswith("mialaw.")]


def readme_commands() -> list[str]:
    """Every command README documents, in order of appearance within bash blocks then prose."""
    return list(dict.fromkeys(_bash_commands() + _inline_commands()))


def _elsewhere(command: str) -> str | None:
    """The test that runs ``command`` if another one does."""
    if command in ELSEWHERE:
        return ELSEWHERE[command]
    found = [t for p, t in ELSEWHERE_PATTERNS.items() if re.fullmatch(p, command)]
    return found[0] if found else None


def _runs_here(command: str) -> bool:
    return _elsewhere(command) is None and command not in FRAGMENTS


def _tiny(command: str) -> str:
    for text, instead in SUBSTITUTIONS.items():
        command = command.replace(text, instead)
    for prefix, options in TINY_OPTIONS.items():
        if command.startswith(prefix + " ") or command == prefix:
            command = f"{command} {options}"
    return command


def test_readme_opens_with_the_two_commands():
    first = _blocks("bash")[0].strip().splitlines()
    assert first[0].startswith('pip install -e ".[all]" && mialaw reproduce --profile quick')
    assert first[1] == 'pip install -e ".[test]" && pytest'


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(_blocks("python")[index], f"README python block {index}", "exec"), {})


def test_commands_are_found_in_blocks_and_prose():
    commands = readme_commands()
    assert sum(c.startswith("mialaw ") for c in _blocks("bash")[1].splitlines()) >= 6  # the tour
    assert "pytest" in commands and "mialaw audit" in commands  # split at &&; a prose span
    assert "mialaw.theory.lira.lira_scores" not in " ".join(commands)  # a name, not a command


def test_every_readme_command_is_accounted_for():
    runnable = ("mialaw ", "python -m mialaw.")  # what _execute can run in this process
    unaccounted = [c for c in readme_commands() if _runs_here(c) and not c.startswith(runnable)]
    assert not unaccounted, (
        "README commands that no test runs (run them in tests/test_readme.py, or name the test "
        f"that does in ELSEWHERE): {unaccounted}"
    )
    commands = readme_commands()
    stale = sorted((set(ELSEWHERE) | FRAGMENTS) - set(commands))
    stale += [p for p in ELSEWHERE_PATTERNS if not any(re.fullmatch(p, c) for c in commands)]
    assert not stale, f"entries of the tables that README no longer has: {stale}"


def _test_exists(reference: str) -> bool:
    if reference == ".ci/run":
        return True  # checked per command below
    path, name = reference.split("::")
    tree = ast.parse((ROOT / path).read_text())
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body)


@pytest.mark.parametrize("command", [c for c in readme_commands() if _elsewhere(c)])
def test_commands_run_elsewhere_are_run_there(command):
    reference = _elsewhere(command)
    assert _test_exists(reference), f"{command!r}: {reference} does not exist"
    if reference == ".ci/run":
        lines = (ROOT / ".ci/run").read_text().splitlines()
        ci = [line.replace(" -q", "").strip() for line in lines]  # the quiet flag aside
        assert any(line == command or line.startswith(command + " ") for line in ci), command


def test_install_extras_exist():
    """README's `pip install -e ".[EXTRA]"` lines name extras that pyproject.toml defines, and
    the extras those name exist too (CI installs ".[test]" only)."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    named = re.findall(r'pip install -e\s+"\.\[(\w+)\]"', TEXT)
    assert {"all", "test"} <= set(named) and all(name in extras for name in named), named
    for extra in named:
        for requirement in extras[extra]:
            if requirement.startswith("mialaw["):
                inner = requirement[len("mialaw[") : -1].split(",")
                assert set(inner) <= set(extras), (extra, requirement)


# --------------------------------------------------------------------------- running them
def _user_files(folder: Path) -> None:
    """What README's commands expect the user to have: features and labels (X.npy, y.npy), an
    image folder per class (photos/), and LiRA runs in the reference code's layout (exp/)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    chosen = np.flatnonzero(digits.target < 2)[:60]
    np.save(folder / "X.npy", digits.data[chosen])
    np.save(folder / "y.npy", digits.target[chosen])
    rng = np.random.default_rng(0)
    for c, name in enumerate(("cats", "dogs")):
        (folder / "photos" / name).mkdir(parents=True)
        for i in range(14):
            pixels = rng.integers(0, 256, (8, 8, 3)) // (2 - c)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / "photos" / name / f"{i}.png")
    for run, models in (("cifar10", 20), ("s16", 16), ("s64", 16), ("s256", 16)):
        _reference_run(folder / "exp" / run, models, rng)


def _reference_run(root: Path, models: int, rng) -> None:
    """experiment-m_M/keep.npy and scores/<epoch>.npy, as the reference code writes them."""
    first = rng.random((models // 2, 400)) < 0.5
    keep = np.empty((models, 400), bool)
    keep[0::2], keep[1::2] = first, ~first
    stats = rng.standard_normal((models, 400, 2)) + 0.5 * keep[:, :, None]
    for m in range(models):
        folder = root / f"experiment-{m}_{models}"
        (folder / "scores").mkdir(parents=True)
        np.save(folder / "keep.npy", keep[m])
        np.save(folder / "scores" / "0000000100.npy", stats[m])


def _execute(command: str) -> int:
    words = shlex.split(command)
    if words[0] == "mialaw":
        run, argv = main, words[1:]
    else:  # python -m MODULE ...
        run, argv = importlib.import_module(words[2]).main, words[3:]
    try:
        return run(argv) or 0
    except SystemExit as done:  # --help
        return done.code or 0


@pytest.mark.slow
def test_readme_commands_run(tmp_path, monkeypatch, capsys):
    """In README's order, in one folder: `empirical fit` reads what `empirical run` wrote."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIALAW_CACHE", str(tmp_path / "cache"))
    _user_files(tmp_path)
    ran = []
    for command in filter(_runs_here, readme_commands()):
        tiny = _tiny(command)
        assert _execute(tiny) == 0, tiny
        assert capsys.readouterr().out.strip(), f"{tiny} printed nothing"
        ran.append(command)
    assert sum(c.startswith("mialaw empirical") for c in ran) >= 5 and len(ran) >= 15, ran
