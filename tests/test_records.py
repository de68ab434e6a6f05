"""Typed results: the versioned JSON form round-trips, older or unknown formats are refused
clearly, the point schema is enforced, and a real sweep's summary.json reads back as records."""

import json

import pytest

from mialaw.theory.records import RESULTS_FORMAT, Point, PowerLaw, ResultSet


def _point(**changes):
    row = dict(
        source="empirical",
        dataset="digits",
        backbone="pixels",
        learner="head",
        classes=2,
        shots=8,
        attack="lira_online",
        fpr=0.01,
        tpr=0.05,
        tpr_ci=[0.02, 0.09],
        interval_method="bootstrap",
        resolvable=True,
        detected=True,
        positives=400,
        negatives=400,
        seeds=3,
        accuracy=0.97,  # a source-specific field: kept in ``extra``
    )
    return row | changes


def _law(**changes):
    row = dict(source="empirical", dataset="digits", backbone="pixels", classes=2)
    row |= dict(attack="lira_online", fpr=0.01, slope=-0.6, slope_ci=[-0.8, -0.4])
    return row | dict(intercept=-0.3, n=5, shots_range=[4, 64], weighted=True) | changes


def test_round_trip_through_json_text():
    points = (Point.from_dict(_point()), Point.from_dict(_point(shots=16, tpr=0.03)))
    unresolved = Point.from_dict(_point(fpr=0.001, tpr=None, tpr_ci=None, resolvable=False))
    results = ResultSet(points + (unresolved,), (PowerLaw.from_dict(_law()),), {"regression": []})
    text = json.dumps(results.to_json())
    again = ResultSet.from_json(json.loads(text))
    assert again == results
    assert json.loads(text)["format"] == RESULTS_FORMAT
    assert again.points[0].extra == {"accuracy": 0.97}
    assert again.points[0].advantage == pytest.approx(0.04)
    assert again.points[2].advantage is None


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"points": [], "fit": {"power_law": []}}, "mialaw 0.1"),
        ({"format": "mialaw-results/1", "points": [], "fit": {}}, "mialaw 0.1"),
        ({"format": "mialaw-results/9", "points": [], "fit": {}}, "is not"),
    ],
)
def test_other_formats_are_refused_with_a_reason(payload, message):
    with pytest.raises(ValueError, match=message):
        ResultSet.from_json(payload)


def test_schema_is_enforced():
    with pytest.raises(ValueError, match="lacks the fields"):
        Point.from_dict({k: v for k, v in _point().items() if k != "interval_method"})
    with pytest.raises(ValueError, match="unresolvable point carries no TPR"):
        Point.from_dict(_point(resolvable=False))
    with pytest.raises(ValueError, match="source"):
        Point.from_dict(_point(source="guess"))
    results = ResultSet((Point.from_dict(_point()),), ())
    assert len(results.select(attack="lira_online", fpr=0.01)) == 1
    assert results.select(attack="rmia") == []
    with pytest.raises(ValueError, match="no fields"):
        results.select(atack="lira_online")


def test_a_sweep_summary_reads_back_as_records(tmp_path):
    from mialaw.empirical.experiment import RunConfig, run_sweep

    config = RunConfig(dataset="digits", backbone="pixels", classes=(2,), shots=(1, 4), shadows=4)
    result = run_sweep(config, tmp_path / "run", progress=False, plots=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    records = ResultSet.from_json(summary)
    assert records == result.records()
    assert {p.learner for p in records.points} == {"head"}
    assert len(records.select(shots=4, attack="rmia")) == len(config.fpr)


def test_simulated_points_share_the_schema():
    from mialaw.simulate.sweep import SweepConfig, run_sweep

    config = SweepConfig(dim=8, sigma=1.0, shots=(4, 16, 64), fpr=(0.1, 0.001), targets=400)
    records = run_sweep(config).records()
    again = ResultSet.from_json(json.loads(json.dumps(records.to_json())))
    assert again == records
    assert {p.source for p in records.points} == {"simulation"}
    # 400 games: α = 0.001 has under one expected false positive: unresolvable, null TPR.
    low = records.select(fpr=0.001)
    assert low and all(p.tpr is None and not p.resolvable for p in low)
    assert all(p.tpr is not None for p in records.select(fpr=0.1))


def test_simulated_and_measured_sweeps_are_one_type(tmp_path):
    """Both sweep results are SweepRecords: the same typed selection reads either."""
    from mialaw.empirical.analysis import fit_runs
    from mialaw.empirical.config import RunConfig
    from mialaw.empirical.sweep import run_sweep as run_empirical
    from mialaw.simulate.sweep import SweepConfig, run_sweep
    from mialaw.theory.records import SweepRecords

    simulated = run_sweep(
        SweepConfig(dim=4, sigma=1.0, shots=(4, 16, 64), fpr=(0.1,), targets=400, seed=1),
        progress=False,
    )
    config = RunConfig(
        dataset="gaussian",
        backbone="identity",
        shots=(2, 8),
        shadows=4,
        fpr=(0.1,),
        attacks=("lira",),
        dataset_options={"dim": 8, "n_per_class": 64, "seed": 0},
    )
    run_empirical(config, tmp_path / "g", progress=False, plots=False)
    measured = fit_runs([tmp_path / "g"])
    for sweep, source in ((simulated, "simulation"), (measured, "empirical")):
        assert isinstance(sweep, SweepRecords)
        chosen = sweep.points_where(fpr=0.1)
        assert chosen and all(p.source == source and p.fpr == 0.1 for p in chosen)
        assert len(chosen) == len([p for p in sweep.records().points if p.fpr == 0.1])
    # The simulated points are the ones the sweep itself reports at that α.
    assert [p.shots for p in simulated.points_where(fpr=0.1)] == [4, 16, 64]
    assert [p.tpr for p in simulated.points_where(fpr=0.1)] == [
        None if not p.resolvable else p.tpr for p in simulated.select(0.1)
    ]
