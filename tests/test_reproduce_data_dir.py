"""`mialaw reproduce --data-dir DIR`: accepted, handed to every empirical run (and to the helper
that extracts their features ahead), and kept out of the stages' keys (issue 17)."""

from pathlib import Path

from mialaw.paper import prepare, stage_functions
from mialaw.paper import reproduce as rp
from mialaw.paper.cli import main
from mialaw.paper.profiles import PROFILES

SKIP_ALL_BUT_EMPIRICAL = ("derive", "theory", "simulate")


def test_the_command_line_accepts_a_data_folder(tmp_path, capsys):
    argv = ["reproduce", "--profile", "smoke", "--data-dir", str(tmp_path / "data")]
    argv += ["--skip", *SKIP_ALL_BUT_EMPIRICAL, "empirical", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    assert "unrecognized arguments" not in capsys.readouterr().err


def test_every_empirical_run_reads_the_data_folder(tmp_path, monkeypatch):
    seen = []

    def empirical(emp, run_dir, device, executor=None):
        seen.append((emp, device))
        return {}

    monkeypatch.setattr(stage_functions, "empirical", empirical)
    spec = PROFILES["smoke"]
    data = str(tmp_path / "data")
    plan, _ = rp._plan(spec, tmp_path, rp.Where("cpu", data), SKIP_ALL_BUT_EMPIRICAL, True, None)
    runs = [stage for stage in plan if stage[0] != "empirical-combined"]
    assert [name for name, *_ in runs] == [f"empirical-{e.label}" for e in spec.empirical]
    for _name, _config, compute, *_ in runs:
        compute()
    assert len(seen) == len(spec.empirical)
    for (emp, device), expected in zip(seen, spec.empirical):
        assert emp.options == expected.options | {"device": "cpu", "data_dir": data}
        assert device == "cpu"
    # The same stages with or without a data folder: a run is reused wherever its data lie.
    plain, _ = rp._plan(spec, tmp_path, rp.Where("cpu"), SKIP_ALL_BUT_EMPIRICAL, True, None)
    assert [(n, c) for n, c, *_ in plain] == [(n, c) for n, c, *_ in plan]
    assert all("data_dir" not in config for _, config, *_ in plan)


def test_the_feature_helper_reads_the_data_folder_too():
    spec = PROFILES["smoke"]
    runner = rp.StageRunner(Path("/nonexistent"), total=1, stream=None, force=True)
    plan = [(f"empirical-{e.label}", e.options) for e in spec.empirical]
    # A run whose features cost something to make (not pixels, not feature-space data).
    lite = next(
        e for p in PROFILES.values() for e in p.empirical if "lite" in e.options["backbone"]
    )
    plan.append((f"empirical-{lite.label}", lite.options))
    spec_with_lite = type(spec)(**{**spec.__dict__, "empirical": (*spec.empirical, lite)})
    where = rp.Where("cpu", "/data")
    tasks = prepare.tasks_for(plan, runner, spec_with_lite, where.options())
    assert tasks and all(task[2]["data_dir"] == "/data" for task in tasks)
