"""Extension points that close: a toy learner *with settings* and a toy attack *with a
parameter*, both defined in this file, flow through run → store → analysis → tables → audit →
export without any change to the package.

The toy learner is a nearest-class-mean classifier whose class means are shrunk towards their
average by its setting ``shrink`` (0: the plain means); the toy attack scores by the target's own
statistic times its parameter ``sign`` (+1: the model's own confidence, a shadow-free attack; −1:
the same ranking reversed, an attack that must measure *below* chance).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import pytest

from mialaw.empirical import attacks, learners
from mialaw.empirical.analysis import fit_runs
from mialaw.empirical.audit import audit
from mialaw.empirical.cells import read_cell, read_settings
from mialaw.empirical.config import RunConfig
from mialaw.empirical.film_run import film_options, film_settings
from mialaw.empirical.interchange import export_run
from mialaw.empirical.interchange_read import read_reference
from mialaw.empirical.learner_base import Learner
from mialaw.empirical.sampling import candidate_pool, paired_keep
from mialaw.empirical.statistics import attack_stats
from mialaw.empirical.sweep import run_sweep
from mialaw.paper.profiles import PROFILES, EmpiricalSpec
from mialaw.paper.table_format import read_table
from mialaw.paper.tables import write_tables


# --------------------------------------------------------------------------- the toy learner
@dataclass(frozen=True)
class _Points:
    features: np.ndarray
    labels: np.ndarray
    key: str


def _prepare(config, given):
    rng = np.random.default_rng(config.dataset_options["seed"])
    n = config.dataset_options["n_per_class"]
    y = np.repeat([0, 1], n)
    x = rng.standard_normal((2 * n, 8)) + 0.7 * np.eye(8)[y]
    return _Points(x, y, key=f"toy-points-{config.dataset_options['seed']}-{n}")


def _shrink_settings(options: dict, config) -> dict:
    unknown = sorted(set(options) - {"shrink"})
    if unknown:
        raise ValueError(f"toy_means takes the setting 'shrink' only; got {unknown}")
    shrink = float(options.get("shrink", 0.0))
    if not 0.0 <= shrink < 1.0:
        raise ValueError(f"shrink must lie in [0, 1); got {shrink!r}")
    return {"shrink": shrink}


def _run_cell(prepared, config, classes, shots, seed):
    shrink = config.learner_settings["shrink"]
    pool, _ = candidate_pool(prepared.labels, shots, classes, seed, config.seeds)
    x, y = prepared.features[pool], prepared.labels[pool]
    keep = paired_keep(config.models, y, np.random.default_rng([seed, classes, shots]))
    logits = []
    for row in keep:
        means = np.stack([x[row & (y == c)].mean(0) for c in range(classes)])
        means = (1 - shrink) * means + shrink * means.mean(0)
        logits.append(-0.5 * ((x[:, None, :] - means[None]) ** 2).sum(-1))
    return {"keep": keep, "stats": attack_stats([np.stack(logits)], y), "labels": y}


TOY_LEARNER = Learner(
    name="toy_means",
    version="1",
    prepare=_prepare,
    run_cell=_run_cell,
    settings=_shrink_settings,
    label="toy class means",
)


# --------------------------------------------------------------------------- the toy attack
def _sign_settings(options: dict, config) -> dict:
    sign = options.get("sign", 1)
    if sign not in (1, -1) or isinstance(sign, bool):
        raise ValueError(f"sign must be 1 or -1; got {sign!r}")
    return {"sign": int(sign)}


def _own_confidence(keep, stats, population_stats, config, rotation, *, settings):
    return settings["sign"] * np.asarray(stats, dtype=np.float64).mean(-1)


TOY_ATTACK = attacks.Attack(
    "toy_confidence",
    "1",
    _own_confidence,
    label="Toy confidence",
    family="toy",
    settings=_sign_settings,
)


@pytest.fixture
def plugins(monkeypatch):
    """Register both for one test; the registries are restored afterwards."""
    monkeypatch.setattr(learners, "_REGISTERED", dict(learners._REGISTERED))
    monkeypatch.setattr(attacks, "_ATTACKS", dict(attacks._ATTACKS))
    monkeypatch.setattr(attacks, "ATTACK_FAMILIES", dict(attacks.ATTACK_FAMILIES))
    learners.register_learner(TOY_LEARNER)
    attacks.register_attack(TOY_ATTACK)


def _config(**changes) -> RunConfig:
    base = dict(
        dataset="toy",
        backbone="none",
        learner="toy_means",
        learner_settings={"shrink": 0.2},
        classes=(2,),
        shots=(2, 4, 8, 16),
        shadows=8,
        seeds=2,
        fpr=(0.1,),
        attacks=("lira", "toy"),
        attack_settings={"toy_confidence": {"sign": 1}},
        dataset_options={"seed": 3, "n_per_class": 200},
    )
    return RunConfig(**(base | changes))


def test_settings_are_checked_by_their_plugin(plugins):
    assert _config(learner_settings={}).learner_settings == {"shrink": 0.0}  # completed
    with pytest.raises(ValueError, match="shrink must lie in"):
        _config(learner_settings={"shrink": 1.5})
    with pytest.raises(ValueError, match="sign must be 1 or -1"):
        _config(attack_settings={"toy_confidence": {"sign": 2}})
    with pytest.raises(ValueError, match="learner 'head' takes no settings"):
        RunConfig(dataset="digits", backbone="pixels", learner_settings={"shrink": 0.1})
    with pytest.raises(ValueError, match="attack 'rmia' takes no settings"):
        RunConfig(dataset="digits", backbone="pixels", attack_settings={"rmia": {"sign": 1}})
    # Every registered family is reported unless the run names its own.
    assert RunConfig(dataset="digits", backbone="pixels").attacks == ("lira", "rmia", "toy")


def test_run_store_analysis_tables_and_export(plugins, tmp_path):
    config = _config()
    result = run_sweep(config, tmp_path / "toy", progress=False, plots=False)
    settings = read_settings(tmp_path / "toy")
    assert settings["config"]["learner_settings"] == {"shrink": 0.2}
    assert settings["code"]["learner"] == "toy_means/1"
    assert read_cell(tmp_path / "toy", 2, 4, 1)["stats"].shape == (10, 16, 1)

    # Store: the learner's setting is part of its cells' identity, the attack's is not.
    other = read_settings_after(tmp_path / "shrunk", _config(learner_settings={"shrink": 0.6}))
    assert set(other["cells"].values()).isdisjoint(settings["cells"].values())
    flipped_config = _config(attack_settings={"toy_confidence": {"sign": -1}})
    flipped = read_settings_after(tmp_path / "flipped", flipped_config)
    assert flipped["cells"] == settings["cells"]

    # Analysis: the attack's parameter reaches its scores. sign=+1 is a real (shadow-free)
    # attack on members' higher confidence; sign=−1 reverses the ranking: below chance.
    def tpr(res, shots):
        (p,) = [
            p
            for p in res.points
            if p["attack"] == "toy_confidence" and p["shots"] == shots and p["fpr"] == 0.1
        ]
        return p["tpr"]

    reversed_result = fit_runs([tmp_path / "flipped"])
    assert tpr(result, 2) > 0.1 > tpr(reversed_result, 2)
    # The built-in attacks run on the toy learner's cells like on any: a vulnerability that
    # falls with S.
    lira = sorted(
        (p for p in result.points if p["attack"] == "lira_offline"), key=lambda p: p["shots"]
    )
    assert len(lira) == 4 and lira[0]["tpr"] > lira[-1]["tpr"] > 0

    # Tables: a run of the toy learner, read by its role, shows the toy attack by its label.
    profile = dataclasses.replace(
        PROFILES["smoke"], empirical=(EmpiricalSpec("toy-run", {}, role="main"),)
    )
    results = {"empirical-toy-run": {"label": "toy-run"} | result.to_json()}
    write_tables(results, profile, tmp_path / "paper")
    sources = {r["source"] for r in read_table(tmp_path / "paper" / "tables" / "slopes.csv")}
    assert "toy-run (Toy confidence)" in sources and "toy-run (LiRA online)" in sources

    # Export: every cell in the reference layout, the toy learner's statistics as stored.
    written = export_run(tmp_path / "toy", tmp_path / "exported")
    assert len(written) == len(config.cells())
    folder = tmp_path / "exported" / "C2_S4_seed1"
    arrays = read_reference(folder)
    stored = read_cell(tmp_path / "toy", 2, 4, 1)
    assert np.array_equal(np.asarray(arrays.keep, bool), stored["keep"])
    assert np.array_equal(arrays.stats, stored["stats"])
    assert json.loads((folder / "mialaw.json").read_text())["dataset"] == "toy"


def read_settings_after(run_dir, config) -> dict:
    run_sweep(config, run_dir, progress=False, plots=False)
    return read_settings(run_dir)


def test_a_registered_attack_reaches_the_audit(plugins):
    rng = np.random.default_rng(7)
    y = np.repeat([0, 1], 60)
    x = rng.standard_normal((120, 5)) + 1.5 * np.eye(5)[y]
    report = audit(x, y, shots=(4, 8, 16), fpr=(0.1,), shadows=4, progress=False)
    measured = {p["attack"] for p in report.points}
    assert {"toy_confidence", "lira_online"} <= measured
    assert any("Toy confidence" in line for line in report.to_markdown().splitlines())


def test_registries_refuse_duplicates_and_unknown_names(plugins):
    with pytest.raises(ValueError, match="exists"):
        learners.register_learner(TOY_LEARNER)
    with pytest.raises(ValueError, match="exists"):
        learners.register_learner(Learner("head", "9", _prepare, _run_cell))
    with pytest.raises(ValueError, match="exists"):
        attacks.register_attack(TOY_ATTACK)
    with pytest.raises(ValueError, match=r"learner must be one of \[.*'head'.*'toy_means'"):
        learners.get_learner("no_such_learner")
    with pytest.raises(ValueError, match="learner must be one of"):
        RunConfig(dataset="digits", backbone="pixels", learner="no_such_learner")
    with pytest.raises(ValueError, match="attacks must be among"):
        RunConfig(dataset="digits", backbone="pixels", attacks=("nothing",))
    with pytest.raises(ValueError, match="version"):
        Learner("x", "", _prepare, _run_cell)
    with pytest.raises(ValueError, match="settings must be callable"):
        attacks.Attack("x", "1", _own_confidence, settings="sign")


def test_built_in_learners_complete_and_refuse_settings():
    # FiLM's settings are completed from the run's resolution by FiLM itself.
    film = RunConfig(
        dataset="fashion-mnist",
        backbone="efficientnet-lite0",
        learner="film",
        dataset_options={"resolution": 32},
    )
    assert film.learner_settings == film_options(film_settings(None, resolution=32))
    assert film.cell_settings()["film"] == film.learner_settings  # in its cells' identity
    with pytest.raises(ValueError, match="unknown film options"):
        RunConfig(**film.to_dict() | {"learner_settings": {"depth": 2}})
