"""Interchange with the reference LiRA code's layout: same TPR, lossless round trips, errors."""

import json
import shlex
import warnings

import numpy as np
import pytest
import scipy.stats
from sklearn.datasets import load_digits

from mialaw.empirical.analysis import fit_runs
from mialaw.empirical.audit_sweep import GivenFeatures
from mialaw.empirical.cell_summary import summarize_cell
from mialaw.empirical.cells import read_cell
from mialaw.empirical.experiment import RunConfig, run_sweep
from mialaw.empirical.interchange import (
    ScoreArrays,
    TiltWarning,
    export_run,
    import_runs,
    read_arrays,
    read_reference,
    read_scores,
    score_arrays,
    write_reference,
)
from mialaw.paper.cli import main
from mialaw.theory.lira import lira_scores
from mialaw.theory.measure import Experiment, measure_tpr

FPR = (0.1, 0.01)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small real run: digits pixels, C = 2, three S, 8 shadows."""
    d = load_digits()
    keep = d.target < 2
    given = GivenFeatures(d.data[keep].astype(np.float32), d.target[keep], "digits2")
    out = tmp_path_factory.mktemp("run")
    config = RunConfig(
        dataset="digits", backbone="pixels", classes=(2,), shots=(4, 8, 16), shadows=8, fpr=FPR
    )
    run_sweep(config, out, features=given, progress=False, plots=False)
    return out


def _cell(run, s):
    return read_cell(run, 2, s, 0)


def _reference_by_hand(root, keep, stats, rng):
    """The reference code's layout written independently of ``write_reference``: folders created
    in shuffled order, two epochs per model (the last by sorted name is the real one)."""
    m_total = keep.shape[0]
    for m in rng.permutation(m_total):
        folder = root / f"experiment-{m}_{m_total}"
        (folder / "scores").mkdir(parents=True)
        np.save(folder / "keep.npy", np.r_[keep[m], rng.random(5) < 0.5])  # longer: cut
        np.save(folder / "scores" / "0000000010.npy", rng.standard_normal(stats[m].shape))
        np.save(folder / "scores" / "0000000100.npy", stats[m])


def test_reference_layout_gives_the_same_tpr_as_the_arrays(run, tmp_path):
    cell = _cell(run, 16)
    _reference_by_hand(tmp_path / "ref", cell["keep"], cell["stats"], np.random.default_rng(0))
    arrays = read_reference(tmp_path / "ref")
    assert np.array_equal(arrays.keep, cell["keep"]) and np.array_equal(arrays.stats, cell["stats"])
    assert arrays.models[:3] == ("experiment-0_10", "experiment-1_10", "experiment-2_10")
    scored = score_arrays(arrays, fpr=FPR)
    assert scored.rotation == "pair rotation"
    # the same arrays scored directly, and the run's own stored scores
    direct = lira_scores(cell["keep"], cell["stats"], online=True, rotation="pairs")
    assert np.allclose(scored.scores["lira_online"], direct, rtol=0, atol=1e-12)
    derived = summarize_cell(cell, FPR).scores["lira_online"]  # what the analysis derives
    assert np.allclose(scored.scores["lira_online"], derived, rtol=0, atol=1e-12)
    expected = measure_tpr(Experiment(direct, cell["keep"]), FPR, seed=0)
    for got, want in zip(scored.measurements["lira_online"], expected):
        assert got.tpr == want.tpr and tuple(got.interval) == tuple(want.interval)
    # an earlier epoch by name gives other scores
    early = read_reference(tmp_path / "ref", epoch=10)
    assert not np.array_equal(early.stats, arrays.stats)


def test_round_trip_run_to_reference_and_back(run, tmp_path):
    written = export_run(run, tmp_path / "ex")
    assert len(written) == 3
    for s in (4, 8, 16):
        cell = _cell(run, s)
        back = read_scores(tmp_path / "ex" / f"C2_S{s}_seed0")
        assert back.layout == "reference"
        for name, got in (
            ("keep", back.keep),
            ("stats", back.stats),
            ("population_stats", back.population_stats),
            ("labels", back.labels),
        ):
            assert got.dtype == cell[name].dtype and np.array_equal(got, cell[name]), name
        assert back.meta["shots"] == s and back.meta["classes"] == 2
    # import the exported folders (S and C read from them) and fit: the same points as the run
    imported = import_runs(sorted((tmp_path / "ex").iterdir()), tmp_path / "im", fpr=FPR)
    for s in (4, 8, 16):
        a, b = _cell(run, s), _cell(imported, s)
        for name in ("keep", "stats", "population_stats"):
            assert np.array_equal(a[name], b[name]), (s, name)
        for name in ("lira_online", "lira_offline", "rmia"):  # imported: as scored on import
            assert np.allclose(summarize_cell(a, FPR).scores[name], b[name], atol=1e-12), name
    ours, theirs = fit_runs([run]), fit_runs([imported])
    strip = ("dataset", "backbone", "learner", "accuracy", "pool_overlap")
    assert [{k: v for k, v in p.items() if k not in strip} for p in ours.points] == [
        {k: v for k, v in p.items() if k not in strip} for p in theirs.points
    ]


def test_dedicated_targets_and_leave_one_out(tmp_path):
    rng = np.random.default_rng(1)
    m, n = 12, 300
    # the reference code's keep: every example IN for exactly half of the models
    keep = rng.uniform(size=(m, n)).argsort(0) < m // 2
    signal = rng.exponential(1.0, n)
    stats = rng.standard_normal((m, n, 2)) + (keep * signal)[:, :, None]
    arrays = read_arrays(_save(tmp_path, keep, stats))
    scored = score_arrays(arrays, targets=[10, 11], fpr=(0.1,))
    assert scored.targets == (10, 11) and scored.labels.shape == (2, n)
    shadows = list(range(10))
    for row, t in enumerate((10, 11)):
        order = shadows + [t]
        want = lira_scores(keep[order], stats[order], rotation="loo", targets=[10])[0]
        assert np.allclose(scored.scores["lira_online"][row], want, atol=1e-12)
    with pytest.warns(TiltWarning, match="leave-one-out"):
        tilted = score_arrays(arrays, fpr=(0.1,))
    assert tilted.rotation.startswith("leave-one-out")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score_arrays(arrays, targets=[0], fpr=(0.1,))  # no warning with named targets


def _save(folder, keep, stats, **extra):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "keep.npy", keep)
    np.save(folder / "stats.npy", stats)
    for name, value in extra.items():
        np.save(folder / f"{name}.npy", value)
    return folder


def test_write_reference_refuses_a_used_folder(tmp_path):
    keep = np.array([[True, False], [False, True]])
    write_reference(tmp_path / "r", keep, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="already holds experiment folders"):
        write_reference(tmp_path / "r", keep, np.zeros((2, 2)))


@pytest.mark.parametrize(
    "keep, stats, message",
    [
        (np.ones((4, 5), dtype=float) * 0.5, np.zeros((4, 5)), "keep must be boolean"),
        (np.ones((4, 5), dtype=bool), np.zeros((4, 6)), "matching keep"),
        (np.ones((4, 5), dtype=bool), np.full((4, 5), np.nan), "finite"),
    ],
)
def test_bad_arrays_are_refused(tmp_path, keep, stats, message):
    with pytest.raises(ValueError, match=message):
        read_arrays(_save(tmp_path / "a", keep, stats))


def test_bad_folders_and_cli(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no experiment"):
        read_scores(tmp_path / "empty")
    folder = tmp_path / "ref" / "experiment-0_2"
    (folder / "scores").mkdir(parents=True)
    np.save(folder / "scores" / "0000000001.npy", np.zeros((3, 2)))
    with pytest.raises(ValueError, match="no keep.npy"):
        read_scores(tmp_path / "ref")
    for command, message in [
        (f"empirical score {tmp_path}/empty", "no experiment"),
        (f"empirical score {tmp_path}/missing", "does not exist"),
        (f"empirical import {tmp_path}/ref --out {tmp_path}/im", "no keep.npy"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(shlex.split(command))
        err = capsys.readouterr().err.strip()
        assert exc.value.code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_cli_score_import_export_fit(run, tmp_path, capsys):
    assert main(shlex.split(f"empirical export {run} --out {tmp_path}/ex")) == 0
    assert "wrote 3 cell(s)" in capsys.readouterr().out
    assert main(shlex.split(f"empirical score {tmp_path}/ex/C2_S16_seed0 --fpr 0.1 --json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layout"] == "reference" and data["rotation"] == "pair rotation"
    command = f"empirical score {tmp_path}/ex/C2_S16_seed0 --fpr 0.1 --json --preset reference"
    assert main(shlex.split(command)) == 0
    assert json.loads(capsys.readouterr().out)["preset"] == "reference"
    dirs = " ".join(str(tmp_path / "ex" / f"C2_S{s}_seed0") for s in (4, 8, 16))
    command = f"empirical import {dirs} --shots 4 8 16 --classes 2 --out {tmp_path}/im"
    assert main(shlex.split(command)) == 0
    assert main(shlex.split(f"empirical fit {tmp_path}/im")) == 0
    assert "imported" in capsys.readouterr().out


# --------------------------------------------------------------------------- the reference's scores
def _reference_loop(keep, stats, shadows, targets, online, fix_variance=False):
    """The reference code's ``generate_ours`` / ``generate_ours_offline`` (``plot.py``), written
    from its published definition with plain loops: per example, the IN (OUT) statistics of the
    shadow models in order, every list cut to the shortest list's length, median and np.std
    (+1e-30), scipy's normal log-density; member-large (the reference ranks by minus its
    prediction)."""
    examples, queries = stats.shape[1], stats.shape[2]
    dat_in = [[stats[m, j] for m in shadows if keep[m, j]] for j in range(examples)]
    dat_out = [[stats[m, j] for m in shadows if not keep[m, j]] for j in range(examples)]
    in_size = min(len(x) for x in dat_in)
    out_size = min(len(x) for x in dat_out)
    dat_in = np.array([x[:in_size] for x in dat_in])  # (examples, in_size, queries)
    dat_out = np.array([x[:out_size] for x in dat_out])
    mean_in, mean_out = np.median(dat_in, 1), np.median(dat_out, 1)
    std_in, std_out = np.std(dat_in, 1), np.std(dat_out, 1)
    if fix_variance:  # online: all IN values' spread for IN and OUT; offline: all OUT values'
        spread = np.std(dat_in) if online else np.std(dat_out)
        std_in, std_out = np.full_like(std_in, spread), np.full_like(std_out, spread)
    rows = []
    for t in targets:
        row = []
        for j in range(examples):
            total = 0.0
            for q in range(queries):
                x = stats[t, j, q]
                out = scipy.stats.norm.logpdf(x, mean_out[j, q], std_out[j, q] + 1e-30)
                if online:
                    inn = scipy.stats.norm.logpdf(x, mean_in[j, q], std_in[j, q] + 1e-30)
                    total += inn - out
                else:
                    total -= out
            row.append(total / queries)
        rows.append(row)
    return np.array(rows)


def _uneven(seed, models=14, examples=120, queries=2):
    """A keep matrix whose IN/OUT counts differ between examples (so the cut matters)."""
    rng = np.random.default_rng(seed)
    keep = rng.random((models, examples)) < 0.5
    keep[:3, :] = True  # every example has >= 3 IN and >= 3 OUT models among the first six
    keep[3:6, :] = False
    signal = rng.exponential(1.0, examples)
    stats = rng.standard_normal((models, examples, queries)) + (keep * signal)[:, :, None]
    return keep, stats


@pytest.mark.parametrize("preset, fix", [("reference", False), ("reference-fixed", True)])
def test_reference_preset_is_the_reference_codes_score(tmp_path, preset, fix):
    keep, stats = _uneven(3)
    _reference_by_hand(tmp_path / "ref", keep, stats, np.random.default_rng(4))
    arrays = read_reference(tmp_path / "ref")
    targets = [11, 12, 13]  # the reference's last ntest models
    scored = score_arrays(arrays, targets=targets, fpr=(0.1,), preset=preset)
    for name, online in (("lira_online", True), ("lira_offline", False)):
        want = _reference_loop(keep, stats, range(11), targets, online, fix)
        got = scored.scores[name]
        difference = np.abs(got - want).max()
        rank = scipy.stats.spearmanr(got.ravel(), want.ravel()).statistic
        print(f"{preset} {name}: max |difference| {difference:.2e}, rank correlation {rank:.6f}")
        assert difference < 1e-9 * max(1.0, np.abs(want).max()), name
    # the cut matters here: without it (mialaw's reference centre and spread) offline differs
    plain = score_arrays(arrays, targets=targets, fpr=(0.1,), preset="mialaw")
    rank = scipy.stats.spearmanr(
        plain.scores["lira_offline"].ravel(), scored.scores["lira_offline"].ravel()
    ).statistic
    print(f"mialaw's one-sided offline against the reference's: rank correlation {rank:.3f}")
    assert rank < 0.99


def test_reference_preset_under_pair_rotation(tmp_path):
    rng = np.random.default_rng(5)
    half = rng.random((6, 80)) < 0.5
    keep = np.empty((12, 80), dtype=bool)
    keep[0::2], keep[1::2] = half, ~half
    stats = rng.standard_normal((12, 80, 1)) + keep[:, :, None] * rng.exponential(1.0, 80)[:, None]
    scored = score_arrays(read_arrays(_save(tmp_path, keep, stats)), preset="reference", fpr=(0.1,))
    assert scored.rotation == "pair rotation"
    for t in (0, 5, 11):
        shadows = [m for m in range(12) if m not in (t, t ^ 1)]
        for name, online in (("lira_online", True), ("lira_offline", False)):
            want = _reference_loop(keep, stats, shadows, [t], online)[0]
            assert np.allclose(scored.scores[name][t], want, rtol=1e-12, atol=1e-9), (t, name)
    # balanced pairs leave nothing to cut: online equals mialaw's reference centre and spread
    online = lira_scores(keep, stats, online=True, centre="median", ddof=0)
    assert np.allclose(scored.scores["lira_online"], online, rtol=1e-9, atol=1e-9)


def test_errors_name_the_folder(tmp_path, capsys):
    keep, stats = _uneven(6, models=8)
    keep[:, 0] = [True] + [False] * 7  # example 0: one IN model only
    folder = tmp_path / "few-in"
    _reference_by_hand(folder, keep, stats, np.random.default_rng(7))
    arrays = read_reference(folder)
    for preset in ("mialaw", "reference"):
        with pytest.raises(ValueError, match=r"few-in.*IN shadow models"):
            score_arrays(arrays, targets=[7], preset=preset)
        with pytest.raises(SystemExit) as exc:  # the command line says it in one line
            main(shlex.split(f"empirical score {folder} --targets 7 --preset {preset}"))
        err = capsys.readouterr().err.strip()
        assert exc.value.code == 2 and len(err.splitlines()) == 1, err
        assert str(folder) in err and "IN shadow models" in err, err
    with pytest.raises(ValueError, match=r"bad\.npz: population_stats"):
        np.savez(tmp_path / "bad.npz", keep=keep, stats=stats, population_stats=np.zeros((2, 3)))
        read_arrays(tmp_path / "bad.npz")


def test_score_table_is_spaced():
    keep, stats = _uneven(8)
    arrays = ScoreArrays(keep=keep, stats=stats, source="memory")
    scored = score_arrays(arrays, targets=[13], fpr=(0.1, 1e-4))
    for line in scored.table().splitlines()[1:]:
        name, rest = line.split(maxsplit=1)
        assert name in scored.scores and rest.startswith("fpr="), line
        assert rest.split()[1] in ("TPR", "unresolvable"), line
