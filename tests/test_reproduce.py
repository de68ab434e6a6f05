"""`mialaw reproduce --profile smoke` end to end, resume, and the paper's numbers vs its tables."""

import csv
import io
import json
import math
import re
from pathlib import Path

import pytest

from mialaw.paper import reproduce as rp
from mialaw.paper.profiles import PROFILES
from mialaw.paper.render import lookup
from mialaw.paper.stages import StageRunner

PAPER = Path(rp.__file__).parent


# `smoke` (tests/conftest.py): reproduce("smoke") once per session, shared with test_faults.py.


def test_plan_with_cells_and_estimates_comes_first_and_every_stage_is_timed(smoke):
    _, report = smoke
    log = report.log
    assert log.index("plan of --profile smoke") < log.index("[1/")
    assert re.search(r"\n  simulate-oracle +5 S-points +~\d+ s\n", log), log
    assert re.search(r"\n  empirical-digits-pixels +4 cells \(C, S, seed\) +~\d+ s\n", log)
    assert re.search(r"\n  estimated \d+ s of computing on 2 cores", log)
    assert re.search(r"\[3/\d+\] simulate-oracle: done in \d+ s \(CPU \d+ s\)", log)
    assert {"derive", "theory", "simulate-oracle", "figures and tables"} <= set(report.timings)
    assert "time per stage: derive" in report.summary()


def test_warmup_helper_compiles_a_stage_in_the_background_and_says_so():
    """The helper runs the stage's own sweep at a tiny size and reports it ready; a stage it has
    no task for, or a helper that has ended, does not block."""
    from mialaw.paper.prepare import Warmup, tasks_for

    smoke = PROFILES["smoke"]
    runner = StageRunner(Path("/nonexistent"), total=1, stream=io.StringIO(), force=True)
    plan = [(f"simulate-{s.label}", s.options) for s in smoke.simulations]
    plan += [(f"empirical-{e.label}", e.options) for e in smoke.empirical]
    tasks = tasks_for(plan, runner, smoke, {"device": "cpu"})
    assert [t[0] for t in tasks] == ["simulate-oracle", "simulate-lira-16"]  # pixels: no task
    with Warmup(tasks[:1]) as warm:
        warm.wait("empirical-digits-pixels")  # not a task: returns at once
        warm.wait("simulate-oracle")
        assert not warm.pending
        warm.wait("simulate-oracle")


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_artifact_exists_and_is_finite(smoke):
    out, report = smoke
    assert report.ok
    for name in ("derivation.txt", "derivation.tex", "paper.md"):
        assert (out / name).stat().st_size > 0
    for table in ("slopes", "regression", "dp_shots", "theory"):
        for ext in ("md", "csv"):
            assert (out / "tables" / f"{table}.{ext}").exists()
    expected = ["law", "empirical_by_class", "per_example", "roc", "quantiles"]
    if not rp.empirical_available():
        expected = ["law"]
    assert PROFILES["smoke"].figure_formats == ("png",)
    for fig in expected:
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000, fig
        assert not (out / "figures" / f"{fig}.svg").exists()  # vector copies: the full run only
    for row in _rows(out / "tables" / "slopes.csv"):
        # Blank only where the strict saturation cut left too few points for a law.
        assert math.isfinite(float(row["slope"] or "nan")) or row["saturation_cut"] == "0.5"


def test_theory_slope_is_minus_half(smoke):
    out, _ = smoke
    rows = [r for r in _rows(out / "tables" / "slopes.csv") if r["source"].startswith("exact")]
    assert len(rows) == 6
    for r in rows:
        assert abs(float(r["slope"]) + 0.5) < 1e-6


def test_simulated_oracle_slope_interval_contains_minus_half(smoke):
    out, _ = smoke
    rows = [
        r
        for r in _rows(out / "tables" / "slopes.csv")
        if r["source"] == "simulated oracle (pooled)" and float(r["fpr"]) == 0.1
    ]
    assert rows and float(rows[0]["ci_low"]) <= -0.5 <= float(rows[0]["ci_high"])


@pytest.mark.skipif(not rp.empirical_available(), reason="the empirical extra is not installed")
def test_empirical_slope_is_negative(smoke):
    out, _ = smoke
    rows = [r for r in _rows(out / "tables" / "slopes.csv") if "LiRA online" in r["source"]]
    # Blank where the strict saturation cut left < 2 points (the smoke run's few S can).
    assert rows and all(r["saturation_cut"] == "0.5" for r in rows if not r["slope"])
    assert all(float(r["slope"]) < 0 for r in rows if float(r["fpr"]) == 0.1 and r["slope"])
    # The analysis's own fits (the 0.9 cut) fall at FPR 0.1.
    cuts = [r for r in _rows(out / "tables" / "saturation.csv") if "LiRA online" in r["source"]]
    loose = [r for r in cuts if float(r["cut"]) == 0.9 and float(r["fpr"]) == 0.1 and r["slope"]]
    assert loose and all(float(r["slope"]) < 0 for r in loose)


def test_derivation_verified_in_outputs(smoke):
    out, _ = smoke
    stored = json.loads((out / "stages" / "derive.json").read_text())["result"]
    assert stored["all_verified"] and len(stored["steps"]) >= 10
    assert "[FAILED]" not in (out / "derivation.txt").read_text()


def test_timings_record_every_stage_computed_or_reused(smoke):
    """OUT/timings.json: the wall time, each computed stage's wall and CPU time, and the stages
    reused (the session's run, or a later rerun into its folder by another test)."""
    out, _ = smoke
    timings = json.loads((out / "timings.json").read_text())
    assert timings["profile"] == "smoke" and timings["cores"] >= 1
    computed = set(timings["stages_s"]) - {"figures and tables"}
    assert "figures and tables" in timings["stages_s"]
    assert computed.isdisjoint(timings["reused"])
    assert computed | set(timings["reused"]) >= {"derive", "theory", "simulate-oracle"}
    assert set(timings["stages_cpu_s"]) == computed
    assert timings["wall_s"] >= sum(timings["stages_s"].values()) > 0


def test_resume_after_interrupted_stage_gives_identical_outputs(smoke, tmp_path):
    out, _ = smoke
    before = {p.name: p.read_bytes() for p in (out / "tables").glob("*.csv")}
    paper_before = (out / "paper.md").read_text()
    # An interrupted stage: its result is gone and a torn temporary file is left behind.
    victim = out / "stages" / "simulate-oracle.json"
    victim.unlink()
    (out / "stages" / ".simulate-oracle.json.123.tmp").write_text('{"key": "torn')
    log = io.StringIO()
    report = rp.reproduce("smoke", out, device="cpu", stream=log)
    assert victim.exists()
    assert "simulate-oracle: running" in log.getvalue()
    assert "theory: reused" in log.getvalue()
    assert report.ok
    after = {p.name: p.read_bytes() for p in (out / "tables").glob("*.csv")}
    assert after == before
    assert (out / "paper.md").read_text() == paper_before


def test_interrupted_stage_leaves_no_result(tmp_path):
    runner = StageRunner(tmp_path, total=1, stream=io.StringIO())

    def boom():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run("s", {"a": 1}, boom, 1)
    assert not runner.path("s").exists()
    runner = StageRunner(tmp_path, total=2, stream=io.StringIO())
    assert runner.run("s", {"a": 1}, lambda: {"x": 1.5}, 1) == {"x": 1.5}
    # A changed configuration is not served from the old result.
    assert runner.run("s", {"a": 2}, lambda: {"x": 2.5}, 1) == {"x": 2.5}
    assert runner.load("s", {"a": 1}) is None


def test_committed_paper_agrees_with_committed_tables():
    """paper/paper.md is what the template gives on paper/stages and paper/tables/*.csv."""
    if not (PAPER / "paper.md").exists():
        pytest.fail("paper/paper.md is missing: run `mialaw reproduce --profile full --out paper`")
    from mialaw.paper.outputs import load_stage_results, paper_text

    full = rp.PROFILES["full"]
    want = paper_text(load_stage_results(PAPER, full), full, PAPER, out_name="paper")
    assert (PAPER / "paper.md").read_text() == want


def test_lookup_rules():
    tables = {"t": [{"a": "0.1", "b": "x", "slope": "-0.5", "ci_low": "-0.6", "ci_high": "-0.4"}]}
    assert lookup(tables, "t", "a=0.10; b=x", "slope") == "−0.50"
    assert lookup(tables, "t", "a=0.10", "slope_ci") == "−0.50 [−0.60, −0.40]"
    with pytest.raises(ValueError, match="no row"):  # a placeholder matching nothing is an error
        lookup(tables, "t", "a=0.2", "slope")
    tables["t"].append(dict(tables["t"][0]))
    with pytest.raises(ValueError, match="matches 2 rows"):
        lookup(tables, "t", "a=0.1", "slope")


def test_bad_profile_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="profile must be one of"):
        rp.reproduce("huge", tmp_path)


def _reuse_stages(smoke, out: Path, *names: str) -> None:
    """Copy finished stages of the session's smoke run into ``out`` (reused there, not redone)."""
    (out / "stages").mkdir(parents=True, exist_ok=True)
    for name in names:
        (out / "stages" / f"{name}.json").write_bytes(
            (smoke[0] / "stages" / f"{name}.json").read_bytes()
        )


def test_missing_dataset_is_skipped_with_a_note(tmp_path, monkeypatch, smoke):
    from mialaw.paper import stage_functions

    _reuse_stages(smoke, tmp_path, "theory", "simulate-oracle", "simulate-lira-16")

    def missing(*args, **kwargs):
        raise FileNotFoundError("Fashion-MNIST not found: apt-get install dataset-fashion-mnist")

    monkeypatch.setattr(stage_functions, "empirical", missing)
    log = io.StringIO()
    report = rp.reproduce("smoke", tmp_path, device="cpu", stream=log, skip=("derive",))
    if rp.empirical_available():
        assert any("apt-get install dataset-fashion-mnist" in n for n in report.notes)
    assert (tmp_path / "paper.md").exists() and report.ok


def test_empty_data_dir_hides_the_system_copy_and_dependent_stages_are_skipped(
    tmp_path, monkeypatch, smoke
):
    """MIALAW_DATA naming an empty folder: Fashion-MNIST is not found (even if installed), its
    stage is skipped, the cross-dataset stage that needs it is skipped too, and the run
    completes."""
    import dataclasses

    reference = smoke  # the session's run (``smoke`` names the profile below)

    from mialaw.paper import profiles

    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("MIALAW_DATA", str(empty))
    smoke = profiles.PROFILES["smoke"]
    fashion = profiles._empirical(
        "fashion", "fashion-mnist", "efficientnet-lite0", (2,), (1, 2), 4, 1
    )
    tiny = dataclasses.replace(
        smoke, name="tiny", simulations=(), empirical=(fashion, smoke.empirical[0])
    )
    monkeypatch.setitem(profiles.PROFILES, "tiny", tiny)
    _reuse_stages(reference, tmp_path / "out", "theory")
    log = io.StringIO()
    report = rp.reproduce("tiny", tmp_path / "out", device="cpu", stream=log, skip=("derive",))
    assert report.ok and (tmp_path / "out" / "paper.md").exists()
    assert any(n.startswith("empirical-fashion skipped") for n in report.notes), report.notes
    assert any(n.startswith("empirical-combined skipped: it needs") for n in report.notes)
    assert "empirical-digits-pixels" in report.results
