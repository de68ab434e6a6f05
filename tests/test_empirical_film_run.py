"""FiLM cells of the empirical sweep: the analysis format, Head's sampling, determinism, the
settings (tiny random Lite0 at 32 px, 4 shadows + 2 targets)."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")

from mialaw.empirical.analysis import fit_runs  # noqa: E402
from mialaw.empirical.cell_summary import summarize_cell  # noqa: E402
from mialaw.empirical.cells import CellSpec, read_cell, store_of  # noqa: E402
from mialaw.empirical.experiment import (  # noqa: E402
    PreparedFeatures,
    RunConfig,
    run_cell,
)
from mialaw.empirical.film_run import (  # noqa: E402
    FilmRun,
    film_options,
    film_run,
    film_settings,
    run_film_cell,
)
from mialaw.empirical.film_settings import FilmSettings  # noqa: E402
from mialaw.empirical.film_sweep import run_film_sweep  # noqa: E402

RES = 32
FAST = {"epochs": 2, "batch_size": 4}
TIMINGS = ("train_seconds", "train_cpu_seconds", "query_seconds")


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread; `backbone`


@pytest.fixture(scope="module")
def data():
    """18 uint8 28×28 images per class; class 1 carries a bright off-centre bar."""
    rng = np.random.default_rng(0)
    labels = np.arange(36) % 2
    images = rng.integers(0, 200, (36, 28, 28)).astype(np.uint8)
    images[labels == 1, :, 4:10] = 255
    return images, labels


def _config(**extra):
    options = dict(
        dataset="synthetic",
        backbone="efficientnet-lite0",
        classes=(2,),
        shots=(1, 2),
        shadows=4,
        seeds=2,
        fpr=(0.5, 0.1),
        rmia_population=10,
        dataset_options={"resolution": RES},
        learner="film",
    )
    return RunConfig(**(options | extra))


def _cell(data, backbone, shots=2, seed=0, film=FAST, config=None):
    fr = film_run(config or _config(), film)
    return run_film_cell(*data, fr, 2, shots, seed, backbone=backbone, threads=1)


def test_a_film_cell_has_the_analysis_format_and_is_measured(data, backbone):
    cell = _cell(data, backbone)
    m, n = 6, 8  # 4 shadows + 2 targets; 2·S·C candidates
    assert cell["keep"].shape == (m, n) and cell["keep"].dtype == bool
    # complementary pairs, S per class, every example IN for half of the models
    assert np.array_equal(cell["keep"][1::2], ~cell["keep"][0::2])
    assert (cell["keep"].sum(0) == m // 2).all() and (cell["keep"].sum(1) == n // 2).all()
    assert cell["stats"].shape == (m, n, 2) and cell["stats"].dtype == np.float64
    assert cell["population_stats"].shape == (m, 10, 2)
    assert np.isfinite(cell["stats"]).all() and np.isfinite(cell["population_stats"]).all()
    assert cell["labels"].shape == (n,) and cell["indices"].shape == (n,)
    assert np.array_equal(cell["labels"], data[1][cell["indices"]])
    assert (
        cell["accuracy"].shape == (m,) and ((0 <= cell["accuracy"]) & (cell["accuracy"] <= 1)).all()
    )
    assert np.isnan(cell["grad_norm"]).all() and cell["grad_norm"].shape == (m, n)
    assert np.isnan(cell["atypicality"]).all() and cell["atypicality"].shape == (n,)
    assert cell["train_loss"].shape == (m, FAST["epochs"])
    assert (int(cell["classes"]), int(cell["shots"]), int(cell["seed"])) == (2, 2, 0)
    # The two queries differ (the image and its mirror) but describe the same models.
    assert not np.allclose(cell["stats"][..., 0], cell["stats"][..., 1])

    summary = summarize_cell(cell, (0.5, 0.1), _config())
    assert set(summary.scores) == {"lira_online", "lira_offline", "rmia"}
    for scores in summary.scores.values():
        assert scores.shape == (m, n) and np.isfinite(scores).all()
    assert np.isfinite(summary.roc["lira_online"]).all()
    assert summary.models == m and summary.examples == n
    assert np.isnan(summary.grad_norm).all()


def test_head_and_film_cells_share_candidates_keep_and_population(data, backbone):
    images, labels = data
    config = _config()
    # Any features do: the sampling depends on the labels only.
    features = np.random.default_rng(1).normal(size=(len(labels), 5)).astype(np.float32)
    prepared = PreparedFeatures(features, labels.astype(np.int64), None, "given")
    for shots, seed in ((1, 0), (2, 1)):
        head = run_cell(prepared, config, 2, shots, seed)
        film = _cell(data, backbone, shots=shots, seed=seed)
        for key in ("indices", "keep", "labels", "pool_overlap", "classes", "shots", "seed"):
            assert np.array_equal(head[key], film[key]), key
        assert head["population_stats"].shape[:2] == film["population_stats"].shape[:2]


def test_same_seed_gives_an_identical_cell_and_another_seed_does_not(data, backbone):
    first, second = _cell(data, backbone), _cell(data, backbone)
    assert set(first) == set(second)
    for key in set(first) - set(TIMINGS):
        assert np.array_equal(first[key], second[key], equal_nan=first[key].dtype.kind == "f"), key
    other = _cell(data, backbone, seed=1)
    assert not np.array_equal(first["indices"], other["indices"])
    assert not np.array_equal(first["stats"], other["stats"])


def test_the_sweep_writes_a_run_that_fit_runs_reads_and_resumes(data, backbone, tmp_path):
    config = _config(seeds=1)
    fr = film_run(config, FAST)
    out = tmp_path / "film"
    result = run_film_sweep(
        fr, out, images=data, backbone=backbone, threads=1, progress=False, plots=False
    )
    assert {p["shots"] for p in result.points} == {1, 2}
    assert "lira_online" in fit_runs([out]).table()
    settings = json.loads((out / "settings.json").read_text())
    assert settings["config"]["learner"] == "film"
    assert settings["cell_settings"]["film"] == film_options(fr.settings)
    run = RunConfig.from_dict(settings["config"])
    cell_path = store_of(out).path(CellSpec(run, settings["feature_key"], 2, 2, 0).identity())
    before = read_cell(out, 2, 2, 0)
    stamp = cell_path.stat().st_mtime_ns
    run_film_sweep(fr, out, images=data, backbone=backbone, threads=1, progress=False, plots=False)
    assert cell_path.stat().st_mtime_ns == stamp  # finished cells are reused
    assert np.array_equal(read_cell(out, 2, 2, 0)["stats"], before["stats"])
    # Other FiLM settings are other cells: stored beside these, never mixed up with them.
    longer = film_run(config, FAST | {"epochs": 3})
    run_film_sweep(
        longer, out, images=data, backbone=backbone, threads=1, progress=False, plots=False
    )
    assert not np.array_equal(read_cell(out, 2, 2, 0)["stats"], before["stats"])
    assert cell_path.stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    "options, resolution, match",
    [
        ({"resolution": 64}, 64, "dataset option"),
        ({"seed": 3}, 64, "SeedSequence"),
        ({"momentom": 0.5}, 64, "unknown film options"),
        ({}, None, "explicit image resolution"),
        ({"epochs": 0}, 64, "epochs"),
        ([("epochs", 1)], 64, "must be a dict"),
    ],
)
def test_bad_film_options_raise_value_error(options, resolution, match):
    with pytest.raises(ValueError, match=match):
        film_settings(options, resolution=resolution)


def test_settings_and_cell_inputs_are_checked(data, backbone):
    settings = film_settings({"learning_rate": 0.01}, resolution=RES)
    assert settings == FilmSettings(learning_rate=0.01, resolution=RES)
    assert "resolution" not in film_options(settings) and "seed" not in film_options(settings)
    with pytest.raises(ValueError, match="differs"):
        FilmRun(_config(), FilmSettings(resolution=64))
    with pytest.raises(ValueError, match="explicit image resolution"):
        film_run(_config(dataset_options={}))
    images, labels = data
    with pytest.raises(ValueError, match="uint8"):
        run_film_cell(images.astype(float), labels, film_run(_config()), 2, 1, 0, backbone=backbone)
    with pytest.raises(ValueError, match="seed must lie"):
        _cell(data, backbone, seed=2)
    with pytest.raises(ValueError, match="class size"):
        _cell(data, backbone, shots=5)  # 2·5 + 10 = 20 > 18 images per class
