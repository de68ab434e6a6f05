"""README.md's examples run: its Python blocks, and the tour's `mialaw` commands."""

import re
import shlex
from pathlib import Path

import pytest

from mialaw.paper.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text()


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", TEXT, flags=re.S)


def test_readme_opens_with_the_two_commands():
    first = _blocks("bash")[0].strip().splitlines()
    assert first[0].startswith('pip install -e ".[all]" && mialaw reproduce --profile quick')
    assert first[1] == 'pip install -e ".[test]" && pytest'


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(_blocks("python")[index], f"README python block {index}", "exec"), {})


def _tour():
    commands = []
    for line in _blocks("bash")[1].splitlines():
        line = line.split("  #")[0].strip()
        if line.startswith("mialaw "):
            commands.append(line)
    return commands


def test_tour_is_not_empty():
    assert len(_tour()) >= 6


def test_tour_commands_run(tmp_path, monkeypatch, capsys):
    # In order, in one folder: `empirical fit` reads what `empirical run` wrote.
    monkeypatch.chdir(tmp_path)
    for command in _tour():
        assert main(shlex.split(command)[1:]) == 0, command
        assert capsys.readouterr().out.strip(), command
