"""The registries: a learner and an attack defined in a test file run through the whole pipeline
(sweep, store, analysis, fit) without any change to the package; unknown names fail clearly."""

from dataclasses import dataclass

import numpy as np
import pytest

from mialaw.empirical import learners
from mialaw.empirical.analysis import fit_runs
from mialaw.empirical.cells import read_cell, read_settings
from mialaw.empirical.experiment import RunConfig, run_sweep
from mialaw.empirical.film_run import film_options, film_settings
from mialaw.empirical.learners import Learner, get_learner, register_learner
from mialaw.empirical.sampling import candidate_pool, paired_keep
from mialaw.empirical.statistics import attack_stats


@dataclass(frozen=True)
class _Points:
    features: np.ndarray
    labels: np.ndarray
    key: str


def _prepare(config, given):
    # Two Gaussian classes in 8 dimensions, drawn from the config's own dataset options.
    rng = np.random.default_rng(config.dataset_options["seed"])
    n = config.dataset_options["n_per_class"]
    y = np.repeat([0, 1], n)
    x = rng.standard_normal((2 * n, 8)) + 0.7 * np.eye(8)[y]
    return _Points(x, y, key=f"toy-points-{config.dataset_options['seed']}-{n}")


def _run_cell(prepared, config, classes, shots, seed):
    """Nearest class mean: each model's logits are minus half the squared distances to the
    means of its own training examples."""
    pool, _ = candidate_pool(prepared.labels, shots, classes, seed, config.seeds)
    x, y = prepared.features[pool], prepared.labels[pool]
    keep = paired_keep(config.models, y, np.random.default_rng([seed, classes, shots]))
    logits = []
    for row in keep:
        means = np.stack([x[row & (y == c)].mean(0) for c in range(classes)])
        logits.append(-0.5 * ((x[:, None, :] - means[None]) ** 2).sum(-1))
    return {"keep": keep, "stats": attack_stats([np.stack(logits)], y), "labels": y}


TOY = Learner(name="toy_means", version="1", prepare=_prepare, run_cell=_run_cell)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(learners, "_REGISTERED", dict(learners._REGISTERED))
    return register_learner(TOY)


def test_a_registered_learner_runs_through_the_whole_pipeline(toy, tmp_path):
    config = RunConfig(
        dataset="toy",
        backbone="none",
        learner="toy_means",
        classes=(2,),
        shots=(2, 4, 8, 16),
        shadows=8,
        seeds=2,
        fpr=(0.1,),
        attacks=("lira",),
        dataset_options={"seed": 3, "n_per_class": 200},
    )
    result = run_sweep(config, tmp_path / "toy", progress=False, plots=False)
    assert read_settings(tmp_path / "toy")["code"]["learner"] == "toy_means/1"
    cell = read_cell(tmp_path / "toy", 2, 4, 1)
    assert cell["stats"].shape == (10, 16, 1)
    # The analysis reads it like any run: a vulnerability that falls with S.
    rows = [p for p in result.points if p["attack"] == "lira_offline"]
    tpr = [p["tpr"] for p in sorted(rows, key=lambda p: p["shots"])]
    assert tpr[0] > tpr[-1] > 0
    assert "lira_online" in fit_runs([tmp_path / "toy"]).table()


def test_registry_refuses_duplicates_and_unknown_names(toy):
    with pytest.raises(ValueError, match="exists"):
        register_learner(TOY)
    with pytest.raises(ValueError, match="exists"):
        register_learner(Learner("head", "9", _prepare, _run_cell))
    with pytest.raises(ValueError, match=r"learner must be one of \[.*'head'.*'toy_means'"):
        get_learner("no_such_learner")
    with pytest.raises(ValueError, match="learner must be one of"):
        RunConfig(dataset="digits", backbone="pixels", learner="no_such_learner")
    with pytest.raises(ValueError, match="version"):
        Learner("x", "", _prepare, _run_cell)


def test_a_registered_attack_is_scored_and_reported(monkeypatch, tmp_path):
    from mialaw.empirical import attacks

    monkeypatch.setattr(attacks, "_ATTACKS", dict(attacks._ATTACKS))
    monkeypatch.setattr(attacks, "ATTACK_FAMILIES", dict(attacks.ATTACK_FAMILIES))
    # The target model's own confidence: the attack without any shadow model.
    own = attacks.Attack("confidence", "1", lambda keep, stats, pop, config, rot: stats.mean(-1))
    attacks.register_attack(own, family="baseline")
    config = RunConfig(
        dataset="digits", backbone="pixels", classes=(2,), shots=(1, 4), shadows=4, fpr=(0.1,)
    )
    with pytest.raises(ValueError, match="attacks must be among"):
        RunConfig(dataset="digits", backbone="pixels", attacks=("nothing",))
    result = run_sweep(
        RunConfig(**config.to_dict() | {"attacks": ("baseline",)}),
        tmp_path / "run",
        progress=False,
        plots=False,
    )
    assert {p["attack"] for p in result.points} == {"confidence"}
    assert len(result.points) == 2 and all(p["tpr"] is not None for p in result.points)


def test_built_in_learners_complete_and_refuse_settings():
    assert get_learner("head").name == "head"
    # FiLM's validation completes its settings from the resolution.
    film = RunConfig(
        dataset="fashion-mnist",
        backbone="efficientnet-lite0",
        learner="film",
        dataset_options={"resolution": 32},
    )
    assert film.learner_settings == film_options(film_settings(None, resolution=32))
    with pytest.raises(ValueError, match="learner 'head' takes no settings"):
        RunConfig(dataset="digits", backbone="pixels", learner_settings={"epochs": 2})
