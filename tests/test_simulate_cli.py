"""`mialaw simulate`: table, --json, --out, and bad arguments (exit status 2, one line)."""

import csv
import json

import pytest

from mialaw.paper.cli import main

BASE = ["simulate", "--dim", "16", "--sigma", "1", "--fpr", "0.1", "0.01"]


def test_json_output_is_one_object(capsys):
    code = main(BASE + ["--shots", "10", "100", "1e3", "--targets", "2e4", "--json"])
    assert code == 0
    out = capsys.readouterr().out

    def strict(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    data = json.loads(out, parse_constant=strict)
    assert len(data["points"]) == 6
    point = data["points"][0]
    for key in (
        "shots",
        "fpr",
        "tpr",
        "tpr_ci",
        "interval_method",
        "achieved_fpr",
        "negatives",
        "resolvable",
        "detected",
        "advantage",
        "theory_pooled",
        "per_example_tpr",
        "theory_per_example",
    ):
        assert key in point
    low, high = point["tpr_ci"]
    assert low <= point["tpr"] <= high
    assert point["interval_method"].startswith("bootstrap percentile")
    assert point["advantage"] == pytest.approx(point["tpr"] - point["fpr"])
    assert set(data["fit"]) == {"0.1", "0.01"}
    assert data["fit"]["0.1"]["slope"] < 0
    assert "pooled_local_slopes" in data["fit"]["0.1"]


def test_table_reports_unresolvable_points_and_the_interval_method(capsys):
    code = main(BASE + ["--shots", "10", "100", "--targets", "400", "--fpr", "0.1", "0.001"])
    assert code == 0
    text = capsys.readouterr().out
    assert "achieved_fpr" in text and "unresolvable" in text
    assert "tpr_ci (95%): bootstrap percentile, 1000 resamples of games" in text
    code = main(
        BASE + ["--shots", "10", "100", "--targets", "400", "--interval", "clopper-pearson"]
    )
    assert code == 0 and "tpr_ci (95%): clopper-pearson" in capsys.readouterr().out


def test_table_and_out_directory(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code = main(
        BASE
        + [
            "--shots",
            "10",
            "100",
            "--targets",
            "400",
            "--attack",
            "lira-online",
            "--shadows",
            "8",
            "--evaluation",
            "dedicated",
            "--target-models",
            "4",
            "--fit-min-shots",
            "10",
            "--out",
            str(out_dir),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "advantage" in text and "slope" in text
    with open(out_dir / "points.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and {"shots", "fpr", "tpr", "tpr_ci"} <= set(rows[0])
    assert int(rows[0]["positives"]) + int(rows[0]["negatives"]) == 4 * 400
    assert {"interval_method", "achieved_fpr", "resolvable", "detected"} <= set(rows[0])
    config = json.loads((out_dir / "sweep.json").read_text())["config"]
    assert config["shadows"] == 8 and config["evaluation"] == "dedicated"
    png = (out_dir / "advantage.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--shots", "1", "--targets", "100"], "shots must lie in [2"),
        (["--shots", "10", "--targets", "100.5"], "--targets must be an integer"),
        (
            ["--shots", "10", "--targets", "100", "--attack", "lira-online", "--shadows", "5"],
            "shadows",
        ),
        (["--shots", "10", "--targets", "100", "--classes", "40"], "classes"),
        (["--shots", "10", "--targets", "100", "--resamples", "10"], "resamples"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(extra, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(BASE + extra)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("mialaw simulate: error:")


def test_unknown_choice_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(BASE + ["--shots", "10", "--targets", "10", "--engine", "gpu"])
    assert exc.value.code == 2
