"""`mialaw theory ...`: JSON against an independent quadrature, tables, targets, errors, imports."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest
from scipy.integrate import IntegrationWarning, quad
from scipy.special import ndtr, ndtri

from mialaw.paper.cli import main


def _run(capsys, *argv):
    code = main(["theory", *argv])
    out = capsys.readouterr().out
    return code, out


def _uv_advantage_d3(sigma, shots, fpr):
    """E_x[Φ(a + |Δ|)] - α for d = 3 by nested adaptive quadrature over u = <m, ε> ~ N(0, σ²)
    and p = |ε_⊥| (density p e^{-p²/2σ²}/σ², a χ with 2 degrees of freedom), split at the kink
    u + u² + p² = 0 and at u = -1, 0."""
    a = ndtri(fpr)

    def inner(u):
        def f(p):
            g = u + u * u + p * p
            q = sigma**2 * ((1 + u) ** 2 + p * p)
            adv = ndtr(a + abs(g) / math.sqrt(shots * q)) - fpr if q > 0 else 0.0
            return adv * p * math.exp(-0.5 * (p / sigma) ** 2) / sigma**2

        kink = -u - u * u
        cuts = [0.0] + ([math.sqrt(kink)] if kink > 0 else []) + [14.0 * sigma]
        return sum(
            quad(f, lo, hi, epsabs=0, epsrel=1e-12, limit=200)[0] for lo, hi in zip(cuts, cuts[1:])
        )

    phi = lambda u: math.exp(-0.5 * (u / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    cuts = [-14.0 * sigma - 1.0, -1.0, 0.0, 14.0 * sigma]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationWarning)
        return sum(
            quad(lambda u: inner(u) * phi(u), lo, hi, epsabs=0, epsrel=1e-12, limit=200)[0]
            for lo, hi in zip(cuts, cuts[1:])
        )  # fmt: skip


def test_tpr_json_agrees_with_independent_quadrature(capsys):
    """The issue's done-when criterion: `mialaw theory tpr --average --json` to 1e-8 relative."""
    code, out = _run(
        capsys, "tpr", "--dim", "3", "--sigma", "0.8", "--shots", "1", "50", "1e6",
        "--fpr", "0.1", "0.001", "--average", "--json",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["mode"] == "average" and doc["test"] == "lira" and doc["dim"] == 3
    assert len(doc["points"]) == 6
    worst = 0.0
    for p in doc["points"]:
        want = _uv_advantage_d3(0.8, p["shots"], p["fpr"])
        worst = max(worst, abs(p["advantage"] / want - 1), abs(p["tpr"] / (p["fpr"] + want) - 1))
        assert p["log_advantage"] == pytest.approx(math.log(p["advantage"]), rel=1e-12)
        assert p["log10_advantage"] == pytest.approx(math.log10(p["advantage"]), rel=1e-12)
    assert worst < 1e-8  # measured: 2e-13


def test_law_table_is_readable(capsys):
    argv = ["tpr", "--dim", "64", "--sigma", "1", "--shots", "1", "10", "100", "1000", "10000"]
    argv += ["--fpr", "0.1", "0.01", "0.001"]
    code, table = _run(capsys, *argv)
    assert code == 0
    _, out = _run(capsys, *argv, "--json")
    points = json.loads(out)["points"]
    rows = [line.split() for line in table.splitlines() if line[:10].strip().isdigit()]
    assert len(rows) == 15 == len(points)
    assert "shots" in table and "log10 adv" in table and "slope" in table
    for row, p in zip(rows, points, strict=True):
        assert float(row[0]) == p["shots"] and float(row[1]) == p["fpr"]
        assert float(row[2]) == pytest.approx(p["tpr"], rel=1e-5)
        assert float(row[3]) == pytest.approx(p["advantage"], rel=1e-4)
    # local slopes in the last rows approach -1/2 from below
    assert all(-0.7 < float(row[5]) < -0.5 for row in rows[4::5])


def test_target_file(capsys, tmp_path):
    x = np.array([1.7, -0.4, 0.9])
    path = tmp_path / "x.npy"
    np.save(path, x)
    code, out = _run(
        capsys, "tpr", "--dim", "3", "--sigma", "0.5", "--shots", "2", "1e8",
        "--fpr", "0.01", "--target", str(path), "--json",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["mode"] == "target" and doc["target"] == str(path)
    gap, q = x @ (x - np.eye(3)[0]), 0.25 * x @ x
    for p in doc["points"]:
        want = ndtr(ndtri(0.01) + abs(gap) / math.sqrt(p["shots"] * q))
        assert p["tpr"] == pytest.approx(want, rel=1e-12)
        const = math.log(abs(gap) / math.sqrt(2 * math.pi * q))
        asym = -0.5 * math.log(p["shots"]) - 0.5 * ndtri(0.01) ** 2 + const
        assert p["asymptote"] == pytest.approx(asym, rel=1e-12)


def test_pooled_and_np(capsys):
    code, out = _run(
        capsys, "tpr", "--dim", "2", "--shots", "5", "--fpr", "0.1", "--pooled", "--test", "np",
        "--json",
    )  # fmt: skip
    doc = json.loads(out)
    assert code == 0 and doc["mode"] == "pooled" and doc["statistic"] == "lr"
    p = doc["points"][0]
    assert p["achieved_fpr"] == pytest.approx(0.1, rel=1e-9) and p["asymptote"] is None
    assert 0.1 < p["tpr"] <= 1


def test_dp_shots(capsys):
    code, out = _run(
        capsys, "dp-shots", "--epsilon", "1", "2", "--delta", "1e-5", "--fpr", "0.1", "0.01",
        "--dim", "8", "--json",
    )  # fmt: skip
    rows = json.loads(out)["rows"]
    assert code == 0 and len(rows) == 4
    from mialaw.theory.average import average_advantage
    from mialaw.theory.model import GaussianModel

    model = GaussianModel(8)
    for r in rows:
        adv = average_advantage(model, r["shots"], r["fpr"])
        assert adv == pytest.approx(math.expm1(r["epsilon"]) * r["fpr"] + 1e-5, rel=1e-9)
    code, table = _run(capsys, "dp-shots", "--epsilon", "1", "--delta", "1e-5", "--fpr", "0.01")
    assert code == 0 and "shots" in table
    code, out = _run(
        capsys, "dp-shots", "--epsilon", "1", "--delta", "1e-5", "--fpr", "0.001",
        "--power-law", "-0.5", "-0.2", "--json",
    )  # fmt: skip
    row = json.loads(out)["rows"][0]
    assert -0.5 * math.log10(row["shots"]) - 0.2 == pytest.approx(
        math.log10(math.expm1(1) * 0.001 + 1e-5), rel=1e-12
    )


def test_derive_calls_the_derivation(monkeypatch):
    calls = []
    fake = types.ModuleType("mialaw.theory.derivation")
    fake.main = lambda latex=False: calls.append(latex) or 3
    monkeypatch.setitem(sys.modules, "mialaw.theory.derivation", fake)
    assert main(["theory", "derive", "--latex"]) == 3
    assert main(["theory", "derive"]) == 3
    assert calls == [True, False]


HANDLER_ERRORS = [
    ["tpr", "--dim", "0", "--shots", "1", "--fpr", "0.1"],
    ["tpr", "--dim", "3", "--shots", "0.5", "--fpr", "0.1"],
    ["tpr", "--dim", "3", "--shots", "1", "--fpr", "1.5"],
    ["tpr", "--dim", "3", "--sigma", "-1", "--shots", "1", "--fpr", "0.1"],
    ["tpr", "--dim", "3", "--shots", "1", "--fpr", "0.1", "--pooled", "--test", "exact"],
    ["tpr", "--dim", "3", "--shots", "1", "--fpr", "0.1", "--target", "/nonexistent.npy"],
    ["dp-shots", "--epsilon", "-1", "--delta", "1e-5", "--fpr", "0.1"],
    ["dp-shots", "--epsilon", "1", "--delta", "1e-5", "--fpr", "0.1", "--power-law", "1", "0"],
]
PARSER_ERRORS = [
    ["tpr", "--dim", "3", "--shots", "1", "--fpr", "0.1", "--pooled", "--average"],
    ["tpr", "--dim", "3", "--shots", "1", "--fpr", "0.1", "--test", "rmia"],
    ["tpr", "--shots", "1", "--fpr", "0.1"],
    ["tpr", "--dim", "three", "--shots", "1", "--fpr", "0.1"],
    ["nonsense"],
]


@pytest.mark.parametrize("argv", HANDLER_ERRORS)
def test_bad_values_exit_2_with_one_line(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(["theory", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mialaw theory: error: ")


@pytest.mark.parametrize("argv", PARSER_ERRORS)
def test_bad_syntax_exits_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(["theory", *argv])
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err.strip().splitlines()[-1]


def test_target_of_wrong_shape(capsys, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.ones(4))
    with pytest.raises(SystemExit) as info:
        main(["theory", "tpr", "--dim", "3", "--shots", "1", "--fpr", "0.1", "--target", str(path)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shape (3,)" in err[0]


def test_subprocess_error_and_lazy_imports():
    run = subprocess.run(
        [sys.executable, "-m", "mialaw.paper", "theory", "tpr", "--dim", "2", "--shots", "1",
         "--fpr", "2"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1 and "fpr" in run.stderr
    # `mialaw --help` loads no subcommand's module (nor numpy); `mialaw theory ...` loads the
    # theory's command line but neither torch nor sympy (the derivation's, loaded by `derive`).
    probe = (
        "import sys; from mialaw.paper.cli import build_parser; build_parser({argv}); "
        "print(*(m in sys.modules for m in ('mialaw.paper.theory_cli', 'numpy', 'torch', "
        "'sympy')))"
    )
    for argv, loaded in (([], "False False False False"), (["theory"], "True True False False")):
        out = subprocess.run(
            [sys.executable, "-c", probe.format(argv=argv)], capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == loaded
